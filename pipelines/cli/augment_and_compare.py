"""augment-and-compare: the whole experiment as a job graph, in this process or on Ray."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import click
import torch

from gan.networks import SUPPORTED_SIZES
from pipelines.cli.classifier_options import classifier_choice, classifier_options
from pipelines.cli.common import (
    Command,
    check_cache_dir,
    check_data_path,
    command_line,
    default_run_dir,
    echo_notes,
    given_options,
    one_line_os_errors,
    resolve_device,
    resolve_precision,
)
from pipelines.cli.options import (
    FiniteFloatRange,
    data_options,
    device_options,
    feature_options,
    quiet_option,
    run_dir_option,
    tensorboard_option,
)
from pipelines.config.arms import ARMS, DEFAULT_ARMS, DEFAULT_MARGIN, ORACLE_ARMS, default_arms
from pipelines.config.experiment import (
    DEFAULT_SEEDS,
    DEMO_SEEDS,
    ExperimentConfig,
    check_arms,
    check_classes,
    check_counts,
    config_from_json,
    is_demo,
    read_config_json,
)
from pipelines.config.profiles import PROFILES
from pipelines.errors import UserError
from pipelines.graph import ray_executor
from pipelines.graph import scheduler as graph
from pipelines.graph.estimate import describe_estimate, estimate
from pipelines.graph.jobs import comparison_id, experiment_graph, run_job
from pipelines.graph.preflight import check_inputs
from pipelines.graph.ray_executor import import_ray
from pipelines.graph.scheduler import check_graph, describe, not_done
from pipelines.report.export import ExportRequest, check_export, export_arm
from pipelines.steps.plan import write_experiment_record, write_splits
from pipelines.store import tensorboard
from pipelines.store.lock import run_dir_lock
from pipelines.store.records import check_output_dir

EXECUTORS = ("local", "ray")


@click.command("augment-and-compare", cls=Command)
@data_options
@run_dir_option
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
    default=None,
    help=f"Comma-separated arms out of {', '.join(ARMS)} [default: {','.join(DEFAULT_ARMS)}; "
    f"with lesions held back (--oracle-share, --rare-n) also {','.join(ORACLE_ARMS)}; on the "
    "demo also oracle].",
)
@click.option(
    "--seeds",
    type=int,
    default=None,
    help=f"Classifier seeds per arm; the intervals' seed part has seeds - 1 df [default: "
    f"{DEFAULT_SEEDS}; on the demo {DEMO_SEEDS}, a first look in minutes].",
)
@click.option(
    "--folds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="K > 1: lesion-grouped, stratified K-fold cross-validation (every lesion tested "
    "once; features, GANs and samples per fold: K times the work).",
)
@click.option(
    "--gan-doses",
    default="",
    help="The dose study: comma-separated source-GAN kimg (e.g. 25,100,400,1600). The source "
    "trains once to the largest, with a snapshot at each; every rare class is fine-tuned, "
    "sampled and classified per dose; the controls are trained once (study.md).",
)
@click.option(
    "--rare-n",
    default="",
    help="The scarcity study: comma-separated training-lesion counts (e.g. 10,20,40) each rare "
    "class is cut to, nested; every GAN, filter, arm and control of a level sees only those "
    "(scarcity.md). With one --gan-doses value, every level trains at that dose.",
)
@click.option(
    "--oracle-share",
    type=FiniteFloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="The positive control: hold back this share of each rare class's training lesions "
    "(drawn like --rare-n; no GAN, filter or other arm sees them); the oracle arms add their "
    "real images where gan adds synthetic ones: a perfect generator.",
)
@click.option(
    "--margin",
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_MARGIN,
    show_default=True,
    help="The smallest gain worth having, in recall, prior-matched recall and AP: an interval "
    "wholly below it reads 'no gain larger than', a comparison that could not have detected it "
    "'cannot tell'. Changes the report only, never a trained model.",
)
@click.option(
    "--synthetic-share",
    type=FiniteFloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="oversample+gan: share of the images a rare class needs that are synthetic "
    "(the rest are resampled real images).",
)
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
    help="Image size of the GANs and the classifier alike (overrides the profile's sizes).",
)
@click.option("--external-test", default=None, help="Also evaluate on this dataset.")
@classifier_options
@device_options
@feature_options
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: one job after another in this process (classifiers --workers at a time); "
    "ray: every ready job at once as a Ray task (pip install 'raregan[ray]').",
)
@click.option(
    "--ray-address",
    default=None,
    help="An existing Ray cluster (e.g. ray://head:10001 or auto); default: start a local one.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Torch threads of a job (classifier jobs split them over --workers), in every "
    "executor [default: this machine's torch default].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local executor: classifier jobs run this many at a time in worker processes, each on "
    "--threads/N threads (2 on a 2-core CPU: 1.12x throughput on HAM10000, "
    "benchmarks/parallel_jobs.py).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Rerun exactly the experiment of a run's experiment.json (with no option that "
    "changes it; --executor, --ray-address, --export*, --tensorboard, --dry-run and --quiet "
    "may be given).",
)
@click.option(
    "--export",
    nargs=2,
    type=(str, click.Path(path_type=Path)),
    default=None,
    metavar="ARM DIR",
    help="After the run (a finished one: its jobs are reused), write ARM's training set for "
    "--export-seed to DIR as an ImageFolder with manifest.csv and DATASET_CARD.md.",
)
@click.option(
    "--export-seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="--export: the classifier seed whose training set is written.",
)
@click.option("--export-overwrite", is_flag=True, help="--export: replace what DIR already holds.")
@click.option("--dry-run", is_flag=True, help="List the jobs, their dependencies and status.")
@quiet_option
@tensorboard_option
@click.pass_context
@one_line_os_errors
def augment_and_compare(ctx: click.Context, **opts) -> None:
    """Train per-class GANs, rebalance, and compare classifier recall across arms and seeds."""
    cfg = experiment_config(opts) if opts["config_file"] is None else saved_config(ctx, opts)
    export = _export_request(cfg, opts)
    if opts["executor"] == "ray" and not opts["dry_run"]:
        import_ray()  # a missing extra fails now, not after loading the data
    check_output_dir(Path(cfg.run_dir), "--run-dir")
    for path, option in ((cfg.data, "--data"), (cfg.external, "--external-test")):
        check_data_path(path, option)
        check_cache_dir(path, Path(cfg.cache_dir) if cfg.cache_dir else None)
    ds, notes = check_inputs(cfg)  # writes nothing: a refused or a dry run leaves no trace
    echo_notes(notes)
    nodes = experiment_graph(cfg)
    check_graph(nodes)  # every job name once: the scheduler could never finish otherwise
    if opts["dry_run"]:
        click.echo(describe(cfg.layout, nodes))
        click.echo(describe_estimate(cfg, estimate(cfg, nodes, not_done(cfg.layout, nodes))))
        return
    with run_dir_lock(Path(cfg.run_dir)):
        write_splits(cfg)  # the splits the checks made in memory, now that the run starts
        if (
            cfg.layout.marker("features").parent.is_dir()
            and not cfg.layout.experiment_file.exists()
        ):
            click.echo(
                f"note: {cfg.run_dir} was made by an older raregan: its feature network, GANs and "
                "samples are reused, its classifiers train again (their old keys lacked "
                "--threads; the old results stay in their compare/ folder)",
                err=True,
            )
        write_experiment_record(cfg, ds)
        results = execute(cfg, nodes, opts["executor"], opts["ray_address"], not opts["quiet"])
        if export is not None:
            _export(cfg, ctx, export)
    click.echo(results["report"]["headline"])


MOVABLE = ("data", "run_dir")  # where the experiment is, which --config may update
RUN_OPTIONS = ("config_file", "executor", "ray_address", "dry_run", "quiet", "tensorboard",
               "export", "export_seed", "export_overwrite")  # fmt: skip  # not the experiment


def _export_request(cfg, opts: dict):
    """--export's (arm, seed, DIR, overwrite), refused in one line before any work."""
    if opts["export"] is None:
        return None

    (arm, out), seed = opts["export"], opts["export_seed"]
    request = ExportRequest(arm, seed, out, opts["export_overwrite"])
    check_export(cfg, request)
    return request


def _export(cfg, ctx: click.Context, request) -> None:
    """Write the arm's training set once the run is done (pipelines/report/export.py)."""
    folder = cfg.layout.classifier_dir(comparison_id(cfg), request.arm, request.seed)
    counts = export_arm(cfg, request, folder, command_line(ctx))
    n_syn = sum(c["synthetic"] for c in counts.values())
    total = sum(c["total"] for c in counts.values())
    click.echo(
        f"exported {request.arm} seed {request.seed}: {total} images ({n_syn} synthetic) -> "
        f"{request.out}",
        err=True,
    )


def saved_config(ctx: click.Context, opts: dict):
    """--config: the experiment of a run's experiment.json, exactly; an option that would
    change it is refused rather than silently ignored. --data and --run-dir may say where
    the same experiment is now (data that moved: its split.json refuses other data by
    fingerprint; a copy of the run directory elsewhere)."""
    given = sorted(given_options(ctx) - set(RUN_OPTIONS) - set(MOVABLE))
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UserError(
            f"--config reruns the saved experiment as it was; drop {flags} (or drop --config "
            "and pass every option)"
        )
    path = opts["config_file"]
    cfg = config_from_json(checked_like_options(ctx, read_config_json(path), path), path)
    try:
        check_arms(cfg.arms)
        check_classes(cfg.classes)
        check_counts(cfg.seeds, cfg.workers, cfg.threads)
    except UserError as e:
        raise UserError(f"--config {path}: {e.message}") from None
    moved = given_options(ctx) & set(MOVABLE)
    return dataclasses.replace(
        cfg,
        data=_path_or_demo(opts["data"]) if "data" in moved else cfg.data,
        run_dir=absolute(opts["run_dir"]) if "run_dir" in moved else cfg.run_dir,
        progress=not opts["quiet"] and opts["executor"] == "local",
        tensorboard=tensorboard.resolve(opts["tensorboard"]),
    )


TUPLES = {"classes": str, "arms": str, "gan_doses": (int, float), "rare_n": int}  # a, b, ...
NOT_AS_GIVEN = ("profile", "tensorboard")  # stored resolved: the profile's fields, on or off


def checked_like_options(ctx: click.Context, saved: dict, path: Path) -> dict:
    """A --config file's values through the checks of the command line's own options (one
    definition of each option's type and range): a field of the wrong type or out of range
    is a one-line error naming it, as the option would be, not a traceback hours later."""
    out = dict(saved)
    for param in ctx.command.params:
        name = param.name
        if name not in saved or saved[name] is None or name in (*TUPLES, *NOT_AS_GIVEN):
            continue
        try:
            value = param.type.convert(saved[name], param, ctx)
            out[name] = saved[name] if isinstance(param.type, click.Path) else value
        except click.BadParameter as e:
            raise UserError(
                f"--config {path}: {name} {saved[name]!r}: {e.message}; correct the file, or "
                "rerun with options instead"
            ) from None
    for name, kind in TUPLES.items():
        value = saved.get(name, [])
        if not isinstance(value, list) or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v in value
        ):
            raise UserError(
                f"--config {path}: {name} {value!r} is not a list of "
                f"{'names' if kind is str else 'numbers'}; correct the file, or rerun with "
                "options instead"
            )
    return out


def experiment_config(opts: dict):
    """The ExperimentConfig of the command line, checked for user mistakes."""
    classes = tuple(c.strip() for c in opts["classes"].split(",") if c.strip())
    held_back = bool(opts["oracle_share"] or opts["rare_n"].strip())
    arms_text = opts["arms"] or ",".join(default_arms(held_back, is_demo(opts["data"])))
    arms = tuple(a.strip() for a in arms_text.split(",") if a.strip())
    check_arms(arms, arms_text)
    check_classes(classes, opts["classes"])
    seeds = opts["seeds"]
    if seeds is None:
        seeds = DEMO_SEEDS if is_demo(opts["data"]) else DEFAULT_SEEDS
    dev = resolve_device(opts["device"])
    profile = PROFILES[opts["profile"] or ("full" if dev.type == "cuda" else "quick")]
    threads = opts["threads"] or torch.get_num_threads()
    check_counts(seeds, opts["workers"], threads)
    if opts["size"] is not None:
        profile = dataclasses.replace(profile, size=int(opts["size"]), classifier_size=None)
    return ExperimentConfig(
        run_dir=absolute(opts["run_dir"] or default_run_dir(opts["data"])),
        profile=profile,
        data=_path_or_demo(opts["data"]),
        fmt=opts["fmt"],
        cache_dir=absolute(opts["cache_dir"]) if opts["cache_dir"] else None,
        skip_bad_images=opts["skip_bad_images"],
        allow_new_classes=opts["allow_new_classes"],
        split_seed=opts["split_seed"],
        classes=classes,
        target=opts["target"],
        arms=arms,
        seeds=seeds,
        synthetic_share=opts["synthetic_share"],
        folds=opts["folds"],
        gan_doses=parse_doses(opts["gan_doses"]),
        rare_n=parse_counts(opts["rare_n"]),
        oracle_share=opts["oracle_share"],
        margin=opts["margin"],
        external=_path_or_demo(opts["external_test"]),
        device=str(dev),
        precision=resolve_precision(opts["precision"], dev),
        feature_space=opts["feature_space"],
        inception_weights=absolute(opts["inception_weights"])
        if opts["inception_weights"]
        else None,
        pretrained=opts["pretrained"],
        classifier=classifier_choice(opts),
        threads=threads,
        workers=opts["workers"],
        progress=not opts["quiet"] and opts["executor"] == "local",
        tensorboard=tensorboard.resolve(opts["tensorboard"]),
    )


def absolute(path) -> str:
    """A path as experiment.json stores it: absolute, so that --config and every later
    command find the same files from any working directory."""
    return str(Path(path).resolve())


def _path_or_demo(given: str | None) -> str | None:
    """--data / --external-test: the built-in demo (or none) as given, a path absolute."""
    return given if is_demo(given) else absolute(given)


def parse_doses(text: str) -> tuple[float, ...]:
    try:
        doses = [float(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise UserError(f"--gan-doses {text!r}: give kimg numbers, e.g. 25,100,400") from None
    return tuple(sorted(doses))


def parse_counts(text: str) -> tuple[int, ...]:
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise UserError(f"--rare-n {text!r}: give whole lesion counts, e.g. 10,20,40") from None
    return tuple(sorted(counts))


def execute(cfg, nodes, executor: str, ray_address: str | None, bar: bool) -> dict[str, dict]:
    """Run the graph with the chosen executor; a rerun skips what is done."""
    task = functools.partial(run_job, cfg)

    def echo(line: str) -> None:
        click.echo(line, err=True)

    try:
        if executor == "local":
            quiet = functools.partial(run_job, dataclasses.replace(cfg, progress=False))
            backend = graph.LocalBackend(cfg.layout, task, quiet, cfg.workers)
        else:
            ray_executor.start(ray_address)
            ray_executor.check_shared_run_dir(cfg.layout.root)
            backend = ray_executor.RayBackend(cfg.layout, task)
        return graph.run_graph(cfg.layout, nodes, backend, echo, bar)
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted; finished jobs are kept: rerun the same command to continue", err=True
        )
        raise SystemExit(130) from None
