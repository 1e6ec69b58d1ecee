"""Paired gains of one arm over another, with intervals whose coverage was measured.

The variance of a seed-averaged gain is the crossed seed x lesion one of classifier.crossed:
the per-seed gains' spread plus the part the seeds share over a paired lesion bootstrap (the
same lesion draw serves both arms and every metric); the interval is gain +- t * SE. A recall
gain's SE is floored at the one of the two arms' Agresti-Caffo adjusted recalls at their
effective n (classifier.crossed), so it keeps its width near recall 1, and stays in [-1, 1].
With one seed the seed part is unknown and the interval covers test noise only.
benchmarks/interval_coverage.py measures the coverage with known answers.

Three metrics of one rare class c:
- recall: share of c's images whose argmax prediction is c;
- prior-matched recall: recall at a threshold that flags as many validation images as c has
  there, after each model's scores are put on the validation prior (classifier.prior_matching),
  so a gain that is only a shifted decision threshold or a per-class logit offset disappears;
- average precision (AP) of c's one-vs-rest scores: threshold-free ranking quality, tied scores
  forming one threshold (as torchmetrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from classifier.crossed import (
    LEVEL,
    N_BOOT,
    Resamples,
    crossed_interval,
    floored_difference_se,
    proportion,
    resamples,
)

__all__ = ["N_BOOT", "Resamples", "crossed_interval", "resamples"]  # re-exported

METHOD = (
    "gain ± t·SE; SE² = per-seed gains' variance / S + the lesion part the seeds share (paired "
    "lesion bootstrap; prior matching's validation lesions redrawn too); Welch-Satterthwaite "
    "df, seed part at its 80 % upper bound; recall: SE at least the Agresti-Caffo adjusted one "
    "at each arm's effective n"
)


@dataclass(frozen=True)
class ArmRecall:
    """One arm's recall of a class per seed, on the full test set and on each resample."""

    per_seed: np.ndarray  # S
    boot: np.ndarray  # B×S


@dataclass(frozen=True)
class GainDraws:
    """A gain per seed on the full test set and on each paired lesion resample; for a recall
    gain also the two arms' own recalls (its interval is built from theirs)."""

    per_seed: np.ndarray  # S
    boot: np.ndarray  # B×S
    n_lesions: int  # the class's test lesions
    arms: tuple[ArmRecall, ArmRecall] | None = None  # (a, b) of b - a
    n_images: int = 0  # the class's test images


def gain_summary(d: GainDraws, is_class: np.ndarray, rs: Resamples) -> dict:
    """The gain, its interval gain +- t * SE (a recall gain's SE floored, see
    classifier.crossed), p-value and what the interval could detect, all from the same SE and
    df. With fewer than 2 test lesions of the class, or no spread at all (SE 0), the interval
    is not estimable: it has no width, and it never declares a gain (it would, at any nonzero
    gain)."""
    iv = crossed_interval(d.per_seed, d.boot, d.n_lesions)
    estimable = iv.se > 0 and d.n_lesions >= 2
    se = iv.se
    if estimable and d.arms is not None:
        n_max = len(d.per_seed) * d.n_images
        pa, pb = (proportion(arm.per_seed, arm.boot, d.n_lesions, n_max) for arm in d.arms)
        se = floored_difference_se(pa, pb, iv.se**2)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, iv.df)) * se
    low, high = max(-1.0, iv.gain - half), min(1.0, iv.gain + half)  # a difference of shares
    if not estimable:
        low = high = iv.gain
    return {
        "gain": iv.gain,
        "ci95": [low, high],
        "excludes_zero": bool(estimable and (low > 0 or high < 0)),
        "estimable": bool(estimable),
        "p_value": p_value({"gain": iv.gain, "se": se, "df": iv.df}) if estimable else float("nan"),
        "se": se,
        "df": iv.df,
        "mdg": minimum_detectable_gain(se, iv.df) if estimable else float("nan"),
        "per_seed": [float(x) for x in d.per_seed],
        "seed_var": iv.seed_var,
        "lesion_var": iv.lesion_var,
        "test_lesions": d.n_lesions,
        "test_images": int(is_class.sum()),
        "n_boot": len(rs.image_weights),
    }


def _class_lesions(is_class: np.ndarray, rs: Resamples) -> int:
    return len(np.unique(rs.image_lesion[is_class]))


def arm_recall(hits: np.ndarray, is_class: np.ndarray, rs: Resamples) -> ArmRecall:
    """hits: S×N booleans (image flagged as the class by the seed-s model); each seed's recall
    is over the class's images, on the full test set and on each lesion resample."""
    h = hits[:, is_class].astype(float)  # S×Nc
    w = rs.image_weights[:, is_class]  # B×Nc
    with np.errstate(invalid="ignore", divide="ignore"):
        return ArmRecall(h.mean(1), (w @ h.T) / w.sum(1, keepdims=True))


def recall_difference(a: ArmRecall, b: ArmRecall, is_class: np.ndarray, rs: Resamples) -> GainDraws:
    """Recall of arm b minus arm a, both measured on the same resamples (paired)."""
    return GainDraws(
        b.per_seed - a.per_seed,
        b.boot - a.boot,
        _class_lesions(is_class, rs),
        arms=(a, b),
        n_images=int(is_class.sum()),
    )


def recall_draws(
    hits_a: np.ndarray, hits_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> GainDraws:
    """Recall of arm b minus arm a from their S×N hits."""
    return recall_difference(
        arm_recall(hits_a, is_class, rs), arm_recall(hits_b, is_class, rs), is_class, rs
    )


def recall_gain(
    hits_a: np.ndarray, hits_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> dict:
    return gain_summary(recall_draws(hits_a, hits_b, is_class, rs), is_class, rs)


def weighted_average_precision(
    scores: np.ndarray, is_class: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """AP of one score vector (N) under each row of image weights (B×N): sum over distinct
    score thresholds, high to low, of (recall gained there) × (precision there). Tied scores
    form one threshold, as in torchmetrics; integer weights give the AP of the data set with
    the images repeated."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    y = is_class[order].astype(float)
    w = weights[:, order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(w * y, axis=1)[:, last_of_tie]
    flagged = np.cumsum(w, axis=1)[:, last_of_tie]
    gained = np.diff(tp, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tp / flagged, 0.0)
        return (gained * precision).sum(1) / tp[:, -1]


def ap_draws(
    scores_a: np.ndarray, scores_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> GainDraws:
    """AP of arm b minus arm a. scores_*: S×N scores for the class."""
    ones = np.ones((1, scores_a.shape[1]))

    def ap(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return weighted_average_precision(scores, is_class, weights)

    per_seed = np.array([ap(b, ones)[0] - ap(a, ones)[0] for a, b in zip(scores_a, scores_b)])
    boot = np.stack(
        [ap(b, rs.image_weights) - ap(a, rs.image_weights) for a, b in zip(scores_a, scores_b)],
        axis=1,
    )  # B×S
    return GainDraws(per_seed, boot, _class_lesions(is_class, rs))


# AP on fewer test lesions than this is biased toward 0 where the arms' score shapes differ
# (a third of a +0.05 gain at 11 lesions; benchmarks/power.py --spread 1.5, and
# benchmarks/interval_coverage.py's score-shape cells): such gains are marked, not corrected.
AP_MIN_LESIONS = 20


def ap_gain(
    scores_a: np.ndarray, scores_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> dict:
    g = gain_summary(ap_draws(scores_a, scores_b, is_class, rs), is_class, rs)
    return g | {"few_lesions": g["test_lesions"] < AP_MIN_LESIONS}


def p_value(gain: dict) -> float:
    """Two-sided p-value of a gain summary's t statistic (gain / SE at its df); NaN where the
    interval has no width (no spread was seen, so no test is possible)."""
    se, df = gain["se"], gain["df"]
    if not se > 0:
        return float("nan")
    return float(2 * stats.t.sf(abs(gain["gain"]) / se, df))


def holm(p_values: list[float], level: float = 1 - LEVEL) -> list[tuple[float, bool]]:
    """Holm's step-down adjustment over one family of tests: (adjusted p, rejected at `level`)
    per test, in the order given. Controls the family-wise error rate under any dependence
    (Holm 1979). A NaN p-value (no test possible) counts as 1 and is never rejected."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [(float(a), bool(a < level)) for a in adjusted]


POWER = 0.80  # the minimum detectable gain is detected this often (two-sided, at 1 - LEVEL)


def minimum_detectable_gain(se: float, df: float, level: float = LEVEL, power: float = POWER):
    """The smallest true gain that an interval of this SE and df excludes 0 for with the
    given power: (t_{1-alpha/2} + t_{power}) * SE at df (the usual two-sided power formula,
    ignoring the far tail). NaN where the interval has no width: nothing was seen to vary,
    so what it could detect is unknown."""
    if not se > 0:
        return float("nan")
    return float((stats.t.ppf(0.5 + level / 2, df) + stats.t.ppf(power, df)) * se)


def verdict(g: dict, margin: float, oracle_gain: float | None = None) -> str:
    """The words a gain deserves: 'not estimable' where its interval has no width (no spread
    was seen: nothing can be said of what it could detect); 'gain' or 'loss' where it
    excludes 0; 'no gain larger than <margin>' where it lies below the margin (an
    equivalence-style bound); 'cannot tell' where even a gain as large as the oracle's (a
    perfect generator's) or the margin would have gone unseen (minimum detectable gain above
    it); else 'n.s.'."""
    mdg = g.get("mdg", float("nan"))
    if mdg != mdg:  # NaN
        return "not estimable"
    if g["excludes_zero"]:
        return "gain" if g["gain"] > 0 else "loss"
    if g["ci95"][1] < margin:
        return f"no gain larger than {margin:g}"
    bar = margin if oracle_gain is None else min(margin, max(oracle_gain, 0.0))
    return "cannot tell" if mdg > bar else "n.s."
