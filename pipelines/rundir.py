"""Run directories: atomic writes and the record that makes every run reproducible."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pipelines.errors import UserError


def check_output_dir(path: Path, option: str) -> None:
    """Fail at once, in one line, if `path` cannot be (or become) a directory this process can
    write to: not after the work, when the first output is written."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is under the file {existing}"
        raise UserError(f"{option} {path} {what}, not a directory; pass a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"{option} {path}: {existing} is not writable by this user; pass a directory you "
            "can write to"
        )


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines log. A line that does not parse is the torn end of a write cut
    short by a kill: it is dropped (a resumed run writes its step again), not a crash."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("raregan", "torch", "torchvision", "numpy", "pillow", "torchmetrics"):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = "not installed"
    return found


def cpu_name() -> str:
    """The CPU model and whether it has bf16, the line to print beside every timing."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in info.splitlines()
             if line.startswith("model name")]  # fmt: skip
    name = names[0] if names else platform.processor() or "unknown CPU"
    return name + (" (AVX512-BF16)" if "avx512_bf16" in info else " (no bf16)")


def run_record(config: dict, data: dict) -> dict:
    """What a run directory keeps beside its results: config, seed, versions, data identity."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "data": data,
        "versions": versions(),
    }
