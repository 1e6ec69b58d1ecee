"""The crossed seed x lesion variance of a seed-averaged metric, and the intervals built on it.

A metric measured with S training seeds on one test set has three sources of noise, crossed
rather than nested: the test lesions (shared by every seed and arm), the seeds (each trains
new models), and their interaction (a seed's model does well on some lesions, another seed's
on others). With per-lesion values d[s, l] = m + a_l + b_s + e_sl the seed average has variance

    Var = sigma_a^2 / L + sigma_b^2 / S + sigma_e^2 / (L S).

Resampling seeds and then lesions (a two-level bootstrap) counts sigma_e^2 twice and, with
three seeds, cannot see sigma_b at all in 2 of 9 draws; simulation showed it covering 0.77-0.88
where it claimed 0.95. Crossed designs have no exact bootstrap (McCullagh 2000; Owen 2007,
"The pigeonhole bootstrap"), so the variance is split by moments:

- the per-seed values (each on the full test set) vary by sigma_b^2 + sigma_e^2/L, exactly the
  seed-specific part: their sample variance over S is the second and third terms, with S - 1
  degrees of freedom, as in a one-sample t-test over seeds;
- what the seeds cannot show is what they share, sigma_a^2/L: the covariance between two seeds'
  values over a lesion bootstrap (lesions are the unit: a lesion's images are not
  independent), averaged over seed pairs and scaled by L/(L-1) for the bootstrap's bias. Where
  a metric is fitted on validation lesions that every seed shares (prior matching's
  threshold), the bootstrap redraws those too, and their part joins the shared one;
- the degrees of freedom are Welch-Satterthwaite's from S - 1 and L - 1, with the seed part
  at its 80 % upper confidence bound: with three seeds the plug-in rule let a seed variance
  that came out small by chance raise the df just as the SE shrank (coverage 0.926); the
  bound keeps the df near S - 1 wherever the seed part could be large, at +1-9 % width.

A share (an arm's recall, a share of samples called the class) is a proportion: its crossed
variance becomes an effective number of images n_eff (the binomial variance at the share over
the crossed one). Near the bound (recall 0.96-0.99) the plug-in variance shrinks with the
misses it happens to see, and the gain's t interval missed on one side (0.90 at 11 lesions).
A recall gain's SE is therefore floored at the one of Agresti and Caffo's (2000) adjusted Wald
interval, taken at each arm's n_eff: one hit and one miss added to each arm, the variance at
the adjusted shares, the arms' correlation recovered from the difference's crossed variance.
The interval stays centred on the gain (Agresti-Caffo's shifted centre covered no better in
simulation and cost power at 11 lesions: the demo's oracle gain of +0.27 lost its
significance). Wilson's score interval, used for single shares (with the Poisson end for 1-3
effective hits or misses, Brown, Cai & DasGupta 2001), was tried for gains combined by MOVER
(Zou & Donner 2008) and rejected: at mid-range recall with a t of 4 df it is 7 % narrower than
the t interval and covered 0.91. benchmarks/interval_coverage.py and share_coverage.py measure the
coverage with known answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

N_BOOT = 2000
LEVEL = 0.95
SEED_DF_BOUND = 0.80  # the seed variance enters the df at this upper confidence bound


@dataclass(frozen=True)
class Resamples:
    """One lesion bootstrap, shared by every arm and metric of a comparison (paired)."""

    image_weights: np.ndarray  # B×N: how often each image's lesion is drawn
    image_lesion: np.ndarray  # N: the lesion index of each image


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
    lesion_var: float  # sigma_a^2 / L: the lesions' part, shared by every seed
    seed_var: float  # (sigma_b^2 + sigma_e^2 / L) / S (0 when S = 1: unknown, not absent)


def crossed_interval(
    per_seed: np.ndarray, boot: np.ndarray, n_lesions: int, level: float = LEVEL
) -> GainInterval:
    """Interval for the mean of per_seed (S values on the full test set), given boot (B×S: the
    same values on B paired lesion resamples). See the module docstring for the estimator."""
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
    df = crossed_df(lesion_var, seed_var, L, S)
    se = float(np.sqrt(var))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return GainInterval(gain, gain - half, gain + half, se, df, lesion_var, seed_var)


def crossed_df(lesion_var: float, seed_var: float, n_lesions: int, n_seeds: int) -> float:
    """Welch-Satterthwaite df of lesion_var (L - 1 df) + seed_var (S - 1 df), the seed part
    taken at its SEED_DF_BOUND upper confidence bound (see the module docstring)."""
    parts = [(lesion_var, n_lesions - 1)]
    if n_seeds > 1 and seed_var > 0:
        k = n_seeds - 1
        parts.append((seed_var * k / stats.chi2.ppf(1 - SEED_DF_BOUND, k), k))
    total = sum(v for v, _ in parts)
    return float(total**2 / sum(v**2 / d for v, d in parts if v > 0))


@dataclass(frozen=True)
class Proportion:
    """A seed-averaged share with its crossed variance, as an effective number of images."""

    p: float
    var: float  # crossed variance of p (0: nothing varied)
    n_eff: float  # binomial variance at p over var; the number of units where nothing varied
    df: float


def proportion(per_seed: np.ndarray, boot: np.ndarray, units: int, n_max: int) -> Proportion:
    """per_seed: S shares; boot: B×S the same on paired unit resamples; units: the lesions (or
    samples) resampled; n_max: seeds × images, the most information the data can hold."""
    iv = crossed_interval(per_seed, boot, units)
    p = iv.gain
    if iv.se > 0 and 0 < p < 1:
        return Proportion(p, iv.se**2, min(p * (1 - p) / iv.se**2, n_max), iv.df)
    return Proportion(p, iv.se**2, float(units), float(max(units - 1, 1)))


def proportion_bounds(pr: Proportion, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval at the effective n and the crossed df, with the Poisson end
    where 0 < effective hits (or misses) <= 3."""
    p, n = pr.p, pr.n_eff
    t2 = float(stats.t.ppf(0.5 + level / 2, pr.df)) ** 2
    centre = (p + t2 / (2 * n)) / (1 + t2 / n)
    half = np.sqrt(t2) / (1 + t2 / n) * np.sqrt(p * (1 - p) / n + t2 / (4 * n**2))
    low, high = float(centre - half), float(centre + half)
    for x, side in ((p * n, 0), ((1 - p) * n, 1)):
        if 0 < x <= 3:
            bound = stats.chi2.ppf(1 - level, 2 * x) / 2 / n
            low, high = (min(low, bound), high) if side == 0 else (low, max(high, 1 - bound))
    return min(max(0.0, low), p), max(min(1.0, high), p)  # Wilson holds p: undo rounding


def floored_difference_se(a: Proportion, b: Proportion, diff_var: float) -> float:
    """The SE of b.p - a.p, never below the one at Agresti and Caffo's adjusted shares (one hit
    and one miss added to each arm at its effective n, the arms' correlation from the crossed
    variances): the plug-in variance of a share near 0 or 1 shrinks with the few misses (or
    hits) a run happens to see."""
    va, vb = _adjusted(a)[1], _adjusted(b)[1]
    r = 0.0
    if a.var > 0 and b.var > 0:
        r = float(np.clip((a.var + b.var - diff_var) / (2 * np.sqrt(a.var * b.var)), -1, 1))
    return float(np.sqrt(max(va + vb - 2 * r * np.sqrt(va * vb), diff_var)))


def _adjusted(pr: Proportion) -> tuple[float, float]:
    """The share with one hit and one miss added at its effective n, and its variance."""
    n = pr.n_eff + 2
    share = (pr.p * pr.n_eff + 1) / n
    return share, share * (1 - share) / n
