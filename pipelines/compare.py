"""The comparison's numbers: per-class recall per arm, and paired recall gains with CIs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import torch

from classifier.gains import N_BOOT, ap_gain, prior_matched_hits, recall_gain, resamples
from classifier.metrics import classification_metrics
from classifier.training import predict_proba
from pipelines.arms import CONTROLS
from pipelines.data.datasets import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError

GAIN_PAIRS = [  # (arm, reference): the gains the report shows, headline first
    *[(arm, ref) for arm in ("gan", "oversample+gan") for ref in CONTROLS],
    ("oversample", "baseline"),
    ("reweight", "baseline"),
    ("gan-unfiltered", "baseline"),
    ("gan", "gan-unfiltered"),
]
METRICS = {  # gain metric -> what it measures, for the report
    "recall": "recall at the argmax",
    "prior_matched_recall": "recall at the validation-prior-matched threshold",
    "average_precision": "average precision (threshold-free)",
}


def config_id(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).to(device)


def load_probs(results: dict[str, list[dict]]) -> dict[str, dict[str, np.ndarray]]:
    """Per arm: "test" and "val" class probabilities of every seed (S×N×K)."""
    out = {}
    for arm, rs in results.items():
        files = [np.load(r["_dir"] / "test_probs.npz") for r in rs]
        out[arm] = {
            "test": np.stack([f["probs"] for f in files]),
            "val": np.stack([f["val_probs"] for f in files]),
        }
    return out


def class_evidence(probs: dict[str, np.ndarray], k: int, val_labels: np.ndarray) -> dict:
    """What each gain metric needs for class k, per seed (S×N): argmax hits, prior-matched
    hits (threshold on the validation scores) and the class's scores."""
    test = probs["test"]
    matched = prior_matched_hits(probs["val"][..., k], val_labels == k, test[..., k])
    return {
        "recall": test.argmax(2) == k,
        "prior_matched_recall": matched,
        "average_precision": test[..., k],
    }


def paired_gains(
    probs: dict[str, dict[str, np.ndarray]],
    test_labels: np.ndarray,
    val_labels: np.ndarray,
    lesion_ids: list[str],
    classes: dict[str, int],
    n_boot: int = N_BOOT,
) -> dict:
    """Every GAIN_PAIRS gain of every rare class and metric, with two-level bootstrap CIs
    (one draw of seeds and lesions shared by all of them, so they are paired)."""
    n_seeds = min(len(p["test"]) for p in probs.values())
    rs = resamples(n_seeds, lesion_ids, n_boot)
    gains = {}
    for c, k in classes.items():
        is_class = test_labels == k
        if not is_class.any():
            continue
        ev = {a: class_evidence(p, k, val_labels) for a, p in probs.items()}
        for arm, ref in GAIN_PAIRS:
            if arm not in probs or ref not in probs:
                continue
            a, b = ev[ref], ev[arm]
            gains[f"{arm} vs {ref}: {c}"] = {
                "arm": arm,
                "reference": ref,
                "class": c,
                "recall": recall_gain(a["recall"][:n_seeds], b["recall"][:n_seeds], is_class, rs),
                "prior_matched_recall": recall_gain(
                    a["prior_matched_recall"][:n_seeds],
                    b["prior_matched_recall"][:n_seeds],
                    is_class,
                    rs,
                ),
                "average_precision": ap_gain(
                    a["average_precision"][:n_seeds],
                    b["average_precision"][:n_seeds],
                    is_class,
                    rs,
                ),
            }
    return gains


def compare(
    ds: Dataset,
    split: Split,
    results: dict[str, list[dict]],
    classes: list[str],
) -> dict:
    """Per-class metrics per arm (mean ± sd over seeds) and the paired gains with CIs."""
    test_labels, val_labels = ds.labels[split.test], ds.labels[split.val]
    probs = load_probs(results)
    rare = {c: ds.class_index(c) for c in classes}
    table = {}
    for arm, rs in results.items():
        rec = np.array([r["test"]["recall"] for r in rs])
        matched = {
            c: class_evidence(probs[arm], k, val_labels)["prior_matched_recall"][
                :, test_labels == k
            ]
            .mean(1)
            .tolist()
            for c, k in rare.items()
            if (val_labels == k).any() and (test_labels == k).any()
        }
        table[arm] = {
            "recall_mean": rec.mean(0).tolist(),
            "recall_sd": rec.std(0, ddof=1).tolist() if len(rs) > 1 else [0.0] * rec.shape[1],
            "prior_matched_recall": matched,
            **{m: [r["test"][m] for r in rs] for m in ("average_precision", "auc")},
            **{
                m: [r["test"][m] for r in rs]
                for m in ("balanced_accuracy", "macro_f1", "macro_auc", "accuracy")
            },
        }
    lesions = [ds.lesion_ids[i] for i in split.test]
    gains = paired_gains(probs, test_labels, val_labels, lesions, rare)
    return {"per_arm": table, "gains": gains}


def external_test(
    path: str,
    ds: Dataset,
    val_labels: np.ndarray,
    classes: list[str],
    arm_results: dict[str, list[dict]],
    new_model: Callable[[], torch.nn.Module],
    device: torch.device,
    load,
    precision: str,
) -> dict:
    """Evaluate every trained classifier on another dataset whose classes match by name, with
    the same paired gains as the home test set (images resampled where the set has no lesion
    ids: each image is its own lesion there)."""
    ext = load(path, ds.images.shape[1])
    missing = sorted(set(ds.class_names) - set(ext.class_names))
    extra = sorted(set(ext.class_names) - set(ds.class_names))
    if missing or extra:
        raise UserError(
            f"--external-test {path}: its classes do not match the training data "
            f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}); "
            "pass a set with the same class names"
        )
    labels = np.array([ds.class_names.index(ext.class_names[i]) for i in ext.labels])
    x = _tensor(ext.images, device)
    k = len(ds.class_names)
    per_arm, probs = {}, load_probs(arm_results)
    for arm, rs in arm_results.items():
        per_arm[arm], test = [], []
        for r in rs:
            model = new_model()
            model.load_state_dict(torch.load(r["_dir"] / "model.pt", weights_only=True))
            model = model.to(device, memory_format=torch.channels_last)
            p = predict_proba(model, x, precision=precision).cpu()
            per_arm[arm].append(classification_metrics(p, torch.from_numpy(labels), k))
            test.append(p.numpy())
        probs[arm]["test"] = np.stack(test)  # thresholds stay those of the home validation set
    rare = {c: ds.class_index(c) for c in classes}
    gains = paired_gains(probs, labels, val_labels, list(ext.lesion_ids), rare)
    return {
        "source": ext.source,
        "n": len(labels),
        "lesions": len(set(ext.lesion_ids)),
        "per_arm": per_arm,
        "gains": gains,
    }
