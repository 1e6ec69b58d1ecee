"""The job graph's core: keys, done-markers, and one scheduler with two backends.

A Node is a job as the scheduler sees it: its name, the names of its dependencies, its key,
and what it needs. The key hashes the slice of config the job reads with its dependencies'
keys, so a change anywhere upstream reaches everything downstream. When a job finishes, the
scheduler writes <run>/jobs/<name>.json (key, where it ran, how long, its small result)
atomically and last: a job whose marker holds its current key is done and skipped. While it
runs, <name>.running says which process has it.

`run_graph` is the one loop — submit what is ready, record what finishes, stop everything on a
failure — and a backend says where a job runs: `LocalBackend` (this process, or worker
processes for jobs that take a slot) or `pipelines.ray_executor.RayBackend`.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan.conventions import atomic_write_text
from gan.progress import for_job, progress_bar
from pipelines.errors import UserError
from pipelines.store.layout import RunLayout
from pipelines.store.records import file_sha256


@dataclass(frozen=True)
class Node:
    job: Any  # the typed job (pipelines.jobs): frozen, hashable, picklable
    name: str  # for markers, logs and seeds; derived from the job, never parsed
    deps: tuple[str, ...]
    key: str
    stage: str  # the report's wall-time stage
    gpu: bool = False  # wants an accelerator
    slots: int | None = None  # of the local executor's workers; None: all of them
    threads: int = 1  # torch threads it runs on (Ray: CPUs it asks for)
    config: dict = field(default_factory=dict, compare=False, hash=False)  # what its key hashes
    outputs: tuple = field(default=(), compare=False)  # files it is not done without

    @property
    def seed(self) -> int:
        """A stable per-job seed for anything not seeded by its own config."""
        return zlib.crc32(self.name.encode())


def check_graph(nodes: list[Node]) -> None:
    """Every name once, every dependency earlier in the list: otherwise a scheduler would
    wait for a job it can never run."""
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise UserError(f"two jobs are named {node.name!r}; give each arm and class once")
        missing = [d for d in node.deps if d not in seen]
        if missing:
            raise UserError(f"job {node.name} waits for {', '.join(missing)}, not before it")
        seen.add(node.name)


def read_marker(layout: RunLayout, node: Node) -> dict | None:
    try:
        return json.loads(layout.marker(node.name).read_text())
    except (OSError, ValueError):
        return None


def is_done(layout: RunLayout, node: Node) -> bool:
    """Its marker holds its key, and its outputs are as it left them: a deleted, cut short
    or changed output makes it run again instead of failing (or misleading) the jobs that
    read it."""
    marker = read_marker(layout, node)
    done = marker is not None and marker.get("key") == node.key
    return done and changed_output(marker, node) is None


def changed_output(marker: dict, node: Node) -> str | None:
    """Why an output the marker vouches for cannot be trusted (None: all are as recorded).
    Size and modification time are compared first; where only the time differs, the
    SHA-256. A marker from before outputs were recorded vouches for their presence only."""
    recorded = marker.get("outputs", {})
    for path in map(str, node.outputs):
        if not os.path.isfile(path):
            return f"{path} is gone"
        was = recorded.get(path)
        if was is None:
            continue
        st = os.stat(path)
        if st.st_size != was["size"]:
            return f"{path} changed size ({was['size']} -> {st.st_size} bytes)"
        if st.st_mtime_ns != was["mtime_ns"] and file_sha256(Path(path)) != was["sha256"]:
            return f"{path} changed content"
    return None


def _output_record(node: Node) -> dict[str, dict]:
    """Size, modification time and SHA-256 of each output file, for changed_output."""
    out = {}
    for path in map(str, node.outputs):
        if os.path.isfile(path):
            st = os.stat(path)
            out[path] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            out[path]["sha256"] = file_sha256(Path(path))
    return out


def where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def mark_running(layout: RunLayout, node: Node) -> None:
    record = {"where": where(), "pid": os.getpid(), "t": time.time()}
    atomic_write_text(layout.running_marker(node.name), json.dumps(record))


def mark_done(layout: RunLayout, node: Node, result: dict) -> None:
    record = {"name": node.name, "key": node.key, "where": where(), "finished": time.time()}
    record |= result | {"outputs": _output_record(node)}
    atomic_write_text(layout.marker(node.name), json.dumps(record, indent=1, default=str))
    layout.running_marker(node.name).unlink(missing_ok=True)


def stage_seconds(layout: RunLayout, nodes: list[Node]) -> dict[str, float]:
    """Wall time per stage: the length of the union of its finished jobs' [start, end] spans,
    so jobs that ran side by side (--workers, Ray) count once."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for node in nodes:
        marker = read_marker(layout, node)
        if marker is not None and "seconds" in marker:
            end = marker.get("finished", 0.0)
            spans.setdefault(node.stage, []).append((end - marker["seconds"], end))
    return {stage: covered_seconds(s) for stage, s in spans.items()}


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping [start, end] spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def job_status(layout: RunLayout, node: Node) -> str:
    """done, to-run, or stale (finished with another config or changed outputs: runs again)."""
    if read_marker(layout, node) is None:
        return "to-run"
    return "done" if is_done(layout, node) else "stale"


def not_done(layout: RunLayout, nodes: list[Node]) -> set[str]:
    """The jobs a run of these nodes would run (to-run or stale)."""
    return {n.name for n in nodes if job_status(layout, n) != "done"}


def describe(layout: RunLayout, nodes: list[Node]) -> str:
    """The --dry-run listing: every job, what it waits for, and whether it is done."""
    width = max(len(n.name) for n in nodes)
    lines = [f"{'job':<{width}}  {'status':<8}  {'needs':<4}  depends on"]
    for node in nodes:
        status = job_status(layout, node)
        needs, deps = "gpu" if node.gpu else "cpu", ", ".join(node.deps) or "-"
        lines.append(f"{node.name:<{width}}  {status:<8}  {needs:<4}  {deps}")
    return "\n".join(lines)


def log_line(node: Node, verb: str, where_: str, seconds: float | None = None) -> str:
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return f"[{time.strftime('%H:%M:%S')}] {node.name} {verb} on {where_}{took}"


def run_marked(task: Callable[[Node], dict], node: Node, run_dir: str) -> dict:
    """The job where it runs: its .running marker names that process."""
    mark_running(RunLayout(run_dir), node)
    with for_job(node.name):  # its progress lines name it
        return {**task(node), "where": where()}


def run_graph(
    layout: RunLayout,
    nodes: list[Node],
    backend,
    echo: Callable[[str], None],
    progress: bool,
) -> dict[str, dict]:
    """Run every job that is not done, each once its dependencies are, on `backend`.

    A backend that keeps order (local) starts jobs in list order, so none starves behind later
    ones; one that does not (Ray) starts every ready job. A failure or interrupt stops the
    jobs still running; finished jobs keep their markers, so a rerun continues."""
    check_graph(nodes)
    results = {}  # the finished jobs' markers; one whose outputs changed is said, then rerun
    for node in nodes:
        marker = read_marker(layout, node)
        if marker is None or marker.get("key") != node.key:
            continue
        why = changed_output(marker, node)
        if why:
            echo(f"note: {node.name} runs again: {why} since it finished")
        else:
            results[node.name] = marker
    done = set(results)
    bar = progress_bar(
        total=len(nodes), initial=len(done), desc="jobs", unit="job", disable=not progress
    )
    try:
        while len(done) < len(nodes):
            for node in nodes:
                if node.name in done or backend.is_running(node):
                    continue
                ready = all(d in done for d in node.deps)
                if backend.in_order and (not ready or not backend.fits(node)):
                    break
                if ready:
                    echo(log_line(node, backend.verb, backend.place(node)))
                    if backend.submit(node):  # it finished here and then: look again
                        break
            if not backend.busy():
                waiting = [n.name for n in nodes if n.name not in done]
                raise UserError(f"no job can start, yet {', '.join(waiting)} did not run")
            node, result = backend.next_finished()
            mark_done(layout, node, result)
            echo(log_line(node, "finished", result.get("where", "?"), result.get("seconds")))
            done.add(node.name)
            results[node.name] = result
            bar.update()
    except BaseException:
        backend.stop()
        raise
    finally:
        backend.close()
        bar.close()
    return results


class LocalBackend:
    """This machine: a job that takes every slot runs in this process with its progress bar;
    one that takes a slot runs in a worker process (started on first need) beside others, on
    its share of the threads (small convolutions scale poorly across threads, so several
    classifiers side by side keep the cores busier: benchmarks/parallel_jobs.py)."""

    in_order = True
    verb = "started"

    def __init__(self, layout: RunLayout, run, run_quietly, workers: int = 1):
        self.layout, self.run, self.run_quietly, self.workers = layout, run, run_quietly, workers
        self.running: dict[cf.Future, Node] = {}
        self.finished_here: list[tuple[Node, dict]] = []
        self.pool: cf.ProcessPoolExecutor | None = None

    def _slots(self, node: Node) -> int:
        return self.workers if node.slots is None else min(node.slots, self.workers)

    def is_running(self, node: Node) -> bool:
        return node in self.running.values()

    def fits(self, node: Node) -> bool:
        used = sum(self._slots(n) for n in self.running.values())
        return used + self._slots(node) <= self.workers

    def place(self, node: Node) -> str:
        return where() if self._slots(node) >= self.workers else "a worker process"

    def submit(self, node: Node) -> bool:
        if self._slots(node) >= self.workers:
            self.finished_here.append((node, run_marked(self.run, node, str(self.layout.root))))
            return True
        if self.pool is None:
            context = multiprocessing.get_context("spawn")  # no fork of torch's threads
            self.pool = cf.ProcessPoolExecutor(self.workers, context)
        future = self.pool.submit(run_marked, self.run_quietly, node, str(self.layout.root))
        self.running[future] = node
        return False

    def busy(self) -> bool:
        return bool(self.finished_here or self.running)

    def next_finished(self) -> tuple[Node, dict]:
        if self.finished_here:
            return self.finished_here.pop(0)
        finished, _ = cf.wait(self.running, return_when=cf.FIRST_COMPLETED)
        future = next(iter(finished))
        node = self.running.pop(future)
        try:
            return node, future.result()
        except cf.process.BrokenProcessPool:
            raise UserError(
                f"job {node.name}: its worker process died (killed, or out of memory); "
                "finished jobs are kept, rerun the same command to continue (with --workers 1 "
                "if memory-bound)"
            ) from None

    def stop(self) -> None:
        if self.pool is not None:  # stop the other running jobs now
            _kill_workers(self.pool)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Python 3.14's kill_workers(); before it, the same through the pool's process table."""
    if hasattr(pool, "kill_workers"):
        pool.kill_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
