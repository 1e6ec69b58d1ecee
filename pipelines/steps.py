"""The work behind each job of pipelines.jobs: train a GAN, draw a sample set, train and test
one arm's classifier. Each reads its inputs from the run directory and writes its outputs there
atomically, and reuses a finished output it finds there, so an interrupted run continues."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from classifier.metrics import classification_metrics
from classifier.training import predict_proba, train_classifier
from gan.conventions import atomic_write_bytes, atomic_write_text, to_nchw
from pipelines import checkpoints, gan_run, tensorboard
from pipelines.arms import (
    Arm,
    SampleSet,
    build_arm,
    classifier_config,
    classifier_inputs,
    classifier_network,
    sample_sets,
    targets_for,
)
from pipelines.errors import UserError
from pipelines.experiment import (
    ExperimentConfig,
    class_count,
    data_and_split,
    feature_space,
    gan_plan,
)
from pipelines.gan_run import TrainPlan, class_run
from pipelines.layout import SOURCE
from pipelines.rundir import read_json_record
from pipelines.sampling import SampleOptions, sample_class

POOL_FACTORS = (2.0, 4.0, 8.0)  # a weak generator yields near-duplicates: grow the pool


def train_gan(
    cfg: ExperimentConfig, cls: str, eval_n: int, dose: float | None = None, tb: Path | None = None
) -> dict:
    """Train one GAN (the source, or a rare class from the source if there is one). In a dose
    study the source continues from its last checkpoint to `dose` and keeps a snapshot there,
    and a rare class fine-tunes from the snapshot of its dose. tb: its TensorBoard folder."""
    ds, split = data_and_split(cfg)
    layout = cfg.layout
    run = class_run(ds, split, cls, layout.root if cls == SOURCE else layout.dose(dose).root)
    arch, train_cfg = gan_plan(cfg, cls, dose)
    snapshot = None if dose is None or cls != SOURCE else layout.source_snapshot(dose)
    if snapshot is not None and snapshot.is_file():
        return {"kimg": dose, "reused": True}
    reused = checkpoints.trained_enough(run.folder, arch, train_cfg)
    if not reused:
        plan = TrainPlan(
            arch,
            train_cfg,
            torch.device(cfg.device),
            resume=run.checkpoint.is_file(),
            overwrite=True,  # a folder without a checkpoint is a start that never got anywhere
            progress=cfg.progress,
            space=feature_space(cfg),
            eval_n=eval_n,
            source=_source(cfg, cls, dose),
            tensorboard=tb,
        )
        gan_run.train_gan(run, ds, plan)
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


def sample_set(cfg: ExperimentConfig, sset: SampleSet, cls: str, dose: float | None = None) -> dict:
    """Sample and filter (or not) one class up to what it needs.

    A weak generator yields many near-duplicates, so the pool grows (2x, 4x, 8x n) until the
    filter keeps enough; if even 8x falls short, the class reaches fewer images than its
    target, and every arm is matched to the count the first set reaches (reached_targets)."""
    ds, split = data_and_split(cfg)
    here = cfg.layout.dose(dose)
    run = class_run(ds, split, cls, here.root)
    need = _needed(cfg, sset, cls, dose)
    folder = here.samples_dir(sset.folder, cls)

    def options(pool_factor: float) -> SampleOptions:
        return SampleOptions(
            n=max(need, 2), filter=sset.filter, fmt="npz", seed=0, precision=cfg.precision,
            pool_factor=pool_factor,
        )  # fmt: skip

    saved = _saved_summary(folder, redraw_damaged=True)
    if saved is not None and _same_request(saved["options"], options(POOL_FACTORS[0])):
        if saved["kept"] >= need or saved["options"]["pool_factor"] >= POOL_FACTORS[-1]:
            return {"kept": saved["kept"], "reused": True}
    space = feature_space(cfg)
    for pool_factor in POOL_FACTORS:
        summary = sample_class(
            run, options(pool_factor), space, folder.parent, torch.device(cfg.device),
            ds.record(), True,
        )  # fmt: skip
        if summary["kept"] >= need:
            break
    return {"kept": summary["kept"]}


SUMMARY_ADVICE = (
    "delete it and rerun the same command: its sample set is drawn again (the samples job "
    "is not done without it)"
)


def _saved_summary(folder: Path, redraw_damaged: bool = False) -> dict | None:
    """A sample set's summary.json, None if there is none (or, with redraw_damaged, if it is
    damaged: the sample job draws the set again); a damaged one is otherwise a one-line error
    naming it."""
    path = folder / "summary.json"
    if not path.is_file():
        return None
    try:
        return read_json_record(path, SUMMARY_ADVICE)
    except UserError:
        if redraw_damaged:
            return None
        raise


def _same_request(saved: dict, wanted: SampleOptions) -> bool:
    """A saved set answers this request if only its pool grew (the pool factor)."""
    asked = {k: v for k, v in vars(wanted).items() if k != "pool_factor"}
    return all(saved.get(k) == v for k, v in asked.items())


def _needed(cfg: ExperimentConfig, sset: SampleSet, cls: str, dose: float | None) -> int:
    """Synthetic images `sset` must add to `cls`: up to the target, or, for a set matched to
    another (gan-unfiltered), up to what that set reached (every arm gets the same count)."""
    ds, split = data_and_split(cfg)
    n_real = class_count(cfg, cls)
    target = targets_for(ds, split, list(cfg.classes), cfg.target)[cls]
    if sset.matched_to in {s.name for s in sample_sets(cfg.arms)}:
        matched = next(s for s in sample_sets(cfg.arms) if s.name == sset.matched_to)
        kept = _saved_summary(cfg.layout.dose(dose).samples_dir(matched.folder, cls))["kept"]
        target = min(target, n_real + min(kept, target - n_real))
    return max(target - n_real, 0)


def synthetic_sets(
    cfg: ExperimentConfig, dose: float | None = None
) -> tuple[dict, dict, dict[str, int]]:
    """(images per sample set and class, sample summaries, reached training count per class),
    read back from the sample jobs' outputs (of one dose, in a dose study)."""
    ds, split = data_and_split(cfg)
    reached = targets_for(ds, split, list(cfg.classes), cfg.target)
    synthetic: dict[str, dict[str, np.ndarray]] = {}
    summaries: dict[str, dict] = {}
    for sset in sample_sets(cfg.arms):
        synthetic[sset.name] = {}
        for c in cfg.classes:
            n_real = class_count(cfg, c)
            need = max(reached[c] - n_real, 0)
            folder = cfg.layout.dose(dose).samples_dir(sset.folder, c)
            with np.load(folder / "samples.npz") as z:
                synthetic[sset.name][c] = z["images"][:need]
            summaries.setdefault(c, {})[sset.name] = {**_saved_summary(folder), "_dir": folder}
            reached[c] = n_real + len(synthetic[sset.name][c])
    return synthetic, summaries, reached


def arm_training_set(
    cfg: ExperimentConfig, arm: str, seed: int, dose: float | None = None
) -> tuple[Arm, dict]:
    """The training set of one (arm, seed) classifier and the sample summaries it draws on:
    the one definition that train_arm trains on and an export writes. A dose study's
    controls (dose None) take the nominal targets: they serve every dose."""
    ds, split = data_and_split(cfg)
    if cfg.gan_doses and dose is None:
        synthetic, summaries = {}, {}
        reached = targets_for(ds, split, list(cfg.classes), cfg.target)
    else:
        synthetic, summaries, reached = synthetic_sets(cfg, dose)
    arm_set = build_arm(ds, split, reached, synthetic, arm, seed, cfg.synthetic_share)
    return arm_set, summaries


def train_arm(
    cfg: ExperimentConfig, arm: str, seed: int, out: Path, dose=None, tb: Path | None = None
) -> dict:
    """Train one (arm, seed) classifier on its arm's training set; test it once. tb: its
    TensorBoard folder (a retrained classifier's series replaces the old one)."""
    if (out / "result.json").is_file():
        return {"reused": True}
    ds, split = data_and_split(cfg)
    train_set, _ = arm_training_set(cfg, arm, seed, dose)
    train_cfg = classifier_config(cfg.profile, len(split.train), seed, cfg.precision, arm)
    device, k = torch.device(cfg.device), len(ds.class_names)

    def inputs(images: np.ndarray) -> torch.Tensor:
        return to_nchw(classifier_inputs(cfg.profile, images), device)

    torch.manual_seed(seed)  # the classifier's initial weights
    with tensorboard.writer(tb) as w:
        trained = train_classifier(
            classifier_network(cfg.profile, k, cfg.pretrained),
            (inputs(train_set.images), torch.from_numpy(train_set.labels).to(device)),
            (inputs(ds.images[split.val]), torch.from_numpy(ds.labels[split.val]).to(device)),
            k,
            train_cfg,
            cfg.progress,
            desc=f"{arm} seed {seed}",
            log=lambda row: tensorboard.scalars(
                w, row, tensorboard.CLASSIFIER_SCALARS, row["step"]
            ),
        )
    test_x = inputs(ds.images[split.test])
    probs = predict_proba(trained.model, test_x, precision=train_cfg.precision, tta=train_cfg.tta)
    _save_outputs(out, trained, probs.cpu())
    result = {
        "arm": arm,
        "seed": seed,
        "train_images": len(train_set.labels),
        "config": train_cfg.as_dict(),
        "best_step": trained.best_step,
        "val_balanced_accuracy": trained.best_val_balanced_accuracy,
        "history": trained.history,
        "test": classification_metrics(probs.cpu(), torch.from_numpy(ds.labels[split.test]), k),
    }
    atomic_write_text(out / "result.json", json.dumps(result, indent=1))  # written last
    return {"val_balanced_accuracy": trained.best_val_balanced_accuracy}


def _save_outputs(out: Path, trained, probs: torch.Tensor) -> None:
    """The model, and its test and validation scores (prior-matched thresholds are chosen on
    the selected step's validation scores)."""
    buf = io.BytesIO()
    torch.save(trained.model.state_dict(), buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, probs=probs.numpy(), val_probs=trained.val_probs.cpu().numpy())
    atomic_write_bytes(out / "test_probs.npz", buf.getvalue())
