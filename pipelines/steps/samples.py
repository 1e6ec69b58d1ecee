"""Draw one class's sample set up to what it needs, and read the sets back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipelines.config.arms import SampleSet
from pipelines.errors import UserError
from pipelines.steps.detect import DETECT_STEPS, FRESH_N, Detector
from pipelines.steps.gan_run import class_run
from pipelines.steps.plan import ExperimentPlan, feature_space
from pipelines.steps.sampling import SampleOptions, sample_class
from pipelines.store.records import read_json_record

POOL_FACTORS = (2.0, 4.0, 8.0)  # a weak generator yields near-duplicates: grow the pool


def sample_set(plan: ExperimentPlan, sset: SampleSet, cls: str) -> dict:
    """Sample and filter (or not) one class up to what it needs.

    A weak generator yields many near-duplicates, so the pool grows (2x, 4x, 8x n) until the
    filter keeps enough; if even 8x falls short, the class reaches fewer images than its
    target, and every arm is matched to the count the first set reaches (reached_targets)."""
    cfg, ds = plan.cfg, plan.dataset
    run = class_run(ds, plan.split, cls, plan.layout.root)
    need = _needed(plan, sset, cls)
    folder = plan.layout.samples_dir(sset.folder, cls)

    def options(pool_factor: float) -> SampleOptions:
        return SampleOptions(
            n=max(need, 2), filter=sset.filter, fmt="npz", seed=0, precision=cfg.precision,
            pool_factor=pool_factor, fresh_n=cfg.profile.fresh_n,
        )  # fmt: skip

    saved = saved_summary(folder, redraw_damaged=True)
    if saved is not None and _same_request(saved["options"], options(POOL_FACTORS[0])):
        if saved["kept"] >= need or saved["options"]["pool_factor"] >= POOL_FACTORS[-1]:
            return {"kept": saved["kept"], "reused": True}
    space = feature_space(plan)
    for pool_factor in POOL_FACTORS:
        summary = sample_class(
            run, options(pool_factor), space, folder.parent, torch.device(cfg.device),
            ds.record(), True, Detector(plan.classifier_inputs, detect_steps(plan)),
        )  # fmt: skip
        if summary["kept"] >= need:
            break
    return {"kept": summary["kept"]}


def detect_steps(plan: ExperimentPlan) -> int:
    """The detector trains no longer than the arms' classifiers do (nor than DETECT_STEPS): the
    question is what a classifier of this budget can pick up."""
    return min(DETECT_STEPS, plan.classifier_config("baseline", 0).steps)


SUMMARY_ADVICE = (
    "delete it and rerun the same command: its sample set is drawn again (the samples job "
    "is not done without it)"
)


def saved_summary(folder: Path, redraw_damaged: bool = False) -> dict | None:
    """A sample set's summary.json, None if there is none (or, with redraw_damaged, if it is
    damaged: the sample job draws the set again); a damaged one is otherwise a one-line error
    naming it."""
    path = folder / "summary.json"
    if not path.is_file():
        return None
    try:
        return read_json_record(path, SUMMARY_ADVICE)
    except UserError:
        if redraw_damaged:
            return None
        raise


def _same_request(saved: dict, wanted: SampleOptions) -> bool:
    """A saved set answers this request if only its pool grew (the pool factor)."""
    asked = {k: v for k, v in vars(wanted).items() if k != "pool_factor"}
    before = {"fresh_n": FRESH_N}  # what a set drawn before an option existed was drawn with
    return all(saved.get(k, before.get(k)) == v for k, v in asked.items())


def _needed(plan: ExperimentPlan, sset: SampleSet, cls: str) -> int:
    """Synthetic images `sset` must add to `cls`: up to the target, or, for a set matched to
    another (gan-unfiltered), up to what that set reached (every arm gets the same count);
    a class that is not rare, what the all-classes arms add to it."""
    if cls in plan.companions:
        return plan.companions[cls]
    n_real, target = plan.real_counts[cls], plan.targets[cls]
    matched = [s for s in plan.sample_sets if s.name == sset.matched_to]
    if matched:
        kept = saved_summary(plan.layout.samples_dir(matched[0].folder, cls))["kept"]
        target = min(target, n_real + min(kept, target - n_real))
    return max(target - n_real, 0)


def synthetic_sets(plan: ExperimentPlan) -> tuple[dict, dict, dict[str, int]]:
    """(images per sample set and class, sample summaries, reached training count per class),
    read back from the sample jobs' outputs (of the plan's dose, in a dose study). The
    classes that are not rare (gan-all-classes) have images and summaries, and no target."""
    reached = dict(plan.targets)
    synthetic: dict[str, dict[str, np.ndarray]] = {}
    summaries: dict[str, dict] = {}
    for c in plan.gan_classes:
        for sset in plan.sets_of(c):
            rare = c in reached
            need = max(reached[c] - plan.real_counts[c], 0) if rare else plan.companions[c]
            folder = plan.layout.samples_dir(sset.folder, c)
            with np.load(folder / "samples.npz") as z:
                images = synthetic.setdefault(sset.name, {})[c] = z["images"][:need]
            summaries.setdefault(c, {})[sset.name] = {**saved_summary(folder), "_dir": folder}
            if rare:
                reached[c] = plan.real_counts[c] + len(images)
    return synthetic, summaries, reached
