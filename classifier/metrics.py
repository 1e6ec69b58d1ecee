"""Classification metrics (torchmetrics); paired gains between arms are in classifier.gains.

Balanced accuracy is the mean per-class recall (the ISIC 2018 Task 3 metric); accuracy is
plain (micro) accuracy, dominated by nv on HAM10000, reported only for completeness.
"""

from __future__ import annotations

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


def balanced_accuracy(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean per-class recall over the classes present in `labels` (ISIC 2018 Task 3 metric):
    model selection and the reported metrics use this one definition."""
    pred = probs.argmax(dim=1)
    recalls = [
        (pred[labels == c] == c).float().mean().item()
        for c in range(num_classes)
        if (labels == c).any()
    ]
    return sum(recalls) / len(recalls)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Per-class precision/recall/F1/AP/one-vs-rest AUC, balanced accuracy, macro-F1, macro
    one-vs-rest AUC, accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    k = {"num_classes": num_classes}
    per_class = {"average": "none", **k}
    return {
        "recall": multiclass_recall(probs, labels, **per_class).tolist(),
        "precision": multiclass_precision(probs, labels, **per_class).tolist(),
        "f1": multiclass_f1_score(probs, labels, **per_class).tolist(),
        "average_precision": multiclass_average_precision(probs, labels, **per_class).tolist(),
        "auc": multiclass_auroc(probs, labels, **per_class).tolist(),
        "balanced_accuracy": balanced_accuracy(probs, labels, num_classes),
        "macro_f1": multiclass_f1_score(probs, labels, average="macro", **k).item(),
        "macro_auc": multiclass_auroc(probs, labels, average="macro", **k).item(),
        "accuracy": multiclass_accuracy(probs, labels, average="micro", **k).item(),
        "confusion_matrix": multiclass_confusion_matrix(probs, labels, **k).tolist(),
    }


def precision_recall_curves(probs: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """Per class: (precision, recall) arrays of the one-vs-rest curve."""
    precision, recall, _ = multiclass_precision_recall_curve(probs, labels, num_classes)
    return [(p.numpy(), r.numpy()) for p, r in zip(precision, recall)]
