"""Paired gains of one arm over another, with an interval whose coverage was measured.

A gain measured with S training seeds on one test set has three sources of noise, crossed
rather than nested: the test lesions (shared by every seed and arm), the seeds (each trains
new models), and their interaction (a seed's model does well on some lesions, another seed's
on others). With per-lesion differences d[s, l] = gain + a_l + b_s + e_sl the seed-averaged
gain has variance

    Var = sigma_a^2 / L + sigma_b^2 / S + sigma_e^2 / (L S).

Resampling seeds and then lesions (a two-level bootstrap) counts sigma_e^2 twice and, with
three seeds, cannot see sigma_b at all in 2 of 9 draws; simulation showed it covering 0.77-0.88
where it claimed 0.95. Crossed designs have no exact bootstrap (McCullagh 2000; Owen 2007,
"The pigeonhole bootstrap"), so the interval here splits the variance by moments:

- the per-seed gains g_s (each on the full test set) vary by sigma_b^2 + sigma_e^2/L, which is
  exactly the seed-specific part: their sample variance over S is the second and third terms,
  with S - 1 degrees of freedom, as in a one-sample t-test over seeds;
- what the seeds cannot show is the lesions they share, sigma_a^2/L: the covariance between two
  seeds' gains over a lesion bootstrap (lesions are the unit: a lesion's images are not
  independent), averaged over seed pairs and scaled by L/(L-1) for the bootstrap's bias. The
  same lesion draw serves both arms (paired) and every metric;
- the interval is gain +- t(df) * sqrt(sum), df by Welch-Satterthwaite from S - 1 and L - 1.
  Three seeds with a real seed spread get a t with ~2 df: wide, because three values are all
  there is to know the seed spread from.

benchmarks/interval_coverage.py measures its coverage with known answers (the README quotes
the table). With one seed the seed part is unknown and the interval covers test noise only.

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

N_BOOT = 2000
LEVEL = 0.95
METHOD = (
    "gain ± t·SE; SE² = per-seed gains' variance / S (S − 1 df) + the lesion part the seeds "
    "share (seed-pair covariance over a paired lesion bootstrap); Welch-Satterthwaite df"
)


@dataclass(frozen=True)
class Resamples:
    """One lesion bootstrap, shared by every arm and metric of a comparison (paired)."""

    image_weights: np.ndarray  # B×N: how often each test image's lesion is drawn
    image_lesion: np.ndarray  # N: the lesion index of each test image


def resamples(lesion_ids: list[str], n_boot: int = N_BOOT, seed: int = 0) -> Resamples:
    rng = np.random.default_rng(seed)
    lesions, image_lesion = np.unique(np.asarray(lesion_ids), return_inverse=True)
    L = len(lesions)
    lesion_counts = rng.multinomial(L, np.full(L, 1.0 / L), size=n_boot)
    return Resamples(lesion_counts[:, image_lesion].astype(float), image_lesion)


@dataclass(frozen=True)
class GainInterval:
    """The components behind one interval, kept so a reader can see what drives its width."""

    gain: float
    low: float
    high: float
    se: float
    df: float
    lesion_var: float  # sigma_a^2 / L: the test lesions' part, shared by every seed
    seed_var: float  # (sigma_b^2 + sigma_e^2 / L) / S (0 when S = 1: unknown, not absent)


def crossed_interval(
    per_seed: np.ndarray, boot: np.ndarray, n_lesions: int, level: float = LEVEL
) -> GainInterval:
    """Interval for the mean of per_seed (S gains on the full test set), given boot (B×S: the
    same gains on B paired lesion resamples). See the module docstring for the estimator."""
    per_seed = np.asarray(per_seed, dtype=float)
    boot = boot[np.isfinite(boot).all(1)]  # a replicate without the class has no value
    S, L = len(per_seed), max(n_lesions, 2)
    gain = float(per_seed.mean())
    if len(boot) < 2:
        return GainInterval(gain, gain, gain, 0.0, float("inf"), 0.0, 0.0)
    cov = np.atleast_2d(np.cov(boot, rowvar=False)) * L / (L - 1)  # bootstrap's (L-1)/L bias
    if S == 1:  # seed spread unknown: test-set noise only
        lesion_var, seed_var = float(cov[0, 0]), 0.0
    else:
        shared = (cov.sum() - np.trace(cov)) / (S * (S - 1))  # sigma_a^2 / L
        lesion_var = max(0.0, float(shared))
        seed_var = float(per_seed.var(ddof=1)) / S  # (sigma_b^2 + sigma_e^2 / L) / S
    var = lesion_var + seed_var
    if var <= 0:
        return GainInterval(gain, gain, gain, 0.0, float("inf"), 0.0, 0.0)
    parts = [(lesion_var, L - 1)] + ([(seed_var, S - 1)] if S > 1 else [])
    df = var**2 / sum(v**2 / d for v, d in parts if v > 0)
    se = float(np.sqrt(var))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return GainInterval(gain, gain - half, gain + half, se, float(df), lesion_var, seed_var)


@dataclass(frozen=True)
class GainDraws:
    """A gain per seed on the full test set and on each paired lesion resample."""

    per_seed: np.ndarray  # S
    boot: np.ndarray  # B×S
    n_lesions: int  # the class's test lesions


def gain_summary(d: GainDraws, is_class: np.ndarray, rs: Resamples) -> dict:
    """The gain, its interval and what the interval could detect. With fewer than 2 test
    lesions of the class, or no spread at all (SE 0), the interval is not estimable: it has
    no width, and it never declares a gain (it would, at any nonzero gain)."""
    iv = crossed_interval(d.per_seed, d.boot, d.n_lesions)
    estimable = iv.se > 0 and d.n_lesions >= 2
    return {
        "gain": iv.gain,
        "ci95": [iv.low, iv.high],
        "excludes_zero": bool(estimable and (iv.low > 0 or iv.high < 0)),
        "estimable": bool(estimable),
        "se": iv.se,
        "df": iv.df,
        "mdg": minimum_detectable_gain(iv.se, iv.df) if estimable else float("nan"),
        "per_seed": [float(x) for x in d.per_seed],
        "seed_var": iv.seed_var,
        "lesion_var": iv.lesion_var,
        "test_lesions": d.n_lesions,
        "test_images": int(is_class.sum()),
        "n_boot": len(rs.image_weights),
    }


def _class_lesions(is_class: np.ndarray, rs: Resamples) -> int:
    return len(np.unique(rs.image_lesion[is_class]))


def recall_draws(
    hits_a: np.ndarray, hits_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> GainDraws:
    """Recall of arm b minus arm a. hits_*: S×N booleans (image flagged as the class by the
    seed-s model); each seed's recall is over the class's images."""
    diff = hits_b[:, is_class].astype(float) - hits_a[:, is_class]  # S×Nc
    w = rs.image_weights[:, is_class]  # B×Nc
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (w @ diff.T) / w.sum(1, keepdims=True)  # B×S
    return GainDraws(diff.mean(1), boot, _class_lesions(is_class, rs))


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


def ap_gain(
    scores_a: np.ndarray, scores_b: np.ndarray, is_class: np.ndarray, rs: Resamples
) -> dict:
    return gain_summary(ap_draws(scores_a, scores_b, is_class, rs), is_class, rs)


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
