"""Train and test one arm's classifier; the training set it and an export share."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from classifier.metrics import classification_metrics
from classifier.training import predict_proba, train_classifier
from gan.conventions import atomic_write_bytes, atomic_write_text, to_nchw
from pipelines.steps.plan import ExperimentPlan
from pipelines.steps.samples import synthetic_sets
from pipelines.steps.training_set import Arm, build_arm
from pipelines.store import tensorboard

OUTPUTS = ("model.pt", "test_probs.npz", "result.json")  # what train_arm leaves, result last


def arm_training_set(plan: ExperimentPlan, arm: str, seed: int) -> tuple[Arm, dict]:
    """The training set of one (arm, seed) classifier and the sample summaries it draws on:
    the one definition that train_arm trains on and an export writes. A dose study's
    controls (a plan with no sample set) take the nominal targets: they serve every dose."""
    synthetic, summaries, reached = synthetic_sets(plan)
    share = plan.cfg.synthetic_share
    arm_set = build_arm(plan.dataset, plan.split, reached, synthetic, arm, seed, share)
    return arm_set, summaries


def train_arm(plan: ExperimentPlan, arm: str, seed: int, out: Path, tb: Path | None = None) -> dict:
    """Train one (arm, seed) classifier on its arm's training set; test it once. tb: its
    TensorBoard folder (a retrained classifier's series replaces the old one)."""
    if (out / "result.json").is_file():
        return {"reused": True}
    cfg, ds, split = plan.cfg, plan.dataset, plan.split
    train_set, _ = arm_training_set(plan, arm, seed)
    train_cfg = plan.classifier_config(arm, seed)
    device, k = torch.device(cfg.device), len(ds.class_names)

    def inputs(images: np.ndarray) -> torch.Tensor:
        return to_nchw(plan.classifier_inputs(images), device)

    torch.manual_seed(seed)  # the classifier's initial weights
    with tensorboard.writer(tb) as w:
        trained = train_classifier(
            plan.new_classifier(),
            (
                inputs(train_set.images),
                torch.from_numpy(train_set.labels).to(device),
                torch.from_numpy(train_set.synthetic_index >= 0).to(device),
            ),
            (inputs(ds.images[split.val]), torch.from_numpy(ds.labels[split.val]).to(device)),
            k,
            train_cfg,
            cfg.progress,
            desc=f"{arm} seed {seed}",
            log=lambda row: tensorboard.scalars(
                w, row, tensorboard.CLASSIFIER_SCALARS, row["step"]
            ),
        )
    probs = predict_proba(
        trained.model, inputs(ds.images[split.test]), precision=train_cfg.precision,
        tta=train_cfg.tta,
    ).cpu()  # fmt: skip
    _save_outputs(out, trained, probs)
    result = {
        "arm": arm,
        "seed": seed,
        "train_images": len(train_set.labels),
        "config": train_cfg.as_dict(),
        "best_step": trained.best_step,
        "val_balanced_accuracy": trained.best_val_balanced_accuracy,
        "history": trained.history,
        "test": classification_metrics(probs, torch.from_numpy(ds.labels[split.test]), k),
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
