"""augment-and-compare: does adding filtered synthetic images raise a rare class's recall?

Arms differ only in their training set; every arm gets the same classifier, recipe, optimiser
step budget and seeds:
  baseline        real training images;
  oversample      real images, the rare classes resampled with replacement to the target count;
  gan             real images plus filtered synthetic images up to the target count;
  gan-unfiltered  the same count of synthetic images drawn without the filter.
Validation (model selection) and test are real and lesion-disjoint; the test set is only ever
used for the numbers in the report. Finished GANs, sample sets and (arm, seed) runs are reused
on a rerun; a changed config gets its own directory instead of mixing results.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import torch

from classifier.metrics import bootstrap_recall_gain, classification_metrics
from classifier.networks import PretrainedWeightsUnavailable, make_classifier
from classifier.training import ClassifierConfig, predict_proba, train_classifier
from gan.networks import Architecture
from gan.training import TrainConfig
from pipelines.datasets import Dataset
from pipelines.errors import UserError
from pipelines.gan_run import SOURCE, ClassRun, class_run, source_checkpoint, train_class
from pipelines.rundir import atomic_write_bytes, atomic_write_text
from pipelines.sampling import SampleOptions, sample_class
from pipelines.splits import Split

ARMS = ("baseline", "oversample", "gan", "gan-unfiltered")
DEFAULT_ARMS = ("baseline", "oversample", "gan")
GAIN_PAIRS = [  # (arm, reference): the recall gains the report shows, headline first
    ("gan", "baseline"),
    ("gan", "oversample"),
    ("oversample", "baseline"),
    ("gan-unfiltered", "baseline"),
    ("gan", "gan-unfiltered"),
]


@dataclass(frozen=True)
class Profile:
    """Budgets. Epoch-based budgets are capped so small data (demo) finishes in minutes."""

    size: int
    gan_epochs: float  # passes over the class's training images ...
    gan_kimg_cap: float  # ... but at most this many kimg
    gan_kimg_min: float  # ... and at least this many (a tiny class still needs steps)
    gan_batch: int
    classifier_epochs: float  # passes over the baseline training set ...
    classifier_steps_cap: int  # ... but at most this many optimiser steps
    classifier_width: int
    feature_epochs: float = 8  # domain feature network: passes over the training split ...
    feature_steps_cap: int = 600  # ... but at most this many steps
    batch_size: int = 128
    gan_arch: str = "resize"  # generator recipe: see gan.networks, docs/generator_budget.md
    gan_loss: str = "ns"
    gan_r1_gamma: float = 0.0
    source_kimg: float = 0.0  # > 0: train an all-classes source GAN this long, fine-tune from it
    source_sampling: str = "balanced"
    freeze_d: int = 1  # FreezeD blocks when fine-tuning from the source


# fmt: off
PROFILES = {
    # 2-core CPU, full HAM10000: the GANs get today's ~130 s, spent as docs/generator_budget.md
    # measured best: a 25-kimg all-classes source, then ~12 kimg fine-tunes per class
    "quick": Profile(size=32, gan_epochs=150, gan_kimg_cap=14, gan_kimg_min=11, gan_batch=32,
                     classifier_epochs=12, classifier_steps_cap=600, classifier_width=16,
                     source_kimg=25),
    # meant for a GPU
    "full": Profile(size=64, gan_epochs=1000, gan_kimg_cap=150, gan_kimg_min=50,
                    gan_batch=64, classifier_epochs=40, classifier_steps_cap=8000,
                    classifier_width=64, feature_epochs=30, feature_steps_cap=3000,
                    source_kimg=300),
    # seconds, for tests and a first look at the outputs: the numbers mean nothing
    "smoke": Profile(size=32, gan_epochs=5, gan_kimg_cap=0.2, gan_kimg_min=0.05, gan_batch=16,
                     classifier_epochs=1, classifier_steps_cap=20, classifier_width=8,
                     feature_epochs=6, feature_steps_cap=100, batch_size=32, source_kimg=0.1),
}
# fmt: on


@dataclass
class Arm:
    name: str
    images: np.ndarray  # uint8 N×S×S×3
    labels: np.ndarray


def targets_for(ds: Dataset, split: Split, classes: list[str], target: str) -> dict[str, int]:
    """Target training count per rare class. auto: max(2 × real, median class count)."""
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    out = {}
    for c in classes:
        real = int(counts[ds.class_index(c)])
        if target == "auto":
            out[c] = max(2 * real, int(np.median(counts)))
        else:
            try:
                out[c] = int(target)
            except ValueError:
                raise UserError(f"--target {target!r} is neither a number nor 'auto'") from None
            if out[c] < real:
                raise UserError(
                    f"--target {out[c]} is smaller than the {real} real training "
                    f"images of {c!r}; choose a target >= {real} or auto"
                )
    return out


def build_arms(
    ds: Dataset,
    split: Split,
    targets: dict[str, int],
    synthetic: dict[str, dict[str, np.ndarray]],
    arms: list[str],
    seed: int,
) -> dict[str, Arm]:
    """Training set of every arm; synthetic[arm][class] holds uint8 images of the GAN arms."""
    base_x, base_y = ds.images[split.train], ds.labels[split.train]
    rng = np.random.default_rng(seed)
    out = {}
    for name in arms:
        xs, ys = [base_x], [base_y]
        for c, target in targets.items():
            label = ds.class_index(c)
            extra = target - int((base_y == label).sum())
            if extra <= 0:
                continue
            if name == "oversample":
                pool = np.flatnonzero(base_y == label)
                xs.append(base_x[rng.choice(pool, extra, replace=True)])
            elif name in ("gan", "gan-unfiltered"):
                imgs = synthetic[name][c][:extra]
                if len(imgs) < extra:
                    raise UserError(
                        f"only {len(imgs)} synthetic {c!r} images for {extra} "
                        "needed; rerun with a larger --pool-factor"
                    )
                xs.append(imgs)
            else:
                continue
            ys.append(np.full(extra, label, dtype=base_y.dtype))
        out[name] = Arm(name, np.concatenate(xs), np.concatenate(ys))
    return out


def classifier_config(
    profile: Profile, n_train: int, seed: int, precision: str
) -> ClassifierConfig:
    steps = int(
        min(
            profile.classifier_steps_cap,
            max(50, profile.classifier_epochs * n_train / profile.batch_size),
        )
    )
    return ClassifierConfig(
        steps=steps,
        batch_size=profile.batch_size,
        lr=3e-3,
        sampling="uniform",
        precision=precision,
        seed=seed,
        eval_every=max(steps // 5, 10),
    )


def config_id(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).to(device)


def train_arm_seed(
    arm: Arm,
    ds: Dataset,
    split: Split,
    cfg: ClassifierConfig,
    new_model: Callable[[], torch.nn.Module],
    out: Path,
    device: torch.device,
    progress: bool,
) -> dict:
    """Train one (arm, seed) classifier, or load its finished result from `out`."""
    result_file = out / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    t0 = time.perf_counter()
    k = len(ds.class_names)
    trained = train_classifier(
        new_model(),
        _tensor(arm.images, device),
        torch.from_numpy(arm.labels).to(device),
        _tensor(ds.images[split.val], device),
        torch.from_numpy(ds.labels[split.val]).to(device),
        k,
        cfg,
        progress,
        desc=f"{arm.name} seed {cfg.seed}",
    )
    probs = predict_proba(
        trained.model, _tensor(ds.images[split.test], device), precision=cfg.precision
    ).cpu()
    buf = io.BytesIO()
    torch.save(trained.model.state_dict(), buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, probs=probs.numpy())
    atomic_write_bytes(out / "test_probs.npz", buf.getvalue())
    result = {
        "arm": arm.name,
        "seed": cfg.seed,
        "train_images": len(arm.labels),
        "config": cfg.as_dict(),
        "best_step": trained.best_step,
        "val_balanced_accuracy": trained.best_val_balanced_accuracy,
        "history": trained.history,
        "seconds": time.perf_counter() - t0,
        "test": classification_metrics(probs, torch.from_numpy(ds.labels[split.test]), k),
    }
    atomic_write_text(result_file, json.dumps(result, indent=1))  # written last: marks done
    return result


def _gan_config(profile: Profile, kimg: float, precision: str, seed: int, **kw) -> TrainConfig:
    return TrainConfig(
        kimg=kimg,
        batch_size=profile.gan_batch,
        precision=precision,
        seed=seed,
        snapshot_kimg=max(kimg / 4, 0.1),
        eval_kimg=max(kimg / 4, 0.1),
        loss=profile.gan_loss,
        r1_gamma=profile.gan_r1_gamma,
        **kw,
    )


def _finished(run: ClassRun, arch: Architecture, kimg: float) -> bool:
    """Whether the run directory already holds this run trained at least `kimg` long; a
    generator of another size or architecture there is refused, never silently replaced."""
    if not run.checkpoint.is_file():
        return False
    saved = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    saved_arch = Architecture(**saved["arch"])
    if saved_arch != arch:
        raise UserError(
            f"{run.out} holds a {saved_arch.size} px {saved_arch.kind} generator but this "
            f"experiment asks for {arch.size} px {arch.kind}; use another --run-dir"
        )
    return saved["nimg"] >= kimg * 1000  # possibly longer, by gan-train


def ensure_generators(
    ds: Dataset,
    split: Split,
    classes: list[str],
    run_dir: Path,
    profile: Profile,
    device: torch.device,
    precision: str,
    seed: int,
    space,
    progress: bool,
) -> dict[str, ClassRun]:
    """Train each rare class's GAN unless the run directory already has a finished one; with
    a source budget, first the all-classes source GAN (once per run directory), from which
    every class is fine-tuned."""
    arch = Architecture(size=profile.size, kind=profile.gan_arch)
    source = None
    if profile.source_kimg > 0:
        src = class_run(ds, split, SOURCE, run_dir)
        cfg = _gan_config(
            profile, profile.source_kimg, precision, seed, sampling=profile.source_sampling
        )
        if not _finished(src, arch, cfg.kimg):
            resume = src.checkpoint.is_file()
            train_class(src, ds, arch, cfg, device, resume, progress=progress, space=space)
        source = source_checkpoint(run_dir)
    runs = {}
    for c in classes:
        run = class_run(ds, split, c, run_dir)
        kimg = profile.gan_epochs * len(run.images) / 1000
        kimg = min(profile.gan_kimg_cap, max(profile.gan_kimg_min, kimg))
        freeze = profile.freeze_d if source is not None else 0
        cfg = _gan_config(profile, kimg, precision, seed, freeze_d=freeze)
        if not _finished(run, arch, kimg):
            train_class(
                run,
                ds,
                arch,
                cfg,
                device,
                resume=run.checkpoint.is_file(),
                progress=progress,
                space=space,
                eval_n=500,
                source=source,
            )
        runs[c] = run
    return runs


def ensure_samples(
    runs: dict[str, ClassRun],
    targets: dict[str, int],
    arms: list[str],
    run_dir: Path,
    space,
    device: torch.device,
    precision: str,
    seed: int,
    data: dict,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict], dict[str, int]]:
    """Filtered (and, if asked, unfiltered) synthetic images per class, sampled once and kept.

    A weak generator yields many near-duplicates, so the pool grows (2x, 4x, 8x n) until the
    filter keeps enough; if even 8x falls short, the class reaches fewer images than its
    target, and every arm (oversample, gan-unfiltered) is matched to the count gan reaches.
    Returns (images per arm kind and class, sample summaries, reached counts per class).
    """
    synthetic: dict[str, dict[str, np.ndarray]] = {}
    summaries: dict[str, dict] = {}
    reached = dict(targets)
    kinds = [k for k in ("gan", "gan-unfiltered") if k in arms]
    for kind in kinds:
        synthetic[kind] = {}
        out_root = run_dir / "samples" / ("filtered" if kind == "gan" else "unfiltered")
        for c, run in runs.items():
            need = max(reached[c] - len(run.images), 0)
            summary_file = out_root / c / "summary.json"
            done = False
            if summary_file.is_file():
                saved = json.loads(summary_file.read_text())
                done = saved["kept"] >= need or saved["options"]["pool_factor"] >= 8
            for pool_factor in (2.0, 4.0, 8.0):
                if done:
                    break
                opts = SampleOptions(
                    n=max(need, 2),
                    filter="fid" if kind == "gan" else "none",
                    fmt="npz",
                    seed=seed,
                    precision=precision,
                    pool_factor=pool_factor,
                )
                done = sample_class(run, opts, space, out_root, device, data, True)["kept"] >= need
            with np.load(out_root / c / "samples.npz") as z:
                synthetic[kind][c] = z["images"][:need]
            summaries.setdefault(c, {})[kind] = json.loads(summary_file.read_text())
            reached[c] = len(run.images) + len(synthetic[kind][c])
    return synthetic, summaries, reached


def run_config(profile: Profile, classes, targets, arms, seeds, ds: Dataset, precision) -> dict:
    return {
        "profile": asdict(profile),
        "classes": classes,
        "targets": targets,
        "arms": arms,
        "seeds": seeds,
        "data_fingerprint": ds.fingerprint,
        "precision": precision,
    }


def compare(
    ds: Dataset,
    split: Split,
    results: dict[str, list[dict]],
    classes: list[str],
    baseline: str = "baseline",
) -> dict:
    """Per-class recall mean ± sd per arm; gains of every other arm vs baseline and vs
    oversample (bootstrap CIs over test lesions, pooled over seeds)."""
    labels = ds.labels[split.test]
    lesions = [ds.lesion_ids[i] for i in split.test]

    def correct(arm: str) -> np.ndarray:
        return np.stack(
            [
                np.load(r["_dir"] / "test_probs.npz")["probs"].argmax(1) == labels
                for r in results[arm]
            ]
        )

    table = {}
    for arm, rs in results.items():
        rec = np.array([r["test"]["recall"] for r in rs])
        table[arm] = {
            "recall_mean": rec.mean(0).tolist(),
            "recall_sd": rec.std(0, ddof=1).tolist() if len(rs) > 1 else [0.0] * rec.shape[1],
            **{
                m: [r["test"][m] for r in rs]
                for m in ("balanced_accuracy", "macro_f1", "macro_auc", "accuracy")
            },
        }
    hits = {arm: correct(arm) for arm in results}
    gains = {}
    for arm, ref in GAIN_PAIRS:
        if arm not in results or ref not in results:
            continue
        for c in classes:
            ci = bootstrap_recall_gain(hits[ref], hits[arm], labels == ds.class_index(c), lesions)
            gains[f"{arm} vs {ref}: {c}"] = {"arm": arm, "reference": ref, "class": c, **ci}
    return {"per_arm": table, "gains": gains}


def external_test(
    path: str,
    ds: Dataset,
    arm_results: dict[str, list[dict]],
    new_model: Callable[[], torch.nn.Module],
    device: torch.device,
    load,
    precision: str,
) -> dict:
    """Evaluate every trained classifier on another dataset whose classes match by name."""
    ext = load(path, ds.images.shape[1])
    missing = sorted(set(ds.class_names) - set(ext.class_names))
    extra = sorted(set(ext.class_names) - set(ds.class_names))
    if missing or extra:
        raise UserError(
            f"--external-test {path}: its classes do not match the training data "
            f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}); "
            "pass a set with the same class names"
        )
    labels = torch.tensor([ds.class_names.index(ext.class_names[i]) for i in ext.labels])
    x = _tensor(ext.images, device)
    k = len(ds.class_names)
    per_arm = {}
    for arm, rs in arm_results.items():
        per_arm[arm] = []
        for r in rs:
            model = new_model()
            model.load_state_dict(torch.load(r["_dir"] / "model.pt", weights_only=True))
            model = model.to(device, memory_format=torch.channels_last)
            probs = predict_proba(model, x, precision=precision).cpu()
            per_arm[arm].append(classification_metrics(probs, labels, k))
    return {"source": ext.source, "n": len(labels), "per_arm": per_arm}


def run_experiment(
    data,
    fmt,
    cache_dir,
    skip_bad_images,
    split_seed,
    run_dir: Path,
    classes: list[str],
    target: str,
    arms: list[str],
    seeds: int,
    profile: Profile,
    external: str | None,
    device: torch.device,
    precision: str,
    feature_space: str,
    inception_weights,
    progress: bool,
    pretrained: bool = False,
) -> str:
    """The whole experiment; returns the one-line headline."""
    from pipelines.datasets import load_dataset
    from pipelines.feature_space import load_feature_space
    from pipelines.report import one_line_summary, write_report
    from pipelines.rundir import versions
    from pipelines.splits import load_or_make_split

    wall: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        wall[stage] = wall.get(stage, 0.0) + time.perf_counter() - t
        t = time.perf_counter()

    def load(path, size):
        return load_dataset(
            path, size, fmt if path == data else None, cache_dir, skip_bad_images, progress=progress
        )

    def new_model() -> torch.nn.Module:
        return make_classifier(len(ds.class_names), profile.classifier_width, pretrained)

    ds = load(data, profile.size)
    try:
        new_model()  # fail now, not after the GANs, when --pretrained weights are missing
    except PretrainedWeightsUnavailable as e:
        raise UserError(str(e)) from e
    for c in classes:
        ds.class_index(c)
    split = load_or_make_split(ds, run_dir, seed=split_seed)
    targets = targets_for(ds, split, classes, target)
    lap("data and split")
    feature_steps = profile.feature_epochs * len(split.train) / 64
    feature_cfg = ClassifierConfig(
        steps=int(min(profile.feature_steps_cap, max(20, feature_steps))),
        batch_size=64,
        sampling="balanced",
        eval_every=50,
    )
    space = load_feature_space(
        feature_space,
        ds,
        split,
        run_dir,
        device,
        precision,
        inception_weights,
        progress,
        feature_cfg,
    )
    lap("feature network")
    runs = (
        ensure_generators(
            ds, split, classes, run_dir, profile, device, precision, 0, space, progress
        )
        if any(a.startswith("gan") for a in arms)
        else {}
    )
    lap("GAN training")
    data_info = {
        "source": ds.source,
        "fingerprint": ds.fingerprint,
        "synthetic_demo_data": ds.synthetic,
    }
    synthetic, sample_summaries, reached = ensure_samples(
        runs, targets, arms, run_dir, space, device, precision, 0, data_info
    )
    short = {c: (reached[c], targets[c]) for c in classes if reached[c] < targets[c]}
    for c, (got, want) in short.items():
        click.echo(
            f"note: {c}: the filter kept too few samples; every arm reaches {got} training "
            f"images instead of {want} (train the GAN longer for more)",
            err=True,
        )
    targets = reached
    for c, kinds in sample_summaries.items():
        for kind in kinds:
            kinds[kind]["_dir"] = str(
                run_dir / "samples" / ("filtered" if kind == "gan" else "unfiltered") / c
            )
    lap("sampling and filtering")

    config = run_config(profile, classes, targets, arms, list(range(seeds)), ds, precision)
    config["pretrained"] = pretrained
    out = Path(run_dir) / "compare" / config_id(config)
    atomic_write_text(out / "config.json", json.dumps(config, indent=1))
    n_base = len(split.train)
    arm_results: dict[str, list[dict]] = {a: [] for a in arms}
    for seed in range(seeds):
        train_sets = build_arms(ds, split, targets, synthetic, arms, seed)
        for arm in arms:
            cfg = classifier_config(profile, n_base, seed, precision)
            seed_dir = out / arm / f"seed{seed}"
            r = train_arm_seed(
                train_sets[arm],
                ds,
                split,
                cfg,
                new_model,
                seed_dir,
                device,
                progress,
            )
            r["_dir"] = seed_dir
            arm_results[arm].append(r)
    lap("classifiers")
    ext = None
    if external:
        ext = external_test(external, ds, arm_results, new_model, device, load, precision)
        lap("external test")
    comparison = compare(ds, split, arm_results, classes)
    results = {
        "config": config,
        "config_id": config_id(config),
        "comparison": comparison,
        "classifier": f"{'PretrainedResNet18' if pretrained else 'SmallResNet'}"
        f"(width={profile.classifier_width}), "
        f"{classifier_config(profile, n_base, 0, precision).as_dict()}",
        "runs": {
            a: [{k: v for k, v in r.items() if k != "_dir"} for r in rs]
            for a, rs in arm_results.items()
        },
        "synthetic_sets": sample_summaries,
        "targets_short": short,
        "external_test": ext,
        "data": {
            "source": ds.source,
            "format": ds.format,
            "fingerprint": ds.fingerprint,
            "synthetic_demo_data": ds.synthetic,
            "class_names": ds.class_names,
        },
        "versions": versions(),
        "wall_seconds": wall,
    }
    report = write_report(out, results, ds, split, arm_results, sample_summaries, ext)
    lap("report")
    results["wall_seconds"] = wall
    report = write_report(out, results, ds, split, arm_results, sample_summaries, ext)
    for name in ("report.md", "results.json"):
        atomic_write_text(
            Path(run_dir) / name,
            (out / name)
            .read_text()
            .replace("](figures/", f"](compare/{config_id(config)}/figures/"),
        )
    prefix = "[SYNTHETIC demo data] " if ds.synthetic else ""
    return f"{prefix}{one_line_summary(results)}; report: {report}"
