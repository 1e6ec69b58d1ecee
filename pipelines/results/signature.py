"""The generator's signature: does a classifier call generated images the rare class more
readily than real ones of it?

Only the rare classes receive synthetic images, so "looks generated" is a perfect cue for
"rare class" in a synthetic arm's training set. Per rare class, fresh samples of the class's
generator (a new latent seed, never trained on; unfiltered) are given to every arm's
classifiers: a synthetic arm that calls nearly all of them the class while finding fewer real
ones than the baseline has learnt the generator's signature, not the lesion. The baseline's
row (a classifier that never saw a synthetic image) is the samples' fidelity as a real-trained
classifier sees it: a per-class Classification Accuracy Score (Ravuri & Vinyals 2019).
Figures are mean ± sd over seeds (and folds): the seeds' spread, not an interval.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gan.conventions import to_nchw
from gan.training import sample
from pipelines.results.compare import predict_probs
from pipelines.steps.sampling import load_generator

FRESH_N = 256  # fresh samples per class: a share's sd <= 0.031 per model; the report predicts
# them with every model (8-view TTA), its slowest part: 512 took 76 of the demo report's 86 s
FRESH_SEED = 1  # the sample sets drew their pools with latent seed 0


def fresh_samples(checkpoint: Path, size: int, device: torch.device, precision: str):
    """FRESH_N new uint8 N×S×S×3 samples of a generator checkpoint, on latents of FRESH_SEED."""
    G, _ = load_generator(checkpoint, size, device)
    g = torch.Generator().manual_seed(FRESH_SEED)
    z = torch.randn(FRESH_N, G.nz, generator=g).to(device)
    return sample(G, z, precision=precision).cpu().permute(0, 2, 3, 1).numpy()


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
            images = fresh_samples(
                plan.layout.gan_dir(c) / Path(sets[c][set_name]["checkpoint"]).name,
                ds.images.shape[1], device, cfg.precision,
            )  # fmt: skip
            x = to_nchw(plan.classifier_inputs(images), device)
            for arm, results in arms.items():
                row = out.setdefault(c, {}).setdefault(arm, {"real_recall": [], "fresh": []})
                for r in results:
                    called = predict_probs(r, x, plan.new_classifier, device, cfg.precision)
                    row["fresh"].append(float((called.argmax(1) == k).mean()))
                    row["real_recall"].append(float(r["test"]["recall"][k]))
    return {
        c: {arm: {**v, "fresh_n": FRESH_N, "fresh_seed": FRESH_SEED} for arm, v in arms.items()}
        for c, arms in out.items()
    }
