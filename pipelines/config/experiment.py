"""What augment-and-compare was asked for, and the inputs every job derives from it.

ExperimentConfig is a plain frozen dataclass (nanoGPT's config, stylegan2-ada's options):
written to <run>/experiment.json at the start of every run with the versions and the data's
identity, and read back by `augment-and-compare --config <run>/experiment.json` to rerun
exactly that experiment. The dataset, split, feature space and GAN budgets that jobs share are
functions of it, loaded once per process.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pipelines.config.arms import ARM_SPECS, ARMS, DEFAULT_MARGIN, SampleSet, sample_sets
from pipelines.config.profiles import Profile
from pipelines.errors import UserError
from pipelines.store.layout import SOURCE, RunLayout

CONFIG_FORMAT = "raregan-experiment-v1"


DEFAULT_SEEDS = 5  # 3 leave a t with ~2 df: intervals ~1.6x wider (README: interval coverage)
DEMO_SEEDS = 3  # the demo is a first look: its default command must finish in minutes


@dataclass(frozen=True)
class ClassifierChoice:
    """The downstream network every arm trains (--classifier, --classifier-size,
    --pretrained-weights): classifier.zoo builds it. `family` is what kind of name `name` is
    (builtin, torchvision, timm, function), parsed once from the command line."""

    family: str = "builtin"
    name: str = "small-resnet"
    size: int | None = None  # input px; None: the profile's classifier size
    weights: str | None = None  # a local state dict (absolute path) ...
    weights_sha256: str | None = None  # ... and its content when the run began


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything augment-and-compare was asked for; stored as <run>/experiment.json."""

    run_dir: str
    profile: Profile
    data: str | None = None
    fmt: str | None = None
    cache_dir: str | None = None
    skip_bad_images: bool = False
    allow_new_classes: bool = False
    split_seed: int = 0
    classes: tuple[str, ...] = ("df", "mel")
    target: str = "auto"
    arms: tuple[str, ...] = ("baseline", "oversample", "gan")
    seeds: int = DEFAULT_SEEDS
    synthetic_share: float = 0.5  # oversample+gan: synthetic share of the images added
    folds: int = 1  # > 1: lesion-grouped K-fold cross-validation, every lesion tested once
    gan_doses: tuple[float, ...] = ()  # source kimg of each generator dose (the dose study)
    rare_n: tuple[int, ...] = ()  # training lesions kept per rare class (the scarcity study)
    keep_n: int | None = None  # set on the config of one scarcity level
    oracle_share: float = 0.0  # share of each rare class's training lesions held back (oracle)
    margin: float = DEFAULT_MARGIN  # the smallest gain worth having: the verdicts' words only
    fold: int | None = None  # set on the config of one fold (run_dir is then the fold's)
    external: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    feature_space: str = "domain"
    inception_weights: str | None = None
    pretrained: bool = False  # ImageNet weights from the torch hub cache (torchvision names)
    classifier: ClassifierChoice = ClassifierChoice()
    threads: int = 1  # torch threads of a job, in every executor (classifier results depend
    workers: int = 1  # on them: their keys hold both) ... classifier jobs run `workers` at a time
    progress: bool = field(default=False, compare=False)
    tensorboard: bool = field(default=False, compare=False)  # event files in <run>/tb

    @property
    def layout(self) -> RunLayout:
        return RunLayout(Path(self.run_dir))

    @property
    def classifier_size(self) -> int:
        """The classifier's input px: --classifier-size, else the profile's, else the GANs'."""
        return self.classifier.size or self.profile.classifier_size or self.profile.size

    @property
    def sample_sets(self) -> tuple[SampleSet, ...]:
        """The sample sets the arms draw from, each after the set it is matched to."""
        return sample_sets(self.arms)

    @property
    def synthetic_arms(self) -> tuple[str, ...]:
        return tuple(a for a in self.arms if ARM_SPECS[a].synthetic is not None)

    @property
    def control_arms(self) -> tuple[str, ...]:
        """The arms without synthetic images (a dose study trains them once for every dose)."""
        return tuple(a for a in self.arms if ARM_SPECS[a].synthetic is None)


def config_to_json(cfg: ExperimentConfig) -> dict:
    """The config as experiment.json stores it (progress and TensorBoard are how it is shown,
    not what it is)."""
    d = asdict(cfg)
    d.pop("progress")
    d.pop("tensorboard")
    return json.loads(json.dumps(d))  # as it reads back: lists, not tuples


def config_from_json(d: dict, source: Path) -> ExperimentConfig:
    """The ExperimentConfig of an experiment.json's "config", or a one-line error."""
    names = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"progress", "tensorboard"}
    profile_names = {f.name for f in dataclasses.fields(Profile)}
    unknown = (set(d) - names) | (set(d.get("profile", {})) - profile_names)
    if unknown or "profile" not in d or "run_dir" not in d:
        raise UserError(
            f"--config {source}: not an experiment.json of this raregan (unknown or missing "
            f"fields: {', '.join(sorted(unknown)) or 'profile/run_dir'}); rerun with options"
        )
    choice = d.get("classifier", {})
    choice_names = {f.name for f in dataclasses.fields(ClassifierChoice)}
    if not isinstance(choice, dict) or set(choice) - choice_names:
        raise UserError(
            f"--config {source}: classifier {choice!r} is not a classifier choice of this "
            "raregan; rerun with options"
        )
    values = {**d, "profile": Profile(**d["profile"]), "classifier": ClassifierChoice(**choice)}
    for name in ("classes", "arms", "gan_doses", "rare_n"):
        values[name] = tuple(values.get(name, ()))
    return ExperimentConfig(**values)


def read_config_file(path: Path) -> ExperimentConfig:
    return config_from_json(read_config_json(path), Path(path))


def read_config_json(path: Path) -> dict:
    """The "config" object of a run's experiment.json, or a one-line error."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--config {path}: cannot be read as JSON ({e}); pass a run's "
                        "experiment.json") from None  # fmt: skip
    if (
        not isinstance(saved, dict)
        or saved.get("format") != CONFIG_FORMAT
        or not isinstance(saved.get("config"), dict)
    ):
        raise UserError(f"--config {path}: not a raregan experiment.json; pass a run's one")
    return saved["config"]


def check_counts(seeds: int, workers: int, threads: int) -> None:
    """--seeds and --workers (against --threads), from the command line or a --config."""
    if seeds < 1:
        raise UserError(f"--seeds {seeds}: need at least 1 seed (3 or more for an sd)")
    if workers > threads:
        raise UserError(
            f"--workers {workers} is more than the {threads} thread(s) of a job "
            f"(--threads): each classifier worker needs one of its own; use --workers "
            f"{threads} or fewer, or raise --threads"
        )


def check_arms(arms: tuple[str, ...], given: str | None = None) -> None:
    """Known arms, each once: an arm given twice names two jobs alike, which no scheduler
    can finish."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise UserError(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    _once(arms, "--arms", ",".join(arms) if given is None else given)


def check_classes(classes: tuple[str, ...], given: str | None = None) -> None:
    """At least one rare class, each once, none named like the source GAN (its jobs and
    folder are gan/all: a class 'all' would take the source's samples as its own)."""
    text = ",".join(classes) if given is None else given
    if not classes:
        raise UserError(
            f"--classes: no rare class given ({text!r}); name the classes to augment, e.g. "
            "--classes df,mel"
        )
    _once(classes, "--classes", text)
    if SOURCE in classes:
        raise UserError(
            f"--classes {text}: {SOURCE!r} is the name of the all-classes source GAN; a class "
            f"of that name cannot be augmented (rename its folder, e.g. to {SOURCE}_)"
        )


def _once(names: tuple[str, ...], option: str, text: str) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{option} {text}: {', '.join(twice)} is given twice; give each once")


def fold_config(cfg: ExperimentConfig, f: int | None) -> ExperimentConfig:
    """The config of fold f's jobs: its own run directory (split, feature network, GANs,
    samples, classifiers), so no test lesion of the fold reaches anything trained there."""
    if cfg.folds == 1 or f is None or cfg.fold == f:  # already the fold's
        return cfg
    return replace(cfg, run_dir=str(RunLayout(Path(cfg.run_dir)).fold(f).root), fold=f)


def scarcity_config(cfg: ExperimentConfig, n: int | None) -> ExperimentConfig:
    """The config of one scarcity level (--rare-n): its own run directory, whose split keeps
    n training lesions of each rare class, so every GAN, filter and classifier there sees
    only those (validation and test stay whole)."""
    if n is None or cfg.keep_n == n:  # no scarcity study, or already the level's
        return cfg
    root = RunLayout(Path(cfg.run_dir)).scarce(n).root
    return replace(cfg, run_dir=str(root), rare_n=(), keep_n=n)


def fold_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    return [fold_config(cfg, f) for f in range(cfg.folds)] if cfg.folds > 1 else [cfg]


def split_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """The configs of the experiment's splits: one per scarcity level, else one per fold."""
    return [scarcity_config(cfg, n) for n in cfg.rare_n] or fold_configs(cfg)


def check_doses(cfg: ExperimentConfig) -> None:
    """A dose study needs a source to take snapshots of, and one split to compare on."""
    if not cfg.gan_doses:
        return
    if any(not 0 < d < 1e6 for d in cfg.gan_doses) or len(set(cfg.gan_doses)) < len(cfg.gan_doses):
        doses = ",".join(f"{d:g}" for d in cfg.gan_doses)
        raise UserError(f"--gan-doses {doses}: give distinct kimg > 0, e.g. 25,100,400")
    if cfg.profile.source_kimg <= 0:
        raise UserError("--gan-doses: this profile trains no source GAN; use --profile quick")
    if cfg.folds > 1 or cfg.external:
        raise UserError("--gan-doses runs on one split: drop --folds and --external-test")
    if not cfg.sample_sets:
        raise UserError("--gan-doses needs an arm with synthetic images, e.g. --arms ...,gan")
    every_class = [a for a in cfg.arms if ARM_SPECS[a].all_classes]
    if every_class:
        raise UserError(
            f"--gan-doses: {','.join(every_class)} is not part of a dose study (it would need "
            "every class's fine-tune at every dose); drop it from --arms"
        )


def check_scarcity(cfg: ExperimentConfig) -> None:
    """The scarcity study cuts one split's rare classes; K folds of it are not supported."""
    if not cfg.rare_n:
        return
    if any(n < 1 for n in cfg.rare_n) or len(set(cfg.rare_n)) < len(cfg.rare_n):
        levels = ",".join(str(n) for n in cfg.rare_n)
        raise UserError(f"--rare-n {levels}: give distinct lesion counts >= 1, e.g. 10,20,40")
    if cfg.folds > 1 or cfg.external:
        raise UserError("--rare-n runs on one split: drop --folds and --external-test")
    if len(cfg.gan_doses) > 1:
        raise UserError("--rare-n takes at most one --gan-doses value (the dose of every level)")


def is_demo(data: str | None) -> bool:
    """Whether --data names the built-in synthetic demo (also its default)."""
    return data in (None, "demo")


def check_oracle(cfg: ExperimentConfig) -> None:
    """--oracle-share holds back training lesions of one split; the oracle arms need lesions
    held back (a scarcity level holds back what it cuts)."""
    if cfg.oracle_share:
        if not 0 < cfg.oracle_share < 1:
            raise UserError(
                f"--oracle-share {cfg.oracle_share:g}: give a share between 0 and 1, e.g. 0.5"
            )
        if cfg.rare_n or cfg.folds > 1:
            raise UserError(
                "--oracle-share holds back lesions of one split; drop --folds, and with "
                "--rare-n drop it (each level holds back the lesions it cuts)"
            )
    oracle_arms = [a for a in cfg.arms if ARM_SPECS[a].held_back]
    demo = is_demo(cfg.data)  # the painter draws fresh lesions: nothing held back
    if oracle_arms and not (cfg.oracle_share or cfg.rare_n or cfg.keep_n or demo):
        raise UserError(
            f"--arms {','.join(oracle_arms)}: the oracle arms draw on held-back lesions; pass "
            "--oracle-share 0.5 (or run a scarcity study, --rare-n)"
        )
