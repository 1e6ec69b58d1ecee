"""The GAN checkpoints of a run directory: which file a command wants, read once, and what to
say when it cannot be used.

gan.checkpoint is the file format; this is the policy over it. A class's GAN folder holds
last.pt (the latest state, what --resume continues) and, with FID tracking, best.pt (the
lowest held-out KID, what gan-sample draws from by default). The source GAN's folder is the
class `all`'s. Every refusal is one line that names the fix in the words of the command at
hand (GAN_TRAIN, GAN_SAMPLE or EXPERIMENT: `--overwrite` means nothing to augment-and-compare),
and a fix never throws away an intact best.pt and the run's history.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from gan import checkpoint as fmt
from gan.checkpoint import CheckpointError
from gan.networks import Architecture, Generator
from gan.training import TrainConfig
from pipelines.errors import UserError
from pipelines.store.layout import SOURCE, RunLayout

LAST, BEST = "last.pt", "best.pt"
# What a resumed run may change: how long and how often, not what it trains.
RESUMABLE_CHANGES = frozenset({"kimg", "snapshot_kimg", "eval_kimg", "log_steps"})
GAN_TRAIN, GAN_SAMPLE, EXPERIMENT = "gan-train", "gan-sample", "experiment"  # who asks
_READ: dict[tuple, dict] = {}  # the last checkpoint read, by path and file identity


@dataclass(frozen=True)
class GanFolder:
    """One class's GAN folder, and the run directory whose gan-train makes it."""

    path: Path
    cls: str
    run_dir: Path | None = None  # None: a folder outside any run directory

    @classmethod
    def of(cls, run_dir: Path, class_name: str) -> GanFolder:
        return cls(RunLayout(run_dir).gan_dir(class_name), class_name, Path(run_dir))

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def best(self) -> Path:
        return self.path / BEST

    def has_checkpoint(self) -> bool:
        """Whether the run got anywhere: a folder without last.pt or best.pt is a start that
        was killed before its first checkpoint, and counts as not started."""
        return self.last.is_file() or self.best.is_file()

    def best_else_last(self) -> Path:
        """best.pt, else last.pt: a run trained without FID tracking keeps no best."""
        return self.best if self.best.is_file() else self.last

    def choose(self, which: str) -> Path:
        """The file of `--checkpoint which`: best, last, or a path."""
        if which == "best":
            return self.best_else_last()
        return self.last if which == "last" else Path(which)

    def train_command(self, arch: Architecture | None = None) -> str:
        """The gan-train command that makes this folder (with the architecture, if it matters)."""
        where = "" if self.run_dir is None else f" --run-dir {self.run_dir}"
        shape = "" if arch is None else f" --size {arch.size} --arch {arch.kind}"
        return f"gan-train --class {self.cls}{where}{shape}"


def read(path: Path) -> dict:
    """The checkpoint at `path` (CheckpointError if it is not one). A command asks for the same
    file while it plans and again when it trains; unpickling it is the slow part, so the last
    file read is kept while it is unchanged. Treat the result as read-only."""
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _READ:
        return _READ[key]
    ckpt = fmt.load_checkpoint(path)
    _READ.clear()  # one kept: a checkpoint can be hundreds of MB
    if key is not None:
        _READ[key] = ckpt
    return ckpt


def _missing(path: Path, command: str, what: str = "checkpoint") -> str:
    return f"no {what} at {path}; train it with `{command}`"


def damaged(e: CheckpointError, folder: GanFolder, path: Path, asker: str) -> UserError:
    """The error for an unreadable checkpoint: continue from the other, intact one of the
    folder where there is one, else mend or start over (starting over deletes best.pt)."""
    if Path(path) not in (folder.last, folder.best):  # a file given by hand
        return UserError(f"{e}; pass a checkpoint written by gan-train")
    other = folder.best if Path(path) == folder.last else folder.last
    kimg = _intact_kimg(other)
    if asker == GAN_SAMPLE:
        if kimg is not None:
            return UserError(
                f"{e}; try --checkpoint {other.stem}, or pass a checkpoint written by gan-train"
            )
        return UserError(f"{e}; restore it, or retrain: `{folder.train_command()} --overwrite`")
    start_over = (
        "start over with --overwrite"
        if asker == GAN_TRAIN
        else f"delete {folder.path} to train it again"
    )
    if kimg is None or other != folder.best:
        return UserError(f"{e}; restore it, or {start_over}")
    keep = f"{e}; to continue from the intact best.pt ({kimg:g} kimg), copy {other} over it"
    if asker == GAN_TRAIN:
        return UserError(
            f"{keep} and rerun with --resume (--overwrite would start over and delete best.pt "
            "and the history)"
        )
    return UserError(f"{keep} and rerun, or {start_over}")


def _intact_kimg(path: Path) -> float | None:
    try:
        return read(path)["nimg"] / 1000
    except CheckpointError:
        return None


def _read_or_explain(folder: GanFolder, path: Path, asker: str) -> dict:
    try:
        return read(path)
    except CheckpointError as e:
        raise damaged(e, folder, path, asker) from e


def read_latest(folder: GanFolder) -> dict:
    """last.pt, the state gan-train --resume continues."""
    if not folder.last.is_file():
        command = folder.train_command()
        raise UserError(f"--resume: {_missing(folder.last, command)} (without --resume)")
    return _read_or_explain(folder, folder.last, GAN_TRAIN)


def check_resumable(ckpt: dict, folder: GanFolder, arch: Architecture) -> None:
    """A resumed run continues the saved architecture; asking for another is refused."""
    try:
        fmt.check_architecture(ckpt, arch, folder.last)
    except CheckpointError as e:
        raise UserError(f"--resume: {e}; resume with the same options or use --overwrite") from e


def chosen_path(folder: GanFolder, which: str) -> Path:
    """The file `--checkpoint which` names, which must exist."""
    path = folder.choose(which)
    if not path.is_file():
        what = f"generator for class {folder.cls!r}"
        raise UserError(_missing(path, folder.train_command(), what))
    return path


def read_chosen(folder: GanFolder, which: str) -> tuple[Path, dict]:
    """The checkpoint gan-sample draws from (`--checkpoint`: best, last or a path)."""
    path = chosen_path(folder, which)
    return path, _read_or_explain(folder, path, GAN_SAMPLE)


def read_any(folder: GanFolder, prefer: str = "best") -> dict:
    """A readable checkpoint of the folder, the preferred one (best/last) first: for what any
    of them can tell (size, architecture), a damaged one must not hide the other."""
    order = [folder.last, folder.best] if prefer == "last" else [folder.best, folder.last]
    found = [p for p in order if p.is_file()]
    if not found:
        raise UserError(_missing(order[0], folder.train_command()))
    for path in found:
        with contextlib.suppress(CheckpointError):
            return read(path)
    return _read_or_explain(folder, found[0], GAN_SAMPLE)  # raises: none is readable


def source_path(run_dir: Path) -> Path:
    """The source GAN's checkpoint that fine-tunes start from: its best, else its last."""
    return GanFolder.of(run_dir, SOURCE).best_else_last()


def read_source(path: Path, arch: Architecture, run_dir: Path | None) -> dict:
    """The source checkpoint, checked against the architecture asked for, or an error that
    names the command which makes a compatible one."""
    source = GanFolder.of(run_dir, SOURCE) if run_dir else GanFolder(Path(path).parent, SOURCE)
    command = source.train_command(arch)
    if not Path(path).is_file():
        raise UserError(f"--from: {_missing(path, command, 'source GAN')}")
    try:
        ckpt = read(path)
        fmt.check_architecture(ckpt, arch, path)
    except CheckpointError as e:
        raise UserError(f"--from: {e}; train a compatible source first: `{command}`") from e
    return ckpt


def check_data(ckpt: dict, path: Path, data: dict) -> None:
    """A generator trained on other data would pass for this run's: compare fingerprints."""
    trained_on = ckpt.get("extra", {}).get("data_fingerprint")
    if trained_on is not None and trained_on != data.get("fingerprint"):
        raise UserError(
            f"{path} was trained on other data (fingerprint {trained_on}; this run's data is "
            f"{data.get('fingerprint')}, {data.get('source')}); pass a generator of this run, "
            "or the --run-dir it was trained in"
        )


def config_changes(saved: TrainConfig, asked: TrainConfig) -> str:
    """The fields a resume cannot change in which two configs differ, as `name saved (asked
    x)`, like gan.checkpoint.check_architecture's; empty when there are none."""
    return ", ".join(
        f"{f.name} {getattr(saved, f.name)!r} (asked {getattr(asked, f.name)!r})"
        for f in fields(TrainConfig)
        if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(asked, f.name)
    )


def trained_enough(folder: GanFolder, arch: Architecture, cfg: TrainConfig) -> bool:
    """Whether the folder already holds this GAN trained for >= cfg.kimg (False: none yet, or
    a shorter run of it to continue). A GAN of another architecture or trained another way is
    refused, never reused or continued: its samples would pass for the asked one's."""
    if not folder.last.is_file():
        return False
    ckpt = _read_or_explain(folder, folder.last, EXPERIMENT)
    fix = f"use another --run-dir, or delete {folder.path} to train it again"
    try:
        fmt.check_architecture(ckpt, arch, folder.last)
    except CheckpointError as e:
        raise UserError(f"{e}; {fix}") from e
    changed = config_changes(TrainConfig(**ckpt["config"]), cfg)
    if changed:
        raise UserError(f"{folder.last} holds a GAN trained with {changed}; {fix}")
    return ckpt["nimg"] >= cfg.kimg * 1000  # possibly longer, by gan-train


def best_eval(folder: GanFolder) -> dict | None:
    """The evaluation row best.pt was kept for; None without a readable best.pt. Read past
    the cache, which keeps what the command may still train from (a source checkpoint)."""
    if not folder.best.is_file():
        return None
    try:
        return fmt.load_checkpoint(folder.best)["extra"].get("eval")
    except CheckpointError:
        return None


def generator(ckpt: dict, path: Path, size: int, device: torch.device) -> Generator:
    """The sampling generator of a checkpoint (its EMA weights where kept), checked against
    the image size of the data its samples are compared with."""
    arch = Architecture(**ckpt["arch"])
    if arch.size != size:
        raise UserError(
            f"{path} generates {arch.size} px images but this run's data is loaded at {size} "
            "px, so its samples cannot be compared with it; sample it in the run directory it "
            "was trained in"
        )
    G = Generator(arch)
    weights = ckpt["G_ema"] if ckpt["G_ema"] is not None else ckpt["G"]
    damaged = [k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all()]
    if damaged:
        raise UserError(
            f"{path} holds non-finite generator weights ({damaged[0]}): the file is damaged or "
            "its training diverged; sample another checkpoint (--checkpoint last or best), or "
            "train the class again"
        )
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{path} does not match raregan's DCGAN architecture") from e
    return G.to(device)
