"""The arms of the comparison: training sets that differ only in how the rare classes grow.

  baseline        real training images;
  oversample      real images, the rare classes resampled with replacement to the target count;
  reweight        the baseline's images, trained with the logit-adjusted loss (Menon et al.
                  2021): the control that rebalances without adding a single image;
  gan             real images plus filtered synthetic images up to the target count;
  oversample+gan  the standard practice plus synthetic images: of the images a rare class
                  needs to reach its target, a share --synthetic-share are (filtered)
                  synthetic and the rest resampled real ones (share 0 = oversample, 1 = gan);
  gan-unfiltered  the same count of synthetic images drawn without the filter.
Every arm gets the same classifier, recipe, optimiser step budget and seeds; reweight differs
from baseline in the loss only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from classifier.networks import make_classifier
from classifier.training import ClassifierConfig
from pipelines.data.datasets import Dataset, resize_images
from pipelines.data.splits import Split
from pipelines.errors import UserError
from pipelines.profiles import Profile

ARMS = ("baseline", "oversample", "reweight", "gan", "oversample+gan", "gan-unfiltered")
DEFAULT_ARMS = ("baseline", "oversample", "reweight", "gan", "oversample+gan")
CONTROLS = ("baseline", "oversample", "reweight")  # arms without synthetic images
SYNTHETIC_SOURCE = {"gan": "gan", "oversample+gan": "gan", "gan-unfiltered": "gan-unfiltered"}
REWEIGHT_TAU = 1.0  # Menon et al.'s default


@dataclass
class Arm:
    name: str
    images: np.ndarray  # uint8 N×S×S×3
    labels: np.ndarray


def targets_for(ds: Dataset, split: Split, classes: list[str], target: str) -> dict[str, int]:
    """Target training count per rare class. auto: max(2 × real, median class count)."""
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    out = {}
    for c in classes:
        real = int(counts[ds.class_index(c)])
        if target == "auto":
            out[c] = max(2 * real, int(np.median(counts)))
        else:
            try:
                out[c] = int(target)
            except ValueError:
                raise UserError(f"--target {target!r} is neither a number nor 'auto'") from None
            if out[c] < real:
                raise UserError(
                    f"--target {out[c]} is smaller than the {real} real training "
                    f"images of {c!r}; choose a target >= {real} or auto"
                )
    return out


def build_arms(
    ds: Dataset,
    split: Split,
    targets: dict[str, int],
    synthetic: dict[str, dict[str, np.ndarray]],
    arms: list[str],
    seed: int,
    synthetic_share: float = 0.5,
) -> dict[str, Arm]:
    """Training set of every arm; synthetic[kind][class] holds uint8 images of a sample set
    (kind "gan": filtered, "gan-unfiltered": not), as SYNTHETIC_SOURCE maps arms to them."""
    base_x, base_y = ds.images[split.train], ds.labels[split.train]
    rng = np.random.default_rng(seed)
    out = {}
    for name in arms:
        xs, ys = [base_x], [base_y]
        for c, target in targets.items():
            label = ds.class_index(c)
            extra = target - int((base_y == label).sum())
            n_syn = {"oversample+gan": round(synthetic_share * extra), "oversample": 0}.get(
                name, extra if name in SYNTHETIC_SOURCE else 0
            )
            n_over = extra - n_syn if name in ("oversample", "oversample+gan") else 0
            if extra <= 0 or n_syn + n_over == 0:
                continue
            if n_over:
                pool = np.flatnonzero(base_y == label)
                xs.append(base_x[rng.choice(pool, n_over, replace=True)])
            if n_syn:
                imgs = synthetic[SYNTHETIC_SOURCE[name]][c][:n_syn]
                if len(imgs) < n_syn:
                    raise UserError(
                        f"only {len(imgs)} synthetic {c!r} images for {n_syn} "
                        "needed; rerun with a larger --pool-factor"
                    )
                xs.append(imgs)
            ys.append(np.full(n_syn + n_over, label, dtype=base_y.dtype))
        out[name] = Arm(name, np.concatenate(xs), np.concatenate(ys))
    return out


def classifier_network(profile: Profile, num_classes: int, pretrained: bool) -> torch.nn.Module:
    """The one classifier network of every arm, freshly initialised."""
    return make_classifier(
        num_classes, profile.classifier_width, pretrained, profile.classifier_stem_stride
    )


def classifier_inputs(profile: Profile, images: np.ndarray) -> np.ndarray:
    """Images as every arm's classifier takes them: real and synthetic alike resized from the
    GANs' size to the profile's classifier size by one filter, so no arm's images reach the
    classifier by another path (a no-op where the sizes are equal)."""
    return resize_images(images, profile.classifier_size or profile.size)


def classifier_config(
    profile: Profile, n_train: int, seed: int, precision: str, arm: str = "baseline"
) -> ClassifierConfig:
    """The one classifier recipe of every arm (its step budget from the baseline's size);
    only reweight's loss differs."""
    steps = int(
        min(
            profile.classifier_steps_cap,
            max(50, profile.classifier_epochs * n_train / profile.batch_size),
        )
    )
    return ClassifierConfig(
        steps=steps,
        batch_size=profile.batch_size,
        lr=3e-3,
        sampling="uniform",
        precision=precision,
        seed=seed,
        eval_every=max(steps // 5, 10),
        tta=profile.classifier_tta,
        logit_adjust_tau=REWEIGHT_TAU if arm == "reweight" else 0.0,
    )
