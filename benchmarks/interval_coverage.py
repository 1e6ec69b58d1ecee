"""Do the gains' 95 % intervals cover the true gain 95 % of the time?

    python benchmarks/interval_coverage.py [--reps 500] [--n-boot 400] [--only NAME]

Simulated comparisons with known answers, scored exactly as the report scores them: each
experiment builds two arms' float32 softmax outputs over three classes (per seed, on a test
and a validation set), puts them through prior matching's calibration and thresholds
(classifier.prior_matching) and hands them to pipelines.results.compare.paired_gains, the
function behind every gain in results.json. A miss is counted on the side it falls (truth
above the interval: "miss low"; below it: "miss high"); at 500 experiments the coverage's
standard error is ~0.01.

One model (arm, seed) gives a rare-class image of lesion l the class logit
    mu_arm + c_seed + u_l + w_arm,l + eps,
u_l ~ N(0, 1) the lesion's difficulty (shared by every model), w_arm,l ~ N(0, sd_int^2) the
arm x lesion interaction (shared by the arm's seeds, on validation lesions as on test ones),
c_seed ~ N(0, sd_seed^2), eps ~ N(0, shape_arm^2); the other two classes' logits are N(0, 1).
Negatives (300 test, 300 validation, half of each other class) have the rare logit
-2.5 + N(0, 1) + N(0, 1) and their own class's logit raised by 2. Lesions have HAM10000's mel
photo counts (1-6, mostly 1-3) or, as a stress case, 1-8 uniformly; validation holds as
many rare lesions as test.

True values: arms of the same make are exchangeable, so every gain's truth is 0; where they
differ (a ceiling cell, a score-shape cell) recall's and AP's truths are population values
from a million simulated images (prior-matched recall is not scored there: its population
value depends on the validation set's size).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import click
import numpy as np

from classifier.gains import weighted_average_precision
from classifier.prior_matching import calibrate, fit_class_bias, matched_hits
from pipelines.config.arms import GAIN_METRICS, GAIN_PAIRS
from pipelines.results.compare import Pooled, ValidationFold, paired_gains
from pipelines.store.records import cpu_name

N_NEG = 300
MU_NEG = -2.5
RARE = 2  # the rare class's index; 0 and 1 are the other classes
ARM_B, ARM_A = GAIN_PAIRS[0]  # real arm names, so paired_gains computes this pair
MEL_PHOTOS = ((1, 2, 3, 4, 5, 6), (0.375, 0.453, 0.163, 0.007, 0.001, 0.001))


@dataclass(frozen=True)
class Cell:
    name: str
    lesions: int
    seeds: int
    sd_seed: float = 0.5
    sd_int: float = 0.0  # arm x lesion interaction, on test and validation lesions
    mu: tuple[float, float] = (0.0, 0.0)  # (arm a, arm b) rare-class logit means
    shape: tuple[float, float] = (1.0, 1.0)  # (arm a, arm b) per-image noise sd
    photos: str = "mel"  # "mel": HAM10000's mel counts; "1-8": uniform 1-8

    @property
    def exchangeable(self) -> bool:
        return self.mu[0] == self.mu[1] and self.shape[0] == self.shape[1]


def _photos(rng: np.random.Generator, cell: Cell, n: int) -> np.ndarray:
    if cell.photos == "1-8":
        return rng.integers(1, 9, n)
    return rng.choice(MEL_PHOTOS[0], size=n, p=MEL_PHOTOS[1])


def _negatives(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n×3) and labels of the other two classes' images."""
    labels = np.arange(n) % 2
    z = rng.normal(size=(n, 3))
    z[np.arange(n), labels] += 2.0
    z[:, RARE] = MU_NEG + rng.normal(size=n) + rng.normal(size=n)
    return z, labels


def _softmax32(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class _Side:
    """One set (test or validation): its rare lesions' make and its negatives."""

    lesion: np.ndarray  # rare image -> lesion index
    u: np.ndarray  # per rare image: its lesion's difficulty
    w: tuple[np.ndarray, np.ndarray]  # per rare image: each arm's lesion interaction
    neg: np.ndarray  # N_NEG×3 negative logits (shared make; noise redrawn per model)
    neg_labels: np.ndarray


def _side(rng: np.random.Generator, cell: Cell) -> _Side:
    lesion = np.repeat(np.arange(cell.lesions), _photos(rng, cell, cell.lesions))
    u = rng.normal(size=cell.lesions)[lesion]
    w = tuple(rng.normal(scale=cell.sd_int, size=cell.lesions)[lesion] for _ in range(2))
    neg, neg_labels = _negatives(rng, N_NEG)
    return _Side(lesion, u, w, neg, neg_labels)


def _model_probs(rng, cell: Cell, side: _Side, arm: int, c: float) -> np.ndarray:
    n = len(side.lesion)
    z = rng.normal(size=(n, 3))
    z[:, RARE] = cell.mu[arm] + c + side.u + side.w[arm] + rng.normal(scale=cell.shape[arm], size=n)
    neg = side.neg.copy()
    neg[:, RARE] += rng.normal(size=N_NEG)  # a model's own noise on the negatives
    return _softmax32(np.vstack([z, neg]))


def _experiment(cell: Cell, rng: np.random.Generator, n_boot: int) -> dict:
    test, val = _side(rng, cell), _side(rng, cell)
    labels = np.r_[np.full(len(test.lesion), RARE), test.neg_labels]
    val_labels = np.r_[np.full(len(val.lesion), RARE), val.neg_labels]
    arms = {ARM_A: 0, ARM_B: 1}
    probs, val_probs = {}, {}
    for name, arm in arms.items():
        seeds = [rng.normal(scale=cell.sd_seed) for _ in range(cell.seeds)]
        probs[name] = np.stack([_model_probs(rng, cell, test, arm, c) for c in seeds])
        val_probs[name] = np.stack([_model_probs(rng, cell, val, arm, c) for c in seeds])
    fold = ValidationFold(
        [f"V{i}" for i in val.lesion] + [f"VN{i}" for i in range(N_NEG)],
        val_labels,
        {},
        slice(0, len(labels)),
        axis=1,
    )
    calibrated, matched = {}, {}
    for name in arms:
        fold.calibrated[name], calibrated[name] = calibrate(
            val_probs[name], val_labels, probs[name]
        )
        matched[name] = {
            RARE: matched_hits(fold.calibrated[name], val_labels, calibrated[name], RARE)
        }
    pooled = Pooled(
        labels=labels,
        lesion_ids=[f"T{i}" for i in test.lesion] + [f"TN{i}" for i in range(N_NEG)],
        probs=probs,
        matched=matched,
        calibrated=calibrated,
        train_images={},
        validation=[fold],
    )
    gains = paired_gains(pooled, {"rare": RARE}, n_boot=n_boot)[f"{ARM_B} vs {ARM_A}: rare"]
    return {m: gains[m]["ci95"] for m in GAIN_METRICS}


def population_truth(cell: Cell, n: int = 1_000_000, seed: int = 12345) -> dict:
    """Recall's and AP's population gains of arm b over arm a (prior-matched recall: None
    unless the arms are exchangeable). AP ranks the rare class's probability after the bias
    calibration, as the report does: here fitted on the population itself."""
    if cell.exchangeable:
        return dict.fromkeys(GAIN_METRICS, 0.0)
    rng = np.random.default_rng(seed)
    photos = 4.5 if cell.photos == "1-8" else float(np.dot(*MEL_PHOTOS))
    n_neg = int(n * N_NEG / (N_NEG + cell.lesions * photos))
    neg, neg_labels = _negatives(rng, n_neg)
    labels = np.r_[np.full(n - n_neg, RARE), neg_labels]
    is_rare = labels == RARE
    recall, ap = [], []
    for arm in (0, 1):
        z = rng.normal(size=(n - n_neg, 3))
        z[:, RARE] = (
            cell.mu[arm]
            + rng.normal(scale=np.hypot(cell.sd_seed, cell.sd_int), size=len(z))
            + rng.normal(size=len(z))
            + rng.normal(scale=cell.shape[arm], size=len(z))
        )
        model_neg = neg.copy()
        model_neg[:, RARE] += rng.normal(size=n_neg)  # a model's own noise, as _model_probs
        logits = np.vstack([z, model_neg])
        recall.append(float(np.mean(logits[is_rare].argmax(1) == RARE)))
        p = _softmax32(logits).astype(np.float64)
        bias = fit_class_bias(np.log(p), labels)
        scores = (np.log(p) + bias)[:, RARE] - np.logaddexp.reduce(np.log(p) + bias, axis=1)
        ap.append(float(weighted_average_precision(scores, is_rare, np.ones((1, n)))[0]))
    return {
        "recall": recall[1] - recall[0],
        "prior_matched_recall": None,
        "average_precision": ap[1] - ap[0],
    }


def cells() -> list[Cell]:
    base = [Cell(f"{L} lesions, {S} seeds", L, S, sd_seed=0.5) for L in (11, 92) for S in (3, 5)]
    return [
        *base,
        *[replace(c, name=c.name + ", arm x lesion 0.5", sd_int=0.5) for c in base],
        Cell("11 lesions, 3 seeds, seed part ~ lesion part", 11, 3, sd_seed=0.3),
        Cell("11 lesions, 5 seeds, 1-8 photos", 11, 5, photos="1-8"),
        *[
            Cell(f"{L} lesions, 5 seeds, ceiling (0.80 vs 0.97)", L, 5, mu=(2.0, 3.9))
            for L in (11, 92)
        ],
        *[
            Cell(f"{L} lesions, 5 seeds, ceiling (0.92 vs 0.99)", L, 5, mu=(3.0, 4.6))
            for L in (11, 92)
        ],
        *[
            Cell(f"{L} lesions, 5 seeds, score shape 1 vs 1.5", L, 5, mu=(0.0, 0.4), shape=(1, 1.5))
            for L in (11, 92)
        ],
    ]


@click.command()
@click.option("--reps", default=500, show_default=True, help="Simulated experiments per cell.")
@click.option("--n-boot", default=400, show_default=True, help="Lesion bootstrap draws.")
@click.option("--seed", default=0, show_default=True)
@click.option("--only", default=None, help="Only the cells whose name contains this.")
def main(reps: int, n_boot: int, seed: int, only: str | None) -> None:
    print(f"CPU: {cpu_name()}; {reps} experiments per cell, {n_boot} lesion draws each")
    print("| cell | metric | true gain | coverage | miss low | miss high | mean width |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for cell in cells():
        if only is not None and only not in cell.name:
            continue
        truth = population_truth(cell)
        runs = [_experiment(cell, rng, n_boot) for _ in range(reps)]
        for metric in GAIN_METRICS:
            t = truth[metric]
            if t is None:
                continue
            ci = np.array([r[metric] for r in runs])
            low, high = np.mean(t > ci[:, 1]), np.mean(t < ci[:, 0])
            print(
                f"| {cell.name} | {metric} | {t:+.3f} | {1 - low - high:.3f} | {low:.3f} | "
                f"{high:.3f} | {np.mean(ci[:, 1] - ci[:, 0]):.3f} |",
                flush=True,
            )
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
