"""Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training").

With ~80 training images a discriminator memorises the real set within a few kimg and the
generator collapses. Applying the same random colour/translation/cutout transform to real *and*
generated images before D sees them regularises D without leaking the augmentation into G's
output, because every operation is differentiable w.r.t. the image. Images are in [-1, 1],
N×C×H×W. All randomness comes from the caller's generator so training is reproducible.
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def _uniform(n: int, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype, generator=g)


def color(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    n = x.shape[0]
    x = x + (_uniform(n, x, g) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(n, x, g) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, x, g) + 0.5) + mean


def translation(
    x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.125
) -> torch.Tensor:
    """Shift each image by up to ratio*size pixels, filling the uncovered border with zeros."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=g)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=g)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    shifted = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1)]
    return shifted.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(x.dtype)


def cutout(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random ratio*size square per image (it may be clipped by the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=g)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=g)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - cy + ch // 2
    cols = torch.arange(w, device=x.device).view(1, 1, w) - cx + cw // 2
    keep = ~((rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw))
    return x * keep.unsqueeze(1).to(x.dtype)


def random_dihedral(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Apply one of the 8 flips/90-degree rotations to each square image, chosen at random."""
    flips = torch.rand(3, x.shape[0], 1, 1, 1, device=x.device, generator=g) < 0.5
    x = torch.where(flips[0], x.flip(3), x)
    x = torch.where(flips[1], x.flip(2), x)
    return torch.where(flips[2], x.transpose(2, 3), x)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(
    x: torch.Tensor, policy: tuple[str, ...] = POLICIES, g: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the named augmentations in order; an empty policy returns x unchanged."""
    for name in policy:
        x = _OPS[name](x, g)
    return x
