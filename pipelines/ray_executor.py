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

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from pipelines.errors import UserError
from pipelines.graph import Job, is_done, job_keys, log_line, mark_done, read_marker, run_marked

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


def run_on_ray(
    run_dir: Path,
    jobs: list[Job],
    task: Callable[[Job, dict], dict],
    wall: Callable[[], dict],
    echo: Callable[[str], None],
    threads: Callable[[Job], int],
    progress: bool,
) -> dict[str, dict]:
    """Run every job that is not done as a Ray task, each as soon as its inputs are done."""
    ray = import_ray()
    keys = job_keys(jobs)
    done = {j.name for j in jobs if is_done(run_dir, j, keys[j.name])}
    results = {name: read_marker(run_dir, j) or {} for j in jobs if (name := j.name) in done}
    remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_marked)
    running: dict = {}  # ObjectRef -> (job, start time)
    bar = tqdm(total=len(jobs), initial=len(done), desc="jobs", unit="job", disable=not progress)
    try:
        while len(done) < len(jobs):
            for job in jobs:
                ready = job.name not in done and all(d in done for d in job.deps)
                if ready and job not in {j for j, _ in running.values()}:
                    opts = {"num_gpus": 1, "num_cpus": 1} if job.gpu else {"num_cpus": threads(job)}
                    ref = remote.options(**opts, name=job.name).remote(
                        task, job, wall() if job.name == "report" else {}, str(run_dir)
                    )
                    running[ref] = (job, time.perf_counter())
                    echo(log_line(job, "submitted", "ray"))
            finished, _ = ray.wait(list(running), num_returns=1)
            job, t0 = running.pop(finished[0])
            result = _get(ray, finished[0], job)
            mark_done(run_dir, job, keys[job.name], result)
            echo(log_line(job, "finished", result.get("where", "?"), result.get("seconds")))
            done.add(job.name)
            results[job.name] = result
            bar.update()
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return results


def _get(ray, ref, job: Job) -> dict:
    """The task's result, or its failure as the job's one-line error."""
    from ray.exceptions import RayTaskError, TaskCancelledError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as e:
        cause = e.cause if getattr(e, "cause", None) is not None else e
        message = getattr(cause, "message", None) or str(cause).strip().splitlines()[-1]
        raise UserError(f"job {job.name} failed: {message}") from None
    except WorkerCrashedError:
        raise UserError(
            f"job {job.name}: its Ray worker died {MAX_RETRIES + 1} times; finished jobs are "
            "kept, rerun the same command to continue"
        ) from None
    except TaskCancelledError:
        raise UserError(f"job {job.name} was cancelled") from None
