"""The conventions every layer shares, defined once: image layout and range, mixed precision,
and atomic writes.

Images travel as uint8 N×H×W×3 numpy arrays (the decode cache's layout); networks take N×3×H×W
tensors in [-1, 1] (the generator's tanh range), and their output comes back as uint8. A file
is only ever written whole: to a temporary file in its folder, then renamed over the old one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def to_nchw(images: np.ndarray | torch.Tensor, device: torch.device | str | None = None):
    """uint8 N×H×W×3 -> a N×3×H×W view (its memory stays NHWC, i.e. channels_last)."""
    t = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
    t = t.permute(0, 3, 1, 2)
    return t if device is None else t.to(device)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; a float tensor is taken to be in [-1, 1] already."""
    if images_uint8.dtype != torch.uint8:
        return images_uint8
    return images_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Network output in [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return images.float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def autocast(device_type: str, precision: str):
    """The autocast context of a precision name (fp32: none)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use {list(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=PRECISIONS[precision])


def new_temp_file(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new, uniquely named file opened for writing, with the mode open() would give it.
    (tempfile.mkstemp makes 0600 files whatever the umask: renamed into place, they would be
    the only outputs of a run that others sharing the folder cannot read.)"""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def new_temp_dir(folder: Path, prefix: str) -> Path:
    """A new, uniquely named folder with the mode mkdir would give it (mkdtemp: 0700)."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue


def replace_dir(tmp: Path, target: Path) -> None:
    """Rename a finished folder `tmp` into place as `target`; an old `target` is moved aside
    first and deleted only once the new one is there, so a crash leaves one whole folder."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{time.time_ns()}"
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Name `path` in an OSError raised without a file name (a write to a full disk says only
    "No space left on device"), so that the error can say which file, and on which disk."""
    temp = f".{Path(path).name}."  # new_temp_file's names: say the file, not its temporary
    try:
        yield
    except OSError as e:
        named = e.filename is not None and not Path(str(e.filename)).name.startswith(temp)
        if named or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


def atomic_write(path: Path, write, sync: bool = False) -> None:
    """Call write(binary file) on a temporary file beside `path`, then rename it into place:
    never a half file, and on any failure (a full disk too) no temporary file left behind.
    sync: fsync before the rename (checkpoints)."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = new_temp_file(path.parent, f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: object, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), sync=True)
