"""One class's GAN run inside a run directory: <run>/gan/<class>/.

Holds run.json (config, seed, versions, data fingerprint of every start and resume),
metrics.jsonl (one row per log interval), last.pt (atomic checkpoint), reals.png,
grid_kimgNNNNN.NNN.png (fixed-noise samples at every checkpoint) and, with FID tracking,
eval.jsonl, fid_curve.png and best.pt (the checkpoint of the lowest FID).
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable
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
from gan.metrics.features import FeatureSpace, extract_features, metric_label
from gan.metrics.fid import fid
from gan.metrics.kid import kid
from gan.networks import Architecture
from gan.training import GanState, TrainConfig, TrainingDiverged, new_state, sample, train
from pipelines.datasets import Dataset
from pipelines.errors import UserError
from pipelines.plots import fid_curve
from pipelines.rundir import atomic_write_bytes, atomic_write_text, run_record
from pipelines.splits import Split

MIN_TRAIN_IMAGES = 10
GRID_SEED_OFFSET = 1_000_003  # fixed-noise latents come from their own stream, not the loop's
RESUMABLE_CHANGES = {"kimg", "snapshot_kimg", "eval_kimg", "log_steps"}


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


class FidTracker:
    """Evaluates the sampling generator against the class's real training images: FID/KID in
    a fixed feature space, fixed latents, real features extracted once. Keeps best.pt."""

    def __init__(
        self,
        run: ClassRun,
        space: FeatureSpace,
        n_fake: int,
        nz: int,
        seed: int,
        save_best: Callable[[GanState, dict], None],
        precision: str,
    ):
        self.run, self.space, self.save_best, self.precision = run, space, save_best, precision
        reals = torch.from_numpy(run.images).permute(0, 3, 1, 2)
        self.real = extract_features(space, reals)
        self.z = torch.randn(n_fake, nz, generator=torch.Generator().manual_seed(seed + 7))
        self.log = run.out / "eval.jsonl"
        rows = self.rows()
        self.best = min((r["fid"] for r in rows), default=float("inf"))

    def rows(self) -> list[dict]:
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def __call__(self, state: GanState) -> dict:
        t0 = time.perf_counter()
        z = self.z.to(next(state.G.parameters()).device)
        fakes = sample(state.sampler, z, precision=self.precision)
        feats = extract_features(self.space, fakes)
        n_real, n_fake = len(self.real), len(feats)
        row = {
            "kimg": state.nimg / 1000,
            "step": state.step,
            "fid": fid(self.real, feats),
            "fid_label": metric_label("FID", self.space, n_real, n_fake),
        }
        row["kid"], row["kid_std"] = kid(self.real, feats)
        row["kid_label"] = metric_label("KID", self.space, n_real, n_fake)
        row["seconds"] = time.perf_counter() - t0
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if row["fid"] < self.best:
            self.best = row["fid"]
            self.save_best(state, row)
        fid_curve(self.rows(), self.run.out / "fid_curve.png", f"{self.run.class_name}")
        return {"FID": row["fid"], "KID": row["kid"]}


def train_class(
    run: ClassRun,
    ds: Dataset,
    arch: Architecture,
    cfg: TrainConfig,
    device: torch.device,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    space: FeatureSpace | None = None,
    eval_n: int = 1000,
) -> GanState:
    """Train (or continue) the GAN of one class; returns the final state. With a feature
    space, FID/KID are tracked every cfg.eval_kimg (eval.jsonl, fid_curve.png, best.pt)."""
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
        _truncate_log(metrics, state.step)
        _truncate_log(run.out / "eval.jsonl", state.step)
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
        write_grid(run.out / "reals.png", torch.from_numpy(run.images[:64]).permute(0, 3, 1, 2))
    _append_record(run, ds, arch, cfg, device, resumed_from=state.nimg if resume else None)

    images = torch.from_numpy(run.images).permute(0, 3, 1, 2).to(device)  # NHWC = channels_last
    z_grid = torch.randn(
        64, arch.nz, generator=torch.Generator().manual_seed(cfg.seed + GRID_SEED_OFFSET)
    ).to(device)

    extra = {
        "class": run.class_name,
        "data_fingerprint": ds.fingerprint,
        "n_train": len(run.images),
    }

    def snapshot(s: GanState) -> None:
        grid = sample(s.sampler, z_grid, precision=cfg.precision)
        write_grid(run.out / f"grid_kimg{s.nimg / 1000:09.3f}.png", grid)
        save_checkpoint(run.checkpoint, s, cfg, extra)

    def save_best(s: GanState, row: dict) -> None:
        save_checkpoint(run.out / "best.pt", s, cfg, {**extra, "eval": row})

    evaluate = None
    if space is not None and cfg.eval_kimg > 0:
        evaluate = FidTracker(run, space, eval_n, arch.nz, cfg.seed, save_best, cfg.precision)

    with open(metrics, "a", encoding="utf-8") as log_file:

        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

        try:
            return train(state, images, cfg, snapshot, log, progress, evaluate)
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


def _truncate_log(path: Path, step: int) -> None:
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


def write_grid(path: Path, images_uint8: torch.Tensor) -> None:
    grid = make_grid(images_uint8.cpu(), nrow=8, padding=2, pad_value=255)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
