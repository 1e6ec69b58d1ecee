"""Feature spaces for FID/KID: the network, its name and dimension, and batched extraction.

Two spaces: `inception` (Inception-v3 pool3, 2048-d, torch-fidelity's weights via torchmetrics,
so numbers match published FID) and `domain` (the penultimate layer of a classifier trained on
the run's own real training split; see pipelines.feature_space). Any module that maps uint8
N×3×H×W images to N×d features can be a feature space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)


@dataclass
class FeatureSpace:
    name: str  # "inception" or "domain"
    dim: int
    net: nn.Module  # uint8 N×3×H×W -> float N×dim


def metric_label(metric: str, space: FeatureSpace, n_real: int, n_fake: int) -> str:
    """E.g. 'FID[domain-256d, n=80 vs 2000]': the space and sample sizes travel with a number."""
    return f"{metric}[{space.name}-{space.dim}d, n={n_real} vs {n_fake}]"


@torch.no_grad()
def extract_features(
    space: FeatureSpace, images_uint8: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """float64 N×dim features on the CPU; images are moved batch by batch to the net's device."""
    device = next(space.net.parameters()).device
    out = [space.net(chunk.to(device)).double().cpu() for chunk in images_uint8.split(batch_size)]
    return torch.cat(out) if out else torch.zeros(0, space.dim, dtype=torch.float64)


class _InceptionPool3(nn.Module):
    """torchmetrics' Inception-v3 (torch-fidelity weights) returning 2048-d pool3 features."""

    def __init__(self, weights: Path):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        # antialias=False: torch-fidelity's TF1-compatible resize, as in published FID numbers
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=str(weights),
            antialias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def find_inception_weights(path: str | os.PathLike | None = None) -> Path | None:
    """--inception-weights, else $RAREGAN_INCEPTION_WEIGHTS, else the torch hub cache."""
    candidates = [path, os.environ.get("RAREGAN_INCEPTION_WEIGHTS")]
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE)
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def inception_space(weights: Path, device: torch.device | str = "cpu") -> FeatureSpace:
    """The standard FID feature space, from a local weights file (no download at run time)."""
    return FeatureSpace("inception", 2048, _InceptionPool3(weights).to(device).eval())


def inception_weights_help() -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"the inception feature space needs torch-fidelity's weights file {INCEPTION_WEIGHTS_FILE} "
        f"({INCEPTION_WEIGHTS_URL}); download it and pass --inception-weights PATH, set "
        f"RAREGAN_INCEPTION_WEIGHTS, or put it in {hub}/ -- or use --feature-space domain"
    )
