"""Do the gains' 95 % intervals cover the true gain 95 % of the time?

    python benchmarks/interval_coverage.py [--reps 500] [--lesions 11|90]

Simulated experiments with known answers, scored by the project's own interval
(classifier.gains) and prior matching's rule (the k-th largest validation score): two arms whose
models differ by seed only (true gain 0; for recall also two cells with a known gain > 0), test
sets of df's size (11 lesions) and mel's (90 lesions), 3, 5 and 10 seeds, with and without
seed spread.

One model (arm, seed) scores a positive image of lesion l as  mu + u_l + c + eps  and a
negative as  -2.5 + v + eps'  (u, v, eps ~ N(0, 1); u is the lesion's difficulty, shared by
every model; c ~ N(0, spread^2) is the seed's offset: sd 0.5, the audit's choice, moves a
seed's recall by ~0.14, more than HAM10000's runs show).
Recall flags score > 0, so its true value is Phi(mu / sqrt(2 + spread^2)). Prior-matched recall
thresholds at the k-th largest score of a validation set of the same make (k = its positives).
A lesion has 1 + Poisson(0.3) images (HAM10000's test ratio); 300 negatives.

Prints coverage (share of intervals containing the truth; its standard error at 500 reps is
~0.01) and mean width, for the interval the comparison uses ("crossed") and the two-level
percentile bootstrap it replaced ("two-level").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import click
import numpy as np
from scipy import stats

from classifier.gains import GainDraws, ap_draws, crossed_interval, recall_draws, resamples
from pipelines.store.records import cpu_name

N_NEG = 300
MU_NEG = -2.5


@dataclass(frozen=True)
class Cell:
    lesions: int
    seeds: int
    spread: float
    shift: float = 0.0  # arm b's mu minus arm a's: a true gain in recall


def _lesion_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    return 1 + rng.poisson(0.3, n)


def _experiment(cell: Cell, rng: np.random.Generator, n_boot: int) -> dict:
    """One simulated comparison: both intervals for the three metrics."""
    sizes = _lesion_sizes(rng, cell.lesions)
    lesion = np.repeat(np.arange(cell.lesions), sizes)
    n_pos = len(lesion)
    u = rng.normal(size=cell.lesions)[lesion]  # test lesions' difficulty
    v = rng.normal(size=N_NEG)
    val_sizes = _lesion_sizes(rng, cell.lesions)
    val_u = rng.normal(size=cell.lesions)[np.repeat(np.arange(cell.lesions), val_sizes)]
    val_v = rng.normal(size=N_NEG)
    is_class = np.r_[np.ones(n_pos, bool), np.zeros(N_NEG, bool)]
    ids = [f"L{i}" for i in lesion] + [f"N{i}" for i in range(N_NEG)]

    def arm(mu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores, hits, matched = [], [], []
        for _ in range(cell.seeds):
            c = rng.normal(scale=cell.spread)
            pos = mu + c + u + rng.normal(size=n_pos)
            neg = MU_NEG + v + rng.normal(size=N_NEG)
            val = np.r_[
                mu + c + val_u + rng.normal(size=len(val_u)),
                MU_NEG + val_v + rng.normal(size=N_NEG),
            ]
            s = np.r_[pos, neg]
            threshold = np.sort(val)[-len(val_u)]
            scores.append(s)
            hits.append(s > 0)
            matched.append(s >= threshold)
        return np.stack(scores), np.stack(hits), np.stack(matched)

    sa, ha, ma = arm(0.0)
    sb, hb, mb = arm(cell.shift)
    rs = resamples(ids, n_boot, seed=int(rng.integers(2**31)))
    draws = {
        "recall": recall_draws(ha, hb, is_class, rs),
        "prior_matched_recall": recall_draws(ma, mb, is_class, rs),
        "average_precision": ap_draws(sa, sb, is_class, rs),
    }
    out = {}
    for metric, d in draws.items():
        iv = crossed_interval(d.per_seed, d.boot, d.n_lesions)
        out[metric] = {"crossed": (iv.low, iv.high), "two-level": two_level_interval(d, rng)}
    return out


def two_level_interval(d: GainDraws, rng: np.random.Generator) -> tuple[float, float]:
    """The replaced interval: 2.5/97.5 percentiles over replicates that draw the seeds with
    replacement, then the lesions (the gain's own lesion draws)."""
    B, S = d.boot.shape
    counts = rng.multinomial(S, np.full(S, 1.0 / S), size=B)
    boot = (counts * d.boot).sum(1) / S
    boot = boot[np.isfinite(boot)]
    return tuple(np.percentile(boot, [2.5, 97.5]))


def truth(cell: Cell, metric: str) -> float:
    if metric != "recall" or cell.shift == 0:
        return 0.0  # arms identical in distribution
    scale = np.sqrt(2 + cell.spread**2)
    return float(stats.norm.cdf(cell.shift / scale) - stats.norm.cdf(0.0))


CELLS = [
    Cell(lesions, seeds, spread)
    for lesions in (11, 90)
    for spread in (0.0, 0.5)
    for seeds in (3, 5, 10)
] + [Cell(90, seeds, 0.5, shift=0.5) for seeds in (3, 5)]


@click.command()
@click.option("--reps", default=500, show_default=True, help="Simulated experiments per cell.")
@click.option("--n-boot", default=400, show_default=True, help="Lesion bootstrap draws.")
@click.option("--seed", default=0, show_default=True)
@click.option("--lesions", type=int, default=None, help="Only the cells of this test size.")
def main(reps: int, n_boot: int, seed: int, lesions: int | None) -> None:
    print(f"CPU: {cpu_name()}; {reps} experiments per cell, {n_boot} lesion draws each")
    print(
        "| test lesions | seeds | seed sd | true gain | metric | coverage | mean width |"
        " two-level coverage | two-level width |"
    )
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for cell in CELLS:
        if lesions is not None and cell.lesions != lesions:
            continue
        runs = [_experiment(cell, rng, n_boot) for _ in range(reps)]
        for metric in ("recall", "prior_matched_recall", "average_precision"):
            if cell.shift and metric != "recall":
                continue
            t = truth(cell, metric)
            row = []
            for method in ("crossed", "two-level"):
                ci = np.array([r[metric][method] for r in runs])
                row += [np.mean((ci[:, 0] <= t) & (t <= ci[:, 1])), np.mean(ci[:, 1] - ci[:, 0])]
            print(
                f"| {cell.lesions} | {cell.seeds} | {cell.spread} | {t:.3f} | {metric} | "
                + " | ".join(f"{x:.3f}" for x in row)
                + " |",
                flush=True,
            )
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
