"""TensorBoard event files of a run: <run>/tb/<job>/, one folder per GAN and per classifier, so
that `tensorboard --logdir <run>/tb` shows them side by side while they train.

TensorBoard is optional (pip install 'raregan[tensorboard]'). `writer()` yields None when it is
off or not installed, and every other function does nothing with None, so training code calls
them unconditionally where it writes metrics.jsonl, eval.jsonl and its sample grids. Steps are
those of those files — images seen for a GAN, optimiser steps for a classifier — so a resumed
run continues the same series; its purge_step hides what a killed run wrote past its checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import UserError

INSTALL = "pip install 'raregan[tensorboard]'"

# key of a metrics.jsonl / eval.jsonl row -> its tag
GAN_SCALARS = {
    "loss_D": "loss/D",
    "loss_G": "loss/G",
    "D_real": "D/D(x)",
    "D_fake": "D/D(G(z))",
    "img_s": "speed/img_per_s",
    "heldout_kid": "KID/heldout",
    "floor_kid": "KID/floor",  # real-vs-real: the value a perfect generator would reach
    "train_kid": "KID/train",
    "heldout_mix_kid": "KID/heldout_training_mix",  # multi-class source: reals weighted to its mix
    "floor_mix_kid": "KID/floor_training_mix",
    "heldout_fid": "FID/heldout",
    "floor_fid": "FID/floor",
    "train_fid": "FID/train",
}
CLASSIFIER_SCALARS = {"loss": "loss/train", "val_balanced_accuracy": "val/balanced_accuracy"}
GRID = "samples/fixed_noise"  # the snapshot's fixed-noise sample grid


def _summary_writer() -> type | None:
    """torch's SummaryWriter, or None without the tensorboard package (which it needs)."""
    try:
        import tensorboard  # noqa: F401  (checked first: torch's module may be imported already)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


def available() -> bool:
    return _summary_writer() is not None


def resolve(asked: bool | None) -> bool:
    """--tensorboard/--no-tensorboard (None: not given): on by default where it is installed;
    asked for and missing is a one-line error naming the extra, before any work."""
    if asked is False:
        return False
    if available():
        return True
    if asked:
        raise UserError(f"--tensorboard needs the tensorboard package: {INSTALL}")
    return False


@contextlib.contextmanager
def writer(logdir: Path | None, purge_step: int = 0) -> Iterator[Any | None]:
    """A SummaryWriter on `logdir` (None: off), closed (flushed) on exit. purge_step is the
    first step this run writes: TensorBoard hides the earlier files' events at or past it, a
    killed run's past its checkpoint (resume) or a replaced run's whole series (0)."""
    summary_writer = None if logdir is None else _summary_writer()
    if summary_writer is None:
        yield None
        return
    w = summary_writer(log_dir=str(logdir), purge_step=purge_step, flush_secs=30)
    try:
        yield w
    finally:
        w.close()


def scalars(w: Any | None, row: dict, tags: dict[str, str], step: int) -> None:
    """The values of `row` that `tags` names, each under its tag."""
    if w is None:
        return
    for key, tag in tags.items():
        if key in row:
            w.add_scalar(tag, row[key], step)


def images(w: Any | None, tag: str, batch_uint8: torch.Tensor, step: int) -> None:
    """uint8 N×3×H×W images as one grid image (8 per row, like the grid PNGs)."""
    if w is not None:
        w.add_images(tag, batch_uint8.cpu(), step)
