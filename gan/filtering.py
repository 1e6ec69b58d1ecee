"""Choosing which generated samples to keep, from features alone (pure functions).

FID is a statistic of a set, so the filter ranks single samples by how well they sit in the
real class's feature distribution and keeps the best n of a K×n pool, while refusing
(a) near-copies of a training image: a generator trained on ~80 images can memorise, and a
    copy adds nothing to a training set but leakage, and
(b) near-duplicates of an already kept sample (mode collapse in miniature).
"Near" is calibrated on the real data: closer than the `copy_quantile` of the distances between
real images and their nearest other real image. Where lesion ids are known (`real_groups`),
"other" means an image of another lesion: the threshold is then how close *distinct lesions*
come, which several photos of one lesion (or exact duplicates, always ignored) would pull down.

What this cannot catch: another photo of a training lesion. HAM10000 has several photos of
many lesions, so a generator that memorised a lesion could output a view of it that is no
training image. In the 32 px domain feature space the filter works in, such a photo is not near
its lesion: for 86 % of mel (73 % of df) training photos of multi-photo lesions the nearest
image of *another* lesion is nearer than the nearest photo of their own (median distance 1.35
vs 2.53 for mel), so at the 5 % threshold 15 of 619 mel photos (6 of 52 df) are caught with the
between-lesion threshold and 13 (2) with the plain one; a threshold that caught most of them
would reject most new lesions too (`benchmarks/filter_perfect_generator.py`, second table).
Rejecting "samples nearest to any image of a lesion" is therefore not done: the feature space
does not identify lesions. The guard against lesion leakage is upstream: the split is by lesion,
so no validation or test lesion reaches a GAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gan.metrics.precision_recall import knn_radii

SCORES = ("matching", "realism", "mahalanobis")
KEPT, COPY, DUPLICATE, LOW_SCORE = "kept", "near-copy", "near-duplicate", "low-score"


def realism_scores(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Kynkäänniemi et al.'s realism score: max over real j of r_k(j) / ||fake - real_j||.

    > 1 means inside some real point's k-NN ball; it rewards being on the real manifold, not
    being near its mean, so it does not shrink the kept set's spread the way truncation does.
    As in the paper, the real balls with the largest radii (top half) are left out as outliers.
    """
    radii = knn_radii(real, k)
    keep = radii <= radii.median()
    real, radii = real[keep], radii[keep]
    scores = [
        (radii.unsqueeze(0) / torch.cdist(chunk, real).clamp_min(1e-12)).max(dim=1).values
        for chunk in fake.split(1024)
    ]
    return torch.cat(scores)


def mahalanobis_scores(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Negative Mahalanobis distance under the real Gaussian (higher = more typical).

    With fewer real images than dimensions the sample covariance is singular; it is shrunk
    towards a scaled identity (Ledoit-Wolf-style, fixed weight n/(n+d)).
    """
    n, d = real.shape
    mu = real.mean(0)
    cov = torch.cov(real.T)
    w = d / (n + d)
    cov = (1 - w) * cov + w * torch.eye(d, dtype=cov.dtype) * cov.diagonal().mean()
    diff = fake - mu
    return -(diff @ torch.linalg.solve(cov, diff.T)).diagonal().clamp_min(0).sqrt()


def nearest_distance(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.cdist(c, reference).min(dim=1).values for c in points.split(1024)])


def copy_threshold(
    real: torch.Tensor, quantile: float = 0.05, groups: Sequence | None = None
) -> float:
    """The `quantile` of real-to-nearest-other-real distances (exact duplicates ignored).

    groups: one lesion id per real image; then "other" means another lesion's image, so that
    several photos of one lesion do not pull "how close distinct lesions come" down (the same
    reason exact duplicates are ignored)."""
    d = torch.cdist(real, real)
    d.fill_diagonal_(float("inf"))
    d[d == 0] = float("inf")
    if groups is not None:
        d[_same_group(groups)] = float("inf")
    nn = d.min(dim=1).values
    nn = nn[torch.isfinite(nn)]
    return float(nn.quantile(quantile)) if len(nn) else 0.0


def _same_group(groups: Sequence) -> torch.Tensor:
    ids = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    codes = torch.tensor([ids[g] for g in groups])
    return codes.unsqueeze(0) == codes.unsqueeze(1)


@dataclass
class Selection:
    kept: torch.Tensor  # indices into the pool, best score first
    verdict: list[str]  # per pool sample: kept / near-copy / near-duplicate / low-score
    score: torch.Tensor  # per pool sample, higher = better
    nearest_real: torch.Tensor  # per pool sample
    threshold: float


def select(
    pool: torch.Tensor,
    real: torch.Tensor,
    n: int,
    score: str = "matching",
    copy_quantile: float = 0.05,
    seed: int = 0,
    real_groups: Sequence | None = None,
) -> Selection:
    """Keep n pool samples that are neither near-copies of a real image nor near-duplicates
    of a kept one.

    matching: the real images take turns claiming their nearest unclaimed sample, so the kept
    set's density follows the real one (each real image gets ~n/N_real neighbours); this is
    what lowers the set's FID. realism / mahalanobis: keep the n best per-sample scores, which
    raises precision but can shrink the kept set's spread (see benchmarks/sample_speed.py).
    seed: the reals' claiming order within each matching round. real_groups: one lesion id per
    real image, for the copy threshold (see copy_threshold and the module docstring).
    """
    if real_groups is not None and len(real_groups) != len(real):
        raise ValueError(f"{len(real_groups)} group ids for {len(real)} real images")
    nearest_real = nearest_distance(pool, real)
    threshold = copy_threshold(real, copy_quantile, real_groups)
    if score == "matching":
        s = -nearest_real
        order = _matching_order(pool, real, seed)
    elif score in ("realism", "mahalanobis"):
        s = realism_scores(pool, real) if score == "realism" else mahalanobis_scores(pool, real)
        order = s.argsort(descending=True).tolist()
    else:
        raise ValueError(f"unknown score {score!r}; use {SCORES}")
    verdict = [COPY if d < threshold else LOW_SCORE for d in nearest_real.tolist()]
    kept: list[int] = []
    kept_feats = torch.empty(n, pool.shape[1], dtype=pool.dtype)
    for i in order:
        if len(kept) == n:
            break
        if verdict[i] == COPY:
            continue
        if kept and (kept_feats[: len(kept)] - pool[i]).norm(dim=1).min() < threshold:
            verdict[i] = DUPLICATE
        else:
            verdict[i] = KEPT
            kept_feats[len(kept)] = pool[i]
            kept.append(i)
    return Selection(torch.tensor(kept, dtype=torch.long), verdict, s, nearest_real, threshold)


def _matching_order(pool: torch.Tensor, real: torch.Tensor, seed: int = 0) -> list[int]:
    """Pool indices in the order round-robin nearest-neighbour claims reach them: in round r,
    every real image claims its nearest sample not claimed before. Unclaimable samples last.

    Within a round the reals claim in a fresh random order (a permutation per round from
    `seed`): in index order, the last, partial round (n is rarely a multiple of N_real) would
    go to the low-index reals, and the kept set would lean towards whatever the real images
    happen to be sorted by (file name, acquisition site, ...)."""
    ranked = torch.cdist(real, pool).argsort(dim=1).numpy()  # N_real × pool, nearest first
    g = torch.Generator().manual_seed(seed)
    claimed = [False] * len(pool)
    pointer = [0] * len(real)
    order: list[int] = []
    progressed = True
    while progressed:
        progressed = False
        for j in torch.randperm(len(real), generator=g).tolist():
            row, p = ranked[j], pointer[j]
            while p < len(row) and claimed[row[p]]:
                p += 1
            pointer[j] = p
            if p < len(row):
                claimed[row[p]] = True
                order.append(int(row[p]))
                progressed = True
    return order
