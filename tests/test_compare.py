"""pool_predictions and paired_gains on hand-made fold results (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from classifier.gains import Resamples, holm, resamples, verdict
from classifier.prior_matching import matched_hits, prior_matched_hits
from pipelines.config.arms import GAIN_METRICS
from pipelines.data.dataset import Dataset
from pipelines.data.splits import Split
from pipelines.results.compare import (
    matched_recall,
    paired_gains,
    pool_predictions,
    with_multiplicity,
)

CLASSES = ["nv", "mel", "df"]


def _dataset(n: int, rng: np.random.Generator) -> Dataset:
    labels = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
    return Dataset(
        images=np.zeros((n, 4, 4, 3), np.uint8),
        labels=labels,
        class_names=CLASSES,
        image_ids=[f"I{i}" for i in range(n)],
        lesion_ids=[f"L{i // 2}" for i in range(n)],
        format="test",
        source="hand-made",
        fingerprint="x",
    )


def _probs(rng: np.random.Generator, labels: np.ndarray, skill: float, shape=()) -> np.ndarray:
    z = rng.normal(size=(*shape, len(labels), 3)) + skill * np.eye(3)[labels]
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _fold_results(tmp: Path, ds, split, rng, skills: dict[str, float], seeds: int) -> dict:
    out = {}
    for arm, skill in skills.items():
        out[arm] = []
        for s in range(seeds):
            d = tmp / arm / f"seed{s}"
            d.mkdir(parents=True)
            np.savez(
                d / "test_probs.npz",
                probs=_probs(rng, ds.labels[split.test], skill),
                val_probs=_probs(rng, ds.labels[split.val], skill),
            )
            out[arm].append({"_dir": d, "train_images": len(split.train)})
    return out


def _two_folds(tmp_path: Path, skills: dict[str, float], seeds: int = 2):
    """Two folds whose validation sets have very different class mixes: a fold thresholded
    with the other's labels would flag a different number of images."""
    rng = np.random.default_rng(0)
    ds = _dataset(400, rng)
    idx = np.arange(400)
    mel, other = idx[ds.labels == 1], idx[ds.labels != 1]
    val0 = np.r_[mel[:60], other[:40]]  # mel-rich validation for fold 0
    rest = np.setdiff1d(idx, val0)
    folds = [
        Split(train=rest[:100], val=val0, test=rest[100:250]),
        Split(train=idx[:100], val=idx[100:200], test=idx[200:300]),
    ]
    parts = [
        (split, _fold_results(tmp_path / f"fold{f}", ds, split, rng, skills, seeds))
        for f, split in enumerate(folds)
    ]
    return ds, folds, parts


def test_each_fold_is_matched_on_its_own_validation_set(tmp_path: Path):
    ds, folds, parts = _two_folds(tmp_path, {"baseline": 2.0})
    pooled = pool_predictions(ds, parts, ["mel", "df"])
    assert len(pooled.labels) == sum(len(s.test) for s in folds)
    start = 0
    for split, results in parts:
        probs = np.stack(
            [np.load(r["_dir"] / "test_probs.npz")["probs"] for r in results["baseline"]]
        )
        val = np.stack(
            [np.load(r["_dir"] / "test_probs.npz")["val_probs"] for r in results["baseline"]]
        )
        for k in (1, 2):
            want = prior_matched_hits(val, ds.labels[split.val], probs, k)
            got = pooled.matched["baseline"][k][:, start : start + len(split.test)]
            assert (got == want).all()
            # and not the test set's own labels: they give another threshold here
            on_test = prior_matched_hits(probs, ds.labels[split.test], probs, k)
            assert (on_test != want).any()
        start += len(split.test)
    assert pooled.labels.tolist() == np.concatenate([ds.labels[s.test] for s in folds]).tolist()


def test_a_better_arm_gains_with_the_right_sign(tmp_path: Path):
    ds, _, parts = _two_folds(tmp_path, {"baseline": 0.5, "oversample": 3.0}, seeds=3)
    pooled = pool_predictions(ds, parts, ["mel", "df"])
    gains = paired_gains(pooled, {"mel": 1, "df": 2}, n_boot=300)
    g = gains["oversample vs baseline: mel"]
    assert (g["arm"], g["reference"], g["class"]) == ("oversample", "baseline", "mel")
    for metric in ("recall", "prior_matched_recall", "average_precision"):
        assert g[metric]["gain"] > 0.1, metric
        assert g[metric]["excludes_zero"], metric
        assert g[metric]["ci95"][0] > 0
    rec = [
        (pooled.probs[a].argmax(2) == 1)[:, pooled.labels == 1].mean(1)
        for a in ("baseline", "oversample")
    ]
    assert g["recall"]["gain"] == pytest.approx((rec[1] - rec[0]).mean())
    # the AP gain is torchmetrics' AP of the scores on each fold's validation prior
    target = torch.from_numpy((pooled.labels == 1).astype(int))
    ap = [
        [binary_average_precision(torch.from_numpy(p[:, 1]), target).item() for p in cal]
        for cal in (pooled.calibrated["baseline"], pooled.calibrated["oversample"])
    ]
    assert g["average_precision"]["gain"] == pytest.approx(np.mean(ap[1]) - np.mean(ap[0]))


def test_every_interval_of_a_test_set_is_one_holm_family(tmp_path: Path):
    ds, _, parts = _two_folds(tmp_path, {"baseline": 0.5, "oversample": 3.0}, seeds=3)
    pooled = pool_predictions(ds, parts, ["mel", "df"])
    out = with_multiplicity(paired_gains(pooled, {"mel": 1, "df": 2}, n_boot=300), 0.05)
    cells = [g[m] for g in out["gains"].values() for m in GAIN_METRICS]
    family = out["multiplicity"]
    assert family["intervals"] == len(cells) == 2 * 3  # one pair, two classes, three metrics
    assert family["exclude_zero"] == sum(c["excludes_zero"] for c in cells)
    adjusted = holm([c["p_value"] for c in cells])
    assert [c["holm_p"] for c in cells] == [a for a, _ in adjusted]
    assert len(family["survive_holm"]) == sum(c["survives_holm"] for c in cells) > 0
    assert out["margin"] == 0.05
    assert all(c["excludes_zero"] for c in cells if c["survives_holm"])


def test_the_margin_reaches_every_verdict(tmp_path: Path):
    ds, _, parts = _two_folds(tmp_path, {"baseline": 0.5, "oversample": 0.5}, seeds=3)
    pooled = pool_predictions(ds, parts, ["mel", "df"])
    words = {}
    for margin in (0.05, 0.99):
        out = with_multiplicity(paired_gains(pooled, {"mel": 1, "df": 2}, n_boot=300), margin)
        cells = [g[m] for g in out["gains"].values() for m in GAIN_METRICS]
        assert [c["verdict"] for c in cells] == [verdict(c, margin) for c in cells]
        words[margin] = [c["verdict"] for c in cells]
    assert words[0.05] != words[0.99] and "no gain larger than 0.99" in words[0.99]


def test_prior_matched_draws_refit_the_threshold_on_redrawn_validation_lesions(tmp_path):
    """The validation lesions that set an arm's thresholds are shared by all its seeds, so
    their sampling noise must be in the draws: with the test set held fixed (unit weights),
    each draw's prior-matched recall is the one thresholded on that draw's validation images
    repeated, and the draws vary; with validation held fixed too, every draw is the estimate."""
    ds, folds, parts = _two_folds(tmp_path, {"baseline": 1.0}, seeds=2)
    pooled = pool_predictions(ds, parts, ["mel", "df"])
    k, B = 1, 6
    is_class = pooled.labels == k
    fixed_test = Resamples(np.ones((B, len(is_class))), np.arange(len(is_class)))
    val_rs = [resamples(f.lesion_ids, B, seed=5 + i) for i, f in enumerate(pooled.validation)]
    got = matched_recall(pooled, "baseline", k, is_class, fixed_test, val_rs)
    for b in range(B):
        hits = []
        for fold, vrs in zip(pooled.validation, val_rs):
            w = vrs.image_weights[b].astype(int)
            val = np.repeat(fold.calibrated["baseline"], w, axis=1)
            test = pooled.calibrated["baseline"][:, fold.part]
            hits.append(matched_hits(val, np.repeat(fold.labels, w), test, k))
        want = np.concatenate(hits, axis=1)[:, is_class].mean(1)
        assert got.boot[b] == pytest.approx(want)
    assert got.boot.std(0).min() > 0
    unit = [
        Resamples(np.ones((B, len(f.labels))), np.arange(len(f.labels))) for f in pooled.validation
    ]
    still = matched_recall(pooled, "baseline", k, is_class, fixed_test, unit)
    assert still.boot == pytest.approx(np.tile(still.per_seed, (B, 1)))
