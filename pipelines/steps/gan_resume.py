"""What gan-train is asked to train: its options as an Architecture and a TrainConfig per
class, for a new run or for a resumed one.

A new run takes the command line's options. --resume continues the saved run: its last.pt
fixes the architecture and the TrainConfig, and an option given on the command line must agree
with the saved value, but for RESUMABLE_CHANGES (how long and how often), which replace it. Its
FID evaluation keeps its feature space, since best.pt compares KIDs in it, and its sample size
unless another is asked. OPTION_FIELDS, the one map from option to TrainConfig field, serves
both a new run and the check of a resumed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan.diffaugment import POLICIES
from gan.networks import Architecture
from gan.training import TrainConfig
from pipelines.errors import UserError
from pipelines.steps.gan_run import ClassRun
from pipelines.store import checkpoints
from pipelines.store.checkpoints import RESUMABLE_CHANGES, GanFolder
from pipelines.store.layout import SOURCE


def _same(value: Any) -> Any:
    return value


# gan-train option (click's name) -> (TrainConfig field, the option's value as the field's)
OPTION_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "batch_size": ("batch_size", _same),
    "lr": ("lr", _same),
    "seed": ("seed", _same),
    "precision": ("precision", _same),
    "diffaugment": ("diffaugment", lambda on: POLICIES if on else ()),
    "ema": ("ema_kimg", lambda on: TrainConfig.ema_kimg if on else 0.0),
    "dihedral": ("dihedral", _same),
    "snapshot_kimg": ("snapshot_kimg", _same),
    "eval_every": ("eval_kimg", _same),
    "loss": ("loss", _same),
    "r1_gamma": ("r1_gamma", _same),
    "freeze_d": ("freeze_d", _same),
    "sampling": ("sampling", _same),
}


@dataclass(frozen=True)
class Request:
    """A gan-train command line: every option's value by click's name, the options given on
    it (not defaulted: only those must agree with a resumed run), and --precision resolved
    for the device (what a new run trains in)."""

    options: Mapping[str, Any]
    given: frozenset[str] = frozenset()
    precision: str = "fp32"

    def __getitem__(self, option: str) -> Any:
        return self.options[option]

    def asked(self, option: str) -> bool:
        return option in self.given


@dataclass
class ClassPlan:
    """One class's share of the command: its run, config and FID evaluation, and on --resume
    the checkpoint it continues (read once), with the notes the plan gives."""

    run: ClassRun
    cfg: TrainConfig
    eval_n: int
    feature_space: str
    resumed: dict | None = None
    notes: list[str] = field(default_factory=list)


def check_options(options: Mapping[str, Any], given: frozenset[str]) -> None:
    """Combinations of options that cannot do what they say, refused before any work."""
    if options["kimg"] is not None and options["epochs"] is not None:
        raise UserError("pass --kimg or --epochs, not both")
    for name in ("kimg", "epochs"):
        if options[name] is not None and not options[name] > 0:  # `not >` also catches nan
            raise UserError(
                f"--{name} {options[name]:g}: a training length must be > 0 (e.g. --kimg 100); "
                "a run that trains nothing writes no checkpoint"
            )
    _check_numbers(options)
    if options["resume"] and options["overwrite"]:
        raise UserError("--resume continues a run and --overwrite replaces it; pass one")
    if options["from_"] and SOURCE in options["classes"]:
        raise UserError(
            f"--from {options['from_']}: the source run itself cannot start from a source"
        )
    if "freeze_d" in given and options["freeze_d"] and not (options["from_"] or options["resume"]):
        raise UserError("--freeze-d freezes transferred layers; use it with --from all")


# option -> (what it is, whether 0 is allowed): click's FloatRange lets nan through
RATES = {
    "lr": ("a learning rate", False),
    "snapshot_kimg": ("a snapshot interval", False),
    "eval_every": ("an evaluation interval (0: off)", True),
    "r1_gamma": ("an R1 weight (0: off)", True),
}


def _check_numbers(options: Mapping[str, Any]) -> None:
    """A rate or interval of nan, inf or below its range would fail hours in (or train on
    nan): refused by name before any work."""
    for name, (what, zero) in RATES.items():
        value = options.get(name)
        if value is None:
            continue
        if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
            bound, flag = ">= 0" if zero else "> 0", "--" + name.replace("_", "-")
            raise UserError(f"{flag} {value:g}: {what} must be a number {bound}")


def read_resumed(req: Request, run_dir: Path) -> dict[str, dict]:
    """Each class's last.pt on --resume, read once and before any work ({}: a new run)."""
    if not req["resume"]:
        return {}
    classes = dict.fromkeys(req["classes"])
    return {c: checkpoints.read_latest(GanFolder.of(run_dir, c)) for c in classes}


def architecture(req: Request, run_dir: Path, resumed: dict[str, dict]) -> Architecture:
    """The asked architecture; a resumed run keeps its checkpoint's size and kind."""
    size, kind = req["size"], req["arch"]
    if resumed:
        saved = next(iter(resumed.values()))["arch"]
        if size is not None and int(size) != int(saved["size"]):
            raise UserError(
                f"--resume: the checkpoints in {run_dir} are {saved['size']} px, not "
                f"{size} px; drop --size or start over with --overwrite"
            )
        size = saved["size"]
        if not req.asked("arch"):
            kind = saved.get("kind", "dcgan")
    return Architecture(size=int(size or 64), kind=kind)


def new_config(req: Request, cls: str) -> TrainConfig:
    """A new run's config: the command line's options, through OPTION_FIELDS."""
    values = {name: convert(req[option]) for option, (name, convert) in OPTION_FIELDS.items()}
    values["precision"] = req.precision
    if not req["from_"]:
        values["freeze_d"] = 0  # nothing transferred, nothing to freeze
    if cls != SOURCE:
        values["sampling"] = "uniform"  # one class: nothing to balance
    return TrainConfig(**values)


def resumed_config(req: Request, saved: dict, notes: list[str]) -> TrainConfig:
    """The saved config; an option given on the command line must agree with it, but for
    RESUMABLE_CHANGES, whose values replace the saved ones."""
    cfg = TrainConfig(**saved)
    for option, (name, convert) in OPTION_FIELDS.items():
        if not req.asked(option) or (option == "precision" and req[option] == "auto"):
            continue
        value, was = convert(req[option]), getattr(cfg, name)
        if name in RESUMABLE_CHANGES:
            if name == "eval_kimg" and value != was:
                notes.append(f"--eval-every {value:g} replaces the run's {was:g} kimg")
            setattr(cfg, name, value)
        elif value != was:
            raise UserError(
                f"--resume continues the saved run, which has {name}={was!r}, not {value!r}; "
                f"drop --{option.replace('_', '-')} or start over with --overwrite"
            )
    return cfg


def resumed_evaluation(req: Request, extra: dict, cls: str, notes: list[str]) -> tuple[int, str]:
    """--resume keeps the run's --eval-n and --feature-space: best.pt is the checkpoint of the
    lowest KID so far, and KIDs only compare at one n in one feature space. A changed --eval-n
    is allowed and said; a changed feature space is refused."""
    n, space = req["eval_n"], req["feature_space"]
    saved_n, saved_space = extra.get("eval_n"), extra.get("feature_space")  # older runs: none
    if saved_space is not None:
        if req.asked("feature_space") and space != saved_space:
            raise UserError(
                f"--resume: {cls}'s FIDs so far are in the {saved_space} feature space, not "
                f"{space}, and best.pt compares them; drop --feature-space or start over with "
                "--overwrite"
            )
        space = saved_space
    if saved_n is not None:
        if not req.asked("eval_n"):
            n = saved_n
        elif n != saved_n:
            notes.append(
                f"{cls}: --eval-n {n} replaces the run's {saved_n}; FIDs from here on use "
                f"{n} generated images, so best.pt compares FIDs at different n"
            )
    return n, space


def plan_class(req: Request, run: ClassRun, arch: Architecture, resumed: dict | None) -> ClassPlan:
    """One class's config, FID sample size and feature space (the command line's, or the
    saved ones on --resume), and its length (--kimg, --epochs, else the saved or default)."""
    if resumed is None:
        plan = ClassPlan(run, new_config(req, run.class_name), req["eval_n"], req["feature_space"])
    else:
        checkpoints.check_resumable(resumed, run.folder, arch)
        notes: list[str] = []
        cfg = resumed_config(req, resumed["config"], notes)
        n, space = resumed_evaluation(req, resumed.get("extra", {}), run.class_name, notes)
        plan = ClassPlan(run, cfg, n, space, resumed, notes)
    if req["epochs"] is not None:
        plan.cfg.kimg = req["epochs"] * len(run.images) / 1000
    elif req["kimg"] is not None:
        plan.cfg.kimg = req["kimg"]
    return plan


def plan_classes(
    req: Request, runs: list[ClassRun], arch: Architecture, resumed: dict[str, dict]
) -> tuple[list[ClassPlan], str | None]:
    """Every class's plan, and the one feature space those that track FID share (None: no
    tracking). Every refusal comes before the first class's work."""
    plans = [plan_class(req, run, arch, resumed.get(run.class_name)) for run in runs]
    spaces = {p.feature_space for p in plans if p.cfg.eval_kimg > 0}
    if len(spaces) > 1:
        raise UserError(
            f"--resume: these classes were evaluated in different feature spaces "
            f"({', '.join(sorted(spaces))}); resume them one --class at a time"
        )
    return plans, (spaces.pop() if spaces else None)
