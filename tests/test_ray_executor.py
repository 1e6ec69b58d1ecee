"""pipelines.graph.ray_executor: the job graph on Ray gives the in-process numbers, survives a
killed worker, and is a one-line error where Ray is not installed."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import SMOKE, arm_metrics, invoke_cli, one_line_error, with_options

from pipelines.cli import augment_and_compare

ARMS = ("baseline", "oversample", "gan")  # of compared_once's: its numbers for these arms
RAY = with_options(SMOKE, arms=",".join(ARMS), executor="ray")


def _with_features_of(run: Path, run_dir: Path) -> Path:
    """A run directory with `run`'s split and feature network, its job done: the GANs,
    samples, classifiers and report run on Ray (a faster test)."""
    for part in ("split.json", "features", "jobs/features.json"):
        (run_dir / part).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (run / part).is_dir() else shutil.copyfile
        copy(run / part, run_dir / part)
    return run_dir


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_executor_gives_the_in_process_numbers(ray_local, compared_once: Path, tmp_path):
    run_dir = _with_features_of(compared_once, tmp_path / "ray")
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *RAY])
    feature_job = [r / "jobs" / "features.json" for r in (run_dir, compared_once)]
    assert feature_job[0].read_text() == feature_job[1].read_text()  # reused, not run again
    assert arm_metrics(run_dir) == arm_metrics(compared_once, ARMS)
    wheres = {json.loads(p.read_text())["where"] for p in (run_dir / "jobs").glob("*.json")}
    assert len(wheres) >= 2  # jobs ran in more than one worker process


def test_ray_survives_a_killed_worker(ray_local, compared_once: Path, tmp_path: Path):
    run_dir = _with_features_of(compared_once, tmp_path / "killed")
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
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *RAY])
    killer.join()
    assert killed, "no worker was killed: the test did not test anything"
    marker = json.loads((run_dir / "jobs" / "gan__df.json").read_text())
    assert marker["where"] != f"{marker['where'].split(':')[0]}:{killed[0]}"  # a new worker
    assert arm_metrics(run_dir) == arm_metrics(compared_once, ARMS)  # and nothing lost or changed


def test_ray_missing_gives_one_line(monkeypatch, tmp_path: Path):
    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    args = ["--run-dir", str(tmp_path / "r"), *RAY]
    line = one_line_error(invoke_cli(augment_and_compare, args, False))
    assert "pip install 'raregan[ray]'" in line
