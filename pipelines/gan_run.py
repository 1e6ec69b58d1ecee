"""One class's GAN run inside a run directory: <run>/gan/<class>/.

Holds run.json (config, seed, versions, data fingerprint of every start and resume),
metrics.jsonl (one row per log interval), last.pt (atomic checkpoint), reals.png and
grid_kimgNNNNN.NNN.png (fixed-noise samples at every checkpoint).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from gan.checkpoint import (
    CheckpointError,
    check_architecture,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from gan.networks import Architecture
from gan.training import GanState, TrainConfig, TrainingDiverged, new_state, sample, train
from pipelines.datasets import Dataset
from pipelines.errors import UserError
from pipelines.rundir import atomic_write_bytes, atomic_write_text, run_record
from pipelines.splits import Split

MIN_TRAIN_IMAGES = 10
GRID_SEED_OFFSET = 1_000_003  # fixed-noise latents come from their own stream, not the loop's
RESUMABLE_CHANGES = {"kimg", "snapshot_kimg", "log_steps"}


@dataclass
class ClassRun:
    """Where one class's GAN lives and what it trains on."""

    class_name: str
    out: Path
    images: np.ndarray  # uint8 N×S×S×3, training split of the class only

    @property
    def checkpoint(self) -> Path:
        return self.out / "last.pt"


def class_run(ds: Dataset, split: Split, class_name: str, run_dir: Path) -> ClassRun:
    label = ds.class_index(class_name)
    idx = split.train[ds.labels[split.train] == label]
    if len(idx) < MIN_TRAIN_IMAGES:
        raise UserError(
            f"class {class_name!r} has {len(idx)} training images (needs >= {MIN_TRAIN_IMAGES} "
            "to train a GAN); choose a larger class or add images"
        )
    return ClassRun(class_name, Path(run_dir) / "gan" / class_name, ds.images[idx])


def read_checkpoint(run: ClassRun) -> dict:
    if not run.checkpoint.is_file():
        raise UserError(
            f"--resume: no checkpoint at {run.checkpoint}; run without --resume to start training"
        )
    try:
        return load_checkpoint(run.checkpoint)
    except CheckpointError as e:
        raise UserError(f"{e}; start over with --overwrite") from e


def train_class(
    run: ClassRun,
    ds: Dataset,
    arch: Architecture,
    cfg: TrainConfig,
    device: torch.device,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> GanState:
    """Train (or continue) the GAN of one class; returns the final state."""
    metrics = run.out / "metrics.jsonl"
    if resume:
        ckpt = read_checkpoint(run)
        try:
            check_architecture(ckpt, arch, run.checkpoint)
        except CheckpointError as e:
            raise UserError(
                f"--resume: {e}; resume with the same options or use --overwrite"
            ) from e
        state = restore_state(ckpt, cfg, device)
        _truncate_metrics(metrics, state.step)
    else:
        if run.out.exists() and any(run.out.iterdir()):
            if not overwrite:
                raise UserError(
                    f"{run.out} already holds a GAN run; pass --resume to continue it or "
                    "--overwrite to replace it"
                )
            shutil.rmtree(run.out)
        run.out.mkdir(parents=True)
        state = new_state(arch, cfg, device)
        _write_grid(run.out / "reals.png", torch.from_numpy(run.images[:64]).permute(0, 3, 1, 2))
    _append_record(run, ds, arch, cfg, device, resumed_from=state.nimg if resume else None)

    images = torch.from_numpy(run.images).permute(0, 3, 1, 2).to(device)  # NHWC = channels_last
    z_grid = torch.randn(
        64, arch.nz, generator=torch.Generator().manual_seed(cfg.seed + GRID_SEED_OFFSET)
    ).to(device)

    def snapshot(s: GanState) -> None:
        grid = sample(s.sampler, z_grid, precision=cfg.precision)
        _write_grid(run.out / f"grid_kimg{s.nimg / 1000:09.3f}.png", grid)
        extra = {
            "class": run.class_name,
            "data_fingerprint": ds.fingerprint,
            "n_train": len(run.images),
        }
        save_checkpoint(run.checkpoint, s, cfg, extra)

    with open(metrics, "a", encoding="utf-8") as log_file:

        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

        try:
            return train(state, images, cfg, snapshot, log, progress=progress)
        except TrainingDiverged as e:
            kept = (
                f"{run.checkpoint} is the last good state"
                if run.checkpoint.is_file()
                else ("no checkpoint was reached")
            )
            raise UserError(
                f"training of {run.class_name!r} diverged: {e}; {kept}; retry with "
                "--precision fp32 or another --seed"
            ) from e


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint: the resumed run writes them again."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


def _append_record(run, ds, arch, cfg, device, resumed_from) -> None:
    path = run.out / "run.json"
    history = json.loads(path.read_text())["runs"] if path.is_file() else []
    record = run_record(
        {
            "class": run.class_name,
            "arch": arch.as_dict(),
            "train": cfg.as_dict(),
            "device": str(device),
            "resumed_from_kimg": None if resumed_from is None else resumed_from / 1000,
        },
        {
            "source": ds.source,
            "format": ds.format,
            "fingerprint": ds.fingerprint,
            "synthetic_demo_data": ds.synthetic,
            "n_train_images": len(run.images),
        },
    )
    atomic_write_text(path, json.dumps({"runs": [*history, record]}, indent=1))


def _write_grid(path: Path, images_uint8: torch.Tensor) -> None:
    grid = make_grid(images_uint8.cpu(), nrow=8, padding=2, pad_value=255)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
