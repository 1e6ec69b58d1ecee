"""One writer per run directory: an advisory lock that a crashed process cannot leave stuck.

The lock is an flock on <run>/.raregan.lock, held for the life of the command; the kernel
releases it when the process ends however it ends (kill -9 included), so a stale lock file
is harmless. The file says who holds it, for the one-line refusal a second writer gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import UserError

LOCK_NAME = ".raregan.lock"


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, option: str = "--run-dir") -> Iterator[None]:
    """Hold the directory's lock, or refuse at once with who holds it. `option` names the
    command-line option the directory came from, for the refusal."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise UserError(
            f"cannot use {option} {run_dir}: {e.strerror}; pass another {option}"
        ) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{run_dir} is in use by {_holder(fd)}; wait for it to finish (or stop it), "
                f"or use another {option}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _me() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _holder(fd: int) -> str:
    try:
        who = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {who['pid']} on {who['host']} (`{who['command']}`, since {who['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"
