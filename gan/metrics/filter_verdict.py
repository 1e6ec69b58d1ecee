"""Does the filter beat random selection? A paired bootstrap interval, and one word for it.

Why: comparing the kept set's held-out KID with a random subset's as two point estimates says
"beats" about half the time when the two are equal by construction (a perfect generator). The
KID "±" of gan.metrics.kid is the spread over subsets of near-identical sets, not a sampling
error, so it cannot decide either. What can go either way here is (a) the held-out reals (a
rare class has ~20-170 of them) and (b) which random subset the control happened to be. So the
difference KID(kept, held-out) − KID(random, held-out) gets a percentile interval from a
bootstrap that redraws both in every replicate:

- the held-out reals are resampled with replacement — by lesion where lesion ids are given,
  since photos of one lesion are not independent draws (a cluster bootstrap);
- a fresh random subset of the pool, of the kept set's size, is the control;
- both KIDs use the same resampled reals (paired), so the reals' own within-set term cancels
  exactly and only how differently the two sets sit among the reals remains.

KID here is the closed-form unbiased MMD² over whole sets (gan.metrics.kid.kid_full): no
subset noise, and cheap inside a bootstrap. The point estimate compares the kept set with the
*average* random subset, KID(pool, held-out) — the exact expectation of a random subset's KID.

The verdict: "beats" when the whole interval is below 0 (kept is closer to the held-out
reals), "worse" when it is above 0, "no difference" otherwise.

Why the control's subset is redrawn while the kept set stays fixed (the filter is not rerun):
the point estimate's own luck is that of one particular kept subset, and under "the filter is
no better than random" that luck is distributed like one random subset's, which is what each
replicate's fresh subset adds. With the kept set itself a random subset (equal by
construction; 16-d Gaussians at mel's sizes: pool 400, kept 200, 170 held-out) the interval
said "no difference" in 99 of 100 draws (tests/test_filtering.py checks 10). What it can
resolve on real data is measured in benchmarks/filter_perfect_generator.py (README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from gan.metrics.kid import polynomial_kernel

BEATS, NO_DIFFERENCE, WORSE = "beats", "no difference", "worse"


@dataclass(frozen=True)
class FilterVerdict:
    kid_kept: float  # KID(kept, held-out), closed form
    kid_random: float  # the expected KID of a random subset of the pool: KID(pool, held-out)
    kid_diff: float  # kid_kept - kid_random; < 0: kept is closer to the held-out reals
    ci95: tuple[float, float]  # percentile interval of the paired bootstrap
    verdict: str  # beats / no difference / worse
    replicates: int
    clusters: int  # independent units the held-out reals were resampled as
    unit: str  # what those units are: "lesions" (groups given) or "images"

    def as_dict(self) -> dict:
        return asdict(self) | {"ci95": list(self.ci95)}


def word(lo: float, hi: float) -> str:
    """beats / worse when the interval of KID(kept) − KID(random) excludes 0, else no difference."""
    if hi < 0:
        return BEATS
    if lo > 0:
        return WORSE
    return NO_DIFFERENCE


def filter_vs_random(
    kept: torch.Tensor,
    pool: torch.Tensor,
    heldout: torch.Tensor,
    heldout_groups: Sequence | None = None,
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> FilterVerdict:
    """Paired bootstrap of KID(kept, held-out) − KID(random subset of pool, held-out).

    kept, pool, heldout: feature tensors, kept normally a subset of pool. heldout_groups: one
    id per held-out row (lesion ids), to resample groups instead of rows. Needs >= 2 kept,
    >= 2 held-out and a pool at least as large as the kept set. Memory: replicates × pool
    doubles (32 MB for 1000 replicates of a 4000-sample pool)."""
    k, n_pool = len(kept), len(pool)
    if k < 2 or len(heldout) < 2 or n_pool < k:
        raise ValueError(
            f"need >= 2 kept, >= 2 held-out and a pool >= kept; got {k}, {len(heldout)}, {n_pool}"
        )
    g = torch.Generator().manual_seed(seed)
    members = _members(len(heldout), heldout_groups)  # clusters × held-out, 0/1
    kept, pool, heldout = kept.double(), pool.double(), heldout.double()

    # held-out weights per replicate: how often each real is drawn (its cluster's count)
    draws = torch.randint(len(members), (replicates, len(members)), generator=g)
    counts = torch.zeros(replicates, len(members), dtype=torch.float64)
    counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    w = counts @ members
    w = w / w.sum(1, keepdim=True)
    # a fresh random k-subset of the pool per replicate, as a 0/1 indicator
    r = torch.zeros(replicates, n_pool, dtype=torch.float64)
    for row in r:
        row[torch.randperm(n_pool, generator=g)[:k]] = 1.0

    within_kept = _within(polynomial_kernel(kept, kept))
    kept_to_held = polynomial_kernel(kept, heldout).mean(0)  # per held-out real
    terms = _pool_terms(pool, heldout, r)
    d = within_kept - terms.within_r / (k * (k - 1))
    d = d - 2 * (w @ kept_to_held - (terms.to_held_r * w).sum(1) / k)

    alpha = (1 - level) / 2
    q = torch.quantile(d, torch.tensor([alpha, 1 - alpha], dtype=d.dtype)).tolist()
    within_held = _within(polynomial_kernel(heldout, heldout))
    kid_kept = float(within_held + within_kept - 2 * kept_to_held.mean())
    kid_random = float(within_held + terms.within_pool - 2 * terms.to_held_pool)
    return FilterVerdict(
        kid_kept=kid_kept,
        kid_random=kid_random,
        kid_diff=kid_kept - kid_random,
        ci95=(q[0], q[1]),
        verdict=word(q[0], q[1]),
        replicates=replicates,
        clusters=len(members),
        unit="images" if heldout_groups is None else "lesions",
    )


def _within(k: torch.Tensor) -> torch.Tensor:
    """Mean kernel value over ordered pairs of distinct members of one set."""
    n = len(k)
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def _members(n: int, groups: Sequence | None) -> torch.Tensor:
    """clusters × n 0/1 matrix: which held-out rows each resampling unit holds."""
    if groups is None:
        return torch.eye(n, dtype=torch.float64)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group ids for {n} held-out rows")
    ids = {gid: i for i, gid in enumerate(dict.fromkeys(groups))}
    m = torch.zeros(len(ids), n, dtype=torch.float64)
    m[[ids[gid] for gid in groups], torch.arange(n)] = 1.0
    return m


@dataclass
class _PoolTerms:
    within_r: torch.Tensor  # per subset: kernel sum over its ordered pairs of distinct members
    to_held_r: torch.Tensor  # per subset and held-out real: kernel sum from the subset
    within_pool: float  # mean kernel over distinct pairs of the whole pool
    to_held_pool: float  # mean kernel between the pool and the held-out reals


def _pool_terms(pool: torch.Tensor, heldout: torch.Tensor, r: torch.Tensor) -> _PoolTerms:
    """The kernel sums of every random subset (rows of the 0/1 matrix r) and of the whole
    pool, from one pass over the pool × pool kernel in row blocks (never held whole)."""
    within_r = torch.zeros(len(r), dtype=torch.float64)
    to_held_r = torch.zeros(len(r), len(heldout), dtype=torch.float64)
    within_pool = to_held_pool = 0.0
    step = 1024
    for s in range(0, len(pool), step):
        rows, r_rows = pool[s : s + step], r[:, s : s + step]
        block, to_held = polynomial_kernel(rows, pool), polynomial_kernel(rows, heldout)
        diag = block[:, s : s + step].diagonal()
        within_r += ((r @ block.T) * r_rows).sum(1) - r_rows @ diag
        to_held_r += r_rows @ to_held
        within_pool += float(block.sum() - diag.sum())
        to_held_pool += float(to_held.sum())
    n = len(pool)
    return _PoolTerms(
        within_r, to_held_r, within_pool / (n * (n - 1)), to_held_pool / (n * len(heldout))
    )
