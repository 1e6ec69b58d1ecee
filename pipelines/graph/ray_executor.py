"""Run the job graph as Ray tasks: every job whose inputs are done runs at once, anywhere.

Each job is one task with its resources (a GPU where the experiment runs on CUDA, else as
many CPUs as its torch threads), submitted as soon as its dependencies finish, so independent
GANs and classifiers spread over the GPUs of a machine or the machines of a cluster. Workers
read and write the run directory directly: it must be on a filesystem every node sees, which is
checked first. A task whose worker dies is retried (MAX_RETRIES); a job that fails for a real reason
stops the graph with its one-line error, outstanding tasks are cancelled, and finished jobs
keep their done-markers, so a rerun continues. Ray is optional: `pip install 'raregan[ray]'`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from pipelines.errors import UserError
from pipelines.graph.scheduler import Node, run_marked
from pipelines.store.layout import RunLayout

MAX_RETRIES = 3  # a worker killed mid-job (node lost, OOM killer) gets this many more tries


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            "--executor ray needs Ray: pip install 'raregan[ray]' (or pip install ray)"
        ) from None
    return ray


def start(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to a cluster at `address`, or start a local Ray instance sized to the machine."""
    ray = import_ray()
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot start or reach Ray ({address or 'local'}): {e}") from e


def check_shared_run_dir(run_dir: Path) -> None:
    """A task on every alive node writes a probe file that the driver must read back."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    run_dir = Path(run_dir).resolve()
    probe_dir = run_dir / ".probe"
    probe_dir.mkdir(parents=True, exist_ok=True)

    @ray.remote(num_cpus=0)
    def write_probe(path: str, token: str) -> str:
        import socket

        try:
            Path(path).write_text(token)
        except OSError as e:
            return f"{socket.gethostname()} cannot write there ({e.strerror})"
        return ""

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    checks = {}
    for node in nodes:
        token = uuid.uuid4().hex
        path = probe_dir / f"{node['NodeID'][:12]}-{token[:8]}"
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        ref = write_probe.options(scheduling_strategy=strategy).remote(str(path), token)
        checks[node.get("NodeManagerHostname", node["NodeID"][:12])] = (ref, path, token)
    for host, (ref, path, token) in checks.items():
        problem = ray.get(ref)
        seen = path.read_text() if path.is_file() else None
        path.unlink(missing_ok=True)
        if problem or seen != token:
            raise UserError(
                f"the run directory {run_dir} is not shared with the Ray node {host} "
                f"({problem or 'its probe file never appeared here'}); put --run-dir on a "
                "filesystem that every node mounts at the same path"
            )


class RayBackend:
    """Every ready job at once as a Ray task: a GPU where the job wants one, else as many CPUs
    as its torch threads. A task whose worker dies is retried (MAX_RETRIES)."""

    in_order = False
    verb = "submitted"

    def __init__(self, layout: RunLayout, task: Callable[[Node], dict]):
        self.ray = import_ray()
        self.layout, self.task = layout, task
        self.remote = self.ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_marked)
        self.running: dict = {}  # ObjectRef -> node

    def is_running(self, node: Node) -> bool:
        return node in self.running.values()

    def fits(self, node: Node) -> bool:
        return True

    def place(self, node: Node) -> str:
        return "ray"

    def submit(self, node: Node) -> bool:
        opts = {"num_gpus": 1, "num_cpus": 1} if node.gpu else {"num_cpus": node.threads}
        ref = self.remote.options(**opts, name=node.name).remote(
            self.task, node, str(self.layout.root)
        )
        self.running[ref] = node
        return False

    def busy(self) -> bool:
        return bool(self.running)

    def next_finished(self) -> tuple[Node, dict]:
        finished, _ = self.ray.wait(list(self.running), num_returns=1)
        node = self.running.pop(finished[0])
        return node, _get(self.ray, finished[0], node)

    def stop(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        pass


def _get(ray, ref, node: Node) -> dict:
    """The task's result, or its failure as the job's one-line error."""
    from ray.exceptions import RayTaskError, TaskCancelledError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as e:
        cause = e.cause if getattr(e, "cause", None) is not None else e
        message = getattr(cause, "message", None) or str(cause).strip().splitlines()[-1]
        raise UserError(f"job {node.name} failed: {message}") from None
    except WorkerCrashedError:
        raise UserError(
            f"job {node.name}: its Ray worker died {MAX_RETRIES + 1} times; finished jobs are "
            "kept, rerun the same command to continue"
        ) from None
    except TaskCancelledError:
        raise UserError(f"job {node.name} was cancelled") from None
