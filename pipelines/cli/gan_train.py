"""gan-train: one GAN per class (or the all-classes source GAN) on its training-split images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import torch

from gan.diffaugment import POLICIES
from gan.networks import ARCHS, SUPPORTED_SIZES, Architecture
from gan.training import LOSSES, TrainConfig
from pipelines.cli.common import (
    data_options,
    default_run_dir,
    device_options,
    feature_options,
    note_skipped,
    resolve_device,
    resolve_precision,
)
from pipelines.data.datasets import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.errors import UserError
from pipelines.feature_space import load_feature_space
from pipelines.gan_run import (
    RESUMABLE_CHANGES,
    SOURCE,
    class_run,
    damaged_last,
    read_checkpoint,
    read_source,
    source_checkpoint,
    train_class,
)
from pipelines.rundir import check_output_dir

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
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@device_options
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
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Generated images per FID/KID evaluation.",
)
@feature_options
@click.option("--resume", is_flag=True, help="Continue from the run directory's checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing GAN run of the class.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def gan_train(ctx: click.Context, **o) -> None:
    """Train one DCGAN per rare class on its training-split images."""
    from pipelines.lock import run_dir_lock

    _check_flags(ctx, o)
    run_dir = o["run_dir"] or default_run_dir(o["data"])
    dev = resolve_device(o["device"])
    check_output_dir(run_dir, "--run-dir")
    if o["resume"] and not run_dir.is_dir():
        _saved_size(run_dir, o["classes"])  # nothing to resume: say so, and create nothing
    with run_dir_lock(run_dir):  # first: what follows reads checkpoints another run may write
        arch = _architecture(ctx, o, run_dir)
        source = source_checkpoint(run_dir) if o["from_"] and not o["resume"] else None
        if source is not None:  # before any work: a missing or incompatible source
            read_source(source, arch, run_dir)
        ds = load_dataset(
            o["data"],
            arch.size,
            o["fmt"],
            o["cache_dir"],
            o["skip_bad_images"],
            progress=not o["quiet"],
            allow_new_classes=o["allow_new_classes"],
        )
        note_skipped(ds, f"{run_dir}/split.json and each class's run.json")
        split = load_or_make_split(ds, run_dir, seed=o["split_seed"])
        runs = [class_run(ds, split, c, run_dir) for c in dict.fromkeys(o["classes"])]
        if ds.synthetic:
            click.echo("note: training on the built-in SYNTHETIC demo data (pass --data)")
        cfg = _base_config(o, dev)
        plans = [_run_config(ctx, o, cfg, run) for run in runs]
        spaces = {name for run_cfg, _, name in plans if run_cfg.eval_kimg > 0}
        if len(spaces) > 1:
            raise UserError(
                f"--resume: these classes were evaluated in different feature spaces "
                f"({', '.join(sorted(spaces))}); resume them one --class at a time"
            )
        space = None
        if spaces:
            space = load_feature_space(
                spaces.pop(),
                ds,
                split,
                run_dir,
                dev,
                cfg.precision,
                o["inception_weights"],
                progress=not o["quiet"],
            )
        for run, (run_cfg, eval_n, _) in zip(runs, plans):
            _train_and_report(run, ds, arch, run_cfg, dev, o, space, source, eval_n)


def _check_flags(ctx: click.Context, o: dict) -> None:
    if o["kimg"] is not None and o["epochs"] is not None:
        raise UserError("pass --kimg or --epochs, not both")
    for name in ("kimg", "epochs"):
        if o[name] is not None and not o[name] > 0:  # `not >` also catches nan
            raise UserError(
                f"--{name} {o[name]:g}: a training length must be > 0 (e.g. --kimg 100); "
                "a run that trains nothing writes no checkpoint"
            )
    if o["resume"] and o["overwrite"]:
        raise UserError("--resume continues a run and --overwrite replaces it; pass one")
    if o["from_"] and SOURCE in o["classes"]:
        raise UserError(f"--from {o['from_']}: the source run itself cannot start from a source")
    asked = ctx.get_parameter_source("freeze_d") == click.core.ParameterSource.COMMANDLINE
    if asked and o["freeze_d"] and not o["from_"] and not o["resume"]:
        raise UserError("--freeze-d freezes transferred layers; use it with --from all")


def _base_config(o: dict, dev: torch.device) -> TrainConfig:
    return TrainConfig(
        batch_size=o["batch_size"],
        lr=o["lr"],
        seed=o["seed"],
        precision=resolve_precision(o["precision"], dev),
        diffaugment=POLICIES if o["diffaugment"] else (),
        ema_kimg=TrainConfig.ema_kimg if o["ema"] else 0.0,
        dihedral=o["dihedral"],
        snapshot_kimg=o["snapshot_kimg"],
        eval_kimg=o["eval_every"],
        loss=o["loss"],
        r1_gamma=o["r1_gamma"],
        freeze_d=o["freeze_d"] if o["from_"] else 0,
    )


def _architecture(ctx: click.Context, o: dict, run_dir: Path) -> Architecture:
    """The asked architecture; a resumed run keeps its checkpoint's size and kind."""
    size, kind = o["size"], o["arch"]
    if o["resume"]:
        saved_size = _saved_size(run_dir, o["classes"])
        if size is not None and int(size) != saved_size:
            raise UserError(
                f"--resume: the checkpoints in {run_dir} are {saved_size} px, not "
                f"{size} px; drop --size or start over with --overwrite"
            )
        size = saved_size
        if ctx.get_parameter_source("arch") != click.core.ParameterSource.COMMANDLINE:
            kind = _saved_arch(run_dir, o["classes"])
    return Architecture(size=int(size or 64), kind=kind)


def _run_config(ctx: click.Context, o: dict, cfg: TrainConfig, run) -> tuple[TrainConfig, int, str]:
    """One class's config, FID sample size and feature space: the command line's, or the saved
    ones on --resume; and its length."""
    sampling = o["sampling"] if run.class_name == SOURCE else "uniform"
    run_cfg = dataclasses.replace(cfg, sampling=sampling)
    eval_n, space = o["eval_n"], o["feature_space"]
    if o["resume"]:
        ckpt = read_checkpoint(run)
        run_cfg = _resumed_config(ctx, ckpt["config"])
        eval_n, space = _resumed_evaluation(ctx, ckpt.get("extra", {}), run.class_name)
    if o["epochs"] is not None:
        run_cfg.kimg = o["epochs"] * len(run.images) / 1000
    elif o["kimg"] is not None:
        run_cfg.kimg = o["kimg"]
    elif not o["resume"]:
        run_cfg.kimg = TrainConfig.kimg
    return run_cfg, eval_n, space


def _resumed_evaluation(ctx: click.Context, extra: dict, cls: str) -> tuple[int, str]:
    """--resume keeps the run's --eval-n and --feature-space: best.pt is the checkpoint of the
    lowest KID so far, and KIDs only compare at one n in one feature space. A changed --eval-n
    is allowed and said; a changed feature space is refused."""
    n, space = ctx.params["eval_n"], ctx.params["feature_space"]
    saved_n, saved_space = extra.get("eval_n"), extra.get("feature_space")  # older runs: none
    if saved_space is not None:
        if _given(ctx, "feature_space") and space != saved_space:
            raise UserError(
                f"--resume: {cls}'s FIDs so far are in the {saved_space} feature space, not "
                f"{space}, and best.pt compares them; drop --feature-space or start over with "
                "--overwrite"
            )
        space = saved_space
    if saved_n is not None:
        if not _given(ctx, "eval_n"):
            n = saved_n
        elif n != saved_n:
            click.echo(
                f"note: {cls}: --eval-n {n} replaces the run's {saved_n}; FIDs from here on use "
                f"{n} generated images, so best.pt compares FIDs at different n",
                err=True,
            )
    return n, space


def _given(ctx: click.Context, option: str) -> bool:
    return ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE


def _train_and_report(run, ds, arch, run_cfg, dev, o: dict, space, source, eval_n) -> None:
    click.echo(
        f"{run.class_name}: {len(run.images)} training images, {arch.size} px {arch.kind}, "
        f"{run_cfg.kimg:g} kimg, {run_cfg.precision}, {dev} -> {run.out}"
    )
    try:
        state = train_class(
            run,
            ds,
            arch,
            run_cfg,
            dev,
            o["resume"],
            o["overwrite"],
            progress=not o["quiet"],
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
    from gan.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(out / "best.pt")["extra"].get("eval")
    except CheckpointError:
        return None


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
        raise damaged_last(e, path.parent) from e


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
            if field_name == "eval_kimg" and value != cfg.eval_kimg:
                click.echo(
                    f"note: --eval-every {value:g} replaces the run's {cfg.eval_kimg:g} kimg",
                    err=True,
                )
            setattr(cfg, field_name, value)
        elif value != getattr(cfg, field_name):
            raise UserError(
                f"--resume continues the saved run, which has {field_name}="
                f"{getattr(cfg, field_name)!r}, not {value!r}; drop --{option.replace('_', '-')} "
                "or start over with --overwrite"
            )
    return cfg
