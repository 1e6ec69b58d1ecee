"""pipelines.store.lock: one writer per run directory; a dead writer's lock is gone with it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SMOKE, TINY, invoke_cli, one_line_error, subprocess_env

from pipelines.cli import augment_and_compare, gan_sample, gan_train
from pipelines.store.lock import run_dir_lock


def _lock_holder(run_dir: Path, pid: int, timeout: float = 120) -> None:
    """Wait until process `pid` holds run_dir's lock (it writes its pid into the lock file)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads((run_dir / ".raregan.lock").read_text())["pid"] == pid:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never took the lock of {run_dir}")


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process that holds run_dir's lock until it is killed."""
    code = (
        "import time; from pipelines.store.lock import run_dir_lock\n"
        f"with run_dir_lock({str(run_dir)!r}):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_two_gan_train_overwrite_on_one_class_the_second_is_refused(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), *TINY]
    first = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import gan_train; gan_train.main()",
         *args, "--kimg", "1000", "--overwrite"],
        env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _lock_holder(run_dir, first.pid)
        for flag in ("--overwrite", "--resume"):
            msg = one_line_error(invoke_cli(gan_train, [*args, "--kimg", "0.02", flag], False))
            assert f"is in use by pid {first.pid}" in msg and "--kimg 1000 --overwrite" in msg
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    invoke_cli(gan_train, [*args, "--kimg", "0.02", "--overwrite"])  # the dead one's lock is gone
    assert (run_dir / "gan" / "df" / "last.pt").is_file()


def test_gan_sample_is_refused_while_another_process_writes_the_run(tmp_path: Path):
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split

    run_dir = tmp_path / "run"
    load_or_make_split(load_dataset("demo", 32, progress=False), run_dir)
    holder = _hold_lock(run_dir)
    try:
        msg = one_line_error(invoke_cli(gan_sample, ["--n", "4", "--run-dir", str(run_dir)], False))
        assert f"is in use by pid {holder.pid}" in msg
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path: Path):
    run_dir = tmp_path / "run"
    holder = _hold_lock(run_dir)
    try:
        args = ["--run-dir", str(run_dir), *SMOKE]
        line = one_line_error(invoke_cli(augment_and_compare, args, False))
        assert f"is in use by pid {holder.pid}" in line and "another --run-dir" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_dir_lock(run_dir):  # the kernel released the dead holder's lock
        pass
