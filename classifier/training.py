"""The classifier recipe: a fixed optimiser-step budget, whole-batch augmentation on the device,
AdamW + one-cycle schedule, label smoothing, and model selection by validation balanced accuracy.

A fixed step budget (not epochs) is what makes arms with different training-set sizes
comparable: every arm gets the same compute and the same number of gradient updates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from classifier.metrics import balanced_accuracy
from gan.conventions import autocast, to_model_range
from gan.diffaugment import random_dihedral
from gan.progress import progress_bar


@dataclass
class ClassifierConfig:
    steps: int = 1500
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    logit_adjust_tau: float = 0.0  # > 0: logit-adjusted loss (Menon et al. 2021), see below
    sampling: str = "uniform"  # uniform over images, or "balanced" over classes
    precision: str = "fp32"
    seed: int = 0
    eval_every: int = 250
    tta: bool = False  # predict with the mean softmax over the 8 dihedral views (see below)
    real_only_steps: int = 0  # the last this many steps draw real images only (see below)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainedClassifier:
    model: nn.Module  # weights of the best validation step
    best_step: int
    best_val_balanced_accuracy: float
    history: list[dict]
    val_probs: torch.Tensor  # the best step's validation probabilities (N×K)


def color_jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.1) -> torch.Tensor:
    """Mild per-image brightness and contrast jitter for images in [-1, 1]."""
    n = x.shape[0]
    u = torch.rand(2, n, 1, 1, 1, device=x.device, generator=g) * 2 - 1
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * (1 + strength * u[0]) + mean + strength * u[1]).clamp(-1, 1)


def augment(images_uint8: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    x = to_model_range(images_uint8)
    return color_jitter(random_dihedral(x, g), g)


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/90-degree rotations of square images: the symmetries a dermoscopy image
    (no up or left) does not care about and training augments with."""
    rotations = [x, x.flip(3), x.flip(2), x.flip(2).flip(3)]
    return rotations + [v.transpose(2, 3) for v in rotations]


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 512,
    precision: str = "fp32",
    tta: bool = False,
) -> torch.Tensor:
    """Softmax probabilities, N×K, in evaluation mode; with `tta`, the mean over the 8
    dihedral views of each image (test-time augmentation)."""
    was_training = model.training
    model.eval()
    out = []
    with autocast(images.device.type, precision):
        for chunk in images.split(batch_size):
            views = dihedral_views(chunk) if tta else [chunk]
            out.append(torch.stack([model(v).float().softmax(dim=1) for v in views]).mean(0))
    model.train(was_training)
    return torch.cat(out)


def _sampling_weights(labels: torch.Tensor, num_classes: int, mode: str) -> torch.Tensor:
    if len(labels) == 0:
        raise ValueError("no training images to sample from")
    if mode == "uniform":
        return torch.ones(len(labels), device=labels.device)
    if mode == "balanced":
        counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).float()
        return 1.0 / counts[labels]
    raise ValueError(f"unknown sampling {mode!r}; use uniform or balanced")


def logit_adjusted_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    log_prior: torch.Tensor,
    tau: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of logits + tau * log(class prior) (Menon et al. 2021, "Long-tail learning
    via logit adjustment"). Training with the prior added and predicting without it moves the
    decision boundaries towards the frequent classes' side, as if the classes were balanced:
    the reweighting control that uses no extra images. tau = 0 is plain cross-entropy."""
    return F.cross_entropy(logits + tau * log_prior, labels, label_smoothing=label_smoothing)


def _phase_weights(
    train: tuple[torch.Tensor, ...], num_classes: int, cfg: ClassifierConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling weights of the main steps and of the last cfg.real_only_steps: those draw
    from the real images only (train's optional third tensor marks the synthetic ones), at
    the same sampling rule over what is left. Why: a classifier that saw synthetic images of
    the rare classes only learns "looks generated" as a cue for them; ending on real images
    is one way to unlearn it (the gan-then-real arm)."""
    labels = train[1]
    weights = _sampling_weights(labels, num_classes, cfg.sampling)
    if cfg.real_only_steps <= 0:
        return weights, weights
    if not 0 < cfg.real_only_steps <= cfg.steps:
        raise ValueError(f"real_only_steps {cfg.real_only_steps} outside 1..{cfg.steps}")
    if len(train) < 3:
        raise ValueError("real_only_steps needs the mask of synthetic training images")
    real = ~train[2].to(labels.device, torch.bool)
    tail = torch.zeros_like(weights)
    tail[real] = _sampling_weights(labels[real], num_classes, cfg.sampling)
    return weights, tail


def train_classifier(
    model: nn.Module,
    train: tuple[torch.Tensor, ...],
    val: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    cfg: ClassifierConfig,
    progress: bool = True,
    desc: str = "classifier",
    log: Callable[[dict], None] | None = None,
) -> TrainedClassifier:
    """Train for exactly cfg.steps optimiser steps on train = (uint8 images, labels[, bool
    mask of the synthetic ones]); return the weights of the best balanced accuracy on val
    (evaluated every cfg.eval_every steps and at the end; with real_only_steps, only the
    evaluations after the real-only phase began are candidates: the arm is the model after
    it). `log` gets each evaluation's history row as it happens (TensorBoard)."""
    (train_x, train_y), (val_x, val_y) = train[:2], val
    device = train_x.device
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    weights, tail_weights = _phase_weights(train, num_classes, cfg)
    tail_from = cfg.steps - cfg.real_only_steps  # steps after this one draw real images only
    # an arm that ends on real images is the model after that phase: no earlier step is chosen
    selectable_after = tail_from if cfg.real_only_steps else 0
    prior = torch.bincount(train_y, minlength=num_classes).float() / len(train_y)
    log_prior = prior.clamp(min=1e-12).log()
    mixed = autocast(device.type, cfg.precision)
    best = (-1.0, 0, None, None)
    history = []
    bar = progress_bar(range(1, cfg.steps + 1), desc=desc, disable=not progress, leave=False)
    model.train()
    for step in bar:
        w = tail_weights if step > tail_from else weights
        idx = torch.multinomial(w, cfg.batch_size, replacement=True, generator=g)
        x = augment(train_x[idx], g)
        with mixed:
            loss = logit_adjusted_loss(
                model(x).float(),
                train_y[idx],
                log_prior,
                cfg.logit_adjust_tau,
                cfg.label_smoothing,
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            probs = predict_proba(model, val_x, precision=cfg.precision, tta=cfg.tta)
            bacc = balanced_accuracy(probs, val_y, num_classes)
            history.append({"step": step, "loss": loss.item(), "val_balanced_accuracy": bacc})
            if log is not None:
                log(history[-1])
            bar.set_postfix(loss=f"{loss.item():.3f}", val_bacc=f"{bacc:.3f}")
            if bacc > best[0] and step > selectable_after:
                best = (bacc, step, copy.deepcopy(model.state_dict()), probs)
    model.load_state_dict(best[2])
    model.eval()
    return TrainedClassifier(model, best[1], best[0], history, best[3])
