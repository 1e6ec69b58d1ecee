"""gan-sample: draw a pool from a class's generator, filter it, write the kept images.

Output per class, written into a temporary directory and renamed into place only when complete
(an interrupted run leaves no half manifest): <out>/<class>/ with the kept images (PNG files or
one samples.npz), manifest.csv (every pool sample: file, score, nearest-real distance,
kept/rejected and why), summary.json (FID/KID/precision/recall of kept vs a random n of the
same pool vs the whole pool, against the class's held-out validation reals and against the
training reals the filter selected with, the real-vs-real floor, and the held-out verdict
`filter_vs_random_heldout`: KID difference kept − random, its 95 % interval and beats / no
difference / worse) and grid.png (real | kept | rejected).

The filter chooses with the training reals, so its verdict is only honest on reals it never
saw: summary.json leads with the held-out one, and the training numbers carry no verdict.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan.conventions import new_temp_dir, replace_dir, to_nchw, writing
from gan.filtering import KEPT, Selection, select
from gan.metrics.features import FeatureSpace, extract_features, metric_label
from gan.metrics.filter_verdict import BEATS, NO_DIFFERENCE, FilterVerdict, filter_vs_random
from gan.metrics.sets import real_floor, set_metrics
from gan.networks import Generator
from gan.training import NonFiniteSamples, sample
from pipelines.errors import UserError
from pipelines.format import fid, kid_e3
from pipelines.steps.detect import (
    FRESH_FILE,
    FRESH_N,
    Detector,
    detect_phrase,
    fresh_seed,
    measure,
)
from pipelines.steps.gan_run import ClassRun, check_selection, judging_images, write_grid
from pipelines.store import checkpoints
from pipelines.store.checkpoints import GanFolder
from pipelines.store.records import run_record

VERDICT_REPLICATES = 1000  # bootstrap replicates of the held-out filter verdict
AS_SAMPLED = Detector()  # detectability on the images as sampled, DETECT_STEPS steps


@dataclass
class SampleOptions:
    n: int
    checkpoint: str = "best"  # best | last | a path
    filter: str = "fid"  # fid | none
    pool_factor: float = 2.0
    score: str = "matching"
    fmt: str = "png"
    seed: int = 0
    precision: str = "fp32"
    fresh_n: int = FRESH_N  # fresh samples (never kept) for detectability and the signature


@dataclass(frozen=True)
class Drawn:
    """What one class's sampling drew: the pool, the filter's selection from it, and the
    fresh samples (never trained on) that detectability and the signature test with."""

    pool: torch.Tensor
    sel: Selection
    fresh: torch.Tensor


def pool_size(opts: SampleOptions) -> int:
    """Samples drawn to keep opts.n: the pool the filter chooses from (n itself without one)."""
    return opts.n if opts.filter == "none" else max(opts.n, int(round(opts.pool_factor * opts.n)))


def memory_needed(opts: SampleOptions, size: int, dim: int, n_real: int, nz: int = 100) -> int:
    """Peak bytes of sample_class, roughly: the pool's images (and the kept copy), latents,
    features, the held-out verdict's bootstrap (a replicate × pool indicator and a block of the
    pool kernel, doubles) and, for the matching filter, its real x pool distance and rank
    matrices."""
    per_sample = 2 * 3 * size * size + 4 * nz + 8 * dim + 100  # + per-sample lists
    per_sample += 8 * (VERDICT_REPLICATES + 1024)
    if opts.filter == "fid" and opts.score == "matching":
        per_sample += 16 * max(n_real, 1)
    return pool_size(opts) * per_sample


def available_memory() -> int:
    """Bytes that can still be allocated without swapping (Linux MemAvailable), else the
    physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_memory(opts: SampleOptions, size: int, dim: int, n_real: int) -> None:
    """Refuse, before any work, a request whose pool cannot fit in memory: the pool is held
    whole (the filter ranks all of it), so a huge --n would end in an out-of-memory kill
    or a traceback hours in."""
    need, have = memory_needed(opts, size, dim, n_real), available_memory()
    if need > 0.8 * have:
        gib = 1 << 30
        raise UserError(
            f"--n {opts.n:,} draws a pool of {pool_size(opts):,} images, about "
            f"{need / gib:.1f} GiB of memory, and {have / gib:.1f} GiB are available; lower "
            "--n (or --pool-factor), or sample in several runs with other --seed and --out"
        )


def checkpoint_path(run: ClassRun, which: str) -> Path:
    """The file `--checkpoint which` names for the class (best, last or a path)."""
    return checkpoints.chosen_path(run.folder, which)


def load_generator(path: Path, size: int, device: torch.device) -> tuple[Generator, dict]:
    """The generator of a checkpoint file and the checkpoint, for callers that hold a path."""
    path = Path(path)
    _, ckpt = checkpoints.read_chosen(GanFolder(path.parent, path.parent.name), str(path))
    return checkpoints.generator(ckpt, path, size, device), ckpt


def sample_class(
    run: ClassRun,
    opts: SampleOptions,
    space: FeatureSpace | None,
    out_root: Path,
    device: torch.device,
    data: dict,
    overwrite: bool = False,
    detector: Detector = AS_SAMPLED,
) -> dict:
    """Sample, filter and write one class; returns its summary."""
    target = out_root / run.class_name
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise UserError(
            f"{target} already holds samples; pass --overwrite to replace them or "
            "--out for another directory"
        )
    t0 = time.perf_counter()
    _remove_stale_temporaries(out_root, run.class_name)
    check_memory(opts, run.images.shape[1], space.dim if space else 0, len(run.images))
    ckpt_path, ckpt, G = _generator(run, opts, device, data)
    pool = _draw(G, pool_size(opts), opts.seed, opts.precision)
    pool_n = len(pool)
    detect = functools.partial(measure, run, detector, opts.seed)
    if space is None:  # --filter none without a trained feature network: no FID/KID
        drawn = Drawn(
            pool, _keep_all(pool_n), _draw(G, opts.fresh_n, fresh_seed(opts.seed), opts.precision)
        )
        found = detect(pool, drawn.fresh)
        return _unmeasured(run, opts, (ckpt_path, ckpt), drawn, data, target, t0, found)
    real = extract_features(space, to_nchw(run.images))
    heldout = extract_features(space, to_nchw(judging_images(run)))
    feats = extract_features(space, pool)
    t_sample = time.perf_counter() - t0

    sel = _select(opts, feats, real, run.lesions)
    kept = sel.kept
    random_n = torch.randperm(pool_n, generator=torch.Generator().manual_seed(opts.seed + 1))
    random_n = random_n[: len(kept)]
    summary = _summary(run, opts, (ckpt_path, ckpt), sel, pool_n, space)
    if len(kept) >= 2:
        subsets = {"kept": feats[kept], "random": feats[random_n], "pool": feats}
        summary |= _set_quality(subsets, real, heldout, space, run.judging_lesions, opts.seed)
    if len(kept) < opts.n:
        summary["warning"] = (
            f"only {len(kept)} of {opts.n} samples passed the filter; raise "
            "--pool-factor or train the generator longer"
        )
    drawn = Drawn(pool, sel, _fresh_set(G, opts, space, real, run.lesions))
    summary["detectability"] = detect(pool[kept], drawn.fresh)
    summary["verdict"] = "; ".join(
        v for v in (summary.get("verdict"), detect_phrase(summary["detectability"])) if v
    )
    summary["seconds"] = {"sample_and_features": t_sample, "total": time.perf_counter() - t0}
    summary["record"] = run_record(summary["options"], data)
    _write_class_dir(target, run, drawn, summary, opts, ckpt_path)
    return summary


def _fresh_set(G, opts: SampleOptions, space, real, lesions) -> torch.Tensor:
    """opts.fresh_n new samples made as the kept set was made (the same filter on a pool of the same
    factor, on fresh latents): what the set's generator and filter give that no arm saw."""
    fresh_opts = dataclasses.replace(opts, n=opts.fresh_n, seed=fresh_seed(opts.seed))
    pool = _draw(G, pool_size(fresh_opts), fresh_opts.seed, opts.precision)
    if opts.filter == "none":
        return pool
    return pool[_select(fresh_opts, extract_features(space, pool), real, lesions).kept]


def _generator(
    run: ClassRun, opts: SampleOptions, device: torch.device, data: dict
) -> tuple[Path, dict, Generator]:
    """The generator of opts.checkpoint (checked against the run's data) and its checkpoint."""
    ckpt_path, ckpt = checkpoints.read_chosen(run.folder, opts.checkpoint)
    G = checkpoints.generator(ckpt, ckpt_path, run.images.shape[1], device)
    checkpoints.check_data(ckpt, ckpt_path, data)
    if "eval" in ckpt.get("extra", {}):  # a best.pt, chosen on validation images
        check_selection(ckpt, run.out)
    return ckpt_path, ckpt, G


def _draw(G: Generator, n: int, seed: int, precision: str) -> torch.Tensor:
    """n uint8 N×3×S×S samples on latents of `seed`."""
    z = torch.randn(n, G.nz, generator=torch.Generator().manual_seed(seed))
    try:
        return sample(G, z.to(next(G.parameters()).device), precision=precision).cpu()
    except NonFiniteSamples as e:
        raise UserError(f"{e}: its checkpoint is damaged; sample another, or train again") from e


def _select(opts: SampleOptions, feats: torch.Tensor, real: torch.Tensor, lesions) -> Selection:
    """The filter's choice (--filter fid, real images grouped by lesion where known), or all."""
    if opts.filter == "fid":
        return select(feats, real, opts.n, opts.score, seed=opts.seed, real_groups=lesions)
    return _keep_all(len(feats))


def _keep_all(n: int) -> Selection:
    """--filter none: every pool sample kept, in drawing order."""
    return Selection(torch.arange(n), [KEPT] * n, torch.zeros(n), torch.zeros(n), 0.0)


def _set_quality(
    subsets: dict,
    real: torch.Tensor,
    heldout: torch.Tensor,
    space,
    heldout_groups: list[str] | None = None,
    seed: int = 0,
) -> dict:
    """FID/KID/precision/recall of the kept, random and pool sets against the selection
    (training) reals and, where there are >= 2, the held-out reals with the real-vs-real floor.

    The verdict leads with held-out, since the filter chose with the training reals: KID(kept)
    − KID(random n of the pool) on the held-out reals with a 95 % paired bootstrap interval
    (over held-out lesions and random subsets, gan.metrics.filter_verdict), stated as beats /
    no difference / worse. The training-reals numbers are a diagnostic only, with no verdict."""
    out: dict = {"sets": {k: set_metrics(real, v, space) for k, v in subsets.items()}}
    verdicts = [_training_note(out["sets"])]
    if len(heldout) >= 2:
        out["heldout_sets"] = {
            k: set_metrics(heldout, v, space, len(real)) for k, v in subsets.items()
        }
        out["floor"] = real_floor(real, heldout, space)
        fv = filter_vs_random(
            subsets["kept"], subsets["pool"], heldout, heldout_groups, VERDICT_REPLICATES, seed
        )
        out["filter_vs_random_heldout"] = fv.as_dict()
        label = metric_label("KID", space, len(heldout), len(subsets["kept"]))
        verdicts.insert(0, _heldout_verdict(fv, label, len(subsets["kept"])))
    else:
        verdicts.insert(0, f"no held-out verdict: only {len(heldout)} validation images judge")
    out["verdict"] = "; ".join(verdicts)
    return out


def _summary(run: ClassRun, opts: SampleOptions, checkpoint, sel: Selection, pool_n: int, space):
    """What every summary.json says first: where the samples came from and what was kept."""
    ckpt_path, ckpt = checkpoint
    return {
        "class": run.class_name,
        "checkpoint": str(ckpt_path),
        "checkpoint_kimg": ckpt["nimg"] / 1000,
        "feature_space": None if space is None else f"{space.name}-{space.dim}d",
        "n_real": len(run.images),
        "n_heldout": len(judging_images(run)),  # the judging half: best.pt was chosen on the other
        "requested": opts.n,
        "kept": len(sel.kept),
        "pool": pool_n,
        "options": vars(opts),
        "copy_threshold": sel.threshold,
        "rejected": {v: sel.verdict.count(v) for v in sorted(set(sel.verdict)) if v != KEPT},
        "sets": {},
    }


def _unmeasured(run, opts, checkpoint, drawn, data, target, t0, found) -> dict:
    """Write --filter none samples without FID/KID: there is no feature network, and training
    one only to measure would be the slow part of the command (detectability needs none)."""
    summary = _summary(run, opts, checkpoint, drawn.sel, len(drawn.pool), None)
    summary["detectability"] = found
    summary["verdict"] = (
        "FID/KID not measured: --filter none, and no feature network is trained in this run "
        "(gan-train with --eval-every, or gan-sample --filter fid, trains one); "
        + detect_phrase(found)
    )
    summary["seconds"] = {"total": time.perf_counter() - t0}
    summary["record"] = run_record(summary["options"], data)
    _write_class_dir(target, run, drawn, summary, opts, checkpoint[0])
    return summary


def _remove_stale_temporaries(out_root: Path, cls: str) -> None:
    """Folders a killed gan-sample left behind (the caller holds the run's lock, so no other
    writer owns them): .<class>.tmp-*, .<class>.old-*, and .<class>.XXXXXXXX of older versions."""
    if not out_root.is_dir():
        return
    legacy = re.compile(rf"\.{re.escape(cls)}\.[A-Za-z0-9_]{{8}}")
    for p in out_root.glob(f".{glob.escape(cls)}.*"):
        name = p.name[len(cls) + 2 :]
        if p.is_dir() and (name.startswith(("tmp-", "old-")) or legacy.fullmatch(p.name)):
            shutil.rmtree(p, ignore_errors=True)


def _heldout_verdict(fv: FilterVerdict, label: str, n: int) -> str:
    outcome = {
        BEATS: "the filter beats random selection",
        NO_DIFFERENCE: "no difference from random selection",
    }.get(fv.verdict, "the filter is WORSE than random selection")
    kept, random, diff, lo, hi = (
        kid_e3(v, tag=True) for v in (fv.kid_kept, fv.kid_random, fv.kid_diff, *fv.ci95)
    )
    return (
        f"on held-out reals, kept {label} = {kept} vs {random} for a random {n} of the pool: "
        f"difference {diff}, 95 % CI [{lo}, {hi}] "
        f"(bootstrap over {fv.clusters} held-out {fv.unit} and random subsets): {outcome}"
    )


def _training_note(sets: dict) -> str:
    k, r = sets["kept"], sets["random"]
    return (
        f"on selection (training) reals, kept {k['fid_label']} = {fid(k['fid'])} vs "
        f"random {fid(r['fid'])} (a diagnostic: the filter chose with these reals)"
    )


def _write_class_dir(target, run, drawn: Drawn, summary, opts, ckpt_path) -> None:
    with writing(target):  # a full disk's error names the class's folder
        _write_class_files(target, run, drawn, summary, opts, ckpt_path)


def _write_class_files(target, run, drawn: Drawn, summary, opts, ckpt_path) -> None:
    pool, sel, fresh = drawn.pool, drawn.sel, drawn.fresh
    kept = sel.kept
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_dir(target.parent, f".{run.class_name}.tmp-")
    try:
        files = {}
        images = pool[kept].permute(0, 2, 3, 1).numpy()
        if opts.fmt == "npz":
            np.savez(
                tmp / "samples.npz",
                images=images,
                pool_index=kept.numpy(),
                score=sel.score[kept].numpy(),
            )
            files = {int(i): f"samples.npz[{j}]" for j, i in enumerate(kept.tolist())}
        else:
            for j, i in enumerate(kept.tolist()):
                name = f"{run.class_name}_{j:05d}.png"
                Image.fromarray(images[j]).save(tmp / name, compress_level=1)
                files[i] = name
        with open(tmp / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(
                [
                    "file",
                    "class",
                    "checkpoint",
                    "seed",
                    "pool_index",
                    "score",
                    "nearest_real_distance",
                    "status",
                ]
            )
            for i in range(len(pool)):
                w.writerow(
                    [
                        files.get(i, ""),
                        run.class_name,
                        ckpt_path,
                        opts.seed,
                        i,
                        f"{float(sel.score[i]):.6g}",
                        f"{float(sel.nearest_real[i]):.6g}",
                        sel.verdict[i],
                    ]
                )
        np.savez(
            tmp / FRESH_FILE, images=fresh.permute(0, 2, 3, 1).numpy(), seed=fresh_seed(opts.seed),
            filter=opts.filter,
        )  # fmt: skip
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        _comparison_grid(tmp / "grid.png", run, pool, kept, sel)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _comparison_grid(path: Path, run: ClassRun, pool, kept, sel: Selection) -> None:
    """Three rows of 8: real training images, best kept samples, best-scored rejected ones."""
    real = to_nchw(run.images[:8])
    rejected = [i for i in sel.score.argsort(descending=True).tolist() if sel.verdict[i] != KEPT]
    rows = [real, pool[kept[:8]], pool[torch.tensor(rejected[:8], dtype=torch.long)]]
    blank = torch.full((1, 3, *real.shape[2:]), 255, dtype=torch.uint8)
    rows = [torch.cat([r, blank.expand(8 - len(r), -1, -1, -1)]) if len(r) < 8 else r for r in rows]
    write_grid(path, torch.cat(rows))
