"""A sample set's fresh samples and its detectability: can a small CNN tell the kept samples
from real images of the class (classifier.two_sample)? Measured when a set is drawn, on fresh
samples (never trained on) made as the kept ones were, and reported with the set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from classifier.two_sample import detectability
from pipelines.steps.gan_run import ClassRun, judging_images

FRESH_N = 256  # fresh samples per set (detectability's and the signature's test images): a
# share's sd <= 0.031 per model; the report predicts them with every model (8-view TTA)
FRESH_FILE = "fresh.npz"  # a sample set's fresh samples, beside the kept ones
FRESH_SEED_OFFSET = 1000  # fresh latents: seed + this, out of reach of --seed 1, 2, ... batches
DETECT_STEPS = 300  # the detector's steps: enough to catch a radius-1 blur (quality_measures.md)


@dataclass(frozen=True)
class Detector:
    """How a set's detectability is measured: `inputs` maps uint8 N×S×S×3 images to what the
    downstream classifier sees (None: as sampled), for `steps` training steps."""

    inputs: Callable[[np.ndarray], np.ndarray] | None = None
    steps: int = DETECT_STEPS


def fresh_seed(seed: int) -> int:
    """Latent seed of a set's fresh samples: never a pool's seed, so never trained on."""
    return seed + FRESH_SEED_OFFSET


def measure(
    run: ClassRun, detector: Detector, seed: int, kept: torch.Tensor, fresh: torch.Tensor
) -> dict:
    """Detectability of the kept samples: a small CNN trained on the class's training reals vs
    the kept samples, tested on its validation reals of the judging half (by lesion) vs the
    fresh samples."""
    if detector.steps == 0:
        return {"skipped": "--detect-steps 0"}
    held = judging_images(run)
    if len(held) < 2 or len(kept) < 2:
        return {"skipped": f"{len(held)} judging validation images, {len(kept)} kept samples"}
    inputs = detector.inputs or (lambda x: x)
    nhwc = lambda t: inputs(t.permute(0, 2, 3, 1).numpy())  # noqa: E731
    lesions = run.judging_lesions or [str(i) for i in range(len(held))]
    found = detectability(
        inputs(run.images), nhwc(kept), inputs(held), nhwc(fresh), steps=detector.steps,
        seed=seed, real_test_lesions=lesions,
    )  # fmt: skip
    return found | {"fresh_seed": fresh_seed(seed)}


def detect_phrase(d: dict | None) -> str:
    """The detectability clause of a verdict."""
    if not d:
        return ""
    if "skipped" in d:
        return f"detectability not measured ({d['skipped']})"
    lo, hi = d["ci95"]
    return (
        f"a small CNN tells held-out reals from fresh samples at balanced accuracy "
        f"{d['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] (0.5: indistinguishable; reals "
        f"{d['real_accuracy']:.2f}, samples {d['generated_accuracy']:.2f} right)"
    )
