"""Does detectability's 95 % interval cover the detector's true balanced accuracy?

    python benchmarks/detectability_coverage.py [--reps 2000]

Simulated test sets with known answers, scored by classifier.two_sample's interval: the
detector is held fixed, and what varies is which held-out lesions and fresh samples it is
tested on (the interval's claim). A held-out lesion l has 1 + Poisson(rate) photos, and the
detector is right about each of them with the lesion's own probability p_l ~ Beta with mean
p_real and concentration kappa (small kappa: a lesion's photos are all right or all wrong;
inf: no lesion effect); each of 256 fresh samples is caught with probability p_gen. The truth
is (p_real + p_gen) / 2. Cells span the validation sizes raregan meets (HAM10000 df ~17, mel
~120 lesions; the demo's 8-10), detectors from chance (0.5) to perfect (1.0), and lesions of
1-5 photos. Prints coverage (its standard error at 2000 reps is ~0.005), how often the truth
lies above / below, and the mean width.
"""

from __future__ import annotations

import itertools
import time

import click
import numpy as np

from classifier.two_sample import balanced_accuracy_interval
from pipelines.store.records import cpu_name

N_GEN = 256


def _experiment(rng, lesions, rate, kappa, p_real, p_gen):
    sizes = 1 + rng.poisson(rate, lesions)
    if np.isinf(kappa) or p_real in (0.0, 1.0):
        p_lesion = np.full(lesions, p_real)
    else:
        p_lesion = rng.beta(p_real * kappa, (1 - p_real) * kappa, lesions)
    lesion = np.repeat(np.arange(lesions), sizes)
    real = rng.random(len(lesion)) < p_lesion[lesion]
    gen = rng.random(N_GEN) < p_gen
    return balanced_accuracy_interval(real, lesion, gen)


@click.command()
@click.option("--reps", default=2000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(reps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    print(f"CPU: {cpu_name()}; {reps} experiments per cell; 256 fresh samples")
    print(
        "| lesions | photos/lesion | kappa | p_real | p_gen | truth | coverage | above | "
        "below | mean width |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    low, total, n_cells = [], [], 0
    grid = itertools.product(
        (8, 17, 40, 120), (0.4, 2.0), (1.0, 5.0, np.inf),
        ((0.5, 0.5), (0.75, 0.8), (0.9, 0.97), (0.97, 1.0), (1.0, 1.0), (0.6, 1.0)),
    )  # fmt: skip
    for lesions, rate, kappa, (p_real, p_gen) in grid:
        truth = (p_real + p_gen) / 2
        ivs = [_experiment(rng, lesions, rate, kappa, p_real, p_gen)["ci95"] for _ in range(reps)]
        lo, hi = np.array(ivs).T
        above, below = float((truth > hi).mean()), float((truth < lo).mean())
        cover = 1 - above - below
        total.append(cover)
        n_cells += 1
        if cover < 0.93:
            low.append((lesions, rate, kappa, p_real, p_gen, cover))
        print(
            f"| {lesions} | {1 + rate:g} | {kappa:g} | {p_real:g} | {p_gen:g} | {truth:.3f} | "
            f"{cover:.3f} | {above:.3f} | {below:.3f} | {float((hi - lo).mean()):.3f} |"
        )
    print(
        f"\n{n_cells} cells: coverage min {min(total):.3f}, median {np.median(total):.3f}, "
        f"mean {np.mean(total):.3f}; {len(low)} below 0.93; {time.perf_counter() - t0:.0f} s"
    )
    for cell in low:
        print("  below 0.93:", cell)


if __name__ == "__main__":
    main()
