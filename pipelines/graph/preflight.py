"""What augment-and-compare checks before any work, in its own terms: what would otherwise
fail hours in (a class too small for a GAN, a target that cannot fit in memory, an external
test set of other classes, more folds than a rare class has lesions).

Nothing here writes to the run directory: the splits are made in memory
(pipelines.experiment._split), so a refused or a dry run leaves no trace there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier.zoo import NetworkUnavailable, check_network, display_name
from pipelines.config.arms import ARM_SPECS
from pipelines.config.experiment import (
    ExperimentConfig,
    check_doses,
    check_oracle,
    check_scarcity,
    split_configs,
)
from pipelines.data.dataset import Dataset
from pipelines.data.load import load_dataset
from pipelines.data.overlap import without_home_images
from pipelines.errors import UserError
from pipelines.results.compare import check_external_classes
from pipelines.steps.feature_space import FEATURE_DIMS
from pipelines.steps.gan_run import class_run
from pipelines.steps.plan import ExperimentPlan, data_and_split, dataset, plan_for
from pipelines.steps.sampling import SampleOptions, available_memory, memory_needed
from pipelines.steps.training_set import targets_for
from pipelines.store.records import file_sha256


def check_inputs(cfg: ExperimentConfig) -> tuple[Dataset, list[str]]:
    """Fail before any work on what would otherwise fail hours in: data, classes, folds,
    targets, pretrained weights, the external test set. Returns the dataset and the notes
    the user should read before the run starts."""
    check_doses(cfg)
    check_scarcity(cfg)
    check_oracle(cfg)
    ds = dataset(cfg)
    for c in cfg.classes:
        ds.class_index(c)
    check_folds(cfg, ds)
    for scfg in split_configs(cfg):
        ds, split = data_and_split(scfg)
        for c in cfg.classes if cfg.sample_sets else ():
            class_run(ds, split, c, Path(scfg.run_dir))  # enough images for a GAN?
        plan = plan_for(scfg)
        check_target_memory(plan)
    check_classifier(plan)
    external = check_external(cfg, ds)
    notes = ["built-in SYNTHETIC demo data (pass --data for real data)"] if ds.synthetic else []
    skipped = ds.skipped_note(f"{cfg.run_dir}/split.json and results.json")
    return ds, notes + [n for n in (skipped, external) if n]


def check_classifier(plan: ExperimentPlan) -> None:
    """--classifier's network built as every arm builds it (its weights loaded) and one batch
    run through it, and --pretrained-weights still the file the run began with: a network
    that cannot be built, loaded or trained is one line now, not a traceback in every job."""
    choice = plan.cfg.classifier
    label = display_name(choice.family, choice.name)
    if choice.weights and Path(choice.weights).is_file():
        now = file_sha256(Path(choice.weights))
        if now != choice.weights_sha256:
            raise UserError(
                f"--pretrained-weights {choice.weights} changed since this run began (sha256 "
                f"{now[:12]}, was {choice.weights_sha256[:12]}); put the original back, or "
                "start a new --run-dir with the new file"
            )
    try:
        net = plan.new_classifier()
        check_network(net, len(plan.dataset.class_names), plan.cfg.classifier_size, label)
    except NetworkUnavailable as e:
        raise UserError(str(e)) from None


def check_folds(cfg: ExperimentConfig, ds: Dataset) -> None:
    """K folds test every lesion once: with more folds than a rare class has lesions, some
    folds would test none of it (and --folds 1000 wrote 1000 split files)."""
    if cfg.folds <= 1:
        return
    ids = np.asarray(ds.lesion_ids)
    lesions = {c: len(set(ids[ds.labels == ds.class_index(c)])) for c in cfg.classes}
    fewest = min(lesions, key=lesions.__getitem__)
    if cfg.folds > lesions[fewest]:
        raise UserError(
            f"--folds {cfg.folds}: {fewest!r} has {lesions[fewest]} lesions, the fewest of the "
            f"rare classes, so some folds would test none of it; use --folds "
            f"{lesions[fewest]} or fewer"
        )


def check_target_memory(plan: ExperimentPlan) -> None:
    """A target whose sample pool or training set cannot fit in memory, refused up front and
    in --target's terms (it used to fail at the third job, advising gan-sample's --n)."""
    cfg, ds, split, targets = plan.cfg, plan.dataset, plan.split, plan.targets
    extra = {c: t - plan.real_counts[c] for c, t in targets.items()}
    adds = [a for a in cfg.arms if ARM_SPECS[a].synthetic_count(1, 1.0) or ARM_SPECS[a].oversample]
    if not adds or max(extra.values(), default=0) <= 0:
        return
    size, side = ds.images.shape[1], cfg.classifier_size
    added = {c: max(e, 0) for c, e in extra.items()} | plan.companions
    n_train = len(split.train) + sum(added.values())
    needs = {"a training set": 2 * 3 * side * side * n_train * cfg.workers}  # arm + its copy
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    for c in plan.gan_classes:
        for sset in plan.sets_of(c):
            opts = SampleOptions(n=max(added[c], 2), filter=sset.filter)
            dim = FEATURE_DIMS[cfg.feature_space]
            real = int(counts[ds.class_index(c)])
            needs[f"sampling {c}"] = memory_needed(opts, size, dim, real)
    what, need = max(needs.items(), key=lambda kv: kv[1])
    have = available_memory()
    if need > 0.8 * have:
        gib, biggest = 1 << 30, max(extra, key=extra.__getitem__)
        auto = targets_for(ds, split, [biggest], "auto")[biggest]
        raise UserError(
            f"--target {targets[biggest]:,}: {biggest!r} would get {extra[biggest]:,} more "
            f"training images, and {what} would take about {need / gib:.1f} GiB of memory, "
            f"with {have / gib:.1f} GiB available; lower --target (auto gives {auto:,})"
        )


def check_external(cfg: ExperimentConfig, ds: Dataset) -> str | None:
    """--external-test's path, layout and class names, and its images that are the home
    data's (data.overlap), before any work rather than at the report job after all training
    (with --data's advice for a missing path). Returns the note on images left out."""
    path = cfg.external
    if not path:
        return None
    if path != "demo" and not Path(path).exists():
        raise UserError(
            f"--external-test {path} does not exist; pass the path of a dataset with the "
            "training data's classes"
        )
    try:  # decoded into the cache, from which the report job loads it again
        ext = load_dataset(
            path, ds.images.shape[1], None, cfg.cache_dir, cfg.skip_bad_images,
            progress=False, allow_new_classes=cfg.allow_new_classes,
        )  # fmt: skip
    except UserError as e:
        raise UserError(f"--external-test {path}: {e.message}") from None
    check_external_classes(path, ds.class_names, ext.class_names)
    return without_home_images(ds, ext)[1]
