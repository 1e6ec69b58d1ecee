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
