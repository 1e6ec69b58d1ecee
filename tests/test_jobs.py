"""augment-and-compare as a job graph: dry run, skipping, the run-directory lock, Ray."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import invoke_cli, one_line_error

from pipelines.cli import augment_and_compare
from pipelines.graph import Job, job_keys

SMOKE = ["--profile", "smoke", "--seeds", "2", "--classes", "df,vasc", "--target", "24",
         "--arms", "baseline,oversample,gan", "--quiet", "--precision", "fp32",
         "--threads", "1"]  # fmt: skip


def invoke(args, ok=True):
    return invoke_cli(augment_and_compare, args, ok)


def job_lines(output: str) -> dict[str, str]:
    """--dry-run's rows by job name (without the header and notes)."""
    rows = [line for line in output.splitlines() if line.strip()]
    return {r.split()[0]: r for r in rows if not r.startswith(("note:", "job "))}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("local") / "run"
    invoke(["--run-dir", str(run_dir), *SMOKE])
    return run_dir


def test_keys_follow_dependencies():
    a, b = Job("a", (), False, {"x": 1}), Job("b", ("a",), False, {"y": 1})
    before = job_keys([a, b])
    after = job_keys([Job("a", (), False, {"x": 2}), b])
    assert before["a"] != after["a"] and before["b"] != after["b"]  # upstream change reaches b


def test_dry_run_lists_jobs_dependencies_and_status(local_run: Path, tmp_path: Path):
    fresh = invoke(["--run-dir", str(tmp_path / "new"), *SMOKE, "--dry-run"]).output
    lines = job_lines(fresh)
    assert lines["gan/df"].split()[1:3] == ["to-run", "cpu"]
    assert lines["gan/df"].endswith("features, gan/all")
    assert set(lines) >= {"features", "gan/all", "samples/gan/vasc", "classifier/gan/seed1"}
    assert "report" in lines and not (tmp_path / "new" / "jobs").exists()  # nothing ran
    done = invoke(["--run-dir", str(local_run), *SMOKE, "--dry-run"]).output
    assert all(line.split()[1] == "done" for line in job_lines(done).values())
    more = [a if a != "2" else "3" for a in SMOKE]  # a third seed: new jobs, stale report
    changed = invoke(["--run-dir", str(local_run), *more, "--dry-run"]).output
    status = {name: line.split()[1] for name, line in job_lines(changed).items()}
    assert status["classifier/gan/seed2"] == "to-run" and status["gan/df"] == "done"
    assert status["classifier/gan/seed0"] == "stale" and status["report"] == "stale"


def test_every_finished_job_has_a_marker_with_where_and_how_long(local_run: Path):
    markers = [json.loads(p.read_text()) for p in (local_run / "jobs").glob("*.json")]
    assert len(markers) == 1 + 1 + 2 + 2 + 6 + 1  # features, source, 2 GANs, 2 samples, 6, report
    assert all(m["seconds"] > 0 and ":" in m["where"] and len(m["key"]) == 16 for m in markers)
    assert not list((local_run / "jobs").glob("*.running"))


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from pipelines.lock import run_dir_lock\n"
        f"with run_dir_lock({str(run_dir)!r}):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path: Path):
    run_dir = tmp_path / "run"
    holder = _hold_lock(run_dir)
    try:
        line = one_line_error(invoke(["--run-dir", str(run_dir), *SMOKE], False))
        assert f"is in use by pid {holder.pid}" in line and "another --run-dir" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    from pipelines.lock import run_dir_lock

    with run_dir_lock(run_dir):  # the kernel released the dead holder's lock
        pass


def _metrics(run_dir: Path) -> dict:
    runs = json.loads((run_dir / "results.json").read_text())["runs"]
    return {arm: [r["test"] for fold in folds for r in fold] for arm, folds in runs.items()}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_executor_gives_the_in_process_numbers(ray_local, local_run: Path, tmp_path):
    run_dir = tmp_path / "ray"
    invoke(["--run-dir", str(run_dir), *SMOKE, "--executor", "ray"])
    assert _metrics(run_dir) == _metrics(local_run)
    wheres = {json.loads(p.read_text())["where"] for p in (run_dir / "jobs").glob("*.json")}
    assert len(wheres) >= 2  # jobs ran in more than one worker process


def test_ray_survives_a_killed_worker(ray_local, local_run: Path, tmp_path: Path):
    run_dir = tmp_path / "killed"
    killed: list[int] = []

    def kill_first_gan_worker() -> None:
        running = run_dir / "jobs" / "gan__df.running"
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            try:
                pid = json.loads(running.read_text())["pid"]
            except (OSError, ValueError):
                time.sleep(0.02)
                continue
            if pid != os.getpid():
                time.sleep(0.3)  # into the training
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    killer = threading.Thread(target=kill_first_gan_worker, daemon=True)
    killer.start()
    invoke(["--run-dir", str(run_dir), *SMOKE, "--executor", "ray"])
    killer.join()
    assert killed, "no worker was killed: the test did not test anything"
    marker = json.loads((run_dir / "jobs" / "gan__df.json").read_text())
    assert marker["where"] != f"{marker['where'].split(':')[0]}:{killed[0]}"  # a new worker
    assert _metrics(run_dir) == _metrics(local_run)  # and nothing lost or changed


def test_ray_missing_gives_one_line(monkeypatch, tmp_path: Path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    run_dir = tmp_path / "r"
    shutil.rmtree(run_dir, ignore_errors=True)
    line = one_line_error(invoke(["--run-dir", str(run_dir), *SMOKE, "--executor", "ray"], False))
    assert "pip install 'raregan[ray]'" in line


def _intervals(run_dir: Path) -> dict[str, tuple[float, float, str]]:
    markers = [json.loads(p.read_text()) for p in (run_dir / "jobs").glob("*.json")]
    return {m["name"]: (m["finished"] - m["seconds"], m["finished"], m["where"]) for m in markers}


def test_local_workers_run_classifiers_side_by_side_with_the_one_at_a_time_numbers(tmp_path):
    from pipelines import graph
    from pipelines.cli.augment_and_compare import experiment_config
    from pipelines.jobs import STAGES, experiment_graph, run_job

    two = [a if a != "1" else "2" for a in SMOKE] + ["--workers", "2"]  # --threads 2
    parallel = tmp_path / "parallel"
    invoke(["--run-dir", str(parallel), *two])
    spans = _intervals(parallel)
    main = {where for name, (_, _, where) in spans.items() if "classifier/" not in name}
    workers = {where for name, (_, _, where) in spans.items() if "classifier/" in name}
    assert len(main) == 1 and len(workers) == 2 and not main & workers  # pool of 2, GANs here
    for name, (start, end, _) in spans.items():  # a job that takes every slot runs alone
        if "classifier/" not in name:
            others = [s for n, s in spans.items() if n != name]
            assert all(e <= start + 0.05 or s >= end - 0.05 for s, e, _ in others), name

    wall = json.loads((parallel / "results.json").read_text())["wall_seconds"]["classifiers"]
    summed = sum(e - s for n, (s, e, _) in spans.items() if "classifier/" in n)
    assert wall < summed  # the stage's wall time counts overlapping jobs once

    # the same jobs with the same per-job threads, one at a time: the same numbers
    sequential = tmp_path / "sequential"
    ctx = augment_and_compare.make_context(
        "augment-and-compare", ["--run-dir", str(sequential), *two]
    )
    cfg = experiment_config(ctx.params)
    jobs = experiment_graph(cfg)
    task = functools.partial(run_job, cfg)
    wall = functools.partial(graph.stage_seconds, sequential, jobs, STAGES)
    graph.run_local(sequential, jobs, task, wall, lambda line: None, False)  # 1 slot, here
    assert _metrics(sequential) == _metrics(parallel)


def test_stage_wall_time_counts_side_by_side_jobs_once():
    from pipelines.graph import covered_seconds

    assert covered_seconds([]) == 0.0
    assert covered_seconds([(0, 10), (0, 10)]) == 10  # two jobs side by side
    assert covered_seconds([(0, 10), (5, 12), (20, 21)]) == 13  # overlap, then a gap
    assert covered_seconds([(0, 10), (2, 3)]) == 10  # one inside another


def test_kill_workers_stops_a_running_job_at_once():
    """What run_local calls when a job fails or Ctrl-C comes: the workers die now, rather than
    after their jobs (minutes) end."""
    import concurrent.futures as cf
    import multiprocessing

    from pipelines.graph import _kill_workers

    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(1, mp_context=ctx)
    try:
        pool.submit(os.getpid).result(timeout=60)  # the worker is up
        long_job = pool.submit(time.sleep, 120)
        t0 = time.perf_counter()
        _kill_workers(pool)
        with pytest.raises(cf.process.BrokenProcessPool):
            long_job.result(timeout=60)
        assert time.perf_counter() - t0 < 30
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
