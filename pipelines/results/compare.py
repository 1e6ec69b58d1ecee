"""The comparison's numbers: per-class metrics per arm, and paired gains with CIs.

Predictions are pooled over folds first (with --folds K every test lesion is tested once per
seed), so one code path serves one split and K-fold cross-validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import binary_average_precision

from classifier.gains import (
    METHOD,
    N_BOOT,
    ArmRecall,
    Resamples,
    ap_gain,
    arm_recall,
    gain_summary,
    holm,
    recall_difference,
    resamples,
    verdict,
)
from classifier.metrics import classification_metrics
from classifier.prior_matching import calibrate, matched_hits, matched_thresholds
from classifier.training import predict_proba
from gan.conventions import to_nchw
from pipelines.config.arms import ARM_SPECS, GAIN_METRICS, GAIN_PAIRS, oracle_twin
from pipelines.data.dataset import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError


@dataclass
class Pooled:
    """Test predictions of every arm, pooled over the folds (one fold without --folds): each
    test image appears once per seed. matched[arm][k]: S×N prior-matched hits for class k,
    thresholded on the validation set of the fold each image was tested in; calibrated[arm]:
    the probabilities put on the validation prior of that fold (classifier.prior_matching)."""

    labels: np.ndarray  # N
    lesion_ids: list[str]  # N
    probs: dict[str, np.ndarray]  # arm -> S×N×K
    matched: dict[str, dict[int, np.ndarray]]
    calibrated: dict[str, np.ndarray]  # arm -> S×N×K
    train_images: dict[str, list[int]]  # arm -> training-set size of every fold
    validation: list[ValidationFold]  # per fold: what its prior-matched thresholds came from


@dataclass
class ValidationFold:
    """One fold's validation set, kept so that prior matching's thresholds can be refitted on
    each lesion resample (its lesions are shared by every seed of an arm: their sampling noise
    moves all of them together, and only redrawing them shows it). `part` selects the pooled
    columns (images, axis 1) or rows (models, axis 0) this fold's thresholds serve."""

    lesion_ids: list[str]
    labels: np.ndarray  # Nv
    calibrated: dict[str, np.ndarray]  # arm -> S×Nv×K on the validation prior
    part: slice
    axis: int


def _fold_probs(rs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    files = [np.load(r["_dir"] / "test_probs.npz") for r in rs]
    return np.stack([f["probs"] for f in files]), np.stack([f["val_probs"] for f in files])


def pool_predictions(ds: Dataset, parts: list[tuple[Split, dict]], classes: list[str]) -> Pooled:
    """parts: (split, arm -> per-seed results) of every fold, in fold order."""
    arms = list(parts[0][1])
    test_idx = np.concatenate([split.test for split, _ in parts])
    return Pooled(
        labels=ds.labels[test_idx],
        lesion_ids=[ds.lesion_ids[i] for i in test_idx],
        **_fold_scores(ds, parts, classes, axis=1),  # folds test different images
        train_images={a: [r[a][0]["train_images"] for _, r in parts] for a in arms},
    )


def _fold_scores(ds: Dataset, parts: list, classes: list[str], axis: int, predict=None) -> dict:
    """Every arm's test scores (S×N×K), on its fold's validation prior too, and prior-matched
    hits per rare class, joined over folds along `axis` (1: images, 0: seeds), with each
    fold's validation set. The scores are the stored test predictions, or predict(results)
    for another test set."""
    rare = [ds.class_index(c) for c in classes]
    arms = list(parts[0][1])
    probs: dict[str, list] = {a: [] for a in arms}
    calibrated: dict[str, list] = {a: [] for a in arms}
    matched: dict[str, dict[int, list]] = {a: {k: [] for k in rare} for a in arms}
    validation, start = [], 0
    for split, results in parts:
        val_labels = ds.labels[split.val]
        fold = ValidationFold([ds.lesion_ids[i] for i in split.val], val_labels, {}, slice(0), axis)
        for arm in arms:
            test, val = _fold_probs(results[arm])
            test = test if predict is None else predict(results[arm])
            probs[arm].append(test)
            val_calibrated, test_calibrated = calibrate(val, val_labels, test)
            calibrated[arm].append(test_calibrated)
            fold.calibrated[arm] = val_calibrated
            for k, hits in matched[arm].items():
                hits.append(matched_hits(val_calibrated, val_labels, test_calibrated, k))
        size = test.shape[axis]
        fold.part, start = slice(start, start + size), start + size
        validation.append(fold)
    return {
        "probs": {a: np.concatenate(p, axis=axis) for a, p in probs.items()},
        "matched": {
            a: {k: np.concatenate(m, axis=axis) for k, m in d.items()} for a, d in matched.items()
        },
        "calibrated": {a: np.concatenate(c, axis=axis) for a, c in calibrated.items()},
        "validation": validation,
    }


def matched_recall(
    pooled: Pooled, arm: str, k: int, is_class: np.ndarray, rs: Resamples, val_rs: list
) -> ArmRecall:
    """Prior-matched recall of class k per seed, on the full sets and on each resample, whose
    thresholds are refitted on each fold's validation lesions redrawn (val_rs, paired over
    arms) while rs redraws the test lesions. The calibration bias stays the full validation
    set's: it is fitted on every validation image, the threshold on the class's few."""
    scores = pooled.calibrated[arm][..., k]  # S×N
    w = rs.image_weights
    num = np.zeros((len(w), scores.shape[0]))
    for fold, vrs in zip(pooled.validation, val_rs):
        val = fold.calibrated[arm][..., k]
        thresholds = matched_thresholds(val, fold.labels == k, vrs.image_weights)  # B×S_f
        if fold.axis == 1:  # this fold's images, every seed
            cols = np.flatnonzero(is_class[fold.part]) + fold.part.start
            hits = scores[None, :, cols] >= thresholds[:, :, None]  # B×S×n
            num += np.einsum("bsn,bn->bs", hits, w[:, cols])
        else:  # this fold's models, every image
            hits = scores[None, fold.part][:, :, is_class] >= thresholds[:, :, None]
            num[:, fold.part] += np.einsum("bsn,bn->bs", hits, w[:, is_class])
        num[np.isnan(thresholds).any(1)] = np.nan  # a draw without the class on validation
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = num / w[:, is_class].sum(1, keepdims=True)
    return ArmRecall(pooled.matched[arm][k][:, is_class].mean(1), boot)


def class_evidence(
    pooled: Pooled, arm: str, k: int, is_class: np.ndarray, draws: tuple, n: int
) -> dict:
    """What each gain metric needs of one arm for class k, for its first n seeds: argmax and
    prior-matched recall on the full sets and each resample, and the class's scores on the
    validation prior (AP). draws: the test resamples and each fold's validation ones."""
    rs, val_rs = draws
    recall = arm_recall(pooled.probs[arm].argmax(2) == k, is_class, rs)
    matched = matched_recall(pooled, arm, k, is_class, rs, val_rs)
    return {
        "recall": ArmRecall(recall.per_seed[:n], recall.boot[:, :n]),
        "prior_matched_recall": ArmRecall(matched.per_seed[:n], matched.boot[:, :n]),
        "average_precision": pooled.calibrated[arm][:n, :, k],
    }


def paired_gains(pooled: Pooled, classes: dict[str, int], n_boot: int = N_BOOT) -> dict:
    """Every GAIN_PAIRS gain of every rare class and metric, with crossed seed × lesion
    intervals (one draw of the test lesions, and of each fold's validation lesions, shared by
    all of them, so they are paired)."""
    n = min(len(p) for p in pooled.probs.values())
    rs = resamples(pooled.lesion_ids, n_boot)
    val_rs = [resamples(f.lesion_ids, n_boot, seed=1 + i) for i, f in enumerate(pooled.validation)]
    gains = {}
    for c, k in classes.items():
        is_class = pooled.labels == k
        if not is_class.any():
            continue

        ev = {a: class_evidence(pooled, a, k, is_class, (rs, val_rs), n) for a in pooled.probs}
        for arm, ref in GAIN_PAIRS:
            if arm in ev and ref in ev:
                gains[f"{arm} vs {ref}: {c}"] = {
                    "arm": arm,
                    "reference": ref,
                    "class": c,
                    **{
                        m: gain_summary(
                            recall_difference(ev[ref][m], ev[arm][m], is_class, rs), is_class, rs
                        )
                        for m in ("recall", "prior_matched_recall")
                    },
                    "average_precision": ap_gain(
                        ev[ref]["average_precision"], ev[arm]["average_precision"], is_class, rs
                    ),
                }
    return gains


def seed_metrics(pooled: Pooled, num_classes: int) -> dict[str, list[dict]]:
    """classification_metrics of every arm and seed on the pooled test predictions."""
    labels = torch.from_numpy(pooled.labels)
    return {
        arm: [classification_metrics(torch.from_numpy(p), labels, num_classes) for p in probs]
        for arm, probs in pooled.probs.items()
    }


def compare(ds: Dataset, pooled: Pooled, classes: list[str], margin: float) -> dict:
    """Per-class metrics per arm (mean ± sd over seeds) and the paired gains with CIs."""
    rare = {c: ds.class_index(c) for c in classes}
    metrics = seed_metrics(pooled, len(ds.class_names))
    table = {}
    for arm, ms in metrics.items():
        rec = np.array([m["recall"] for m in ms])
        matched = {
            c: pooled.matched[arm][k][:, pooled.labels == k].mean(1).tolist()
            for c, k in rare.items()
            if (pooled.labels == k).any()
        }
        calibrated_ap = {
            c: [
                binary_average_precision(
                    torch.from_numpy(p[:, k]), torch.from_numpy((pooled.labels == k).astype(int))
                ).item()
                for p in pooled.calibrated[arm]
            ]
            for c, k in rare.items()
            if (pooled.labels == k).any()
        }
        table[arm] = {
            "recall_mean": rec.mean(0).tolist(),
            "calibrated_average_precision": calibrated_ap,
            "recall_sd": rec.std(0, ddof=1).tolist() if len(ms) > 1 else [0.0] * rec.shape[1],
            "prior_matched_recall": matched,
            **{
                m: [x[m] for x in ms]
                for m in (
                    "average_precision",
                    "auc",
                    "balanced_accuracy",
                    "macro_f1",
                    "macro_auc",
                    "accuracy",
                    "confusion_matrix",
                )
            },
        }
    gains = with_multiplicity(paired_gains(pooled, rare), margin)
    return {"per_arm": table, **gains, "interval": METHOD}


def with_multiplicity(gains: dict, margin: float) -> dict:
    """The gains of one test set with each interval's verdict in words (gain, loss, no gain
    larger than `margin`, cannot tell: classifier.gains.verdict, against the oracle twin's
    gain where there is one), its p-value and Holm's step-down verdict over the whole family
    (every pair, class and metric shown for that test set), and the family's summary: with
    36 intervals about 2 exclude 0 by chance alone."""
    cells = [(k, m) for k, g in gains.items() for m in GAIN_METRICS]
    for k, m in cells:
        g = gains[k]
        twin = oracle_twin(g["arm"]) if ARM_SPECS[g["arm"]].synthetic else None
        oracle = gains.get(f"{twin} vs {g['reference']}: {g['class']}") if twin else None
        g[m]["verdict"] = verdict(g[m], margin, oracle[m]["gain"] if oracle else None)
    p = [gains[k][m]["p_value"] for k, m in cells]  # each agrees with its own interval
    for (k, m), (adjusted, survives) in zip(cells, holm(p)):
        gains[k][m] |= {"holm_p": adjusted, "survives_holm": survives}
    return {
        "gains": gains,
        "margin": margin,
        "multiplicity": {
            "intervals": len(cells),
            "exclude_zero": sum(gains[k][m]["excludes_zero"] for k, m in cells),
            "survive_holm": [f"{k}, {m}" for k, m in cells if gains[k][m]["survives_holm"]],
            "method": "Holm's step-down correction, family-wise error 5 % over every interval "
            "of this test set",
        },
    }


def per_class_counts(labels: np.ndarray, names: list[str]) -> dict[str, int]:
    """Test images per class: a class with none has no recall (the report says so)."""
    return dict(zip(names, np.bincount(labels, minlength=len(names)).tolist()))


def check_external_classes(path: str, names: list[str], external: list[str]) -> None:
    """An external test set's classes must match the training data's by name."""
    missing = sorted(set(names) - set(external))
    extra = sorted(set(external) - set(names))
    if missing or extra:
        raise UserError(
            f"--external-test {path}: its classes do not match the training data "
            f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}); "
            "pass a set with the same class names"
        )


def external_test(
    ext: Dataset,
    ds: Dataset,
    parts: list[tuple[Split, dict]],
    classes: list[str],
    new_model: Callable[[], torch.nn.Module],
    device: torch.device,
    precision: str,
    margin: float,
) -> dict:
    """Evaluate every trained classifier (of every fold) on another dataset whose classes
    match by name, with the same paired gains as the home test set: each (fold, seed) model
    counts as a seed, and its prior-matched thresholds are its own fold's validation ones.
    Images are resampled as lesions where the set has lesion ids, else one by one."""
    check_external_classes(ext.source, ds.class_names, ext.class_names)
    labels = np.array([ds.class_names.index(ext.class_names[i]) for i in ext.labels])
    x = to_nchw(ext.images, device)

    def predict(results: list[dict]) -> np.ndarray:
        return np.stack([predict_probs(r, x, new_model, device, precision) for r in results])

    pooled = Pooled(
        labels=labels,
        lesion_ids=list(ext.lesion_ids),
        **_fold_scores(ds, parts, classes, axis=0, predict=predict),  # models count as seeds
        train_images={},
    )
    return {
        "source": ext.source,
        "n": len(labels),
        "per_class": per_class_counts(labels, ds.class_names),
        "lesions": len(set(ext.lesion_ids)),
        "per_arm": seed_metrics(pooled, len(ds.class_names)),
        **with_multiplicity(paired_gains(pooled, {c: ds.class_index(c) for c in classes}), margin),
    }


def predict_probs(result: dict, x: torch.Tensor, new_model, device, precision: str) -> np.ndarray:
    """One trained classifier's probabilities for x, with the TTA it was tested with."""
    model = new_model()
    model.load_state_dict(torch.load(result["_dir"] / "model.pt", weights_only=True))
    model = model.to(device, memory_format=torch.channels_last)
    tta = result["config"].get("tta", False)  # as on its own test set
    return predict_proba(model, x, precision=precision, tta=tta).cpu().numpy()
