"""The generator's signature: does a classifier call generated images the rare class more
readily than real ones of it?

Only the rare classes receive synthetic images, so "looks generated" is a perfect cue for
"rare class" in a synthetic arm's training set. Per rare class, fresh samples of the class's
generator (a new latent seed, never trained on), unfiltered and passed through the set's
filter as its kept samples were, are given to every arm's classifiers: a synthetic arm that
calls nearly all of them the class while finding fewer real ones than the baseline has
learnt the generator's signature, not the lesion. The baseline's row (a classifier that never
saw a synthetic image) is the samples' fidelity as a real-trained classifier sees it: a
per-class Classification Accuracy Score (Ravuri & Vinyals 2019).
Each column is kept per model (fold, seed) and pooled with a 95 % interval over new training
seeds and new images (classifier.shares: a Wilson interval at the crossed design's effective
n, covering down to shares of 0.999 in benchmarks/share_coverage.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from classifier.gains import resamples
from classifier.shares import share_interval
from gan.conventions import to_nchw
from gan.training import sample
from pipelines.results.compare import Pooled, predict_probs
from pipelines.steps.detect import FRESH_FILE, FRESH_N, fresh_seed
from pipelines.steps.sampling import load_generator


def fresh_samples(
    checkpoint: Path, size: int, device: torch.device, precision: str, seed: int, n: int = FRESH_N
):
    """n new uint8 N×S×S×3 samples of a generator checkpoint, unfiltered, on latents of `seed`
    (the set's fresh seed)."""
    G, _ = load_generator(checkpoint, size, device)
    z = torch.randn(n, G.nz, generator=torch.Generator().manual_seed(seed)).to(device)
    return sample(G, z, precision=precision).cpu().permute(0, 2, 3, 1).numpy()


def filtered_fresh(folder: Path) -> np.ndarray | None:
    """The set's fresh samples made as its kept ones were (sampling.FRESH_FILE: filtered for a
    filtered set); None for a set drawn before they were kept."""
    path = folder / FRESH_FILE
    if not path.is_file():
        return None
    with np.load(path) as z:
        return z["images"] if str(z["filter"]) != "none" else None


def signature(
    plans: list, parts: list, summaries: list[dict], pooled: Pooled, set_name: str = "gan"
) -> dict:
    """Per rare class and arm: recall on the real test images and the share of fresh samples
    called the class, per (fold, seed) model, and each pooled over the folds with its interval
    over new seeds and new images (classifier.shares). plans, parts and summaries are per fold
    (summaries: class -> sample set -> its summary, as steps.samples.synthetic_sets gives);
    pooled: every arm's test predictions (results.compare.pool_predictions)."""
    out: dict[str, dict] = {}
    calls: dict[tuple, list[np.ndarray]] = {}  # (class, arm, column) -> per fold S×n
    for plan, (_, arms), sets in zip(plans, parts, summaries):
        cfg, ds = plan.cfg, plan.dataset
        device = torch.device(cfg.device)
        for c in plan.classes:
            if set_name not in sets.get(c, {}):
                continue
            k = ds.class_index(c)
            summary = sets[c][set_name]
            seed = fresh_seed(summary["options"]["seed"])
            fresh_n = summary["options"].get("fresh_n", FRESH_N)
            images = {
                "fresh": fresh_samples(
                    plan.layout.gan_dir(c) / Path(summary["checkpoint"]).name,
                    ds.images.shape[1], device, cfg.precision, seed, fresh_n,
                ),
                "fresh_filtered": filtered_fresh(Path(summary["_dir"])),
            }  # fmt: skip
            inputs = {
                name: to_nchw(plan.classifier_inputs(x), device)
                for name, x in images.items() if x is not None
            }  # fmt: skip
            for arm, results in arms.items():
                row = out.setdefault(c, {}).setdefault(
                    arm,
                    {
                        "real_recall": [],
                        **{name: [] for name in inputs},
                        "fresh_seed": seed,
                        "fresh_n": fresh_n,
                    },
                )
                for name, x in inputs.items():
                    called = np.stack([
                        predict_probs(r, x, plan.new_classifier, device, cfg.precision).argmax(1)
                        == k for r in results
                    ])  # fmt: skip
                    row[name] += [float(v) for v in called.mean(1)]
                    calls.setdefault((c, arm, name), []).append(called)
                row["real_recall"] += [float(r["test"]["recall"][k]) for r in results]
    for (c, arm, name), per_fold in calls.items():
        out[c][arm].setdefault("intervals", {})[name] = _fresh_interval(per_fold)
    for c, arms in out.items():
        for arm, row in arms.items():
            row["intervals"]["real_recall"] = _recall_interval(pooled, arm, c, plans[0].dataset)
    return out


def _fresh_interval(per_fold: list[np.ndarray]) -> dict:
    """The share of fresh samples called the class over every fold's samples (each sample its
    own unit; a fold's seed-s model calls its own fold's samples)."""
    units = [f"{f}:{i}" for f, x in enumerate(per_fold) for i in range(x.shape[1])]
    return share_interval(np.concatenate(per_fold, axis=1), resamples(units))


def _recall_interval(pooled: Pooled, arm: str, c: str, ds) -> dict:
    """Recall on the real test images of class c, units their lesions."""
    k = ds.class_index(c)
    mine = pooled.labels == k
    hits = pooled.probs[arm][:, mine].argmax(-1) == k
    return share_interval(hits, resamples([i for i, m in zip(pooled.lesion_ids, mine) if m]))
