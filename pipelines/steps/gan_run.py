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
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from gan.checkpoint import init_from_source, restore_state, save_checkpoint
from gan.conventions import atomic_write_bytes, atomic_write_text, to_nchw
from gan.metrics.features import FeatureSpace, extract_features
from gan.metrics.kid import mixture_kid
from gan.metrics.sets import real_floor, set_metrics
from gan.networks import Architecture
from gan.training import GanState, TrainConfig, TrainingDiverged, new_state, sample, train
from pipelines.data.dataset import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError
from pipelines.plots import fid_curve
from pipelines.store import checkpoints, tensorboard
from pipelines.store.checkpoints import GanFolder
from pipelines.store.guard import GAN_RUN, check_replaceable
from pipelines.store.layout import SOURCE, RunLayout
from pipelines.store.records import read_jsonl, run_record

MIN_TRAIN_IMAGES = 10
GRID_SEED_OFFSET = 1_000_003  # fixed-noise latents come from their own stream, not the loop's


@dataclass
class ClassRun:
    """Where one class's GAN lives, what it trains on and what judges it."""

    class_name: str
    out: Path
    images: np.ndarray  # uint8 N×S×S×3, training split of the class only
    heldout: np.ndarray  # uint8, the selection half of its validation images: best.pt's choice
    labels: np.ndarray | None = None  # class labels of `images` (the all-classes source only)
    lesions: list[str] | None = None  # lesion id of each of `images`, where the data has them
    heldout_lesions: list[str] | None = None  # lesion id of each of `heldout`
    heldout_labels: np.ndarray | None = None  # class labels of `heldout` (the source only)
    run_dir: Path | None = None  # the run directory `out` belongs to, for the fixes it names
    judging: np.ndarray | None = None  # the other half: the kept set's quality is reported here
    judging_lesions: list[str] | None = None  # lesion id of each of `judging`

    @property
    def folder(self) -> GanFolder:
        return GanFolder(self.out, self.class_name, self.run_dir)

    @property
    def checkpoint(self) -> Path:
        return self.folder.last


JUDGING_SEED = 0  # which validation lesions judge (the split's seed has shuffled them already)
SELECTION_RULE = "best.pt on the selection half of the validation lesions, judged on the other"


def selection_and_judging(
    lesions: list[str], labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions, among a class's validation images, of the selection half (the GAN's
    evaluations choose best.pt on them) and of the judging half (the kept set's KID, filter
    verdict and detectability are reported on them): half of the lesions each (the larger
    half selects), within every class of `labels` (the source's validation images hold all
    classes). Why: best.pt is the lowest of a dozen noisy evaluations, so the images that
    chose it flatter it; a checkpoint is scored on other real images. A class with a single
    validation lesion has nothing to judge on (its reports say so)."""
    labels = np.zeros(len(lesions), dtype=int) if labels is None else np.asarray(labels)
    judge = np.zeros(len(lesions), dtype=bool)
    for k in np.unique(labels):  # a fresh draw per class: the source's halves are the classes'
        mine = labels == k
        ids = sorted({lesions[i] for i in np.flatnonzero(mine)})
        order = np.random.default_rng(JUDGING_SEED).permutation(len(ids))
        judging = {ids[i] for i in order[: len(ids) // 2]}
        judge |= mine & np.array([lesion in judging for lesion in lesions], dtype=bool)
    return np.flatnonzero(~judge), np.flatnonzero(judge)


def check_selection(ckpt: dict, out: Path) -> None:
    """A GAN whose best.pt was chosen on every validation image (before the selection and
    judging halves) is refused, never reused or continued: its kept set would be judged on
    the images that chose it."""
    if ckpt.get("extra", {}).get("selection") != SELECTION_RULE:
        raise UserError(
            f"{out} holds a GAN whose best.pt was chosen on all validation images (those its "
            f"samples are judged on); delete {out} to train it again, or use another --run-dir"
        )


def judging_images(run: ClassRun) -> np.ndarray:
    """The real images a class's kept set is judged on: its judging half (none for a run
    made without one: never the selection half, which chose its checkpoint)."""
    if run.judging is None:
        return run.heldout[:0]
    return run.judging


def class_run(ds: Dataset, split: Split, class_name: str, run_dir: Path) -> ClassRun:
    """The class's GAN folder and images: its training split (every class's for the source
    GAN) and its validation split, cut by lesion into a selection and a judging half."""
    out = RunLayout(run_dir).gan_dir(class_name)
    labels = heldout_labels = None
    if class_name == SOURCE:
        idx, val = split.train, split.val
        labels, heldout_labels = ds.labels[idx], ds.labels[val]
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
    pick, judge = selection_and_judging([lesion[i] for i in val], heldout_labels)
    pick, judge = val[pick], val[judge]
    return ClassRun(
        class_name, out, ds.images[idx], ds.images[pick], labels,
        [lesion[i] for i in idx], [lesion[i] for i in pick],
        None if heldout_labels is None else ds.labels[pick], Path(run_dir),
        ds.images[judge], [lesion[i] for i in judge],
    )  # fmt: skip


def sampling_weights(run: ClassRun, sampling: str) -> torch.Tensor | None:
    """Per-image draw weights: None (uniform) or equal total weight per class (balanced)."""
    if sampling == "uniform" or run.labels is None:
        return None
    counts = np.bincount(run.labels)
    return torch.from_numpy(1.0 / counts[run.labels]).float()


def class_mix(run: ClassRun, sampling: str) -> dict[int, float] | None:
    """The class mix the (multi-class) generator is trained to produce: the share of draws
    each class gets under `sampling`; None for a one-class GAN."""
    if run.labels is None:
        return None
    classes, counts = np.unique(run.labels, return_counts=True)
    if sampling == "balanced":
        return {int(c): 1 / len(classes) for c in classes}
    return {int(c): n / counts.sum() for c, n in zip(classes, counts)}


class FidTracker:
    """Evaluates the sampling generator on fixed latents in a fixed feature space, against the
    class's held-out (validation) reals and, as a diagnostic, its training reals; real features
    and the real-vs-real floor are computed once. Keeps best.pt: lowest held-out KID (training
    KID when the class has fewer than 2 validation images, which run.json then says). A
    multi-class generator (the source) is judged against the validation reals weighted to the
    class mix it is trained to produce (`mix`, gan.metrics.kid.mixture_kid), its floor likewise:
    against the natural mix, KID would score the mix, not the images."""

    def __init__(
        self,
        run: ClassRun,
        space: FeatureSpace,
        n_fake: int,
        nz: int,
        seed: int,
        save_best: Callable[[GanState, dict], None],
        precision: str,
        mix: dict[int, float] | None = None,
    ):
        self.run, self.space, self.save_best, self.precision = run, space, save_best, precision
        self.tb: Any = None  # a pipelines.tensorboard writer its rows also go to (None: none)
        self.real = extract_features(space, to_nchw(run.images))
        self.heldout = extract_features(space, to_nchw(run.heldout))
        self.by = "heldout_kid" if len(self.heldout) >= 2 else "train_kid"
        self.floor = real_floor(self.real, self.heldout, space) if self.by == "heldout_kid" else {}
        self.mix = None
        if self.by == "heldout_kid" and mix is not None and run.heldout_labels is not None:
            self.heldout_labels = torch.from_numpy(run.heldout_labels)
            try:
                self.floor["mix_kid"] = mixture_kid(
                    self.heldout, self.heldout_labels, self.real, mix, torch.from_numpy(run.labels)
                )
                self.mix, self.by = mix, "heldout_mix_kid"
            except ValueError:  # no class with 2 validation images: the natural mix it is
                pass
        self.z = torch.randn(n_fake, nz, generator=torch.Generator().manual_seed(seed + 7))
        self.log = run.out / "eval.jsonl"
        self.best = min((r.get(self.by, float("inf")) for r in self.rows()), default=float("inf"))

    @property
    def selection(self) -> str:
        n = len(self.heldout)
        if self.by == "heldout_mix_kid":
            return (
                f"lowest held-out KID against the {n} validation images of the selection half, "
                "weighted to the class mix the generator is trained on"
            )
        if self.by == "heldout_kid":
            return f"lowest held-out KID (the class's {n} validation images of the selection half)"
        return f"lowest training KID (only {n} validation images in the selection half)"

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
        if self.floor:  # 2 or more validation images
            held = set_metrics(
                self.heldout, feats, self.space, len(self.real), precision_recall_k=None
            )
            row |= {f"heldout_{k}": v for k, v in held.items() if k not in ("n", "n_reference")}
            row |= {f"floor_{k}": self.floor[k] for k in ("kid", "kid_std", "fid", "fid_label")}
        if self.mix is not None:
            row["heldout_mix_kid"] = mixture_kid(self.heldout, self.heldout_labels, feats, self.mix)
            row["heldout_mix_kid_label"] = row["heldout_kid_label"] + ", training's class mix"
            row["floor_mix_kid"] = self.floor["mix_kid"]
        row["seconds"] = time.perf_counter() - t0
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        tensorboard.scalars(self.tb, row, tensorboard.GAN_SCALARS, state.nimg)
        if row[self.by] < self.best:
            self.best = row[self.by]
            self.save_best(state, row)
        fid_curve(self.rows(), self.run.out / "fid_curve.png", f"{self.run.class_name}", self.by)
        shown = {"KID": row[self.by], "trainKID": row["train_kid"]}
        return shown


@dataclass(frozen=True)
class TrainPlan:
    """How to train one class's GAN: everything train_gan needs besides the class's data.
    resume: continue last.pt; overwrite: replace a run that has a checkpoint; space: track
    FID/KID in it every cfg.eval_kimg on eval_n samples; source: a checkpoint whose weights a
    new (not a resumed) run starts from; tensorboard: the folder of its TensorBoard events
    (None: none)."""

    arch: Architecture
    cfg: TrainConfig
    device: torch.device
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    space: FeatureSpace | None = None
    eval_n: int = 1000
    source: Path | None = None
    tensorboard: Path | None = None

    @property
    def evaluation(self) -> dict | None:
        """What --resume keeps of the FID tracking (None: no tracking)."""
        if self.space is None or self.cfg.eval_kimg <= 0:
            return None
        return {"eval_n": self.eval_n, "feature_space": self.space.name}


def train_gan(run: ClassRun, ds: Dataset, plan: TrainPlan, resumed: dict | None = None) -> GanState:
    """Train (or continue) the GAN of one class; returns the final state. With a feature
    space, FID/KID are tracked (eval.jsonl, fid_curve.png, best.pt). `resumed`: the run's
    last.pt where the caller has read it already, so that --resume reads it once."""
    state, source_entry = _open_run(run, plan, resumed)
    first_step = state.nimg + 1 if plan.resume else 0  # TensorBoard steps are images seen
    with tensorboard.writer(plan.tensorboard, purge_step=first_step) as tb:
        return _train_opened(run, ds, plan, state, source_entry, tb)


def _train_opened(run, ds, plan, state, source_entry, tb) -> GanState:
    """train_gan on the opened run, with its TensorBoard writer `tb` (None: none)."""
    cfg = plan.cfg
    z_grid = torch.randn(
        64, plan.arch.nz, generator=torch.Generator().manual_seed(cfg.seed + GRID_SEED_OFFSET)
    ).to(plan.device)
    extra = {
        "class": run.class_name,
        "data_fingerprint": ds.fingerprint,
        "n_train": len(run.images),
        "n_heldout": len(run.heldout),
        "n_judging": len(judging_images(run)),
        "selection": SELECTION_RULE,
        "source": source_entry,
    }

    def snapshot(s: GanState) -> None:
        grid = sample(s.sampler, z_grid, precision=cfg.precision)
        write_grid(run.out / f"grid_kimg{s.nimg / 1000:09.3f}.png", grid)
        tensorboard.images(tb, tensorboard.GRID, grid, s.nimg)
        save_checkpoint(run.checkpoint, s, cfg, extra)

    def save_best(s: GanState, row: dict) -> None:
        save_checkpoint(run.folder.best, s, cfg, {**extra, "eval": row})

    evaluate = None
    if plan.evaluation is not None:
        evaluate = FidTracker(
            run, plan.space, plan.eval_n, plan.arch.nz, cfg.seed, save_best, cfg.precision,
            class_mix(run, cfg.sampling),
        )  # fmt: skip
        evaluate.tb = tb
        extra |= plan.evaluation  # what --resume keeps
    _append_record(run, ds, plan, state.nimg if plan.resume else None, source_entry, evaluate)
    images = to_nchw(run.images, plan.device)  # NHWC memory = channels_last
    weights = _to(sampling_weights(run, cfg.sampling), plan.device)
    return _train_logged(run, state, images, plan, snapshot, evaluate, weights, tb)


def _open_run(run: ClassRun, plan: TrainPlan, resumed: dict | None) -> tuple[GanState, dict | None]:
    """The state to train from — a resumed checkpoint, or a new run (from the source's
    weights, if any) in an emptied folder — and the run's source record."""
    if plan.resume:
        ckpt = checkpoints.read_latest(run.folder) if resumed is None else resumed
        checkpoints.check_resumable(ckpt, run.folder, plan.arch)
        check_selection(ckpt, run.out)
        state = restore_state(ckpt, plan.cfg, plan.device)
        _truncate_log(run.out / "metrics.jsonl", state.step)
        _truncate_log(run.out / "eval.jsonl", state.step)
        return state, ckpt.get("extra", {}).get("source")
    source = None
    if plan.source is not None:
        source = checkpoints.read_source(plan.source, plan.arch, run.run_dir)
        check_selection(source, Path(plan.source).parent)  # it chose on these lesions too
    if run.out.exists() and any(run.out.iterdir()):
        if run.folder.has_checkpoint() and not plan.overwrite:
            raise UserError(
                f"{run.out} already holds a GAN run; pass --resume to continue it or "
                "--overwrite to replace it (deletes its checkpoints and history)"
            )
        check_replaceable(run.out, GAN_RUN, "--overwrite", {})  # never someone else's files
        shutil.rmtree(run.out)  # replaced on request, or a start that saved nothing
    run.out.mkdir(parents=True, exist_ok=True)  # empty: a start killed before its first file
    state = new_state(plan.arch, plan.cfg, plan.device)
    write_grid(run.out / "reals.png", to_nchw(run.images[:64]))
    if source is None:
        return state, None
    init_from_source(state, source)
    return state, {"path": str(plan.source), "kimg": source["nimg"] / 1000}


def _train_logged(run, state, images, plan, snapshot, evaluate, weights, tb) -> GanState:
    """The training loop with metrics.jsonl (and TensorBoard) appended as it goes; divergence
    as a user error."""
    with open(run.out / "metrics.jsonl", "a", encoding="utf-8") as log_file:

        def log(row: dict) -> None:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()
            tensorboard.scalars(tb, row, tensorboard.GAN_SCALARS, state.nimg)

        try:
            return train(state, images, plan.cfg, snapshot, log, plan.progress, evaluate, weights)
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


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint (the resumed run writes them again), and a
    torn last line of a killed run."""
    if not path.is_file():
        return
    rows = [json.dumps(r) for r in read_jsonl(path) if r.get("step", step + 1) <= step]
    atomic_write_text(path, "".join(r + "\n" for r in rows))


def _append_record(run, ds, plan, resumed_from, source, evaluate) -> None:
    """Add this start or resume to run.json: what was asked, where, and on which data."""
    path = run.out / "run.json"
    history = json.loads(path.read_text())["runs"] if path.is_file() else []
    record = run_record(
        {
            "class": run.class_name,
            "arch": plan.arch.as_dict(),
            "train": plan.cfg.as_dict(),
            "device": str(plan.device),
            "resumed_from_kimg": None if resumed_from is None else resumed_from / 1000,
            "initialised_from": source,
            "best_checkpoint": (
                evaluate.selection if evaluate else "no FID/KID tracking: best.pt is not kept"
            ),
            "evaluation": plan.evaluation if evaluate else None,
        },
        {
            **ds.record(),
            "n_train_images": len(run.images),
            "n_heldout_images": len(run.heldout),
            "n_judging_images": len(judging_images(run)),
        },
    )
    atomic_write_text(path, json.dumps({"runs": [*history, record]}, indent=1))


def write_grid(path: Path, images_uint8: torch.Tensor) -> None:
    grid = make_grid(images_uint8.cpu(), nrow=8, padding=2, pad_value=255)
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
