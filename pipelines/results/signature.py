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
Figures are mean ± sd over seeds (and folds): the seeds' spread, not an interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gan.conventions import to_nchw
from gan.training import sample
from pipelines.results.compare import predict_probs
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


def signature(plans: list, parts: list, summaries: list[dict], set_name: str = "gan") -> dict:
    """Per rare class and arm: recall on the real test images and the share of fresh samples
    called the class, per (fold, seed) model. plans, parts and summaries are per fold
    (summaries: class -> sample set -> its summary, as steps.samples.synthetic_sets gives)."""
    out: dict[str, dict] = {}
    for plan, (_, arms), sets in zip(plans, parts, summaries):
        cfg, ds = plan.cfg, plan.dataset
        device = torch.device(cfg.device)
        for c in plan.classes:
            if set_name not in sets.get(c, {}):
                continue
            k = ds.class_index(c)
            summary = sets[c][set_name]
            seed = fresh_seed(summary["options"]["seed"])
            images = {
                "fresh": fresh_samples(
                    plan.layout.gan_dir(c) / Path(summary["checkpoint"]).name,
                    ds.images.shape[1], device, cfg.precision, seed,
                ),
                "fresh_filtered": filtered_fresh(Path(summary["_dir"])),
            }  # fmt: skip
            inputs = {
                name: to_nchw(plan.classifier_inputs(x), device)
                for name, x in images.items() if x is not None
            }  # fmt: skip
            for arm, results in arms.items():
                row = out.setdefault(c, {}).setdefault(
                    arm, {"real_recall": [], **{name: [] for name in inputs}, "fresh_seed": seed}
                )
                for r in results:
                    for name, x in inputs.items():
                        called = predict_probs(r, x, plan.new_classifier, device, cfg.precision)
                        row[name].append(float((called.argmax(1) == k).mean()))
                    row["real_recall"].append(float(r["test"]["recall"][k]))
    return {
        c: {arm: {**v, "fresh_n": FRESH_N} for arm, v in arms.items()} for c, arms in out.items()
    }
