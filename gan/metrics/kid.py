"""Kernel distance (KID): unbiased squared MMD with a cubic polynomial kernel, over subsets.

Unbiased, so it is the better small-sample statistic (a rare class has ~80 real images): two
draws of one distribution give KID ≈ 0 in expectation. Computed by torchmetrics'
KernelInceptionDistance on features extracted once; the subset size is capped by the smaller
set (torchmetrics' default of 1000 would fail for a rare class).
"""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.kid import KernelInceptionDistance

from gan.metrics.fid import _Precomputed


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of KID over `subsets` random subsets of min(subset_size, n_real, n_fake)."""
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": ours are small
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # torchmetrics draws subsets from the global RNG
    try:
        mean, std = metric.compute()
    finally:
        torch.set_rng_state(state)
    return float(mean), float(std)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's kernel, k(x, y) = (x·y / d + 1)³ (as torchmetrics and Bińkowski et al. 2018)."""
    return (x.double() @ y.double().T / x.shape[1] + 1) ** 3


def kid_full(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Unbiased squared MMD with KID's kernel over the whole sets, in closed form.

    No subsets, so no subset noise and no seed: the expectation of `kid`'s subset means when
    both sets are used whole, at any two sizes (>= 2 each). Cheap enough to recompute inside a
    bootstrap (see gan.metrics.filter_verdict)."""
    m, n = len(real), len(fake)
    k_rr, k_ff = polynomial_kernel(real, real), polynomial_kernel(fake, fake)
    within_r = (k_rr.sum() - k_rr.diagonal().sum()) / (m * (m - 1))
    within_f = (k_ff.sum() - k_ff.diagonal().sum()) / (n * (n - 1))
    return float(within_r + within_f - 2 * polynomial_kernel(real, fake).mean())


def mixture_kid(
    real: torch.Tensor,
    real_labels: torch.Tensor,
    fake: torch.Tensor,
    mix: dict[int, float],
    fake_labels: torch.Tensor | None = None,
) -> float:
    """Unbiased squared MMD (KID's kernel) between two sets both re-weighted to the class mix
    `mix` (class -> weight), in closed form over the whole sets.

    A generator trained on class-balanced draws should produce a balanced mix; scored against
    the natural-mix validation set (two thirds nevi on HAM10000), plain KID measures the class
    mix, not the images: a perfect balanced generator scores far above the real floor. Here each
    side is the mixture sum_c mix[c] * P_c: the kernel's expectations are sums of per-class
    block means (diagonal left out within a class), so the estimate stays unbiased at any class
    sizes. Unlabelled sets (`fake_labels` None: a generator's samples) count as drawn from the
    mixture already. Classes with fewer than 2 images on a labelled side carry no within-class
    estimate and are left out (the rest renormalised); a ValueError if none is left."""
    weighted = {c for c, w in mix.items() if w > 0} & _paired(real_labels)
    if fake_labels is not None:
        weighted &= _paired(fake_labels)
    if not weighted:
        raise ValueError("no class of the mix has 2 or more images on each labelled side")
    total = sum(mix[c] for c in weighted)

    def groups(labels: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        return [(torch.nonzero(labels == c).flatten(), mix[c] / total) for c in sorted(weighted)]

    real_groups = groups(real_labels)
    fake_groups = [(torch.arange(len(fake)), 1.0)] if fake_labels is None else groups(fake_labels)
    return float(
        _expected_kernel(real, real_groups, real, real_groups, within=True)
        + _expected_kernel(fake, fake_groups, fake, fake_groups, within=True)
        - 2 * _expected_kernel(real, real_groups, fake, fake_groups, within=False)
    )


def _paired(labels: torch.Tensor) -> set[int]:
    """Classes with at least 2 rows: those a within-class mean can be estimated for."""
    values, counts = torch.unique(labels, return_counts=True)
    return {int(v) for v, n in zip(values, counts) if n >= 2}


def _expected_kernel(x, x_groups, y, y_groups, within: bool) -> torch.Tensor:
    """sum over group pairs of w * w' * mean kernel between them; with `within`, x is y and a
    group's pairs with itself leave the diagonal out (unbiased)."""
    k = polynomial_kernel(x, y)
    total = torch.zeros((), dtype=torch.float64)
    for a, (ix, wx) in enumerate(x_groups):
        for b, (iy, wy) in enumerate(y_groups):
            block = k[ix][:, iy]
            if within and a == b:
                n = len(ix)
                mean = (block.sum() - block.diagonal().sum()) / (n * (n - 1))
            else:
                mean = block.mean()
            total += wx * wy * mean
    return total
