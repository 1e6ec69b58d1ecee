"""Jobs with named dependencies, done-markers in the run directory, and the local executors.

A job's key hashes its own config with its dependencies' keys, so a change anywhere upstream
reaches everything downstream. When a job finishes, the executor writes
<run>/jobs/<name>.json (key, where it ran, how long, its small result) atomically and last: a
job whose marker holds its current key is done and skipped. While it runs, <name>.running
says which process has it.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipelines.errors import UserError
from pipelines.rundir import atomic_write_text


@dataclass(frozen=True)
class Job:
    name: str  # "features", "gan/df", "samples/gan/df", "classifier/gan/seed0", "report"
    deps: tuple[str, ...]
    gpu: bool  # wants an accelerator
    config: dict = field(hash=False, compare=False)  # what its outputs depend on

    @property
    def seed(self) -> int:
        """A stable per-job seed for anything not seeded by its own config."""
        return zlib.crc32(self.name.encode())

    @property
    def file_name(self) -> str:
        return self.name.replace("/", "__")


def job_keys(jobs: list[Job]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for job in jobs:  # dependency order
        payload = json.dumps([job.config, [keys[d] for d in job.deps]], sort_keys=True)
        keys[job.name] = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return keys


def marker_path(run_dir: Path, job: Job) -> Path:
    return Path(run_dir) / "jobs" / f"{job.file_name}.json"


def read_marker(run_dir: Path, job: Job) -> dict | None:
    path = marker_path(run_dir, job)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_done(run_dir: Path, job: Job, key: str) -> bool:
    marker = read_marker(run_dir, job)
    return marker is not None and marker.get("key") == key


def where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def mark_running(run_dir: Path, job: Job) -> None:
    path = marker_path(run_dir, job).with_suffix(".running")
    atomic_write_text(path, json.dumps({"where": where(), "pid": os.getpid(), "t": time.time()}))


def mark_done(run_dir: Path, job: Job, key: str, result: dict) -> None:
    record = {"name": job.name, "key": key, "where": where(), "finished": time.time(), **result}
    atomic_write_text(marker_path(run_dir, job), json.dumps(record, indent=1, default=str))
    marker_path(run_dir, job).with_suffix(".running").unlink(missing_ok=True)


def stage_seconds(run_dir: Path, jobs: list[Job], stages: dict[str, str]) -> dict[str, float]:
    """Wall time per stage: the length of the union of its finished jobs' [start, end] spans,
    so jobs that ran side by side (--workers, Ray) count once."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for job in jobs:
        marker = read_marker(run_dir, job)
        kind = job.name.split("/")[1 if job.name.startswith("fold") else 0]  # fold<k>/<kind>/...
        stage = stages.get(kind)
        if marker is not None and stage is not None and "seconds" in marker:
            end = marker.get("finished", 0.0)
            spans.setdefault(stage, []).append((end - marker["seconds"], end))
    return {stage: covered_seconds(s) for stage, s in spans.items()}


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping [start, end] spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def describe(run_dir: Path, jobs: list[Job]) -> str:
    """The --dry-run listing: every job, what it waits for, and whether it is done."""
    keys = job_keys(jobs)
    width = max(len(j.name) for j in jobs)
    lines = [f"{'job':<{width}}  {'status':<8}  {'needs':<4}  depends on"]
    for job in jobs:
        marker = read_marker(run_dir, job)
        if marker is None:
            status = "to-run"
        elif marker.get("key") == keys[job.name]:
            status = "done"
        else:
            status = "stale"  # finished with another config: runs again
        needs = "gpu" if job.gpu else "cpu"
        deps = ", ".join(job.deps) or "-"
        lines.append(f"{job.name:<{width}}  {status:<8}  {needs:<4}  {deps}")
    return "\n".join(lines)


def log_line(job: Job, verb: str, where_: str, seconds: float | None = None) -> str:
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return f"[{time.strftime('%H:%M:%S')}] {job.name} {verb} on {where_}{took}"


def run_marked(task: Callable[[Job, dict], dict], job: Job, wall: dict, run_dir: str) -> dict:
    """The job in a worker process: its .running marker names that process."""
    mark_running(Path(run_dir), job)
    return {**task(job, wall), "where": where()}


def run_local(
    run_dir: Path,
    jobs: list[Job],
    run: Callable[[Job, dict], dict],
    wall: Callable[[], dict],
    echo: Callable[[str], None],
    progress: bool,
    workers: int = 1,
    slots: Callable[[Job], int] = lambda job: 1,
    run_quietly: Callable[[Job, dict], dict] | None = None,
) -> dict[str, dict]:
    """Run every job that is not done, in dependency order, on this machine.

    A job takes slots(job) of `workers` slots. A job that takes them all runs here, in this
    process, with its progress bar; smaller ones run side by side in worker processes (started
    on first need), each on its own share of the threads, where one job alone could not keep
    every core busy (as `run_quietly`, without progress bars that would garble the terminal).
    No job overtakes an earlier one that waits for slots, so none starves; a failure stops the
    rest, and finished jobs keep their markers."""
    keys = job_keys(jobs)
    done = {j.name for j in jobs if is_done(run_dir, j, keys[j.name])}
    results = {j.name: read_marker(run_dir, j) or {} for j in jobs if j.name in done}
    running: dict[cf.Future, Job] = {}
    pool: cf.ProcessPoolExecutor | None = None
    bar = tqdm(total=len(jobs), initial=len(done), desc="jobs", unit="job", disable=not progress)

    def finish(job: Job, result: dict) -> None:
        mark_done(run_dir, job, keys[job.name], result)
        echo(log_line(job, "finished", result.get("where", "?"), result.get("seconds")))
        done.add(job.name)
        results[job.name] = result
        bar.update()

    try:
        while len(done) < len(jobs):
            for job in jobs:
                if job.name in done or job in running.values():
                    continue
                used = sum(slots(j) for j in running.values())
                if not all(d in done for d in job.deps) or used + slots(job) > workers:
                    break
                wall_now = wall() if job.name == "report" else {}
                if slots(job) >= workers:  # alone: here, with its progress bar
                    echo(log_line(job, "started", where()))
                    finish(job, run_marked(run, job, wall_now, str(run_dir)))
                    break  # dependencies may be done now: look again from the start
                if pool is None:
                    context = multiprocessing.get_context("spawn")  # no fork of torch's threads
                    pool = cf.ProcessPoolExecutor(workers, context)
                echo(log_line(job, "started", "a worker process"))
                args = (run_quietly or run, job, wall_now, str(run_dir))
                running[pool.submit(run_marked, *args)] = job
            if running:
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    finish(job, _result(future, job))
    except BaseException:
        if pool is not None:  # stop the other running jobs now
            _kill_workers(pool)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    return results


def _result(future: cf.Future, job: Job) -> dict:
    try:
        return future.result()
    except cf.process.BrokenProcessPool:
        raise UserError(
            f"job {job.name}: its worker process died (killed, or out of memory); finished "
            "jobs are kept, rerun the same command to continue (with --workers 1 if memory-bound)"
        ) from None


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Python 3.14's kill_workers(); before it, the same through the pool's process table."""
    if hasattr(pool, "kill_workers"):
        pool.kill_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
