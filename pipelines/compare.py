"""The comparison's numbers: per-class recall per arm, and paired recall gains with CIs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import torch

from classifier.metrics import bootstrap_recall_gain, classification_metrics
from classifier.training import predict_proba
from pipelines.data.datasets import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError

GAIN_PAIRS = [  # (arm, reference): the recall gains the report shows, headline first
    ("gan", "baseline"),
    ("gan", "oversample"),
    ("oversample", "baseline"),
    ("gan-unfiltered", "baseline"),
    ("gan", "gan-unfiltered"),
]


def config_id(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).to(device)


def compare(
    ds: Dataset,
    split: Split,
    results: dict[str, list[dict]],
    classes: list[str],
    baseline: str = "baseline",
) -> dict:
    """Per-class recall mean ± sd per arm; gains of every other arm vs baseline and vs
    oversample (bootstrap CIs over test lesions, pooled over seeds)."""
    labels = ds.labels[split.test]
    lesions = [ds.lesion_ids[i] for i in split.test]

    def correct(arm: str) -> np.ndarray:
        return np.stack(
            [
                np.load(r["_dir"] / "test_probs.npz")["probs"].argmax(1) == labels
                for r in results[arm]
            ]
        )

    table = {}
    for arm, rs in results.items():
        rec = np.array([r["test"]["recall"] for r in rs])
        table[arm] = {
            "recall_mean": rec.mean(0).tolist(),
            "recall_sd": rec.std(0, ddof=1).tolist() if len(rs) > 1 else [0.0] * rec.shape[1],
            **{
                m: [r["test"][m] for r in rs]
                for m in ("balanced_accuracy", "macro_f1", "macro_auc", "accuracy")
            },
        }
    hits = {arm: correct(arm) for arm in results}
    gains = {}
    for arm, ref in GAIN_PAIRS:
        if arm not in results or ref not in results:
            continue
        for c in classes:
            ci = bootstrap_recall_gain(hits[ref], hits[arm], labels == ds.class_index(c), lesions)
            gains[f"{arm} vs {ref}: {c}"] = {"arm": arm, "reference": ref, "class": c, **ci}
    return {"per_arm": table, "gains": gains}


def external_test(
    path: str,
    ds: Dataset,
    arm_results: dict[str, list[dict]],
    new_model: Callable[[], torch.nn.Module],
    device: torch.device,
    load,
    precision: str,
) -> dict:
    """Evaluate every trained classifier on another dataset whose classes match by name."""
    ext = load(path, ds.images.shape[1])
    missing = sorted(set(ds.class_names) - set(ext.class_names))
    extra = sorted(set(ext.class_names) - set(ds.class_names))
    if missing or extra:
        raise UserError(
            f"--external-test {path}: its classes do not match the training data "
            f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}); "
            "pass a set with the same class names"
        )
    labels = torch.tensor([ds.class_names.index(ext.class_names[i]) for i in ext.labels])
    x = _tensor(ext.images, device)
    k = len(ds.class_names)
    per_arm = {}
    for arm, rs in arm_results.items():
        per_arm[arm] = []
        for r in rs:
            model = new_model()
            model.load_state_dict(torch.load(r["_dir"] / "model.pt", weights_only=True))
            model = model.to(device, memory_format=torch.channels_last)
            probs = predict_proba(model, x, precision=precision).cpu()
            per_arm[arm].append(classification_metrics(probs, labels, k))
    return {"source": ext.source, "n": len(labels), "per_arm": per_arm}
