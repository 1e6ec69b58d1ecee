"""Command-line entry points. Each command is a thin shell over pipelines/ and gan/."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import torch
from tqdm import tqdm

from gan.diffaugment import POLICIES
from gan.filtering import SCORES
from gan.networks import ARCHS, SUPPORTED_SIZES, Architecture
from gan.training import LOSSES, TrainConfig
from pipelines.datasets import FORMATS, load_dataset
from pipelines.errors import UserError
from pipelines.experiment import ARMS, DEFAULT_ARMS, PROFILES
from pipelines.feature_space import FEATURE_SPACES, load_feature_space
from pipelines.gan_run import (
    RESUMABLE_CHANGES,
    SOURCE,
    class_run,
    read_checkpoint,
    read_source,
    source_checkpoint,
    train_class,
)
from pipelines.sampling import SampleOptions, sample_class, summary_table
from pipelines.splits import load_or_make_split


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """auto: bf16 where the hardware runs it natively (CUDA bf16, AVX512-BF16/AMX CPUs)."""
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return name


def data_options(f):
    for option in reversed(
        [
            click.option("--data", default=None, help="Dataset path, or 'demo' (default)."),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(FORMATS),
                default=None,
                help="Force a layout instead of detecting it.",
            ),
            click.option(
                "--cache-dir",
                type=click.Path(path_type=Path),
                default=None,
                help="Decode cache (default: ~/.cache/raregan or $RAREGAN_CACHE).",
            ),
            click.option(
                "--skip-bad-images",
                is_flag=True,
                help="Go on without missing or unreadable images.",
            ),
            click.option(
                "--split-seed",
                type=int,
                default=0,
                show_default=True,
                help="Seed of the lesion-level split (used when it is first made).",
            ),
        ]
    ):
        f = option(f)
    return f


def feature_options(f):
    for option in reversed(
        [
            click.option(
                "--feature-space",
                type=click.Choice(FEATURE_SPACES),
                default="domain",
                show_default=True,
                help="Features for FID/KID: a CNN trained on this "
                "run's real training split, or Inception-v3 (needs local weights).",
            ),
            click.option(
                "--inception-weights",
                type=click.Path(path_type=Path),
                default=None,
                help="torch-fidelity's Inception weights file (no download here).",
            ),
        ]
    ):
        f = option(f)
    return f


def default_run_dir(data: str | None) -> Path:
    name = Path(data).stem if data not in (None, "demo") else "demo"
    return Path("runs") / name


# The recommended generator recipe, chosen by held-out KID per CPU second
# (docs/generator_budget.md).
# The dataclass defaults stay the classic DCGAN, which is also what old checkpoints hold.
DEFAULT_ARCH = "resize"
DEFAULT_LOSS = "ns"
DEFAULT_R1 = 0.0
DEFAULT_FREEZE_D = 1


def generator_options(f):
    for option in reversed(
        [
            click.option(
                "--arch",
                type=click.Choice(ARCHS),
                default=DEFAULT_ARCH,
                show_default=True,
                help="dcgan: transposed convs + BatchNorm D (the reference); resize: "
                "nearest-upsample + 3x3 conv G (no checkerboard), DCGAN's D; resize-sn: "
                "resize with a spectrally normalised D.",
            ),
            click.option(
                "--loss",
                type=click.Choice(LOSSES),
                default=DEFAULT_LOSS,
                show_default=True,
                help="ns: non-saturating logistic; hinge.",
            ),
            click.option(
                "--r1-gamma",
                type=click.FloatRange(min=0),
                default=DEFAULT_R1,
                show_default=True,
                help="Lazy R1 penalty weight on real images (every 16 steps); 0 = off.",
            ),
        ]
    ):
        f = option(f)
    return f


@click.command("gan-train")
@click.option(
    "--class",
    "classes",
    multiple=True,
    required=True,
    help=f"Class to train a GAN for; repeat for several (--class df --class mel). "
    f"'{SOURCE}' trains the source GAN on every training image, for --from.",
)
@click.option(
    "--from",
    "from_",
    type=click.Choice([SOURCE]),
    default=None,
    help=f"Start from the source GAN's weights (`gan-train --class {SOURCE}` first) and "
    "fine-tune on the class.",
)
@click.option(
    "--freeze-d",
    type=click.IntRange(min=0),
    default=DEFAULT_FREEZE_D,
    show_default=True,
    help="FreezeD: keep this many of D's lowest (image-side) blocks fixed (with --from).",
)
@click.option(
    "--sampling",
    type=click.Choice(["uniform", "balanced"]),
    default="balanced",
    show_default=True,
    help=f"How --class {SOURCE} draws real images: uniformly, or with every class equally often.",
)
@generator_options
@data_options
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory (default: runs/<data name>).",
)
@click.option(
    "--size",
    type=click.Choice([str(s) for s in SUPPORTED_SIZES]),
    default=None,
    help="Image size in px (default 64; a resumed run keeps its size).",
)
@click.option(
    "--kimg",
    type=float,
    default=None,
    help="Training length in thousands of real images shown to D [default: 100].",
)
@click.option(
    "--epochs",
    type=float,
    default=None,
    help="Training length in passes over the class's training images.",
)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Autocast dtype; auto picks bf16 where the hardware supports it.",
)
@click.option(
    "--diffaugment/--no-diffaugment",
    default=True,
    show_default=True,
    help="DiffAugment (colour, translation, cutout) on everything D sees.",
)
@click.option(
    "--ema/--no-ema",
    default=True,
    show_default=True,
    help="Sample from an exponential moving average of G's weights.",
)
@click.option(
    "--dihedral/--no-dihedral",
    default=True,
    show_default=True,
    help="Random flips and 90-degree turns of the real images.",
)
@click.option(
    "--snapshot-kimg",
    type=float,
    default=10.0,
    show_default=True,
    help="Checkpoint and sample-grid interval.",
)
@click.option(
    "--eval-every",
    type=float,
    default=10.0,
    show_default=True,
    help="FID/KID of the sampling generator every N kimg (0: off); keeps best.pt.",
)
@click.option(
    "--eval-n",
    type=int,
    default=1000,
    show_default=True,
    help="Generated images per FID/KID evaluation.",
)
@feature_options
@click.option("--resume", is_flag=True, help="Continue from the run directory's checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing GAN run of the class.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def gan_train(
    ctx: click.Context,
    classes,
    data,
    fmt,
    cache_dir,
    skip_bad_images,
    split_seed,
    run_dir,
    from_,
    freeze_d,
    sampling,
    arch,
    loss,
    r1_gamma,
    size,
    kimg,
    epochs,
    batch_size,
    lr,
    seed,
    device,
    precision,
    diffaugment,
    ema,
    dihedral,
    snapshot_kimg,
    eval_every,
    feature_space,
    inception_weights,
    eval_n,
    resume,
    overwrite,
    quiet,
) -> None:
    """Train one DCGAN per rare class on its training-split images."""
    if kimg is not None and epochs is not None:
        raise UserError("pass --kimg or --epochs, not both")
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite replaces it; pass one")
    if from_ and SOURCE in classes:
        raise UserError(f"--from {from_}: the source run itself cannot start from a source")
    if (
        freeze_d
        and not from_
        and not resume
        and ctx.get_parameter_source("freeze_d") == (click.core.ParameterSource.COMMANDLINE)
    ):
        raise UserError("--freeze-d freezes transferred layers; use it with --from all")
    run_dir = run_dir or default_run_dir(data)
    dev = resolve_device(device)
    cfg = TrainConfig(
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        precision=resolve_precision(precision, dev),
        diffaugment=POLICIES if diffaugment else (),
        ema_kimg=TrainConfig.ema_kimg if ema else 0.0,
        dihedral=dihedral,
        snapshot_kimg=snapshot_kimg,
        eval_kimg=eval_every,
        loss=loss,
        r1_gamma=r1_gamma,
        freeze_d=freeze_d if from_ else 0,
    )
    if resume:  # the size of a resumed run comes from its checkpoint
        saved_size = _saved_size(run_dir, classes)
        if size is not None and int(size) != saved_size:
            raise UserError(
                f"--resume: the checkpoints in {run_dir} are {saved_size} px, not "
                f"{size} px; drop --size or start over with --overwrite"
            )
        size = saved_size
        if ctx.get_parameter_source("arch") != click.core.ParameterSource.COMMANDLINE:
            arch = _saved_arch(run_dir, classes)
    arch = Architecture(size=int(size or 64), kind=arch)
    source = source_checkpoint(run_dir) if from_ and not resume else None
    if source is not None:  # before any work: a missing or incompatible source is a user error
        read_source(source, arch, run_dir)
    ds = load_dataset(data, arch.size, fmt, cache_dir, skip_bad_images, progress=not quiet)
    split = load_or_make_split(ds, run_dir, seed=split_seed)
    runs = [class_run(ds, split, c, run_dir) for c in dict.fromkeys(classes)]
    if ds.synthetic:
        click.echo("note: training on the built-in SYNTHETIC demo data (pass --data for real data)")
    space = None
    if eval_every > 0:
        space = load_feature_space(
            feature_space,
            ds,
            split,
            run_dir,
            dev,
            cfg.precision,
            inception_weights,
            progress=not quiet,
        )
    for run in runs:
        run_cfg = dataclasses.replace(
            cfg, sampling=sampling if run.class_name == SOURCE else "uniform"
        )
        if resume:
            run_cfg = _resumed_config(ctx, read_checkpoint(run)["config"])
        if epochs is not None:
            run_cfg.kimg = epochs * len(run.images) / 1000
        elif kimg is not None:
            run_cfg.kimg = kimg
        elif not resume:
            run_cfg.kimg = TrainConfig.kimg
        click.echo(
            f"{run.class_name}: {len(run.images)} training images, {arch.size} px, "
            f"{run_cfg.kimg:g} kimg, {run_cfg.precision}, {dev} -> {run.out}"
        )
        try:
            state = train_class(
                run,
                ds,
                arch,
                run_cfg,
                dev,
                resume,
                overwrite,
                progress=not quiet,
                space=space,
                eval_n=eval_n,
                source=source,
            )
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted; checkpoint saved in {run.out}; continue with "
                "the same command plus --resume",
                err=True,
            )
            raise SystemExit(130) from None
        click.echo(f"{run.class_name}: done at {state.nimg / 1000:.1f} kimg; samples in {run.out}")
        best = _best_row(run.out)
        if best is not None and "heldout_kid" in best:
            click.echo(
                f"  best.pt at {best['kimg']:.1f} kimg: {best['heldout_kid_label']} = "
                f"{1e3 * best['heldout_kid']:.2f}e-3 ± {1e3 * best['heldout_kid_std']:.2f}e-3 "
                f"(real-vs-real floor {1e3 * best['floor_kid']:.2f}e-3; on training reals "
                f"{1e3 * best['train_kid']:.2f}e-3)"
            )


def _best_row(out: Path) -> dict | None:
    path = out / "best.pt"
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)["extra"].get("eval")


def _saved_size(run_dir: Path, classes) -> int:
    path = Path(run_dir) / "gan" / classes[0] / "last.pt"
    if not path.is_file():
        raise UserError(
            f"no checkpoint at {path}; train it with `gan-train --class "
            f"{classes[0]} --run-dir {run_dir}` (without --resume)"
        )
    from gan.checkpoint import CheckpointError, load_checkpoint

    try:
        return int(load_checkpoint(path)["arch"]["size"])
    except CheckpointError as e:
        raise UserError(f"{e}; start over with --overwrite") from e


def _saved_arch(run_dir: Path, classes) -> str:
    from gan.checkpoint import load_checkpoint

    path = Path(run_dir) / "gan" / classes[0] / "last.pt"
    return load_checkpoint(path)["arch"].get("kind", "dcgan")  # _saved_size checked it


def _resumed_config(ctx: click.Context, saved: dict) -> TrainConfig:
    """The saved config; an option given on the command line must agree with it."""
    cfg = TrainConfig(**saved)
    asked = {
        "batch_size": "batch_size",
        "lr": "lr",
        "seed": "seed",
        "precision": "precision",
        "diffaugment": "diffaugment",
        "ema": "ema_kimg",
        "dihedral": "dihedral",
        "snapshot_kimg": "snapshot_kimg",
        "eval_every": "eval_kimg",
        "loss": "loss",
        "r1_gamma": "r1_gamma",
        "freeze_d": "freeze_d",
        "sampling": "sampling",
    }
    for option, field_name in asked.items():
        if ctx.get_parameter_source(option) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[option]
        if option == "diffaugment":
            value = POLICIES if value else ()
        elif option == "ema":
            value = TrainConfig.ema_kimg if value else 0.0
        elif option == "precision" and value == "auto":
            continue
        if field_name in RESUMABLE_CHANGES:
            setattr(cfg, field_name, value)
        elif value != getattr(cfg, field_name):
            raise UserError(
                f"--resume continues the saved run, which has {field_name}="
                f"{getattr(cfg, field_name)!r}, not {value!r}; drop --{option.replace('_', '-')} "
                "or start over with --overwrite"
            )
    return cfg


@click.command("gan-sample")
@click.option(
    "--n", "n", type=click.IntRange(min=1), required=True, help="Images to keep per class."
)
@click.option(
    "--class",
    "classes",
    multiple=True,
    help="Class to sample (repeatable); default: every class with a generator.",
)
@click.option(
    "--run-dir", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True
)
@click.option(
    "--checkpoint",
    default="best",
    show_default=True,
    help="best (lowest FID during training), last, or a checkpoint path.",
)
@click.option(
    "--filter",
    "filter_",
    type=click.Choice(["fid", "none"]),
    default="fid",
    show_default=True,
    help="Keep the pool samples that best match the real class.",
)
@click.option(
    "--pool-factor",
    type=click.FloatRange(min=1.0),
    default=2.0,
    show_default=True,
    help="Draw K×n samples and keep n.",
)
@click.option(
    "--score",
    type=click.Choice(SCORES),
    default="matching",
    show_default=True,
    help="Selection rule: matching (real images claim their nearest samples in turn), or "
    "the best per-sample k-NN realism / Mahalanobis scores.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory (default: <run-dir>/samples).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["png", "npz"]), default="png", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
)
@feature_options
@click.option("--data", default=None, help="Dataset path if it moved since gan-train.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--skip-bad-images", is_flag=True)
@click.option("--overwrite", is_flag=True, help="Replace samples already in --out.")
@click.option("--quiet", is_flag=True)
def gan_sample(
    n,
    classes,
    run_dir,
    checkpoint,
    filter_,
    pool_factor,
    score,
    out,
    fmt,
    seed,
    device,
    precision,
    feature_space,
    inception_weights,
    data,
    cache_dir,
    skip_bad_images,
    overwrite,
    quiet,
) -> None:
    """Sample each class's generator, filter the samples by feature statistics, write them."""
    dev = resolve_device(device)
    ds, split = load_run_data(run_dir, data, cache_dir, skip_bad_images, quiet, classes)
    runs = [class_run(ds, split, c, run_dir) for c in (classes or trained_classes(run_dir))]
    space = load_feature_space(
        feature_space,
        ds,
        split,
        run_dir,
        dev,
        resolve_precision(precision, dev),
        inception_weights,
        progress=not quiet,
    )
    opts = SampleOptions(
        n=n,
        checkpoint=checkpoint,
        filter=filter_,
        pool_factor=pool_factor,
        score=score,
        fmt=fmt,
        seed=seed,
        precision=resolve_precision(precision, dev),
    )
    out = out or Path(run_dir) / "samples"
    data_info = {
        "source": ds.source,
        "fingerprint": ds.fingerprint,
        "synthetic_demo_data": ds.synthetic,
    }
    summaries = []
    for run in tqdm(runs, desc="classes", disable=quiet or len(runs) == 1):
        s = sample_class(run, opts, space, out, dev, data_info, overwrite)
        summaries.append(s)
        click.echo(
            f"{run.class_name}: kept {s['kept']} of {s['pool']} -> {out / run.class_name}"
            f" ({s['seconds']['total']:.1f} s)"
        )
        click.echo(f"  {s.get('verdict', 'too few samples kept to compare')}")
        if "warning" in s:
            click.echo(f"  warning: {s['warning']}", err=True)
    if any(s["sets"] for s in summaries):
        if ds.synthetic:
            click.echo("(built-in SYNTHETIC demo data: these numbers say nothing about dermoscopy)")
        click.echo(summary_table([s for s in summaries if s["sets"]]))


def trained_classes(run_dir: Path) -> list[str]:
    found = sorted(
        p.parent.name for p in (Path(run_dir) / "gan").glob("*/last.pt") if p.parent.name != SOURCE
    )
    if not found:
        raise UserError(
            f"{run_dir} has no trained generator; run "
            f"`gan-train --class CLASS --run-dir {run_dir}` first"
        )
    return found


def load_run_data(run_dir: Path, data, cache_dir, skip_bad_images, quiet, classes):
    """The dataset and split a run directory was made with, at its generators' size."""
    split_file = Path(run_dir) / "split.json"
    if not split_file.is_file():
        raise UserError(
            f"{run_dir} has no split.json; run gan-train with --run-dir {run_dir} first"
        )
    record = json.loads(split_file.read_text())
    names = list(classes) or trained_classes(run_dir)
    size = _saved_size(run_dir, names)
    source = data or record["source"]
    fmt = None if data else record["format"]
    ds = load_dataset(source, size, fmt, cache_dir, skip_bad_images, progress=not quiet)
    return ds, load_or_make_split(ds, run_dir)


@click.command("augment-and-compare")
@data_options
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory (default: runs/<data name>).",
)
@click.option(
    "--classes",
    default="df,mel",
    show_default=True,
    help="Comma-separated rare classes to augment.",
)
@click.option(
    "--target",
    default="auto",
    show_default=True,
    help="Training images per rare class after augmentation, or auto "
    "(max(2 x real, median class count)).",
)
@click.option(
    "--arms",
    default=",".join(DEFAULT_ARMS),
    show_default=True,
    help=f"Comma-separated arms out of {', '.join(ARMS)}.",
)
@click.option("--seeds", type=int, default=3, show_default=True)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=None,
    help="Budgets: quick (default on CPU, 32 px) or full (default on GPU, 64 px).",
)
@click.option(
    "--size",
    type=click.Choice([str(s) for s in SUPPORTED_SIZES]),
    default=None,
    help="Override the profile's image size.",
)
@click.option("--external-test", default=None, help="Also evaluate on this dataset.")
@click.option(
    "--pretrained",
    is_flag=True,
    help="Classifier: torchvision's ImageNet ResNet-18 instead of training from scratch.",
)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
)
@feature_options
@click.option("--quiet", is_flag=True)
def augment_and_compare(
    data,
    fmt,
    cache_dir,
    skip_bad_images,
    split_seed,
    run_dir,
    classes,
    target,
    arms,
    seeds,
    profile,
    size,
    external_test,
    pretrained,
    device,
    precision,
    feature_space,
    inception_weights,
    quiet,
) -> None:
    """Train per-class GANs, rebalance, and compare classifier recall across arms and seeds."""
    from pipelines.experiment import run_experiment

    classes_l = [c.strip() for c in classes.split(",") if c.strip()]
    arms_l = [a.strip() for a in arms.split(",") if a.strip()]
    unknown = [a for a in arms_l if a not in ARMS]
    if unknown:
        raise UserError(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    if seeds < 1:
        raise UserError(f"--seeds {seeds}: need at least 1 seed (3 or more for an sd)")
    dev = resolve_device(device)
    prof = PROFILES[profile or ("full" if dev.type == "cuda" else "quick")]
    if size is not None:
        prof = dataclasses.replace(prof, size=int(size))
    summary = run_experiment(
        data=data,
        fmt=fmt,
        cache_dir=cache_dir,
        skip_bad_images=skip_bad_images,
        split_seed=split_seed,
        run_dir=run_dir or default_run_dir(data),
        classes=classes_l,
        target=target,
        arms=arms_l,
        seeds=seeds,
        profile=prof,
        external=external_test,
        device=dev,
        precision=resolve_precision(precision, dev),
        feature_space=feature_space,
        inception_weights=inception_weights,
        progress=not quiet,
        pretrained=pretrained,
    )
    click.echo(summary)
