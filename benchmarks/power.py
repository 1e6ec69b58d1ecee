"""Does the minimum detectable gain mean what it says? Simulated comparisons with known gains.

    python benchmarks/power.py [--reps 400] [--boot 500]

For each design (test lesions of the rare class: 11 and 92 as on HAM10000's single split, 73
with every df lesion tested once by K-fold; 3 and 5 seeds) and each true recall gain (0,
0.05, 0.10, 0.20, and the design's own predicted minimum detectable gain), it simulates
`reps` comparisons through the project's own estimator (classifier.gains.recall_gain: the
crossed seed x lesion interval), and prints how often the 95 % interval excluded 0 on the
right side (the detection rate) next to the mean minimum detectable gain the formula
predicts. Where the true gain equals the predicted MDG, the detection rate must be ~0.80.

The data-generating process: lesions of 1-3 photos (HAM10000's mix); a lesion's difficulty is
logistic-normal (sd 1.5 on the logit scale, so some lesions are found by every model and some
by none); each seed's model shifts every lesion by a seed effect (sd 0.4) and each image by
noise (sd 0.5); the better arm's logits are raised so that its expected recall is exactly
`gain` above the reference's (solved numerically on a large reference sample). Baseline
recall ~0.5, as for mel and df on HAM10000's quick profile.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import optimize, special

from classifier.gains import recall_gain, resamples
from pipelines.store.records import cpu_name

PHOTOS = (0.72, 0.21, 0.07)  # P(1, 2, 3 photos of a lesion)
SD_LESION, SD_SEED, SD_IMAGE = 1.5, 0.4, 0.5


def _lift_for(gain: float, rng: np.random.Generator) -> float:
    """The logit shift that raises the expected recall by `gain` (on 200k draws)."""
    z = rng.normal(0, SD_LESION, 200_000) + rng.normal(0, SD_SEED, 200_000)
    z += rng.normal(0, SD_IMAGE, 200_000)
    base = special.expit(z).mean()
    if gain == 0:
        return 0.0
    return optimize.brentq(lambda d: special.expit(z + d).mean() - base - gain, -10, 10)


def simulate(n_lesions: int, seeds: int, lift: float, rng, n_boot: int) -> dict:
    photos = rng.choice([1, 2, 3], size=n_lesions, p=PHOTOS)
    lesion_of = np.repeat(np.arange(n_lesions), photos)
    difficulty = rng.normal(0, SD_LESION, n_lesions)[lesion_of]
    n = len(lesion_of)

    def hits(shift: float) -> np.ndarray:
        seed_fx = rng.normal(0, SD_SEED, (seeds, n_lesions))[:, lesion_of]
        logit = difficulty + seed_fx + rng.normal(0, SD_IMAGE, (seeds, n)) + shift
        return rng.random((seeds, n)) < special.expit(logit)

    is_class = np.ones(n, bool)
    rs = resamples([f"L{i}" for i in lesion_of], n_boot, seed=int(rng.integers(1 << 31)))
    return recall_gain(hits(0.0), hits(lift), is_class, rs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--boot", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    print(f"CPU: {cpu_name()}; {args.reps} comparisons per cell, {args.boot} lesion draws each")
    print("| test lesions | seeds | true gain | detected (95 % CI excludes 0, right sign) "
          "| predicted MDG (mean) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n_lesions in (11, 73, 92):
        for seeds in (3, 5):
            null = [simulate(n_lesions, seeds, 0.0, rng, args.boot) for _ in range(args.reps)]
            mdg = float(np.nanmean([g["mdg"] for g in null]))
            for gain in (0.0, 0.05, 0.10, 0.20, mdg):
                lift = _lift_for(gain, rng)
                runs = null if gain == 0 else [
                    simulate(n_lesions, seeds, lift, rng, args.boot) for _ in range(args.reps)
                ]  # fmt: skip
                hit = np.mean([g["ci95"][0] > 0 for g in runs])
                se = np.sqrt(hit * (1 - hit) / args.reps)
                mark = " (= MDG)" if gain == mdg else ""
                print(f"| {n_lesions} | {seeds} | {gain:.3f}{mark} | {hit:.3f} ± {se:.3f} "
                      f"| {mdg:.3f} |")  # fmt: skip
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
