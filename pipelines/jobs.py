"""augment-and-compare as a recipe of jobs: read this file top to bottom to know the experiment.

    features ─┬─> gan/all ─> gan/<class> ─> samples/gan/<class> ─> samples/gan-unfiltered/<class>
              └────────────> gan/<class>   (without a source budget)
    every samples/* ─> classifier/<arm>/seed<k> ─> report

Each job is a plain function of (ExperimentConfig, Job) that reads its inputs from the run
directory and writes its outputs there atomically; the executor (pipelines.graph) writes its
done-marker last. A job is skipped when its marker holds the same key, which covers its own
config and, through its dependencies' keys, everything upstream. The job functions are also
idempotent on their own: a finished GAN, sample set or classifier found on disk is reused, so a
run interrupted anywhere continues where it stopped.
"""

from __future__ import annotations

import functools
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from classifier.metrics import classification_metrics
from classifier.training import ClassifierConfig, predict_proba, train_classifier
from gan.checkpoint import CheckpointError, load_checkpoint
from gan.networks import Architecture
from gan.training import TrainConfig
from pipelines.arms import (
    SYNTHETIC_SOURCE,
    build_arms,
    classifier_config,
    classifier_inputs,
    classifier_network,
    targets_for,
)
from pipelines.compare import _tensor, compare, config_id, external_test, pool_predictions
from pipelines.data.datasets import Dataset, load_dataset
from pipelines.data.splits import Split, load_or_make_split
from pipelines.errors import UserError
from pipelines.feature_space import load_feature_space
from pipelines.gan_run import SOURCE, ClassRun, class_run, source_checkpoint, train_class
from pipelines.graph import Job
from pipelines.profiles import Profile
from pipelines.rundir import atomic_write_bytes, atomic_write_text, versions
from pipelines.sampling import SampleOptions, sample_class

SAMPLE_DIRS = {"gan": "filtered", "gan-unfiltered": "unfiltered"}


def sample_kinds(arms: tuple[str, ...]) -> list[str]:
    """The synthetic sample sets the arms draw from ("gan" for gan and oversample+gan)."""
    wanted = {SYNTHETIC_SOURCE[a] for a in arms if a in SYNTHETIC_SOURCE}
    return [k for k in SAMPLE_DIRS if k in wanted]


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
    seeds: int = 5  # 3 leave a t with ~2 df: intervals ~1.6x wider (README: interval coverage)
    synthetic_share: float = 0.5  # oversample+gan: synthetic share of the images added
    folds: int = 1  # > 1: lesion-grouped K-fold cross-validation, every lesion tested once
    fold: int | None = None  # set on the config of one fold (run_dir is then the fold's)
    external: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    feature_space: str = "domain"
    inception_weights: str | None = None
    pretrained: bool = False
    threads: int = 1  # torch threads of a job, in every executor (results depend on it) ...
    workers: int = 1  # ... but classifier jobs run this many at a time and split them
    progress: bool = field(default=False, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- shared inputs


def fold_config(cfg: ExperimentConfig, f: int) -> ExperimentConfig:
    """The config of fold f's jobs: its own run directory (split, feature network, GANs,
    samples, classifiers), so no test lesion of the fold reaches anything trained there."""
    if cfg.folds == 1:
        return cfg
    return replace(cfg, run_dir=str(Path(cfg.run_dir) / "folds" / f"k{f}"), fold=f)


def fold_configs(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    return [fold_config(cfg, f) for f in range(cfg.folds)]


@functools.lru_cache(maxsize=1)
def _dataset(data, size, fmt, cache_dir, skip_bad_images, allow_new_classes) -> Dataset:
    return load_dataset(
        data,
        size,
        fmt,
        cache_dir,
        skip_bad_images,
        progress=False,
        allow_new_classes=allow_new_classes,
    )


@functools.lru_cache(maxsize=16)
def _split(cfg: ExperimentConfig) -> Split:
    ds = data_and_split_dataset(cfg)
    fold = (cfg.fold, cfg.folds) if cfg.fold is not None else None
    return load_or_make_split(ds, Path(cfg.run_dir), seed=cfg.split_seed, fold=fold)


def data_and_split_dataset(cfg: ExperimentConfig) -> Dataset:
    p = cfg.profile
    return _dataset(
        cfg.data, p.size, cfg.fmt, cfg.cache_dir, cfg.skip_bad_images, cfg.allow_new_classes
    )


def data_and_split(cfg: ExperimentConfig) -> tuple[Dataset, Split]:
    """The dataset and (this fold's) split, loaded once per process (the decode cache makes
    loading cheap)."""
    return data_and_split_dataset(cfg), _split(cfg)


def feature_space(cfg: ExperimentConfig):
    """The FID/KID feature space: trained by the `features` job, loaded by every later one."""
    ds, split = data_and_split(cfg)
    steps = cfg.profile.feature_epochs * len(split.train) / 64
    feature_cfg = ClassifierConfig(
        steps=int(min(cfg.profile.feature_steps_cap, max(20, steps))),
        batch_size=64,
        sampling="balanced",
        eval_every=50,
    )
    return load_feature_space(
        cfg.feature_space,
        ds,
        split,
        Path(cfg.run_dir),
        torch.device(cfg.device),
        cfg.precision,
        cfg.inception_weights,
        cfg.progress,
        feature_cfg,
    )


def _gan_config(profile: Profile, kimg: float, precision: str, **kw) -> TrainConfig:
    return TrainConfig(
        kimg=kimg,
        batch_size=profile.gan_batch,
        precision=precision,
        seed=0,
        snapshot_kimg=max(kimg / 4, 0.1),
        eval_kimg=max(kimg / 4, 0.1),
        loss=profile.gan_loss,
        r1_gamma=profile.gan_r1_gamma,
        **kw,
    )


def gan_plan(cfg: ExperimentConfig, cls: str) -> tuple[Architecture, TrainConfig]:
    """Architecture and training config of one GAN of the experiment (the source: `all`)."""
    p = cfg.profile
    arch = Architecture(size=p.size, kind=p.gan_arch)
    if cls == SOURCE:
        ds, split = data_and_split(cfg)
        kimg = min(p.source_kimg, max(p.gan_kimg_min, p.source_epochs * len(split.train) / 1000))
        return arch, _gan_config(p, kimg, cfg.precision, sampling=p.source_sampling)
    ds, split = data_and_split(cfg)
    n = int((ds.labels[split.train] == ds.class_index(cls)).sum())
    kimg = min(p.gan_kimg_cap, max(p.gan_kimg_min, p.gan_epochs * n / 1000))
    freeze = p.freeze_d if p.source_kimg > 0 else 0
    return arch, _gan_config(p, kimg, cfg.precision, freeze_d=freeze)


# ---------------------------------------------------------------------------- the jobs


def features_job(cfg: ExperimentConfig, job: Job) -> dict:
    space = feature_space(cfg)
    return {"feature_space": f"{space.name}-{space.dim}d"}


def gan_job(cfg: ExperimentConfig, job: Job) -> dict:
    """Train one GAN (the source, or a rare class from the source if there is one)."""
    cls = job.name.split("/", 1)[1]
    ds, split = data_and_split(cfg)
    run = class_run(ds, split, cls, Path(cfg.run_dir))
    arch, train_cfg = gan_plan(cfg, cls)
    if _finished(run, arch, train_cfg.kimg):
        return {"kimg": train_cfg.kimg, "reused": True}
    source = None
    if cls != SOURCE and cfg.profile.source_kimg > 0:
        source = source_checkpoint(Path(cfg.run_dir))
    state = train_class(
        run,
        ds,
        arch,
        train_cfg,
        torch.device(cfg.device),
        resume=run.checkpoint.is_file(),
        overwrite=True,  # a folder without a checkpoint is a start that never got anywhere
        progress=cfg.progress,
        space=feature_space(cfg),
        eval_n=500 if cls != SOURCE else 1000,
        source=source,
    )
    return {"kimg": state.nimg / 1000, "train_seconds": state.seconds}


def _finished(run: ClassRun, arch: Architecture, kimg: float) -> bool:
    """Whether the run directory already holds this GAN trained at least `kimg` long; a
    generator of another size or architecture there is refused, never silently replaced."""
    if not run.checkpoint.is_file():
        return False
    try:
        saved = load_checkpoint(run.checkpoint)
    except CheckpointError as e:
        best = run.out / "best.pt"
        keep = f"copy {best} over it to continue from there, or " if best.is_file() else ""
        raise UserError(
            f"{e}; {keep}delete {run.out} to train {run.class_name!r} again, then rerun"
        ) from e
    saved_arch = Architecture(**saved["arch"])
    if saved_arch != arch:
        raise UserError(
            f"{run.out} holds a {saved_arch.size} px {saved_arch.kind} generator but this "
            f"experiment asks for {arch.size} px {arch.kind}; use another --run-dir"
        )
    return saved["nimg"] >= kimg * 1000  # possibly longer, by gan-train


def samples_job(cfg: ExperimentConfig, job: Job) -> dict:
    """Sample and filter (or not) one class up to its target.

    A weak generator yields many near-duplicates, so the pool grows (2x, 4x, 8x n) until the
    filter keeps enough; if even 8x falls short, the class reaches fewer images than its
    target, and every arm is matched to the count the gan arm reaches (see reached_targets).
    """
    _, kind, cls = job.name.split("/")
    ds, split = data_and_split(cfg)
    run = class_run(ds, split, cls, Path(cfg.run_dir))
    need = _needed(cfg, kind, cls, len(run.images))
    out_root = Path(cfg.run_dir) / "samples" / SAMPLE_DIRS[kind]
    summary_file = out_root / cls / "summary.json"
    if summary_file.is_file():
        saved = json.loads(summary_file.read_text())
        if saved["kept"] >= need or saved["options"]["pool_factor"] >= 8:
            return {"kept": saved["kept"], "reused": True}
    data = {"source": ds.source, "fingerprint": ds.fingerprint, "synthetic_demo_data": ds.synthetic}
    space = feature_space(cfg)
    for pool_factor in (2.0, 4.0, 8.0):
        opts = SampleOptions(
            n=max(need, 2),
            filter="fid" if kind == "gan" else "none",
            fmt="npz",
            seed=0,
            precision=cfg.precision,
            pool_factor=pool_factor,
        )
        summary = sample_class(run, opts, space, out_root, torch.device(cfg.device), data, True)
        if summary["kept"] >= need:
            break
    return {"kept": summary["kept"]}


def _needed(cfg: ExperimentConfig, kind: str, cls: str, n_real: int) -> int:
    """Synthetic images `kind` must add to `cls`: up to the target, or, for gan-unfiltered,
    up to what the filtered set reached (every arm is matched to the gan arm's count)."""
    ds, split = data_and_split(cfg)
    target = targets_for(ds, split, list(cfg.classes), cfg.target)[cls]
    if kind == "gan-unfiltered" and "gan" in sample_kinds(cfg.arms):
        target = min(target, n_real + _kept_count(cfg, "gan", cls, target - n_real))
    return max(target - n_real, 0)


def _kept_count(cfg: ExperimentConfig, kind: str, cls: str, need: int) -> int:
    path = Path(cfg.run_dir) / "samples" / SAMPLE_DIRS[kind] / cls / "summary.json"
    return min(json.loads(path.read_text())["kept"], need)


def synthetic_sets(cfg: ExperimentConfig) -> tuple[dict, dict, dict[str, int]]:
    """(images per arm kind and class, sample summaries, reached training count per class),
    read back from the sample jobs' outputs."""
    ds, split = data_and_split(cfg)
    targets = targets_for(ds, split, list(cfg.classes), cfg.target)
    reached = dict(targets)
    synthetic: dict[str, dict[str, np.ndarray]] = {}
    summaries: dict[str, dict] = {}
    for kind in sample_kinds(cfg.arms):
        synthetic[kind] = {}
        for c in cfg.classes:
            n_real = int((ds.labels[split.train] == ds.class_index(c)).sum())
            need = max(reached[c] - n_real, 0)
            folder = Path(cfg.run_dir) / "samples" / SAMPLE_DIRS[kind] / c
            with np.load(folder / "samples.npz") as z:
                synthetic[kind][c] = z["images"][:need]
            summary = json.loads((folder / "summary.json").read_text())
            summaries.setdefault(c, {})[kind] = {**summary, "_dir": str(folder)}
            reached[c] = n_real + len(synthetic[kind][c])
    return synthetic, summaries, reached


def comparison_config(cfg: ExperimentConfig) -> dict:
    """What the classifiers' results depend on; its hash names compare/<config-id>/."""
    ds, _ = data_and_split(cfg)
    _, _, reached = synthetic_sets(cfg)
    return {
        "profile": asdict(cfg.profile),
        "classes": list(cfg.classes),
        "targets": reached,
        "arms": list(cfg.arms),
        "seeds": list(range(cfg.seeds)),
        "synthetic_share": cfg.synthetic_share,
        "data_fingerprint": ds.fingerprint,
        "precision": cfg.precision,
        "pretrained": cfg.pretrained,
    }


def comparison_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.run_dir) / "compare" / config_id(comparison_config(cfg))


def classifier_job(cfg: ExperimentConfig, job: Job) -> dict:
    """Train one (arm, seed) classifier on its arm's training set; test it once."""
    _, arm, seed_name = job.name.split("/")
    seed = int(seed_name.removeprefix("seed"))
    out = comparison_dir(cfg) / arm / f"seed{seed}"
    if (out / "result.json").is_file():
        return {"reused": True}
    ds, split = data_and_split(cfg)
    synthetic, _, reached = synthetic_sets(cfg)
    train_set = build_arms(ds, split, reached, synthetic, [arm], seed, cfg.synthetic_share)[arm]
    train_cfg = classifier_config(cfg.profile, len(split.train), seed, cfg.precision, arm)
    device, k = torch.device(cfg.device), len(ds.class_names)
    torch.manual_seed(seed)  # the classifier's initial weights
    trained = train_classifier(
        classifier_network(cfg.profile, k, cfg.pretrained),
        _tensor(classifier_inputs(cfg.profile, train_set.images), device),
        torch.from_numpy(train_set.labels).to(device),
        _tensor(classifier_inputs(cfg.profile, ds.images[split.val]), device),
        torch.from_numpy(ds.labels[split.val]).to(device),
        k,
        train_cfg,
        cfg.progress,
        desc=f"{arm} seed {seed}",
    )
    test_x = _tensor(classifier_inputs(cfg.profile, ds.images[split.test]), device)
    probs = predict_proba(trained.model, test_x, precision=train_cfg.precision, tta=train_cfg.tta)
    probs = probs.cpu()
    val_probs = trained.val_probs.cpu()  # the selected step's, kept for prior matching
    _save(out / "model.pt", trained.model.state_dict())
    buf = io.BytesIO()  # validation scores too: prior-matched thresholds are chosen on them
    np.savez(buf, probs=probs.numpy(), val_probs=val_probs.numpy())
    atomic_write_bytes(out / "test_probs.npz", buf.getvalue())
    result = {
        "arm": arm,
        "seed": seed,
        "train_images": len(train_set.labels),
        "config": train_cfg.as_dict(),
        "best_step": trained.best_step,
        "val_balanced_accuracy": trained.best_val_balanced_accuracy,
        "history": trained.history,
        "test": classification_metrics(probs, torch.from_numpy(ds.labels[split.test]), k),
    }
    atomic_write_text(out / "result.json", json.dumps(result, indent=1))  # written last
    return {"val_balanced_accuracy": trained.best_val_balanced_accuracy}


def _save(path: Path, obj: object) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def report_job(cfg: ExperimentConfig, job: Job, wall: dict[str, float]) -> dict:
    """Gains with CIs (pooled over folds), the external test, report.md and results.json;
    returns the headline."""
    from pipelines.report import one_line_summary, write_figures, write_report

    t0 = time.perf_counter()
    folds = fold_configs(cfg)
    ds = data_and_split_dataset(cfg)
    parts, configs, summaries, short = [], [], {}, {}
    for fcfg in folds:
        _, split = data_and_split(fcfg)
        out = comparison_dir(fcfg)
        configs.append(comparison_config(fcfg))
        arms = {a: [_result(out / a / f"seed{s}") for s in range(cfg.seeds)] for a in cfg.arms}
        parts.append((split, arms))
        _, fold_summaries, reached = synthetic_sets(fcfg)
        targets = targets_for(ds, split, list(cfg.classes), cfg.target)
        tag = f" (fold {fcfg.fold})" if cfg.folds > 1 else ""
        summaries |= {f"{c}{tag}": v for c, v in fold_summaries.items()}
        short |= {
            f"{c}{tag}": (reached[c], targets[c]) for c in cfg.classes if reached[c] < targets[c]
        }
    config = configs[0] if cfg.folds == 1 else {"folds": cfg.folds, "per_fold": configs}
    out = (
        comparison_dir(cfg) if cfg.folds == 1 else Path(cfg.run_dir) / "compare" / config_id(config)
    )
    atomic_write_text(out / "config.json", json.dumps(config, indent=1))
    pooled = pool_predictions(ds, parts, list(cfg.classes))
    ext = None
    if cfg.external:
        new_model = functools.partial(
            classifier_network, cfg.profile, len(ds.class_names), cfg.pretrained
        )
        load = functools.partial(_load_external, cfg)
        ext = external_test(
            cfg.external, ds, parts, list(cfg.classes), new_model, torch.device(cfg.device),
            load, cfg.precision,
        )  # fmt: skip
    n_train = len(parts[0][0].train)
    results = {
        "config": {**configs[0], "folds": cfg.folds},
        "config_id": out.name,
        "comparison": compare(ds, pooled, list(cfg.classes)),
        "classifier": f"{'PretrainedResNet18' if cfg.pretrained else 'SmallResNet'}"
        f"(width={cfg.profile.classifier_width}, "
        f"stem stride {cfg.profile.classifier_stem_stride}, "
        f"{cfg.profile.classifier_size or cfg.profile.size} px inputs), "
        f"{classifier_config(cfg.profile, n_train, 0, cfg.precision).as_dict()}",
        "test_set": {"images": len(pooled.labels), "lesions": len(set(pooled.lesion_ids))},
        "train_images": pooled.train_images,
        "runs": {
            a: [[_public(r) for r in arms[a]] for _, arms in parts] for a in cfg.arms
        },  # [fold][seed]
        "synthetic_sets": summaries,
        "targets_short": short,
        "external_test": ext,
        "data": {
            "source": ds.source,
            "format": ds.format,
            "fingerprint": ds.fingerprint,
            "synthetic_demo_data": ds.synthetic,
            "class_names": ds.class_names,
            "skipped_images": ds.skipped,
        },
        "versions": versions(),
        "wall_seconds": wall,
    }
    write_figures(out, results, ds, pooled, summaries)
    results["wall_seconds"] = {**wall, "report": time.perf_counter() - t0}
    report = write_report(out, results, ds, pooled, summaries, ext)
    for name in ("report.md", "results.json"):
        text = (out / name).read_text()
        text = text.replace("](figures/", f"](compare/{out.name}/figures/")
        atomic_write_text(Path(cfg.run_dir) / name, text)
    prefix = "[SYNTHETIC demo data] " if ds.synthetic else ""
    return {"headline": f"{prefix}{one_line_summary(results)}; report: {report}"}


def _result(folder: Path) -> dict:
    return {**json.loads((folder / "result.json").read_text()), "_dir": folder}


def _public(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "_dir"}


def _load_external(cfg: ExperimentConfig, path: str, size: int) -> Dataset:
    """The external test set as the classifiers take it: loaded at the GANs' size like the
    home data, then resized as classifier_inputs resizes every arm's images."""
    ext = load_dataset(
        path,
        size,
        None,
        cfg.cache_dir,
        cfg.skip_bad_images,
        progress=False,
        allow_new_classes=cfg.allow_new_classes,
    )
    return replace(ext, images=classifier_inputs(cfg.profile, ext.images))


# ---------------------------------------------------------------------------- the graph

STAGES = {  # job kind -> the report's wall-time stage
    "features": "feature network",
    "gan": "GAN training",
    "samples": "sampling and filtering",
    "classifier": "classifiers",
    "report": "report",
}


def experiment_graph(cfg: ExperimentConfig) -> list[Job]:
    """The jobs of one experiment, in an order that respects their dependencies; with
    --folds K, every fold has its own features, GANs, samples and classifiers."""
    jobs: list[Job] = []
    for fcfg in fold_configs(cfg):
        jobs += _fold_jobs(fcfg, f"fold{fcfg.fold}/" if cfg.folds > 1 else "")
    classifiers = tuple(j.name for j in jobs if "classifier/" in j.name)
    jobs.append(Job("report", classifiers, False, {"external": cfg.external, "folds": cfg.folds}))
    return jobs


def _fold_jobs(cfg: ExperimentConfig, prefix: str) -> list[Job]:
    p = cfg.profile
    gpu = cfg.device.startswith("cuda")
    uses_gan = bool(sample_kinds(cfg.arms))

    def job(name: str, deps: tuple[str, ...], key: dict) -> Job:
        return Job(prefix + name, tuple(prefix + d for d in deps), gpu, key)

    jobs = [job("features", (), {"space": cfg.feature_space, "size": p.size})]
    if uses_gan and p.source_kimg > 0:
        arch, tc = gan_plan(cfg, SOURCE)
        jobs.append(job(f"gan/{SOURCE}", ("features",), _gan_key(arch, tc)))
    for c in cfg.classes if uses_gan else ():
        arch, tc = gan_plan(cfg, c)
        deps = ("features", f"gan/{SOURCE}") if p.source_kimg > 0 else ("features",)
        jobs.append(job(f"gan/{c}", deps, _gan_key(arch, tc)))
        previous = None
        for kind in sample_kinds(cfg.arms):
            deps = (f"gan/{c}", *([previous] if previous else []))
            key = {"target": cfg.target, "classes": list(cfg.classes), "precision": cfg.precision}
            jobs.append(job(f"samples/{kind}/{c}", deps, key))
            previous = f"samples/{kind}/{c}"
    sample_jobs = tuple(j.name.removeprefix(prefix) for j in jobs if "samples/" in j.name)
    for s in range(cfg.seeds):
        for a in cfg.arms:
            key = {"profile": asdict(p), "pretrained": cfg.pretrained, "arms": list(cfg.arms)}
            key |= {"classes": list(cfg.classes), "target": cfg.target, "seeds": cfg.seeds}
            key |= {"synthetic_share": cfg.synthetic_share}
            jobs.append(job(f"classifier/{a}/seed{s}", sample_jobs, key))
    return jobs


def _gan_key(arch: Architecture, tc: TrainConfig) -> dict:
    return {"arch": arch.as_dict(), "train": tc.as_dict()}


def run_job(cfg: ExperimentConfig, job: Job, wall: dict[str, float] | None = None) -> dict:
    """Run one job in this process with the experiment's thread count and a job-specific
    seed, so that its result does not depend on which process or machine runs it."""
    torch.set_num_threads(job_threads(cfg, job))
    torch.manual_seed(job.seed)
    np.random.seed(job.seed % 2**32)
    t0 = time.perf_counter()
    if job.name == "report":
        result = report_job(cfg, job, wall or {})
    else:
        fold, name = split_fold(job.name)
        fcfg = cfg if fold is None else fold_config(cfg, fold)
        result = JOBS[name.split("/", 1)[0]](fcfg, replace(job, name=name))
    return {**result, "seconds": time.perf_counter() - t0}


def job_threads(cfg: ExperimentConfig, job: Job) -> int:
    """Torch threads of a job, the same in every executor. The classifiers of a comparison
    are many equal, independent jobs: `workers` of them run side by side on a share of the
    threads each, which keeps the cores busier than one job on all of them (small convolutions
    scale poorly across threads: benchmarks/parallel_jobs.py). The GAN chain and the feature
    network, which little can run beside, get all of them."""
    return max(1, cfg.threads // cfg.workers) if job_slots(cfg, job) == 1 else cfg.threads


def job_slots(cfg: ExperimentConfig, job: Job) -> int:
    """Of the `workers` slots of the local executor: 1 for a classifier job, all for others."""
    return 1 if "classifier/" in job.name else cfg.workers


def split_fold(name: str) -> tuple[int | None, str]:
    """'fold2/gan/df' -> (2, 'gan/df'); 'gan/df' -> (None, 'gan/df')."""
    head, _, rest = name.partition("/")
    if head.startswith("fold") and head[4:].isdigit():
        return int(head[4:]), rest
    return None, name


JOBS = {
    "features": features_job,
    "gan": gan_job,
    "samples": samples_job,
    "classifier": classifier_job,
}
