"""Does a share's 95 % interval (classifier.shares) cover the true share, up to 0.999?

    python benchmarks/share_coverage.py [--reps 1000] [--boot 200]

Simulated comparisons with known answers: S seeds' models call each of N images the class
with probability expit(mu + a_unit + b_seed + e_seed,unit + noise_image), where a_unit is the
image unit's difficulty (a fresh sample, or a lesion of 1-3 photos), b_seed the seed's
leaning (a seed that calls everything the class), e the seed's own view of the unit, and the
image noise separates a lesion's photos (sd 0.5). The truth is the share over new seeds and
new images, E[expit(...)] on 400k draws, with mu solved for the target share. Cells: the
signature's case (256 fresh samples, each its own unit) and real recall (11 and 92 test
lesions, HAM10000's df and mel), 3 and 5 seeds, shares from 0.5 to 0.999, and four variance
mixes (sd of a, b, e): alike images (0.5, 0, 0), images differ (2, 0, 0.5), seeds differ
(1, 1, 0.5), both (2, 1, 1). Prints coverage (its standard error at 1000 reps is ~0.007), how
often the truth lies above / below, and the mean width.
"""

from __future__ import annotations

import itertools
import time

import click
import numpy as np
from scipy import optimize, special

from classifier.gains import resamples
from classifier.shares import share_interval
from pipelines.store.records import cpu_name

PHOTOS = (0.72, 0.21, 0.07)  # HAM10000's lesions: P(1, 2, 3 photos)
SD_IMAGE = 0.5
MIXES = {"alike": (0.5, 0.0, 0.0), "images differ": (2.0, 0.0, 0.5),
         "seeds differ": (1.0, 1.0, 0.5), "both": (2.0, 1.0, 1.0)}  # fmt: skip
DESIGNS = {"256 samples": 256, "11 lesions": 11, "92 lesions": 92}
SHARES = (0.5, 0.9, 0.97, 0.99, 0.995, 0.999)


def centre_for(share: float, sds: tuple[float, float, float], noise: float, rng) -> float:
    """mu whose population share E[expit(mu + a + b + e + noise)] is `share`."""
    sd = float(np.sqrt(sum(s**2 for s in sds) + noise**2))
    z = rng.normal(0, sd, 400_000)
    return optimize.brentq(lambda mu: special.expit(z + mu).mean() - share, -30, 30)


def experiment(units: int, lesions: bool, seeds: int, mu: float, sds, rng, boot: int) -> list:
    sd_a, sd_b, sd_e = sds
    sizes = rng.choice([1, 2, 3], size=units, p=PHOTOS) if lesions else np.ones(units, int)
    unit = np.repeat(np.arange(units), sizes)
    noise = SD_IMAGE if lesions else 0.0
    logit = (
        mu
        + rng.normal(0, sd_a, units)[unit]
        + rng.normal(0, sd_b, (seeds, 1))
        + rng.normal(0, sd_e, (seeds, units))[:, unit]
        + rng.normal(0, noise, (seeds, len(unit)))
    )
    hits = rng.random(logit.shape) < special.expit(logit)
    rs = resamples([str(u) for u in unit], boot, seed=int(rng.integers(1 << 31)))
    return share_interval(hits, rs)["ci95"]


@click.command()
@click.option("--reps", default=1000, show_default=True)
@click.option("--boot", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(reps: int, boot: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    print(f"CPU: {cpu_name()}; {reps} experiments per cell, {boot} unit draws each")
    print("| images | seeds | sd (unit, seed, seed x unit) | truth | coverage | above | below "
          "| mean width |")  # fmt: skip
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    covers, low = [], []
    for (design, units), seeds, (mix, sds), share in itertools.product(
        DESIGNS.items(), (3, 5), MIXES.items(), SHARES
    ):
        lesions = design.endswith("lesions")
        mu = centre_for(share, sds, SD_IMAGE if lesions else 0.0, rng)
        lo, hi = np.array(
            [experiment(units, lesions, seeds, mu, sds, rng, boot) for _ in range(reps)]
        ).T
        above, below = float((share > hi).mean()), float((share < lo).mean())
        covers.append(1 - above - below)
        if covers[-1] < 0.93:
            low.append((design, seeds, mix, share, covers[-1]))
        width = float((hi - lo).mean())
        print(f"| {design} | {seeds} | {mix} {sds} | {share:g} | {covers[-1]:.3f} | "
              f"{above:.3f} | {below:.3f} | {width:.3f} |", flush=True)  # fmt: skip
    print(f"\n{len(covers)} cells: coverage min {min(covers):.3f}, median "
          f"{np.median(covers):.3f}, mean {np.mean(covers):.3f}; {len(low)} below 0.93; "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    for cell in low:
        print("  below 0.93:", cell)


if __name__ == "__main__":
    main()
