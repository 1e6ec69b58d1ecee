"""Classification metrics (torchmetrics) and the lesion-level bootstrap of a recall gain.

Balanced accuracy is the mean per-class recall (the ISIC 2018 Task 3 metric); accuracy is
plain (micro) accuracy, dominated by nv on HAM10000, reported only for completeness.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_average_precision,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_precision_recall_curve,
    multiclass_recall,
)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Per-class precision/recall/F1/AP, balanced accuracy, macro-F1, macro one-vs-rest AUC,
    accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    k = {"num_classes": num_classes}
    per_class = {"average": "none", **k}
    return {
        "recall": multiclass_recall(probs, labels, **per_class).tolist(),
        "precision": multiclass_precision(probs, labels, **per_class).tolist(),
        "f1": multiclass_f1_score(probs, labels, **per_class).tolist(),
        "average_precision": multiclass_average_precision(probs, labels, **per_class).tolist(),
        "balanced_accuracy": multiclass_recall(probs, labels, average="macro", **k).item(),
        "macro_f1": multiclass_f1_score(probs, labels, average="macro", **k).item(),
        "macro_auc": multiclass_auroc(probs, labels, average="macro", **k).item(),
        "accuracy": multiclass_accuracy(probs, labels, average="micro", **k).item(),
        "confusion_matrix": multiclass_confusion_matrix(probs, labels, **k).tolist(),
    }


def precision_recall_curves(probs: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """Per class: (precision, recall) arrays of the one-vs-rest curve."""
    precision, recall, _ = multiclass_precision_recall_curve(probs, labels, num_classes)
    return [(p.numpy(), r.numpy()) for p, r in zip(precision, recall)]


def bootstrap_recall_gain(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    is_class: np.ndarray,
    lesion_ids: list[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Gain in recall of one class, arm b minus arm a, with a 95 % percentile bootstrap CI.

    correct_a/correct_b: S×N booleans (S seeds, N test images) — was the image predicted
    correctly by that arm's seed-s model. is_class: N booleans, images of the class. Test
    *lesions* are resampled (images of one lesion are not independent); recall is pooled over
    seeds within each resample, so seed noise and test-set noise are both in the interval.
    """
    lesions, inverse = np.unique(np.asarray(lesion_ids)[is_class], return_inverse=True)
    L = len(lesions)
    if L == 0:
        raise ValueError("no test image of this class")
    n_images = np.bincount(inverse, minlength=L) * correct_a.shape[0]
    hits_a = np.bincount(inverse, weights=correct_a[:, is_class].sum(0), minlength=L)
    hits_b = np.bincount(inverse, weights=correct_b[:, is_class].sum(0), minlength=L)
    gain = (hits_b.sum() - hits_a.sum()) / n_images.sum()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(L, np.full(L, 1.0 / L), size=n_boot)  # B×L resample weights
    boot = (counts @ (hits_b - hits_a)) / (counts @ n_images)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {
        "gain": float(gain),
        "ci95": [float(low), float(high)],
        "excludes_zero": bool(low > 0 or high < 0),
        "test_lesions": int(L),
        "test_images": int(is_class.sum()),
        "n_boot": n_boot,
    }
