"""Run directories: atomic writes and the record that makes every run reproducible."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pipelines.errors import UserError


def check_path_names(path: Path | str | None, option: str) -> None:
    """Refuse a path with a name longer than its filesystem allows (a 300-character folder
    name): every later stat of it would fail with ENAMETOOLONG, deep in the work."""
    if path is None:
        return
    path = Path(path)
    existing = path.parent
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for name in path.parts:
        if len(os.fsencode(name)) > limit:
            raise UserError(
                f"{option} {path}: the name {name} is too long ({len(os.fsencode(name))} "
                f"bytes; the filesystem allows {limit}); pass a shorter path"
            )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long, or under a file: not a folder to start from
        return False


def check_output_dir(path: Path, option: str) -> None:
    """Fail at once, in one line, if `path` cannot be (or become) a directory this process can
    write to: not after the work, when the first output is written."""
    path = Path(path)
    check_path_names(path, option)
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


def read_json_record(path: Path, advice: str) -> dict:
    """A JSON object a run directory keeps (split.json, summary.json), or a one-line error
    naming the file and what to do (`advice`): a file emptied or cut short by a full disk or
    an editor must not end in a JSONDecodeError traceback."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        why = "it is empty" if not Path(path).read_bytes().strip() else f"not JSON: {e}"
        raise UserError(f"{path} is damaged ({why}); {advice}") from None
    if not isinstance(record, dict):
        raise UserError(f"{path} is damaged (not a JSON object); {advice}")
    return record


SPLIT_ADVICE = (
    "delete it and rerun with the --split-seed it was made with (the same split is made "
    "again from the data), or use another --run-dir"
)


def read_split_record(path: Path) -> dict:
    """A run directory's split.json, or a one-line error naming it and what to do."""
    record = read_json_record(path, SPLIT_ADVICE)
    missing = [key for key in ("fingerprint", "lesions") if key not in record]
    if missing:
        raise UserError(f"{path} is damaged (no {' or '.join(missing)}); {SPLIT_ADVICE}")
    return record


DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def os_error_message(e: OSError) -> str | None:
    """The one-line message of an OSError that is the user's to fix (a full disk, a name too
    long, a place not writable), or None for any other (a bug: its traceback is wanted)."""
    path = e.filename
    if e.errno in DISK_FULL:
        where = f" of {path}" if path else " of a file this command writes"
        return (
            f"no space left on the device{where}{_free_space(path)}; free some space, or "
            "pass a --run-dir, --out, --export DIR or --cache-dir on a larger disk, and rerun "
            "the same command: finished work is kept"
        )
    if path is None:
        return None
    if e.errno == errno.ENAMETOOLONG:
        return f"{path}: a name in it is too long for the filesystem; pass a shorter path"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {e.strerror}; pass a place this user can write to"
    return None


def _free_space(path: str | None) -> str:
    if path is None:
        return ""
    folder = Path(path).parent
    while not _exists(folder) and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" ({free / 2**20:,.1f} MiB free there)"


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


def key_of(reads: dict, dep_keys: list[str]) -> str:
    """A job's (or a comparison's) key: what it reads with its dependencies' keys, hashed."""
    payload = json.dumps([reads, dep_keys], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """A file's SHA-256, read in blocks (a checkpoint, a data archive)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
