"""gan-train: one GAN per class (or the all-classes source GAN) on its training-split images.

The options only; what they mean for a new or a resumed run is pipelines.gan_resume's.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from gan.networks import ARCHS, SUPPORTED_SIZES
from gan.training import LOSSES
from pipelines.cli.common import (
    Command,
    check_cache_dir,
    check_data_path,
    default_run_dir,
    given_options,
    note_skipped,
    one_line_os_errors,
    resolve_device,
    resolve_precision,
)
from pipelines.cli.options import (
    data_options,
    device_options,
    feature_options,
    quiet_option,
    run_dir_option,
    tensorboard_option,
)
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps import gan_resume
from pipelines.steps.feature_space import FeatureRequest, load_feature_space
from pipelines.steps.gan_run import SOURCE, TrainPlan, class_run, train_gan
from pipelines.store import tensorboard
from pipelines.store.checkpoints import best_eval, read_source, source_path
from pipelines.store.layout import RunLayout
from pipelines.store.lock import run_dir_lock
from pipelines.store.records import check_output_dir, read_split_record

# The recommended generator recipe, chosen by held-out KID per CPU second
# (docs/generator_budget.md).
# The dataclass defaults stay the classic DCGAN, which is also what old checkpoints hold.
DEFAULT_ARCH = "resize"
DEFAULT_LOSS = "ns"
DEFAULT_R1 = 0.0
DEFAULT_FREEZE_D = 1


@click.command("gan-train", cls=Command)
@click.option(
    "--class", "classes", multiple=True, required=True,
    help=f"Class to train a GAN for; repeat for several (--class df --class mel). "
    f"'{SOURCE}' trains the source GAN on every training image, for --from.",
)  # fmt: skip
@click.option(
    "--from", "from_", type=click.Choice([SOURCE]), default=None,
    help=f"Start from the source GAN's weights (`gan-train --class {SOURCE}` first) and "
    "fine-tune on the class.",
)  # fmt: skip
@click.option(
    "--freeze-d", type=click.IntRange(min=0), default=DEFAULT_FREEZE_D, show_default=True,
    help="FreezeD: keep this many of D's lowest (image-side) blocks fixed (with --from).",
)  # fmt: skip
@click.option(
    "--sampling", type=click.Choice(["uniform", "balanced"]), default="balanced",
    show_default=True,
    help=f"How --class {SOURCE} draws real images: uniformly, or with every class equally often.",
)  # fmt: skip
@click.option(
    "--arch", type=click.Choice(ARCHS), default=DEFAULT_ARCH, show_default=True,
    help="dcgan: transposed convs + BatchNorm D (the reference); resize: nearest-upsample + 3x3 "
    "conv G (no checkerboard), DCGAN's D; resize-sn: resize with a spectrally normalised D.",
)  # fmt: skip
@click.option(
    "--loss", type=click.Choice(LOSSES), default=DEFAULT_LOSS, show_default=True,
    help="ns: non-saturating logistic; hinge.",
)  # fmt: skip
@click.option(
    "--r1-gamma", type=click.FloatRange(min=0), default=DEFAULT_R1, show_default=True,
    help="Lazy R1 penalty weight on real images (every 16 steps); 0 = off.",
)  # fmt: skip
@data_options
@run_dir_option
@click.option(
    "--size", type=click.Choice([str(s) for s in SUPPORTED_SIZES]), default=None,
    help="Image size in px (default 64; a resumed run keeps its size).",
)  # fmt: skip
@click.option(
    "--kimg", type=float, default=None,
    help="Training length in thousands of real images shown to D [default: 100].",
)  # fmt: skip
@click.option(
    "--epochs", type=float, default=None,
    help="Training length in passes over the class's training images.",
)  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@device_options
@click.option(
    "--diffaugment/--no-diffaugment", default=True, show_default=True,
    help="DiffAugment (colour, translation, cutout) on everything D sees.",
)  # fmt: skip
@click.option(
    "--ema/--no-ema", default=True, show_default=True,
    help="Sample from an exponential moving average of G's weights.",
)  # fmt: skip
@click.option(
    "--dihedral/--no-dihedral", default=True, show_default=True,
    help="Random flips and 90-degree turns of the real images.",
)  # fmt: skip
@click.option(
    "--snapshot-kimg", type=float, default=10.0, show_default=True,
    help="Checkpoint and sample-grid interval.",
)  # fmt: skip
@click.option(
    "--eval-every", type=float, default=10.0, show_default=True,
    help="FID/KID of the sampling generator every N kimg (0: off); keeps best.pt.",
)  # fmt: skip
@click.option(
    "--eval-n", type=click.IntRange(min=2), default=1000, show_default=True,
    help="Generated images per FID/KID evaluation.",
)  # fmt: skip
@feature_options
@click.option("--resume", is_flag=True, help="Continue from the run directory's checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing GAN run of the class.")
@quiet_option
@tensorboard_option
@click.pass_context
@one_line_os_errors
def gan_train(ctx: click.Context, **o) -> None:
    """Train one DCGAN per rare class on its training-split images."""
    given = given_options(ctx)
    gan_resume.check_options(o, given)
    events = tensorboard.resolve(o["tensorboard"])
    run_dir = o["run_dir"] or default_run_dir(o["data"])
    dev = resolve_device(o["device"])
    check_output_dir(run_dir, "--run-dir")
    check_data_path(o["data"])
    check_cache_dir(o["data"], o["cache_dir"])
    req = gan_resume.Request(o, given, resolve_precision(o["precision"], dev))
    if o["resume"] and not run_dir.is_dir():
        gan_resume.read_resumed(req, run_dir)  # nothing to resume: say so, and create nothing
    with run_dir_lock(run_dir):  # first: what follows reads checkpoints another run may write
        resumed = gan_resume.read_resumed(req, run_dir)
        arch = gan_resume.architecture(req, run_dir, resumed)
        source = source_path(run_dir) if o["from_"] and not o["resume"] else None
        if source is not None:  # before any work: a missing or incompatible source
            read_source(source, arch, run_dir)
        ds = load_dataset(
            o["data"], arch.size, o["fmt"], o["cache_dir"], o["skip_bad_images"],
            progress=not o["quiet"], allow_new_classes=o["allow_new_classes"],
        )  # fmt: skip
        note_skipped(ds, f"{run_dir}/split.json and each class's run.json")
        _note_stored_seed(run_dir, o["split_seed"], "split_seed" in given)
        split = load_or_make_split(ds, run_dir, seed=o["split_seed"])
        runs = [class_run(ds, split, c, run_dir) for c in dict.fromkeys(o["classes"])]
        if ds.synthetic:
            click.echo("note: training on the built-in SYNTHETIC demo data (pass --data)")
        plans, space_name = gan_resume.plan_classes(req, runs, arch, resumed)
        for note in (n for plan in plans for n in plan.notes):
            click.echo(f"note: {note}", err=True)
        space = None
        if space_name is not None:
            request = FeatureRequest(space_name, req.precision, o["inception_weights"])
            space = load_feature_space(request, ds, split, run_dir, dev, not o["quiet"])
        layout = RunLayout(run_dir)
        for plan in plans:
            tb = layout.tensorboard_dir(f"gan/{plan.run.class_name}") if events else None
            train = TrainPlan(
                arch, plan.cfg, dev, resume=o["resume"], overwrite=o["overwrite"],
                progress=not o["quiet"], space=space, eval_n=plan.eval_n, source=source,
                tensorboard=tb,
            )  # fmt: skip
            _train_and_report(plan, ds, train)


def _note_stored_seed(run_dir: Path, seed: int, asked: bool) -> None:
    """A run directory keeps its split: a --split-seed other than the one that made it is
    said, not silently ignored (a damaged split.json is named)."""
    path = RunLayout(run_dir).split_file
    if not path.is_file():
        return
    made_with = read_split_record(path).get("seed")
    if asked and made_with is not None and made_with != seed:
        click.echo(
            f"note: --split-seed {seed} is not used: {path} was made with --split-seed "
            f"{made_with}, and this run directory keeps it (pass another --run-dir for a new "
            "split)",
            err=True,
        )


def _train_and_report(plan: gan_resume.ClassPlan, ds, train: TrainPlan) -> None:
    """Train one class, saying what, where, how far it got and how good best.pt is."""
    run, cfg = plan.run, plan.cfg
    if plan.resumed is not None and plan.resumed["nimg"] >= cfg.kimg * 1000:
        click.echo(
            f"{run.class_name}: already trained to {plan.resumed['nimg'] / 1000:g} kimg, at "
            f"least --kimg {cfg.kimg:g}: nothing to train (pass a larger --kimg to go on)"
        )
        return
    click.echo(
        f"{run.class_name}: {len(run.images)} training images, {train.arch.size} px "
        f"{train.arch.kind}, {cfg.kimg:g} kimg, {cfg.precision}, {train.device} -> {run.out}"
    )
    try:
        state = train_gan(run, ds, train, plan.resumed)
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted; checkpoint saved in {run.out}; continue with "
            "the same command plus --resume",
            err=True,
        )
        raise SystemExit(130) from None
    past = (
        f" (whole batches of {cfg.batch_size} end past --kimg {cfg.kimg:g})"
        if state.nimg > math.ceil(cfg.kimg * 1000)
        else ""
    )
    click.echo(f"{run.class_name}: done at {state.nimg / 1000:g} kimg{past}; samples in {run.out}")
    best = best_eval(run.folder)
    if best is not None and "heldout_mix_kid" in best:
        click.echo(
            f"  best.pt at {best['kimg']:.1f} kimg: {best['heldout_mix_kid_label']} = "
            f"{1e3 * best['heldout_mix_kid']:.2f}e-3 (real-vs-real floor "
            f"{1e3 * best['floor_mix_kid']:.2f}e-3; against the natural mix "
            f"{1e3 * best['heldout_kid']:.2f}e-3)"
        )
    elif best is not None and "heldout_kid" in best:
        click.echo(
            f"  best.pt at {best['kimg']:.1f} kimg: {best['heldout_kid_label']} = "
            f"{1e3 * best['heldout_kid']:.2f}e-3 ± {1e3 * best['heldout_kid_std']:.2f}e-3 "
            f"(real-vs-real floor {1e3 * best['floor_kid']:.2f}e-3; on training reals "
            f"{1e3 * best['train_kid']:.2f}e-3)"
        )
