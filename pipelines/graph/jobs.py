"""augment-and-compare as typed jobs: read this file top to bottom to know the experiment.

    features ─┬─> gan/all ─> gan/<class> ─> samples/gan/<class> ─> samples/gan-unfiltered/<class>
              └────────────> gan/<class>   (without a source budget)
    every samples/* ─> classifier/<arm>/seed<k> ─> report

Each job is a frozen dataclass (FeaturesJob, GanJob, SamplesJob, ClassifierJob, ReportJob,
each with its fold) that declares its dependencies and `reads`, the slice of the experiment's
config its outputs depend on. Its key hashes that slice with its dependencies' keys; its done-
marker holds the key, and a keyed output folder (a comparison's classifiers) is named by it, so
"what this depends on" has one definition and no name is ever parsed. The job functions are
also idempotent on their own: a finished GAN, sample set or classifier found on disk is reused,
so a run interrupted anywhere continues where it stopped.

`run(cfg, tb)` gets the job's TensorBoard folder <run>/tb/<job name> (None: off); the jobs
that train something (GANs, classifiers) write their curves there.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from pipelines.config.arms import SAMPLE_SETS
from pipelines.config.experiment import (
    ClassifierChoice,
    ExperimentConfig,
    fold_config,
    fold_configs,
    scarcity_config,
)
from pipelines.graph import scheduler
from pipelines.graph.scheduler import Node
from pipelines.results.reports import write_reports
from pipelines.steps import classifier, gan, samples
from pipelines.steps.detect import FRESH_N
from pipelines.steps.feature_space import DOMAIN_WIDTH
from pipelines.steps.gan_run import SELECTION_RULE
from pipelines.steps.plan import feature_space, plan_for
from pipelines.store.checkpoints import GanFolder
from pipelines.store.layout import SOURCE
from pipelines.store.records import key_of


def _prefix(fold: int | None, dose: float | None = None, rare_n: int | None = None) -> str:
    parts = [] if rare_n is None else [f"n{rare_n}/"]
    parts += [] if fold is None else [f"fold{fold}/"]
    return "".join(parts + ([] if dose is None else [f"dose{dose:g}/"]))


@dataclass(frozen=True)
class FeaturesJob:
    """The domain feature network FID/KID are measured in (or Inception's, loaded)."""

    fold: int | None = None
    rare_n: int | None = None
    stage: ClassVar[str] = "feature network"

    @property
    def name(self) -> str:
        return _prefix(self.fold, None, self.rare_n) + "features"

    def deps(self, cfg: ExperimentConfig) -> tuple:
        return ()

    def reads(self, cfg: ExperimentConfig) -> dict:
        plan = plan_for(cfg)
        space = {"space": cfg.feature_space, "size": cfg.profile.size}
        if cfg.feature_space == "domain":
            space["training"] = plan.features.as_dict()
            width = cfg.profile.feature_width
            space |= {} if width == DOMAIN_WIDTH else {"width": width}
        return {**space, "data": plan.dataset.fingerprint, "split": split_slice(cfg)}

    def run(self, cfg: ExperimentConfig, tb: Path | None = None) -> dict:
        space = feature_space(plan_for(cfg))
        return {"feature_space": f"{space.name}-{space.dim}d"}


@dataclass(frozen=True)
class GanJob:
    """One GAN: the all-classes source, or a rare class (fine-tuned from the source). In a
    dose study, GanJob(all, d) trains the source on from the previous dose to d and keeps
    its snapshot, and GanJob(class, d) fine-tunes from that snapshot."""

    cls: str
    fold: int | None = None
    dose: float | None = None
    rare_n: int | None = None
    stage: ClassVar[str] = "GAN training"

    @property
    def name(self) -> str:
        return f"{_prefix(self.fold, self.dose, self.rare_n)}gan/{self.cls}"

    def deps(self, cfg: ExperimentConfig) -> tuple:
        if self.cls == SOURCE:
            earlier = [d for d in cfg.gan_doses if self.dose is not None and d < self.dose]
            return (
                FeaturesJob(self.fold, self.rare_n),
                *([GanJob(SOURCE, self.fold, max(earlier), self.rare_n)] if earlier else []),
            )
        source = cfg.profile.source_kimg > 0
        src = [GanJob(SOURCE, self.fold, self.dose, self.rare_n)] if source else []
        return (FeaturesJob(self.fold, self.rare_n), *src)

    def reads(self, cfg: ExperimentConfig) -> dict:
        spec = plan_for(cfg, self.dose).gans[self.cls]
        train = {"arch": spec.arch.as_dict(), "train": spec.train.as_dict(), "eval_n": spec.eval_n}
        return {**train, "selection": SELECTION_RULE}

    def run(self, cfg: ExperimentConfig, tb: Path | None = None) -> dict:
        return gan.train_gan(plan_for(cfg, self.dose), self.cls, tb)

    def outputs(self, cfg: ExperimentConfig) -> tuple:
        """What later jobs read: the source's dose snapshot, else the run's last checkpoint."""
        if self.cls == SOURCE and self.dose is not None:
            return (cfg.layout.source_snapshot(self.dose),)
        root = cfg.layout.root if self.cls == SOURCE else cfg.layout.dose(self.dose).root
        return (GanFolder.of(root, self.cls).last,)


@dataclass(frozen=True)
class SamplesJob:
    """One class's sample set (filtered or not), up to what the class needs."""

    set_name: str  # a key of SAMPLE_SETS
    cls: str
    fold: int | None = None
    dose: float | None = None
    rare_n: int | None = None
    stage: ClassVar[str] = "sampling and filtering"

    @property
    def name(self) -> str:
        return f"{_prefix(self.fold, self.dose, self.rare_n)}samples/{self.set_name}/{self.cls}"

    def deps(self, cfg: ExperimentConfig) -> tuple:
        matched = SAMPLE_SETS[self.set_name].matched_to
        wanted = {s.name for s in cfg.sample_sets}
        here = (self.fold, self.dose, self.rare_n)
        before = [SamplesJob(matched, self.cls, *here)] if matched in wanted else []
        return (GanJob(self.cls, *here), *before)

    def reads(self, cfg: ExperimentConfig) -> dict:
        plan = plan_for(cfg, self.dose)
        wanted = {"set": self.set_name, "precision": cfg.precision}
        fresh = cfg.profile.fresh_n
        wanted |= {} if fresh == FRESH_N else {"fresh_n": fresh}  # old keys stay
        if self.cls in plan.companions:  # a class that is not rare (gan-all-classes)
            return {**wanted, "n": plan.companions[self.cls]}
        return {**wanted, "target": plan.targets[self.cls]}

    def run(self, cfg: ExperimentConfig, tb: Path | None = None) -> dict:
        return samples.sample_set(plan_for(cfg, self.dose), SAMPLE_SETS[self.set_name], self.cls)

    def outputs(self, cfg: ExperimentConfig) -> tuple:
        """What the classifiers read: the set runs again if one is gone."""
        folder = cfg.layout.dose(self.dose).samples_dir(SAMPLE_SETS[self.set_name].folder, self.cls)
        return (folder / "summary.json", folder / "samples.npz")


@dataclass(frozen=True)
class ClassifierJob:
    """One (arm, seed) classifier of the comparison, tested once. In a dose study a synthetic
    arm has one per dose, and the controls (dose None) serve every dose."""

    arm: str
    seed: int
    fold: int | None = None
    dose: float | None = None
    rare_n: int | None = None
    stage: ClassVar[str] = "classifiers"

    @property
    def name(self) -> str:
        where = _prefix(self.fold, self.dose, self.rare_n)
        return f"{where}classifier/{self.arm}/seed{self.seed}"

    def deps(self, cfg: ExperimentConfig) -> tuple:
        if cfg.gan_doses and self.dose is None:
            return ()  # a control of the dose study: at the nominal targets, no samples
        return sample_jobs(cfg, self.fold, self.dose, self.rare_n)

    def reads(self, cfg: ExperimentConfig) -> dict:
        return {**comparison_slice(cfg), "arm": self.arm, "seed": self.seed}

    def run(self, cfg: ExperimentConfig, tb: Path | None = None) -> dict:
        plan = plan_for(cfg, self.dose)
        return classifier.train_arm(plan, self.arm, self.seed, self._dir(cfg), tb)

    def outputs(self, cfg: ExperimentConfig) -> tuple:
        """What the report reads."""
        return tuple(self._dir(cfg) / name for name in classifier.OUTPUTS)

    def _dir(self, cfg: ExperimentConfig) -> Path:
        return cfg.layout.classifier_dir(comparison_id(cfg, self.dose), self.arm, self.seed)


@dataclass(frozen=True)
class ReportJob:
    """Gains with CIs pooled over folds, the external test, report.md and results.json."""

    fold: ClassVar[None] = None
    stage: ClassVar[str] = "report"
    name: ClassVar[str] = "report"

    def deps(self, cfg: ExperimentConfig) -> tuple:
        return tuple(j for j in experiment_jobs(cfg) if isinstance(j, ClassifierJob))

    def reads(self, cfg: ExperimentConfig) -> dict:
        # and every classifier's key; the margin changes only the verdicts' words
        return {"external": cfg.external, "folds": cfg.folds, "margin": cfg.margin}

    def run(self, cfg: ExperimentConfig, tb: Path | None = None) -> dict:
        t0 = time.perf_counter()
        return write_reports(cfg, comparison_id, stage_seconds(cfg), t0)


# ---------------------------------------------------------------------------- keys


def sample_jobs(cfg: ExperimentConfig, fold, dose=None, rare_n=None) -> tuple:
    """The fold's (dose's) sample sets: every set the arms draw from, for every rare class
    (and the all-classes arms' sets for the other classes)."""
    plan = plan_for(cfg, dose)
    where = (fold, dose, rare_n)
    return tuple(SamplesJob(s.name, c, *where) for c in plan.gan_classes for s in plan.sets_of(c))


def split_slice(cfg: ExperimentConfig) -> dict:
    """What the split is a function of (besides the data)."""
    split = {"seed": cfg.split_seed, "folds": cfg.folds, "fold": cfg.fold}
    split |= {"keep_rare_lesions": cfg.keep_n} if cfg.keep_n else {}
    return split | ({"oracle_share": cfg.oracle_share} if cfg.oracle_share else {})


def comparison_slice(cfg: ExperimentConfig) -> dict:
    """What every classifier of a comparison depends on besides its arm and seed, the data
    and the sample sets (through their keys): recipe, budgets, precision and threads."""
    ds = plan_for(cfg).dataset
    return {
        "profile": profile_slice(cfg.profile),
        "classes": list(cfg.classes),
        "target": cfg.target,
        "arms": list(cfg.arms),
        "seeds": cfg.seeds,
        "synthetic_share": cfg.synthetic_share,
        "data_fingerprint": ds.fingerprint,
        "split": split_slice(cfg),
        "precision": cfg.precision,
        "pretrained": cfg.pretrained,
        "threads": classifier_threads(cfg),
    } | ({"classifier": cfg.classifier} if cfg.classifier != ClassifierChoice() else {})


ADDED_LATER = {"feature_width": 32, "fresh_n": 256, "gan_width": 64}  # newer than the keys


def profile_slice(profile) -> dict:
    """The profile as keys hash it: a field added later is left out at its default, so the
    keys of runs made before it stay (a change of it is still a new key)."""
    fields = asdict(profile)
    return {k: v for k, v in fields.items() if ADDED_LATER.get(k, object()) != v}


@functools.lru_cache(maxsize=4096)
def job_key(job, cfg: ExperimentConfig) -> str:
    """The job's key: its slice of the config with its dependencies' keys, recursively."""
    fcfg = job_config(cfg, job)
    return key_of(_jsonable(job.reads(fcfg)), [job_key(d, cfg) for d in job.deps(fcfg)])


def comparison_id(cfg: ExperimentConfig, dose: float | None = None) -> str:
    """Names compare/<id>/ of one fold (or dose): the comparison's slice and its sample sets'
    keys; a dose study's controls read no sample set."""
    controls = bool(cfg.gan_doses) and dose is None
    here = sample_jobs(cfg, cfg.fold, dose, cfg.keep_n)
    samples = [] if controls else [job_key(j, cfg) for j in here]
    return key_of(_jsonable(comparison_slice(cfg)), samples)[:10]


def _jsonable(reads: dict) -> dict:
    return {k: asdict(v) if is_dataclass(v) else v for k, v in reads.items()}


# ---------------------------------------------------------------------------- the graph


def experiment_jobs(cfg: ExperimentConfig) -> list:
    """The jobs of one experiment in dependency order; with --folds K, every fold has its
    own features, GANs, samples and classifiers; with --gan-doses, every dose its own
    fine-tunes, samples and synthetic-arm classifiers, beside one set of controls; with
    --rare-n, every scarcity level (n training lesions per rare class) all of its own."""
    if cfg.rare_n:
        return [j for n in cfg.rare_n for j in _one_split(scarcity_config(cfg, n), n)] + [
            ReportJob()
        ]
    return [*_one_split(cfg, None), ReportJob()]


def _one_split(cfg: ExperimentConfig, n: int | None) -> list:
    if cfg.gan_doses:
        return _dose_jobs(cfg, n)
    jobs: list = []
    uses_gan = bool(cfg.sample_sets)
    for fcfg in fold_configs(cfg):
        f = fcfg.fold
        jobs += [FeaturesJob(f, n)] if uses_gan else []  # only GANs and filters measure in it
        if uses_gan and cfg.profile.source_kimg > 0:
            jobs.append(GanJob(SOURCE, f, rare_n=n))
        plan = plan_for(fcfg) if uses_gan else None
        for c in plan.gan_classes if plan else ():
            jobs.append(GanJob(c, f, rare_n=n))
            jobs += [SamplesJob(s.name, c, f, rare_n=n) for s in plan.sets_of(c)]
        jobs += [ClassifierJob(a, s, f, rare_n=n) for s in range(cfg.seeds) for a in cfg.arms]
    return jobs


def _dose_jobs(cfg: ExperimentConfig, n: int | None) -> list:
    """The dose study: the source trains once, on from dose to dose; the controls once."""
    synthetic, controls = cfg.synthetic_arms, cfg.control_arms
    jobs: list = [FeaturesJob(rare_n=n), *[GanJob(SOURCE, dose=d, rare_n=n) for d in cfg.gan_doses]]
    jobs += [ClassifierJob(a, s, rare_n=n) for s in range(cfg.seeds) for a in controls]
    for d in cfg.gan_doses:
        for c in cfg.classes:
            jobs.append(GanJob(c, dose=d, rare_n=n))
            jobs += [SamplesJob(s.name, c, dose=d, rare_n=n) for s in cfg.sample_sets]
        jobs += [ClassifierJob(a, s, dose=d, rare_n=n) for s in range(cfg.seeds) for a in synthetic]
    return jobs


def job_config(cfg: ExperimentConfig, job) -> ExperimentConfig:
    """The config a job runs under: its fold's and scarcity level's (their own run dirs)."""
    return scarcity_config(fold_config(cfg, job.fold), getattr(job, "rare_n", None))


def experiment_graph(cfg: ExperimentConfig) -> list[Node]:
    """The scheduler's view of the jobs: names, dependencies, keys and needs."""
    nodes = []
    for job in experiment_jobs(cfg):
        fcfg = job_config(cfg, job)
        nodes.append(
            Node(
                job=job,
                name=job.name,
                deps=tuple(d.name for d in job.deps(fcfg)),
                key=job_key(job, cfg),
                stage=job.stage,
                gpu=cfg.device.startswith("cuda"),
                slots=1 if isinstance(job, ClassifierJob) else None,
                threads=job_threads(cfg, job),
                config=_jsonable(job.reads(fcfg)),
                outputs=job.outputs(fcfg) if hasattr(job, "outputs") else (),
            )
        )
    return nodes


def stage_seconds(cfg: ExperimentConfig) -> dict[str, float]:
    return scheduler.stage_seconds(cfg.layout, experiment_graph(cfg))


def job_threads(cfg: ExperimentConfig, job) -> int:
    """Torch threads of a job, the same in every executor. The classifiers of a comparison
    are many equal, independent jobs: `workers` of them run side by side on a share of the
    threads each (small convolutions scale poorly across threads: benchmarks/parallel_jobs.py).
    The GAN chain and the feature network, which little can run beside, get all of them."""
    return classifier_threads(cfg) if isinstance(job, ClassifierJob) else cfg.threads


def classifier_threads(cfg: ExperimentConfig) -> int:
    return max(1, cfg.threads // cfg.workers)


def run_job(cfg: ExperimentConfig, node: Node) -> dict:
    """Run one job in this process with its thread count and a job-specific seed, so that its
    result does not depend on which process or machine runs it. Its TensorBoard folder is the
    whole run's (not a fold's or level's): one tb/ shows every job, by name."""
    torch.set_num_threads(node.threads)
    torch.manual_seed(node.seed)
    np.random.seed(node.seed % 2**32)
    t0 = time.perf_counter()
    tb = cfg.layout.tensorboard_dir(node.job.name) if cfg.tensorboard else None
    result = node.job.run(job_config(cfg, node.job), tb)
    return {**result, "seconds": time.perf_counter() - t0}
