"""Jobs with named dependencies, done-markers in the run directory, and the in-process executor.

A job's key hashes its own config with its dependencies' keys, so a change anywhere upstream
reaches everything downstream. When a job finishes, the executor writes
<run>/jobs/<name>.json (key, where it ran, how long, its small result) atomically and last: a
job whose marker holds its current key is done and skipped. While it runs, <name>.running
says which process has it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

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
    """Wall time per stage, summed over the jobs' markers (finished jobs only)."""
    wall: dict[str, float] = {}
    for job in jobs:
        marker = read_marker(run_dir, job)
        kind = job.name.split("/")[1 if job.name.startswith("fold") else 0]  # fold<k>/<kind>/...
        stage = stages.get(kind)
        if marker is not None and stage is not None and "seconds" in marker:
            wall[stage] = wall.get(stage, 0.0) + marker["seconds"]
    return wall


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


def run_in_process(
    run_dir: Path,
    jobs: list[Job],
    run: Callable[[Job, dict], dict],
    wall: Callable[[], dict],
    echo: Callable[[str], None],
    progress: bool,
) -> dict[str, dict]:
    """Run every job that is not done, in dependency order, in this process."""
    keys = job_keys(jobs)
    results: dict[str, dict] = {}
    with tqdm(total=len(jobs), desc="jobs", unit="job", disable=not progress) as bar:
        for job in jobs:
            if is_done(run_dir, job, keys[job.name]):
                results[job.name] = read_marker(run_dir, job) or {}
                bar.update()
                continue
            echo(log_line(job, "started", where()))
            mark_running(run_dir, job)
            result = {**run(job, wall() if job.name == "report" else {}), "where": where()}
            mark_done(run_dir, job, keys[job.name], result)
            echo(log_line(job, "finished", where(), result.get("seconds")))
            results[job.name] = result
            bar.update()
    return results
