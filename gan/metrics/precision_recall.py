"""Improved precision and recall (Kynkäänniemi et al. 2019): fidelity vs coverage.

Each set's manifold is the union of balls around its points with radius = distance to the
k-th nearest neighbour within the set. Precision: fraction of generated points inside the real
manifold; recall: fraction of real points inside the generated manifold. Written from the paper.
"""

from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point of the same set."""
    d = torch.cdist(features, features)
    return d.kthvalue(min(k + 1, len(features)), dim=1).values  # +1: skip the point itself


def coverage_fraction(
    points: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, batch: int = 1024
) -> float:
    """Fraction of `points` within radius of at least one manifold point."""
    inside = [
        (torch.cdist(chunk, manifold) <= radii.unsqueeze(0)).any(dim=1)
        for chunk in points.split(batch)
    ]
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    precision = coverage_fraction(fake, real, knn_radii(real, k))
    recall = coverage_fraction(real, fake, knn_radii(fake, k))
    return precision, recall
