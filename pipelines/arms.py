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
from baseline in the loss only. Each arm is one ArmSpec in ARM_SPECS: its training set, loss,
sample set, gain pairs and place in the report all derive from it, so adding an arm is one entry.
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

REWEIGHT_TAU = 1.0  # Menon et al.'s default


@dataclass(frozen=True)
class SampleSet:
    """A synthetic sample set per rare class, drawn by a `samples` job from the class's GAN."""

    name: str  # as the arms' `synthetic` names it
    folder: str  # <run>/samples/<folder>/<class>/
    filter: str  # gan-sample's --filter: fid | none
    matched_to: str | None = None  # keeps no more images than this set reached (same counts)


@dataclass(frozen=True)
class ArmSpec:
    """One arm: how its rare classes grow to their target, and what it is compared with."""

    name: str
    oversample: bool = False  # real images of the rare classes resampled with replacement
    synthetic: str | None = None  # the SampleSet its synthetic images come from
    shared: bool = False  # with both: --synthetic-share of the added images are synthetic
    logit_adjust_tau: float = 0.0  # > 0: the logit-adjusted loss (reweight)
    control: bool = False  # an arm without synthetic images, that synthetic arms must beat
    headline: bool = False  # its gains over every control lead the report
    default: bool = True  # in --arms by default
    also_vs: tuple[str, ...] = ()  # gains over these arms too, after the headline ones

    def synthetic_count(self, extra: int, synthetic_share: float) -> int:
        """Of the `extra` images a rare class needs to reach its target, how many are
        synthetic (the rest are resampled real ones where the arm oversamples)."""
        if self.synthetic is None:
            return 0
        return round(synthetic_share * extra) if self.shared else extra


SAMPLE_SETS = {
    s.name: s
    for s in (
        SampleSet("gan", "filtered", "fid"),
        SampleSet("gan-unfiltered", "unfiltered", "none", matched_to="gan"),
    )
}
ARM_SPECS = {
    a.name: a
    for a in (
        ArmSpec("baseline", control=True),
        ArmSpec("oversample", oversample=True, control=True, also_vs=("baseline",)),
        ArmSpec("reweight", logit_adjust_tau=REWEIGHT_TAU, control=True, also_vs=("baseline",)),
        ArmSpec("gan", synthetic="gan", headline=True, also_vs=("gan-unfiltered",)),
        ArmSpec("oversample+gan", oversample=True, synthetic="gan", shared=True, headline=True),
        ArmSpec("gan-unfiltered", synthetic="gan-unfiltered", default=False, also_vs=("baseline",)),
    )
}
ARMS = tuple(ARM_SPECS)
DEFAULT_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec.default)
CONTROLS = tuple(a for a, spec in ARM_SPECS.items() if spec.control)
HEADLINE_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec.headline)
GAIN_PAIRS = [  # (arm, reference): the gains the report shows, headline first
    *[(arm, ref) for arm in HEADLINE_ARMS for ref in CONTROLS],
    *[(arm, ref) for arm, spec in ARM_SPECS.items() for ref in spec.also_vs],
]


def sample_sets(arms: tuple[str, ...]) -> list[SampleSet]:
    """The sample sets the arms draw from, each after the set it is matched to."""
    wanted = {ARM_SPECS[a].synthetic for a in arms} - {None}
    return [s for name, s in SAMPLE_SETS.items() if name in wanted]


@dataclass
class Arm:
    """An arm's training set, with where each image came from (what an export records)."""

    name: str
    images: np.ndarray  # uint8 N×S×S×3
    labels: np.ndarray
    rows: np.ndarray  # per image: its row in the Dataset (a real training image), else -1
    synthetic_index: np.ndarray  # per image: its index in its class's sample set, else -1


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


def build_arm(
    ds: Dataset,
    split: Split,
    targets: dict[str, int],
    synthetic: dict[str, dict[str, np.ndarray]],
    arm: str,
    seed: int,
    synthetic_share: float = 0.5,
) -> Arm:
    """Training set of one arm; synthetic[set][class] holds uint8 images of a sample set.
    Each image's origin is kept beside it, so that an export writes exactly this set (and
    its repeats) without mixing it a second way."""
    spec = ARM_SPECS[arm]
    train = np.asarray(split.train)
    base_x, base_y = ds.images[train], ds.labels[train]
    rng = np.random.default_rng(seed)
    xs, ys, rows, syn = [base_x], [base_y], [train], [np.full(len(train), -1)]
    for c, target in targets.items():
        label = ds.class_index(c)
        extra = target - int((base_y == label).sum())
        n_syn = spec.synthetic_count(extra, synthetic_share)
        n_over = extra - n_syn if spec.oversample else 0
        if extra <= 0 or n_syn + n_over == 0:
            continue
        if n_over:
            pool = np.flatnonzero(base_y == label)
            picked = rng.choice(pool, n_over, replace=True)
            xs.append(base_x[picked])
            rows.append(train[picked])
            syn.append(np.full(n_over, -1))
        if n_syn:
            imgs = synthetic[spec.synthetic][c][:n_syn]
            if len(imgs) < n_syn:
                raise UserError(
                    f"only {len(imgs)} synthetic {c!r} images for {n_syn} "
                    "needed; rerun with a larger --pool-factor"
                )
            xs.append(imgs)
            rows.append(np.full(n_syn, -1))
            syn.append(np.arange(n_syn))
        ys.append(np.full(n_syn + n_over, label, dtype=base_y.dtype))
    return Arm(arm, *(np.concatenate(part) for part in (xs, ys, rows, syn)))


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
    only the loss of an arm with logit_adjust_tau (reweight) differs."""
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
        logit_adjust_tau=ARM_SPECS[arm].logit_adjust_tau,
    )
