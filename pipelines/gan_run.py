"""One class's GAN run inside a run directory: <run>/gan/<class>/.

Holds run.json (config, seed, versions, data fingerprint of every start and resume),
metrics.jsonl (one row per log interval), last.pt (atomic checkpoint), reals.png,
grid_kimgNNNNN.NNN.png (fixed-noise samples at every checkpoint) and, with FID tracking,
eval.jsonl, fid_curve.png and best.pt (the checkpoint of the lowest held-out KID).

The class `all` (SOURCE) is every training-split image: a source GAN that per-class runs
fine-tune from (`--from all`), because skin, hair, light and lesion structure are shared and a
rare class alone has ~80 images.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from gan.checkpoint import (
    CheckpointError,
    check_architecture,
    init_from_source,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from gan.metrics.features import FeatureSpace, extract_features
from gan.metrics.sets import real_floor, set_metrics
from gan.networks import Architecture
from gan.training import GanState, TrainConfig, TrainingDiverged, new_state, sample, train
from pipelines.data.datasets import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError
from pipelines.plots import fid_curve
from pipelines.rundir import atomic_write_bytes, atomic_write_text, read_jsonl, run_record

MIN_TRAIN_IMAGES = 10
SOURCE = "all"  # the class name of the all-classes source GAN
GRID_SEED_OFFSET = 1_000_003  # fixed-noise latents come from their own stream, not the loop's
RESUMABLE_CHANGES = {"kimg", "snapshot_kimg", "eval_kimg", "log_steps"}


@dataclass
class ClassRun:
    """Where one class's GAN lives, what it trains on and what judges it."""

    class_name: str
    out: Path
    images: np.ndarray  # uint8 N×S×S×3, training split of the class only
    heldout: np.ndarray  # uint8, the class's validation images: quality is judged on these
    labels: np.ndarray | None = None  # class labels of `images` (the all-classes source only)
    lesions: list[str] | None = None  # lesion id of each of `images`, where the data has them
    heldout_lesions: list[str] | None = None  # lesion id of each of `heldout`

    @property
    def checkpoint(self) -> Path:
        return self.out / "last.pt"


def has_checkpoint(run: ClassRun) -> bool:
    """Whether the class's run got anywhere: a folder without last.pt or best.pt is a start
    that was killed before its first checkpoint, and counts as not started."""
    return run.checkpoint.is_file() or (run.out / "best.pt").is_file()


def class_run(ds: Dataset, split: Split, class_name: str, run_dir: Path) -> ClassRun:
    out = Path(run_dir) / "gan" / class_name
    labels = None
    if class_name == SOURCE:
        idx, val, labels = split.train, split.val, ds.labels[split.train]
    else:
        label = ds.class_index(class_name)
        idx = split.train[ds.labels[split.train] == label]
        if len(idx) < MIN_TRAIN_IMAGES:
            raise UserError(
                f"class {class_name!r} has {len(idx)} training images (needs >= "
                f"{MIN_TRAIN_IMAGES} to train a GAN); choose a larger class or add images"
            )
        val = split.val[ds.labels[split.val] == label]
    lesion = ds.lesion_ids
    return ClassRun(
        class_name, out, ds.images[idx], ds.images[val], labels,
        [lesion[i] for i in idx], [lesion[i] for i in val],
    )  # fmt: skip


def sampling_weights(run: ClassRun, sampling: str) -> torch.Tensor | None:
    """Per-image draw weights: None (uniform) or equal total weight per class (balanced)."""
    if sampling == "uniform" or run.labels is None:
        return None
    counts = np.bincount(run.labels)
    return torch.from_numpy(1.0 / counts[run.labels]).float()


def read_checkpoint(run: ClassRun) -> dict:
    if not run.checkpoint.is_file():
        raise UserError(
            f"--resume: no checkpoint at {run.checkpoint}; run without --resume to start training"
        )
    try:
        return load_checkpoint(run.checkpoint)
    except CheckpointError as e:
        raise damaged_last(e, run.out) from e


def damaged_last(e: CheckpointError, out: Path) -> UserError:
    """The error for an unreadable last.pt. Its fix must not throw away an intact best.pt and
    the run's history, which is all --overwrite would offer."""
    best = Path(out) / "best.pt"
    try:
        kimg = load_checkpoint(best)["nimg"] / 1000
    except CheckpointError:
        return UserError(f"{e}; restore it, or start over with --overwrite")
    return UserError(
        f"{e}; to continue from the intact best.pt ({kimg:g} kimg), copy {best} over it and "
        "rerun with --resume (--overwrite would start over and delete best.pt and the history)"
    )


def readable_checkpoint(out: Path, prefer: str = "last") -> dict:
    """A readable checkpoint of the class folder `out`, the preferred one (last/best) first:
    for what any of them can tell (size, architecture), a damaged one must not hide the other."""
    names = ["last.pt", "best.pt"] if prefer == "last" else ["best.pt", "last.pt"]
    found = [Path(out) / n for n in names if (Path(out) / n).is_file()]
    for path in found:
        try:
            return load_checkpoint(path)
        except CheckpointError:
            continue
    if found:
        load_checkpoint(found[0])  # raises its CheckpointError
    raise CheckpointError(f"no checkpoint at {Path(out) / names[0]}")


class FidTracker:
    """Evaluates the sampling generator on fixed latents in a fixed feature space, against the
    class's held-out (validation) reals and, as a diagnostic, its training reals; real features
    and the real-vs-real floor are computed once. Keeps best.pt: lowest held-out KID (training
    KID when the class has fewer than 2 validation images, which run.json then says)."""

    def __init__(
        self,
        run: ClassRun,
        space: FeatureSpace,
        n_fake: int,
        nz: int,
        seed: int,
        save_best: Callable[[GanState, dict], None],
        precision: str,
    ):
        self.run, self.space, self.save_best, self.precision = run, space, save_best, precision
        self.real = extract_features(space, _nchw(run.images))
        self.heldout = extract_features(space, _nchw(run.heldout))
        self.by = "heldout_kid" if len(self.heldout) >= 2 else "train_kid"
        self.floor = real_floor(self.real, self.heldout, space) if self.by == "heldout_kid" else {}
        self.z = torch.randn(n_fake, nz, generator=torch.Generator().manual_seed(seed + 7))
        self.log = run.out / "eval.jsonl"
        self.best = min((r.get(self.by, float("inf")) for r in self.rows()), default=float("inf"))

    @property
    def selection(self) -> str:
        if self.by == "heldout_kid":
            return f"lowest held-out KID (the class's {len(self.heldout)} validation images)"
        return f"lowest training KID (only {len(self.heldout)} validation images)"

    def rows(self) -> list[dict]:
        if not self.log.is_file():
            return []
        return read_jsonl(self.log)

    def __call__(self, state: GanState) -> dict:
        t0 = time.perf_counter()
        z = self.z.to(next(state.G.parameters()).device)
        feats = extract_features(self.space, sample(state.sampler, z, precision=self.precision))
        train = set_metrics(self.real, feats, self.space, precision_recall_k=None)
        row = {"kimg": state.nimg / 1000, "step": state.step, "train_seconds": state.seconds}
        row |= {f"train_{k}": v for k, v in train.items() if k in ("fid", "kid", "kid_std")}
        row |= {"train_fid_label": train["fid_label"], "train_kid_label": train["kid_label"]}
        if self.by == "heldout_kid":
            held = set_metrics(
                self.heldout, feats, self.space, len(self.real), precision_recall_k=None
            )
            row |= {f"heldout_{k}": v for k, v in held.items() if k not in ("n", "n_reference")}
            row |= {f"floor_{k}": self.floor[k] for k in ("kid", "kid_std", "fid", "fid_label")}
        row["seconds"] = time.perf_counter() - t0
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if row[self.by] < self.best:
            self.best = row[self.by]
            self.save_best(state, row)
        fid_curve(self.rows(), self.run.out / "fid_curve.png", f"{self.run.class_name}")
        shown = {"KID": row[self.by], "trainKID": row["train_kid"]}
        return shown


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def train_class(
    run: ClassRun,
    ds: Dataset,
    arch: Architecture,
    cfg: TrainConfig,
    device: torch.device,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    space: FeatureSpace | None = None,
    eval_n: int = 1000,
    source: Path | None = None,
) -> GanState:
    """Train (or continue) the GAN of one class; returns the final state. With a feature
    space, FID/KID are tracked every cfg.eval_kimg (eval.jsonl, fid_curve.png, best.pt).
    `source`: a checkpoint whose weights a new (not a resumed) run starts from."""
    state, source_entry = _open_run(run, arch, cfg, device, resume, overwrite, source)
    z_grid = torch.randn(
        64, arch.nz, generator=torch.Generator().manual_seed(cfg.seed + GRID_SEED_OFFSET)
    ).to(device)
    extra = {
        "class": run.class_name,
        "data_fingerprint": ds.fingerprint,
        "n_train": len(run.images),
        "n_heldout": len(run.heldout),
        "source": source_entry,
    }

    def snapshot(s: GanState) -> None:
        grid = sample(s.sampler, z_grid, precision=cfg.precision)
        write_grid(run.out / f"grid_kimg{s.nimg / 1000:09.3f}.png", grid)
        save_checkpoint(run.checkpoint, s, cfg, extra)

    def save_best(s: GanState, row: dict) -> None:
        save_checkpoint(run.out / "best.pt", s, cfg, {**extra, "eval": row})

    evaluate = None
    if space is not None and cfg.eval_kimg > 0:
        evaluate = FidTracker(run, space, eval_n, arch.nz, cfg.seed, save_best, cfg.precision)
        extra |= {"eval_n": eval_n, "feature_space": space.name}  # what --resume keeps
    _append_record(
        run,
        ds,
        arch,
        cfg,
        device,
        resumed_from=state.nimg if resume else None,
        source=source_entry,
        best_by=evaluate.selection if evaluate else "no FID/KID tracking: best.pt is not kept",
        evaluation={"eval_n": eval_n, "feature_space": space.name} if evaluate else None,
    )
    images = _nchw(run.images).to(device)  # NHWC memory = channels_last
    weights = _to(sampling_weights(run, cfg.sampling), device)
    return _train_logged(run, state, images, cfg, snapshot, progress, evaluate, weights)


def _open_run(
    run: ClassRun,
    arch: Architecture,
    cfg: TrainConfig,
    device: torch.device,
    resume: bool,
    overwrite: bool,
    source: Path | None,
) -> tuple[GanState, dict | None]:
    """The state to train from — a resumed checkpoint, or a new run (from the source's
    weights, if any) in an emptied folder — and the run's source record."""
    if resume:
        ckpt = read_checkpoint(run)
        try:
            check_architecture(ckpt, arch, run.checkpoint)
        except CheckpointError as e:
            raise UserError(
                f"--resume: {e}; resume with the same options or use --overwrite"
            ) from e
        state = restore_state(ckpt, cfg, device)
        _truncate_log(run.out / "metrics.jsonl", state.step)
        _truncate_log(run.out / "eval.jsonl", state.step)
        return state, ckpt.get("extra", {}).get("source")
    source_ckpt = None if source is None else read_source(source, arch, run.out.parent.parent)
    if run.out.exists() and any(run.out.iterdir()):
        if has_checkpoint(run) and not overwrite:
            raise UserError(
                f"{run.out} already holds a GAN run; pass --resume to continue it or "
                "--overwrite to replace it (deletes its checkpoints and history)"
            )
        shutil.rmtree(run.out)  # replaced on request, or a start that saved nothing
    run.out.mkdir(parents=True)
    state = new_state(arch, cfg, device)
    write_grid(run.out / "reals.png", _nchw(run.images[:64]))
    if source_ckpt is None:
        return state, None
    init_from_source(state, source_ckpt)
    return state, {"path": str(source), "kimg": source_ckpt["nimg"] / 1000}


def _train_logged(run, state, images, cfg, snapshot, progress, evaluate, weights) -> GanState:
    """The training loop with metrics.jsonl appended as it goes; divergence as a user error."""
    with open(run.out / "metrics.jsonl", "a", encoding="utf-8") as log_file:

        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

        try:
            return train(state, images, cfg, snapshot, log, progress, evaluate, weights)
        except TrainingDiverged as e:
            kept = (
                f"{run.checkpoint} is the last good state"
                if run.checkpoint.is_file()
                else "no checkpoint was reached"
            )
            raise UserError(
                f"training of {run.class_name!r} diverged: {e}; {kept}; retry with "
                "--precision fp32 or another --seed"
            ) from e


def _to(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if t is None else t.to(device)


def source_command(run_dir: Path, arch: Architecture) -> str:
    return f"gan-train --class {SOURCE} --run-dir {run_dir} --size {arch.size} --arch {arch.kind}"


def source_checkpoint(run_dir: Path) -> Path:
    """The source run's best.pt (lowest held-out KID), else its last.pt."""
    out = Path(run_dir) / "gan" / SOURCE
    return out / "best.pt" if (out / "best.pt").is_file() else out / "last.pt"


def read_source(path: Path, arch: Architecture, run_dir: Path) -> dict:
    """The source checkpoint, checked against the architecture asked for, or a one-line error
    that names the command which makes a compatible one."""
    if not Path(path).is_file():
        raise UserError(
            f"--from: no source GAN at {path}; train it first: `{source_command(run_dir, arch)}`"
        )
    try:
        ckpt = load_checkpoint(path)
        check_architecture(ckpt, arch, path)
    except CheckpointError as e:
        raise UserError(
            f"--from: {e}; train a compatible source first: `{source_command(run_dir, arch)}`"
        ) from e
    return ckpt


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint (the resumed run writes them again), and a
    torn last line of a killed run."""
    if not path.is_file():
        return
    rows = [json.dumps(r) for r in read_jsonl(path) if r.get("step", step + 1) <= step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


def _append_record(run, ds, arch, cfg, device, resumed_from, source, best_by, evaluation) -> None:
    path = run.out / "run.json"
    history = json.loads(path.read_text())["runs"] if path.is_file() else []
    record = run_record(
        {
            "class": run.class_name,
            "arch": arch.as_dict(),
            "train": cfg.as_dict(),
            "device": str(device),
            "resumed_from_kimg": None if resumed_from is None else resumed_from / 1000,
            "initialised_from": source,
            "best_checkpoint": best_by,
            "evaluation": evaluation,
        },
        {
            "source": ds.source,
            "format": ds.format,
            "fingerprint": ds.fingerprint,
            "synthetic_demo_data": ds.synthetic,
            "skipped_images": ds.skipped,
            "n_train_images": len(run.images),
            "n_heldout_images": len(run.heldout),
        },
    )
    atomic_write_text(path, json.dumps({"runs": [*history, record]}, indent=1))


def write_grid(path: Path, images_uint8: torch.Tensor) -> None:
    grid = make_grid(images_uint8.cpu(), nrow=8, padding=2, pad_value=255)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
