"""The one classifier recipe of every arm: network, inputs and training config."""

from __future__ import annotations

import numpy as np
import torch

from classifier.networks import make_classifier
from classifier.training import ClassifierConfig
from pipelines.config.arms import ARM_SPECS
from pipelines.config.profiles import Profile
from pipelines.data.dataset import resize_images


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
    only the loss of an arm with logit_adjust_tau (reweight) and the images the last steps
    of an arm with a real_tail (gan-then-real) draw differ."""
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
        real_only_steps=round(ARM_SPECS[arm].real_tail * steps),
    )
