"""Train one GAN of the experiment: the source, or a rare class fine-tuned from it."""

from __future__ import annotations

from pathlib import Path

import torch

from gan.checkpoint import CheckpointError
from gan.conventions import atomic_write_bytes
from pipelines.config.experiment import ExperimentConfig
from pipelines.errors import UserError
from pipelines.steps import gan_run
from pipelines.steps.gan_run import TrainPlan, class_run
from pipelines.steps.plan import ExperimentPlan, feature_space
from pipelines.store import checkpoints
from pipelines.store.layout import SOURCE


def train_gan(plan: ExperimentPlan, cls: str, tb: Path | None = None) -> dict:
    """Train one GAN of the plan (the source, or a rare class from the source if there is
    one). In a dose study the source continues from its last checkpoint to the plan's dose and
    keeps a snapshot there, and a rare class fine-tunes from the snapshot of its dose.
    tb: its TensorBoard folder."""
    cfg, dose, ds, layout = plan.cfg, plan.dose, plan.dataset, plan.cfg.layout
    run = class_run(ds, plan.split, cls, layout.root if cls == SOURCE else plan.layout.root)
    spec = plan.gans[cls]
    arch, train_cfg = spec.arch, spec.train
    snapshot = None if dose is None or cls != SOURCE else layout.source_snapshot(dose)
    if snapshot is not None and snapshot.is_file():
        _check_snapshot(snapshot, layout.gan_dir(SOURCE))
        return {"kimg": dose, "reused": True}
    reused = checkpoints.trained_enough(run.folder, arch, train_cfg)  # a damaged one: explained
    if run.folder.last.is_file():
        gan_run.check_selection(checkpoints.read(run.folder.last), run.out)
    if not reused:
        how = TrainPlan(
            arch,
            train_cfg,
            torch.device(cfg.device),
            resume=run.checkpoint.is_file(),
            overwrite=True,  # a folder without a checkpoint is a start that never got anywhere
            progress=cfg.progress,
            space=feature_space(plan),
            eval_n=spec.eval_n,
            source=_source(cfg, cls, dose),
            tensorboard=tb,
        )
        gan_run.train_gan(run, ds, how)
    if snapshot is not None:
        _keep_snapshot(run, snapshot, dose)
    state = checkpoints.read(run.checkpoint)
    return {"kimg": state["nimg"] / 1000, "train_seconds": state["seconds"], "reused": reused}


def _source(cfg: ExperimentConfig, cls: str, dose: float | None) -> Path | None:
    """The checkpoint a rare class fine-tunes from: the source's snapshot at its dose, or
    (no dose study) the source's best; None without a source."""
    if cls == SOURCE or cfg.profile.source_kimg <= 0:
        return None
    if dose is not None:
        return cfg.layout.source_snapshot(dose)
    return checkpoints.source_path(cfg.layout.root)


def _check_snapshot(snapshot: Path, source_dir: Path) -> None:
    """A dose snapshot that cannot be read is refused with the way out: the source has
    trained past that dose, so the snapshot cannot be remade from its last checkpoint."""
    try:
        checkpoints.read(snapshot)
    except CheckpointError as e:
        raise UserError(
            f"{snapshot} is damaged ({e}) and the source GAN has trained past it; delete "
            f"{source_dir} to train the source again from the start, or use a new --run-dir"
        ) from None


def _keep_snapshot(run, snapshot: Path, dose: float) -> None:
    """Copy the source's last.pt, which must be at `dose`, to its dose snapshot."""
    nimg = checkpoints.read(run.checkpoint)["nimg"]
    batch_over = dose * 1000 + 1024  # train() stops at the first batch past its kimg
    if not dose * 1000 <= nimg <= batch_over:
        raise UserError(
            f"the source GAN in {run.out} is at {nimg / 1000:g} kimg, past dose {dose:g}, and "
            f"has no snapshot there; give --gan-doses above {nimg / 1000:g}, or a new --run-dir"
        )
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(snapshot, run.checkpoint.read_bytes())
