"""The ExperimentPlan: what every job of one comparison derives from the config and the data.

One plan per (fold, dose, scarcity level), computed once per process: the split, the rare
classes' real counts and targets, the sample sets and which arms are synthetic, every GAN's
architecture and training config, the feature network's and every classifier's recipe. Jobs
(their keys), steps, results and export read its fields; nothing derives them a second way.
The data and the split behind it are loaded once per process too (the decode cache makes
loading cheap; a dry or refused run keeps the split in memory, and write_splits stores it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from classifier.training import ClassifierConfig
from gan.conventions import atomic_write_text
from gan.networks import Architecture
from gan.training import TrainConfig
from pipelines.config.arms import SampleSet, companion_sets
from pipelines.config.experiment import (
    CONFIG_FORMAT,
    ExperimentConfig,
    config_to_json,
    split_configs,
)
from pipelines.data.dataset import Dataset
from pipelines.data.load import load_dataset
from pipelines.data.splits import Split, keep_for_share, load_or_make_split
from pipelines.errors import UserError
from pipelines.steps.feature_space import FeatureRequest, load_feature_space
from pipelines.steps.recipe import classifier_config, classifier_inputs, classifier_network
from pipelines.steps.training_set import companion_counts, targets_for
from pipelines.store.layout import SOURCE, RunLayout
from pipelines.store.records import read_split_record, run_record


@functools.lru_cache(maxsize=1)
def _dataset(data, size, fmt, cache_dir, skip_bad_images, allow_new_classes) -> Dataset:
    return load_dataset(
        data, size, fmt, cache_dir, skip_bad_images, progress=False,
        allow_new_classes=allow_new_classes,
    )  # fmt: skip


def dataset(cfg: ExperimentConfig) -> Dataset:
    """The experiment's data at the GANs' size, loaded once per process (the decode cache
    makes loading cheap)."""
    return _dataset(
        cfg.data, cfg.profile.size, cfg.fmt, cfg.cache_dir, cfg.skip_bad_images,
        cfg.allow_new_classes,
    )  # fmt: skip


@functools.lru_cache(maxsize=16)
def _split(cfg: ExperimentConfig) -> Split:
    """The split stored in the run directory, or, before the run starts, the one it will store
    (made in memory: a dry or a refused run writes nothing; write_splits stores it)."""
    stored = cfg.layout.split_file
    if stored.is_file():
        check_stored_split(stored, cfg.split_seed)
    return _load_or_make(cfg, write=False)


def _load_or_make(cfg: ExperimentConfig, write: bool) -> Split:
    fold = (cfg.fold, cfg.folds) if cfg.fold is not None else None
    keep = {c: cfg.keep_n for c in cfg.classes} if cfg.keep_n else None
    if cfg.oracle_share:
        keep = keep_for_share(dataset(cfg), cfg.split_seed, list(cfg.classes), cfg.oracle_share)
    return load_or_make_split(
        dataset(cfg), Path(cfg.run_dir), seed=cfg.split_seed, fold=fold, keep=keep, write=write
    )


def write_splits(cfg: ExperimentConfig) -> None:
    """Store every split of the experiment in its run directory, once the run starts."""
    for scfg in split_configs(cfg):
        if not scfg.layout.split_file.is_file():
            _load_or_make(scfg, write=True)
    _split.cache_clear()
    _plan.cache_clear()


def check_stored_split(path: Path, seed: int) -> dict:
    """A stored split.json that can be read and was made with this --split-seed: its seed is
    part of every job's key, so another would silently retrain everything on the old split."""
    saved = read_split_record(path)
    made_with = saved.get("seed")
    if made_with is not None and made_with != seed and saved.get("kind") != "official":
        raise UserError(
            f"--split-seed {seed}: {path} was made with --split-seed {made_with}, and a run "
            f"directory keeps its split; pass --split-seed {made_with} to continue this run, "
            "or another --run-dir for a new split"
        )
    return saved


def data_and_split(cfg: ExperimentConfig) -> tuple[Dataset, Split]:
    """The dataset and (this fold's) split."""
    return dataset(cfg), _split(cfg)


def write_experiment_record(cfg: ExperimentConfig, ds: Dataset) -> Path:
    """<run>/experiment.json: config, versions and data identity, written before any job.
    A previous record of another config is kept, appended to experiment_history.jsonl."""
    path = cfg.layout.experiment_file
    record = {"format": CONFIG_FORMAT, **run_record(config_to_json(cfg), ds.record())}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = None
        if previous is not None and previous.get("config") != record["config"]:
            with open(path.with_name("experiment_history.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(previous) + "\n")
    atomic_write_text(path, json.dumps(record, indent=1))
    return path


@dataclass(frozen=True)
class GanSpec:
    """One GAN of the plan: what it is and how it trains (a rare class fine-tunes from the
    source's checkpoint, which steps.gan finds on disk when it runs)."""

    arch: Architecture
    train: TrainConfig
    eval_n: int  # generated images per FID/KID evaluation


@dataclass(frozen=True, eq=False)
class ExperimentPlan:
    """Everything one comparison (a fold, a dose, a scarcity level) derives from its config
    and the data. Made by plan_for; a frozen value that no step changes."""

    cfg: ExperimentConfig  # the fold's / level's own config (its own run directory)
    dose: float | None
    dataset: Dataset
    split: Split
    real_counts: dict[str, int]  # real training images per rare class
    targets: dict[str, int]  # training images per rare class that every arm grows to
    sample_sets: tuple[SampleSet, ...]  # the sets this comparison's arms draw from
    companions: dict[str, int]  # synthetic images per other class, where an arm adds them
    gans: dict[str, GanSpec]  # the source (`all`, where the profile trains one), each GAN class
    features: ClassifierConfig  # how the domain feature network trains (its key hashes this)

    @property
    def layout(self) -> RunLayout:
        """The run directory of this comparison's fine-tunes and samples (a dose's own)."""
        return self.cfg.layout.dose(self.dose)

    @property
    def classes(self) -> list[str]:
        return list(self.cfg.classes)

    @property
    def gan_classes(self) -> list[str]:
        """The classes with a GAN of their own: the rare ones, and the others where an arm
        puts synthetic images in every class (gan-all-classes)."""
        return self.classes + list(self.companions)

    def sets_of(self, cls: str) -> tuple[SampleSet, ...]:
        """The sample sets drawn for a class: every set for a rare one, for another class
        those of the all-classes arms."""
        if cls in self.cfg.classes:
            return self.sample_sets
        return tuple(s for s in self.sample_sets if s in companion_sets(self.cfg.arms))

    def new_classifier(self) -> torch.nn.Module:
        """The one classifier network of every arm, freshly initialised."""
        return classifier_network(self.cfg, len(self.dataset.class_names))

    def classifier_inputs(self, images: np.ndarray) -> np.ndarray:
        """Images (real or synthetic) as every arm's classifier takes them."""
        return classifier_inputs(self.cfg.classifier_size, images)

    def classifier_config(self, arm: str, seed: int) -> ClassifierConfig:
        """The one classifier recipe of every arm (only reweight's loss differs); its step
        budget is sized on the real training split, the same for every arm."""
        n_train = len(self.split.train)
        return classifier_config(self.cfg.profile, n_train, seed, self.cfg.precision, arm)


def plan_for(cfg: ExperimentConfig, dose: float | None = None) -> ExperimentPlan:
    """The plan of one comparison: cfg is the fold's or level's config, dose its dose (a
    dose study's controls, dose None, draw on no sample set and keep the nominal targets).
    Made once per process; `progress` is part of the cache key (configs compare without it,
    and a quiet worker must not get a plan that shows progress bars)."""
    return _plan(cfg, cfg.progress, dose)


@functools.lru_cache(maxsize=64)
def _plan(cfg: ExperimentConfig, progress: bool, dose: float | None) -> ExperimentPlan:
    ds, split = data_and_split(cfg)
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    real = {c: int(counts[ds.class_index(c)]) for c in cfg.classes}
    controls_only = bool(cfg.gan_doses) and dose is None
    targets = targets_for(ds, split, list(cfg.classes), cfg.target)
    wanted = bool(companion_sets(cfg.arms)) and not controls_only
    companions = companion_counts(ds, split, targets) if wanted else {}
    gan_real = real | {c: int(counts[ds.class_index(c)]) for c in companions}
    return ExperimentPlan(
        cfg=cfg,
        dose=dose,
        dataset=ds,
        split=split,
        real_counts=real,
        targets=targets,
        sample_sets=() if controls_only else cfg.sample_sets,
        companions=companions,
        gans=_gans(cfg, dose, len(split.train), gan_real),
        features=_feature_training(cfg, len(split.train)),
    )


def _feature_training(cfg: ExperimentConfig, n_train: int) -> ClassifierConfig:
    steps = cfg.profile.feature_epochs * n_train / 64
    return ClassifierConfig(
        steps=int(min(cfg.profile.feature_steps_cap, max(20, steps))),
        batch_size=64,
        sampling="balanced",
        eval_every=50,
        precision=cfg.precision,
    )


def _gans(cfg: ExperimentConfig, dose: float | None, n_train: int, real: dict) -> dict:
    """Every GAN of the comparison. In a dose study (--gan-doses) the source trains to each
    dose in turn, and a rare class fine-tunes from the source's snapshot at dose d for its
    usual budget times sqrt(d / the profile's source kimg): the source's kimg buys most of the
    quality, and a fine-tune of a class's ~100 images gains less from each extra kimg
    (docs/generator_budget.md), so it grows more slowly than the source."""
    p = cfg.profile
    arch = Architecture(size=p.size, ngf=p.gan_width, ndf=p.gan_width, kind=p.gan_arch)
    has_source = p.source_kimg > 0
    gans = {}
    if has_source:
        kimg = min(p.source_kimg, max(p.gan_kimg_min, p.source_epochs * n_train / 1000))
        kimg = kimg if dose is None else dose
        source = _train(cfg, kimg, sampling=p.source_sampling)
        gans[SOURCE] = GanSpec(arch, source, 2 * p.gan_eval_n)  # every class's reals
    for c, n in real.items():
        kimg = min(p.gan_kimg_cap, max(p.gan_kimg_min, p.gan_epochs * n / 1000))
        kimg = kimg if dose is None else kimg * (dose / p.source_kimg) ** 0.5
        freeze = {"freeze_d": p.freeze_d if has_source or dose is not None else 0}
        gans[c] = GanSpec(arch, _train(cfg, kimg, **freeze), p.gan_eval_n)
    return gans


def _train(cfg: ExperimentConfig, kimg: float, **extra) -> TrainConfig:
    p = cfg.profile
    return TrainConfig(
        kimg=kimg,
        batch_size=p.gan_batch,
        precision=cfg.precision,
        seed=0,
        snapshot_kimg=max(kimg / 4, 0.1),
        eval_kimg=max(kimg / 4, 0.1),
        loss=p.gan_loss,
        r1_gamma=p.gan_r1_gamma,
        **extra,
    )


def feature_space(plan: ExperimentPlan):
    """The FID/KID feature space: trained by the `features` job, loaded by every later one."""
    cfg = plan.cfg
    request = FeatureRequest(
        cfg.feature_space, cfg.precision, cfg.inception_weights, plan.features,
        cfg.profile.feature_width,
    )  # fmt: skip
    device = torch.device(cfg.device)
    return load_feature_space(
        request, plan.dataset, plan.split, Path(cfg.run_dir), device, cfg.progress
    )
