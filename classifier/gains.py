"""Paired gains of one arm over another, with a two-level bootstrap CI (seeds, then lesions).

A gain measured on one test set with a few training seeds has two sources of noise: which
lesions happen to be in the test set, and which seed trained the models. Each bootstrap
replicate therefore draws the S seeds with replacement and then the test lesions with
replacement (the images of a lesion are not independent, so lesions are the unit), and the
same draw is applied to both arms (paired) and to every metric. The 95 % interval is the
percentile interval of the replicates.

Three metrics of one rare class c:
- recall: share of c's images whose argmax prediction is c;
- prior-matched recall: share of c's images whose score for c clears a threshold chosen on the
  *validation* set so that each model flags as many validation images as there are c images
  there. Every arm then works at the same positive rate, so a gain that is only a shifted
  decision threshold (a changed class prior, what oversampling mostly buys) disappears;
- average precision (AP) of c's one-vs-rest scores: threshold-free ranking quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000


@dataclass(frozen=True)
class Resamples:
    """One set of bootstrap draws, shared by every arm and metric of a comparison."""

    seed_counts: np.ndarray  # B×S: how often each seed is drawn in replicate b
    image_weights: np.ndarray  # B×N: how often each test image's lesion is drawn
    image_lesion: np.ndarray  # N: the lesion index of each test image


def resamples(
    n_seeds: int, lesion_ids: list[str], n_boot: int = N_BOOT, seed: int = 0
) -> Resamples:
    rng = np.random.default_rng(seed)
    lesions, image_lesion = np.unique(np.asarray(lesion_ids), return_inverse=True)
    L = len(lesions)
    seed_counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot)
    lesion_counts = rng.multinomial(L, np.full(L, 1.0 / L), size=n_boot)
    weights = lesion_counts[:, image_lesion].astype(float)
    return Resamples(seed_counts.astype(float), weights, image_lesion)


def prior_matched_hits(
    val_scores: np.ndarray, val_is_class: np.ndarray, test_scores: np.ndarray
) -> np.ndarray:
    """Test images flagged as the class at the threshold that flags exactly as many validation
    images as the class has there (its validation prevalence). Scores: S×N per seed."""
    k = int(val_is_class.sum())
    if k == 0:
        raise ValueError("no validation image of this class: cannot match its prior")
    thresholds = -np.sort(-val_scores, axis=1)[:, k - 1]  # k-th largest per seed
    return test_scores >= thresholds[:, None]


def _summary(point: float, boot: np.ndarray, is_class: np.ndarray, rs: Resamples) -> dict:
    boot = boot[np.isfinite(boot)]  # a replicate without any image of the class has no value
    low, high = np.percentile(boot, [2.5, 97.5])
    return {
        "gain": float(point),
        "ci95": [float(low), float(high)],
        "excludes_zero": bool(low > 0 or high < 0),
        "test_lesions": len(np.unique(rs.image_lesion[is_class])),
        "test_images": int(is_class.sum()),
        "n_boot": int(len(boot)),
    }


def recall_gain(
    hits_a: np.ndarray, hits_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> dict:
    """Recall of arm b minus arm a. hits_*: S×N booleans (image flagged as the class by the
    seed-s model); recall pools the drawn seeds' hits over the drawn images of the class."""
    diff = (hits_b[:, is_class].astype(float) - hits_a[:, is_class]).T  # Nc×S
    point = diff.mean()
    w = rs.image_weights[:, is_class]  # B×Nc
    per_seed = w @ diff  # B×S: hit difference of each seed on each replicate
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (per_seed * rs.seed_counts).sum(1) / (w.sum(1) * rs.seed_counts.sum(1))
    return _summary(point, boot, is_class, rs)


def weighted_average_precision(
    scores: np.ndarray, is_class: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """AP of one score vector (N) under each row of image weights (B×N): the mean, over the
    class's images (weighted), of the precision among the images scored at least as high.
    Integer weights give the AP of the data set with the images repeated (ties broken by
    order, as in a plain ranking)."""
    order = np.argsort(-scores, kind="stable")
    y = is_class[order].astype(float)
    w = weights[:, order]
    tp = np.cumsum(w * y, axis=1)
    flagged = np.cumsum(w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tp / flagged, 0.0)
        return (w * y * precision).sum(1) / (w * y).sum(1)


def ap_gain(
    scores_a: np.ndarray, scores_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> dict:
    """AP of arm b minus arm a, averaged over seeds. scores_*: S×N scores for the class."""
    ones = np.ones((1, scores_a.shape[1]))
    point = np.mean(
        [
            weighted_average_precision(b, is_class, ones)[0]
            - weighted_average_precision(a, is_class, ones)[0]
            for a, b in zip(scores_a, scores_b)
        ]
    )
    per_seed = np.stack(
        [
            weighted_average_precision(b, is_class, rs.image_weights)
            - weighted_average_precision(a, is_class, rs.image_weights)
            for a, b in zip(scores_a, scores_b)
        ],
        axis=1,
    )  # B×S
    boot = (per_seed * rs.seed_counts).sum(1) / rs.seed_counts.sum(1)
    return _summary(point, boot, is_class, rs)
