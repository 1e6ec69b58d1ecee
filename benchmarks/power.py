"""Does the minimum detectable gain mean what it says? Simulated comparisons with known gains.

    python benchmarks/power.py [--reps 400] [--boot 500] [--metric recall|ap|both]
                               [--lesions 11,73,92] [--spread 1.0]

For each design (a rare class's test lesions and the other test images: df with 11 lesions
and mel with 92 on HAM10000's single split, df with 73 when K-fold tests every lesion once;
3 and 5 seeds) and each true gain (0, 0.05, 0.10, 0.20, and the design's own predicted
minimum detectable gain), it simulates `reps` comparisons through the project's own
estimator (classifier.gains.recall_gain / ap_gain: the crossed seed x lesion interval) and
prints how often the 95 % interval excluded 0 on the right side (the detection rate) next to
the mean minimum detectable gain the formula predicts. Where the true gain equals the
predicted MDG, the detection rate must be ~0.80.

The data-generating process: lesions of 1-3 photos (HAM10000's mix); a lesion's score is
normal on the logit scale (sd 1.5, so some lesions are found by every model and some by
none); each seed's model shifts every lesion by a seed effect (sd 0.4) and each image by noise
(sd 0.5). Recall: the class's images only, the better arm's logits raised so that its
expected recall is exactly `gain` above the reference's (solved on a large sample); baseline
recall ~0.5, as for mel and df on HAM10000's quick profile. AP: the class's images against
every other test image (lesions built the same way, scores centred 0), the class's scores
centred so that the reference arm's population AP is 0.5 (HAM10000's quick-profile df and mel
baselines), the better arm's raised until its population AP (an infinite test set at the
design's prevalence, by quadrature) is `gain` higher; with --spread R its class scores also
spread R times as wide (score shapes that differ between the arms). The truth is the
population gain, so a small test set's bias shows as "estimate − truth".
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from classifier.gains import ap_gain, recall_gain, resamples
from pipelines.store.records import cpu_name

PHOTOS = (0.72, 0.21, 0.07)  # P(1, 2, 3 photos of a lesion)
SD_LESION, SD_SEED, SD_IMAGE = 1.5, 0.4, 0.5
PHOTOS_MEAN = float(np.dot(PHOTOS, (1, 2, 3)))  # photos per lesion, ~1.35
SD_SCORE = float(np.sqrt(SD_LESION**2 + SD_SEED**2 + SD_IMAGE**2))
BASE_AP = 0.5
GAINS = (0.0, 0.05, 0.10, 0.20)


@dataclass(frozen=True)
class Design:
    label: str
    lesions: int  # the class's test lesions
    other_images: int  # every other class's test images (AP's negatives)

    def prevalence(self) -> float:
        """The class's expected share of the test images."""
        n_class = self.lesions * PHOTOS_MEAN
        return n_class / (n_class + self.other_images)


# HAM10000 (10,015 images, 7,470 lesions): the single split tests 15 % of each class's lesions
DESIGNS = (
    Design("df, one split", 11, 1_490),
    Design("df, K-fold", 73, 9_900),
    Design("mel, one split", 92, 1_340),
)


def _lift_for(gain: float, rng: np.random.Generator) -> float:
    """The logit shift that raises the expected recall by `gain` (on 200k draws)."""
    z = rng.normal(0, SD_SCORE, 200_000)
    base = special.expit(z).mean()
    if gain == 0:
        return 0.0
    return optimize.brentq(lambda d: special.expit(z + d).mean() - base - gain, -10, 10)


def population_ap(centre: float, prevalence: float, spread: float = 1.0) -> float:
    """AP on an infinite test set: the class's scores N(centre, spread * SD_SCORE), the
    others' N(0, SD_SCORE); the mean over the class's scores of the precision there."""
    sd = spread * SD_SCORE
    s = np.linspace(centre - 8 * sd, centre + 8 * sd, 20_001)
    tp = prevalence * stats.norm.sf(s, centre, sd)
    fp = (1 - prevalence) * stats.norm.sf(s, 0, SD_SCORE)
    density = stats.norm.pdf(s, centre, sd)
    return float(np.trapezoid(density * tp / (tp + fp), s))


def ap_centres(d: Design, gain: float, spread: float = 1.0) -> tuple[float, float]:
    """The class's score centre for the reference arm (population AP 0.5) and the better arm,
    whose class scores spread `spread` times as wide."""
    prevalence = d.prevalence()
    base = optimize.brentq(lambda c: population_ap(c, prevalence) - BASE_AP, 0, 15)
    if gain == 0 and spread == 1:
        return base, base
    better = optimize.brentq(
        lambda c: population_ap(c, prevalence, spread) - BASE_AP - gain, -20, 20
    )
    return base, better


def _lesions(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.repeat(np.arange(n), rng.choice([1, 2, 3], size=n, p=PHOTOS))


def simulate_recall(d: Design, seeds: int, lift: float, rng, n_boot: int) -> dict:
    lesion_of = _lesions(d.lesions, rng)
    z = rng.normal(0, SD_LESION, d.lesions)[lesion_of]
    n = len(lesion_of)

    def hits(shift: float) -> np.ndarray:
        seed_fx = rng.normal(0, SD_SEED, (seeds, d.lesions))[:, lesion_of]
        logit = z + seed_fx + rng.normal(0, SD_IMAGE, (seeds, n)) + shift
        return rng.random((seeds, n)) < special.expit(logit)

    rs = resamples([f"L{i}" for i in lesion_of], n_boot, seed=int(rng.integers(1 << 31)))
    return recall_gain(hits(0.0), hits(lift), np.ones(n, bool), rs)


def simulate_ap(
    d: Design, seeds: int, centres: tuple[float, float], rng, n_boot: int, spread: float = 1.0
) -> dict:
    """One comparison: the class's lesions and every other test lesion, each arm's seeds
    scoring all of them (the lesion effects shared by both arms, as one test set is); the
    better arm's class scores spread `spread` times as wide."""
    cls = _lesions(d.lesions, rng)
    other = _lesions(int(round(d.other_images / PHOTOS_MEAN)), rng) + d.lesions
    lesion_of = np.r_[cls, other]
    is_class = np.r_[np.ones(len(cls), bool), np.zeros(len(other), bool)]
    z = rng.normal(0, SD_LESION, lesion_of.max() + 1)[lesion_of]

    def scores(centre: float, k: float) -> np.ndarray:
        n_lesions, n = lesion_of.max() + 1, len(lesion_of)
        seed_fx = rng.normal(0, SD_SEED, (seeds, n_lesions))[:, lesion_of]
        noise = z + seed_fx + rng.normal(0, SD_IMAGE, (seeds, n))
        return np.where(is_class, centre + k * noise, noise)

    rs = resamples([f"L{i}" for i in lesion_of], n_boot, seed=int(rng.integers(1 << 31)))
    return ap_gain(scores(centres[0], 1.0), scores(centres[1], spread), is_class, rs)


def _row(d: Design, seeds: int, gain: float, runs: list[dict], mdg: float, mark: str) -> str:
    hit = np.mean([g["ci95"][0] > 0 for g in runs])
    se = np.sqrt(hit * (1 - hit) / len(runs))
    bias = np.mean([g["gain"] for g in runs]) - gain
    return (f"| {d.label} ({d.lesions}) | {seeds} | {gain:.3f}{mark} | {hit:.3f} ± {se:.3f} "
            f"| {mdg:.3f} | {bias:+.3f} |")  # fmt: skip


@dataclass(frozen=True)
class Budget:
    reps: int  # comparisons per cell
    n_boot: int  # lesion draws per comparison
    spread: float = 1.0  # AP: the better arm's class scores spread this many times as wide


def run_metric(metric: str, designs: list[Design], budget: Budget, rng) -> None:
    print(f"\n{metric}:\n")
    print("| test lesions | seeds | true gain | detected (95 % CI excludes 0, right sign) "
          "| predicted MDG (mean) | estimate − truth |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for d in designs:
        for seeds in (3, 5):
            null = comparisons(metric, d, seeds, 0.0, budget, rng)
            mdg = float(np.nanmean([g["mdg"] for g in null]))
            for gain in (*GAINS, mdg):
                runs = null if gain == 0 else comparisons(metric, d, seeds, gain, budget, rng)
                print(_row(d, seeds, gain, runs, mdg, " (= MDG)" if gain == mdg else ""),
                      flush=True)  # fmt: skip


def comparisons(metric: str, d: Design, seeds: int, gain: float, budget: Budget, rng):
    """`reps` simulated comparisons of one cell: each a gain summary (classifier.gains)."""
    if metric == "recall":
        lift = _lift_for(gain, rng)
        return [simulate_recall(d, seeds, lift, rng, budget.n_boot) for _ in range(budget.reps)]
    centres = ap_centres(d, gain, budget.spread)
    return [
        simulate_ap(d, seeds, centres, rng, budget.n_boot, budget.spread)
        for _ in range(budget.reps)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--boot", type=int, default=500)
    parser.add_argument("--metric", choices=("recall", "ap", "both"), default="both")
    parser.add_argument("--lesions", default="11,73,92", help="the designs, by test lesions")
    parser.add_argument(
        "--spread", type=float, default=1.0,
        help="AP: the better arm's class scores spread this many times as wide (score "
        "shapes that differ between the arms; 1: a pure shift)",
    )  # fmt: skip
    args = parser.parse_args()
    designs = [d for d in DESIGNS if str(d.lesions) in args.lesions.split(",")]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    print(f"CPU: {cpu_name()}; {args.reps} comparisons per cell, {args.boot} lesion draws each; "
          f"AP spread {args.spread:g}")  # fmt: skip
    budget = Budget(args.reps, args.boot, args.spread)
    for metric in ("recall", "ap") if args.metric == "both" else (args.metric,):
        run_metric(metric, designs, budget, rng)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
