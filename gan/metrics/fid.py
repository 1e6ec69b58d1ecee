"""Fréchet distance between Gaussians fitted to two feature sets (FID in Inception space).

Computed by torchmetrics' FrechetInceptionDistance in float64, fed with features extracted once
(a pass-through "network"), so the statistics are exactly torchmetrics'. FID is biased upwards
for small n: always report n with it (features.metric_label).
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance


class _Precomputed(nn.Module):
    """Feature 'network' for torchmetrics that receives features already extracted."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two N×d feature tensors (each needs at least 2 rows)."""
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.set_dtype(torch.float64)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())
