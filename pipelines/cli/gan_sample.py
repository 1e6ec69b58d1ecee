"""gan-sample: draw, filter and write samples of each class's generator."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from gan.filtering import SCORES
from gan.progress import progress_bar
from pipelines.cli.common import (
    Command,
    check_cache_dir,
    check_data_path,
    note_skipped,
    one_line_os_errors,
    resolve_device,
    resolve_precision,
)
from pipelines.cli.options import (
    FiniteFloatRange,
    device_options,
    feature_options,
    quiet_option,
)
from pipelines.data.dataset import default_cache_dir
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.errors import UserError
from pipelines.format import summary_table
from pipelines.steps.detect import DETECT_STEPS, Detector
from pipelines.steps.feature_space import FEATURE_DIMS, FeatureRequest, load_feature_space
from pipelines.steps.gan_run import class_run
from pipelines.steps.sampling import SampleOptions, check_memory, sample_class
from pipelines.store.checkpoints import GanFolder, read_any, read_chosen
from pipelines.store.guard import SAMPLE_SET, check_replaceable, protected_places
from pipelines.store.layout import RunLayout
from pipelines.store.lock import run_dir_lock
from pipelines.store.records import check_output_dir, read_split_record


@click.command("gan-sample", cls=Command)
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
    type=FiniteFloatRange(min=1.0),
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
@click.option(
    "--detect-steps",
    type=click.IntRange(min=0),
    default=DETECT_STEPS,
    show_default=True,
    help="Training steps of the small CNN that measures detectability (can it tell fresh "
    "samples from held-out reals?); 0: not measured.",
)
@device_options
@feature_options
@click.option("--data", default=None, help="Dataset path if it moved since gan-train.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--skip-bad-images", is_flag=True, help="As for gan-train.")
@click.option("--allow-new-classes", is_flag=True, help="As for gan-train.")
@click.option("--overwrite", is_flag=True, help="Replace samples already in --out.")
@quiet_option
@one_line_os_errors
def gan_sample(**o) -> None:
    """Sample each class's generator, filter the samples by feature statistics, write them."""
    dev = resolve_device(o["device"])
    precision = resolve_precision(o["precision"], dev)
    run_dir, quiet = Path(o["run_dir"]), o["quiet"]
    out = o["out"] or run_dir / "samples"
    check_output_dir(run_dir, "--run-dir")
    _require_split(run_dir)  # before the lock creates anything
    check_output_dir(out, "--out")  # before the work, not when its results are written
    check_data_path(o["data"])
    opts = SampleOptions(
        n=o["n"],
        checkpoint=o["checkpoint"],
        filter=o["filter_"],
        pool_factor=o["pool_factor"],
        score=o["score"],
        fmt=o["fmt"],
        seed=o["seed"],
        precision=precision,
    )
    with run_dir_lock(run_dir), _out_lock(out, run_dir):
        ds, split = load_run_data(
            run_dir,
            o["data"],
            o["cache_dir"],
            o["skip_bad_images"],
            quiet,
            o["classes"],
            o["allow_new_classes"],
            o["checkpoint"],
        )
        note_skipped(ds, "each class's summary.json")
        names = o["classes"] or trained_classes(run_dir)
        runs = [class_run(ds, split, c, run_dir) for c in names]
        names = [r.class_name for r in runs]
        for run in runs:  # every refusal before the first class's work
            _check_target(out, run.class_name, names, o["overwrite"], _protected(ds, run_dir, o))
            read_chosen(run.folder, opts.checkpoint)  # a damaged one, before the feature network
            check_memory(
                opts, ds.images.shape[1], FEATURE_DIMS[o["feature_space"]], len(run.images)
            )
        request = FeatureRequest(o["feature_space"], precision, o["inception_weights"])
        space = load_feature_space(
            request, ds, split, run_dir, dev, not quiet, existing_only=opts.filter == "none"
        )
        summaries, detector = [], Detector(steps=o["detect_steps"])
        for run in progress_bar(runs, desc="classes", disable=quiet or len(runs) == 1):
            summaries.append(
                sample_class(run, opts, space, out, dev, ds.record(), o["overwrite"], detector)
            )
            _echo_summary(summaries[-1], out / run.class_name)
    if any(s["sets"] for s in summaries):
        if ds.synthetic:
            click.echo("(built-in SYNTHETIC demo data: these numbers say nothing about dermoscopy)")
        click.echo(summary_table([s for s in summaries if s["sets"]]))


def _out_lock(out: Path, run_dir: Path):
    """--out outside the run directory gets its own lock: two runs may share it."""
    inside = out.resolve().is_relative_to(run_dir.resolve())
    return contextlib.nullcontext() if inside else run_dir_lock(out, "--out")


def _protected(ds, run_dir: Path, o: dict) -> dict[str, Path]:
    """What a replaced sample folder may not touch: the data, the decode cache and the run
    directory's managed folders other than its sample sets."""
    layout = RunLayout(run_dir)
    data = None if ds.synthetic else ds.source
    cache = o["cache_dir"] or default_cache_dir()
    return protected_places(data, None, cache, layout.managed(own=layout.samples_root))


def _check_target(
    out: Path, cls: str, classes: list[str], overwrite: bool, protected: dict[str, Path]
) -> None:
    """A class's sample folder may be written: not a file, not a protected place, not
    someone else's files, and (without --overwrite) empty; where other classes of the
    command are not sampled yet (a gan-sample stopped after its first class), the refusal
    names them."""
    folder = out / cls
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder of samples; move it, or pass --out")
    check_replaceable(folder, SAMPLE_SET, "--out", protected)
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        rest = [c for c in classes if not (out / c).is_dir() or not any((out / c).iterdir())]
        going_on = (
            f" --class {','.join(rest)} to sample only those not sampled yet," if rest else ""
        )
        raise UserError(
            f"{folder} already holds samples; pass{going_on} --overwrite to replace them, or "
            "--out for another directory"
        )


def _echo_summary(s: dict, folder: Path) -> None:
    click.echo(
        f"{s['class']}: kept {s['kept']} of {s['pool']} -> {folder} ({s['seconds']['total']:.1f} s)"
    )
    click.echo(f"  {s.get('verdict', 'too few samples kept to compare')}")
    if "warning" in s:
        click.echo(f"  warning: {s['warning']}", err=True)


def trained_classes(run_dir: Path) -> list[str]:
    """The classes to sample when none is named: every one with a generator."""
    found = RunLayout(run_dir).trained_classes()
    if not found:
        raise UserError(
            f"{run_dir} has no trained generator; run "
            f"`gan-train --class CLASS --run-dir {run_dir}` first"
        )
    return found


def _require_split(run_dir: Path) -> Path:
    """The run's split.json: sampling judges a generator on the split it was trained with."""
    split_file = RunLayout(run_dir).split_file
    if not split_file.is_file():
        raise UserError(
            f"{run_dir} has no split.json; run gan-train with --run-dir {run_dir} first"
        )
    return split_file


def run_size(run_dir: Path, cls: str, checkpoint: str = "best") -> int:
    """The image size the run's generators make, from whichever of the class's checkpoints
    can be read (the one to be sampled first): a damaged last.pt must not block best.pt."""
    prefer = "last" if checkpoint == "last" else "best"
    return int(read_any(GanFolder.of(run_dir, cls), prefer)["arch"]["size"])


def _one_size(run_dir: Path, names: list[str], checkpoint: str) -> int:
    """The one image size of the classes to sample: the data is loaded once, at that size."""
    sizes = {c: run_size(run_dir, c, checkpoint) for c in names}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{c} {s} px" for c, s in sizes.items())
        raise UserError(
            f"the generators were trained at different sizes ({listed}); run one gan-sample "
            "per size, naming its classes with --class"
        )
    return sizes[names[0]]


def load_run_data(
    run_dir: Path,
    data,
    cache_dir,
    skip_bad_images,
    quiet,
    classes,
    allow_new_classes=False,
    checkpoint: str = "best",
):
    """The dataset and split a run directory was made with, at its generators' size."""
    split_file = _require_split(run_dir)
    record = read_split_record(split_file)
    names = list(classes) or trained_classes(run_dir)
    size = _one_size(run_dir, names, checkpoint)
    source = data or record.get("source")
    fmt = None if data else record.get("format")
    check_cache_dir(source, cache_dir)
    ds = load_dataset(
        source,
        size,
        fmt,
        cache_dir,
        skip_bad_images,
        progress=not quiet,
        allow_new_classes=allow_new_classes,
    )
    return ds, load_or_make_split(ds, run_dir)
