"""The one classifier recipe of every arm: network, inputs and training config."""

from __future__ import annotations

import numpy as np
import torch

from classifier.networks import CompactCNN, SmallResNet
from classifier.training import ClassifierConfig
from classifier.zoo import build_network
from pipelines.config.arms import ARM_SPECS
from pipelines.config.experiment import ExperimentConfig
from pipelines.config.profiles import Profile
from pipelines.data.dataset import resize_images


def classifier_network(cfg: ExperimentConfig, num_classes: int) -> torch.nn.Module:
    """The one classifier network of every arm, freshly initialised (or from its pretrained
    weights, with a new head): --classifier's network, taking uint8 images."""
    profile, choice = cfg.profile, cfg.classifier

    def builtin(name: str, k: int) -> torch.nn.Module:
        if name == "compact":
            return CompactCNN(k, profile.classifier_width, input_size=cfg.classifier_size)
        return SmallResNet(k, profile.classifier_width, stem_stride=profile.classifier_stem_stride)

    return build_network(
        choice.family,
        choice.name,
        num_classes,
        builtin=builtin,
        weights_file=choice.weights,
        hub_weights=cfg.pretrained,
    )


def classifier_inputs(size: int, images: np.ndarray) -> np.ndarray:
    """Images as every arm's classifier takes them: real and synthetic alike resized from the
    GANs' size to the classifier's size by one filter, so no arm's images reach the
    classifier by another path (a no-op where the sizes are equal)."""
    return resize_images(images, size)


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
