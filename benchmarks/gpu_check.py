"""The full profile on one CUDA GPU: what each stage costs there, measured in minutes.

    python benchmarks/gpu_check.py --data HAM10000 [--out gpu_check.md]   # a CUDA GPU, < 8 min
    python benchmarks/gpu_check.py --tiny [--run-dir DIR] [-- OPTIONS]     # CPU, demo, smoke

Three parts, one markdown table each (printed, and written to --out):
1. **Units**: the full profile's networks timed on the device as `--dry-run` times them
   (pipelines.graph.estimate): GAN images/s, classifier and feature-network steps/s, and what
   a whole full-profile comparison (default arms and seeds) would take there, per stage.
2. **Side by side**: classifier steps/s of one process against two sharing the device (what
   `--workers 2` would buy).
3. **A real comparison** end to end in this process (the quick profile on the device, two
   seeds; every job on the GPU): wall time per stage, peak GPU memory, its headline, and its
   own estimate against the measured time.
`--tiny` runs the same code on a CPU with the smoke profile on the demo data, in seconds (the
test suite runs it); options after `--` go to the comparison (e.g. its seeds or classes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch
from _ham import DEFAULT_DATA, ham_missing
from dry_run_estimate import config_of

from pipelines.cli.augment_and_compare import augment_and_compare
from pipelines.graph import estimate as est
from pipelines.graph.jobs import ClassifierJob, FeaturesJob, GanJob, experiment_graph
from pipelines.graph.preflight import check_inputs
from pipelines.graph.scheduler import not_done, read_marker, stage_seconds
from pipelines.steps.plan import plan_for
from pipelines.store.layout import SOURCE
from pipelines.store.records import cpu_name

SIDE_BY_SIDE = """
import json, sys
sys.path.insert(0, sys.argv[3])
from dry_run_estimate import config_of
from gpu_check import classifier_step
from pipelines.steps.plan import plan_for
plan = plan_for(config_of(json.loads(sys.argv[1])))
print(1 / classifier_step(plan, int(sys.argv[2])))
"""


def unit_seconds(plan, job, unit: str, threads: int) -> float:
    """Seconds of one unit of a job on the device, as --dry-run times it (graph.estimate)."""
    return est.UNITS[type(job)](plan, job, threads).terms[unit][1]


def classifier_step(plan, threads: int) -> float:
    return unit_seconds(plan, ClassifierJob("baseline", 0), "steps", threads)


def units(args: list[str]) -> tuple[str, dict]:
    """Part 1: the profile's units on the device and its whole comparison's estimate."""
    cfg = config_of(args)
    check_inputs(cfg)
    plan, threads = plan_for(cfg), cfg.threads
    gan = GanJob(SOURCE if SOURCE in plan.gans else plan.classes[0])
    batch = plan.gans[gan.cls].train.batch_size
    measured = {
        "GAN training (images/s)": batch / unit_seconds(plan, gan, "steps", threads),
        "classifier (steps/s)": 1 / classifier_step(plan, threads),
        "generator (images/s)": 1 / unit_seconds(plan, gan, "generated images", threads),
    }
    if cfg.feature_space == "domain":  # a network trained by the run (inception: loaded)
        step = unit_seconds(plan, FeaturesJob(), "steps", threads)
        measured["feature network (steps/s)"] = 1 / step
    nodes = experiment_graph(cfg)
    found = est.estimate(cfg, nodes, {n.name for n in nodes})
    rows = ["| unit | measured |", "|---|---:|"]
    rows += [f"| {k} | {v:,.1f} |" for k, v in measured.items()]
    rows += ["", f"| whole comparison ({cfg.seeds} seeds, {len(cfg.arms)} arms): stage | jobs "
             "| estimated wall |", "|---|---:|---:|"]  # fmt: skip
    for stage, row in found["stages"].items():
        rows.append(f"| {stage} | {row['jobs']} | {est.duration(row['wall'])} |")
    rows.append(f"| **total** | | {est.duration(found['total'])} |")
    return "\n".join(rows), measured


def side_by_side(args: list[str]) -> str:
    """Part 2: classifier steps/s of one process, and of two at once on the same device."""
    here = str(Path(__file__).parent)

    def run(n: int) -> list[float]:
        cmd = [sys.executable, "-c", SIDE_BY_SIDE, json.dumps(args), "1", here]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return [float(p.communicate()[0].split()[-1]) for p in procs]

    one, two = sum(run(1)), sum(run(2))
    return "\n".join([
        "| classifier processes on the device | steps/s in all | vs one |", "|---|---:|---:|",
        f"| 1 | {one:,.1f} | 1.00 |", f"| 2 side by side | {two:,.1f} | {two / one:.2f} |",
    ])  # fmt: skip


def comparison(args: list[str]) -> str:
    """Part 3: one comparison end to end in this process: wall per stage, peak memory."""
    cfg = config_of(args)
    check_inputs(cfg)
    nodes = experiment_graph(cfg)
    found = est.estimate(cfg, nodes, not_done(cfg.layout, nodes))
    cuda = torch.device(cfg.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    augment_and_compare.main([*args, "--quiet"], standalone_mode=False)
    wall = time.perf_counter() - t0
    measured = stage_seconds(cfg.layout, nodes)
    rows = ["| stage | estimated | measured |", "|---|---:|---:|"]
    for stage, row in found["stages"].items():
        rows.append(f"| {stage} | {est.duration(row['wall'])} | "
                    f"{est.duration(measured.get(stage, 0.0))} |")  # fmt: skip
    rows.append(f"| **total (wall)** | {est.duration(found['total'])} | {est.duration(wall)} |")
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "(CPU run)"
    report = next(n for n in nodes if n.name == "report")
    headline = read_marker(cfg.layout, report)["headline"]
    return "\n".join([*rows, "", f"peak GPU memory: {peak}", "", f"headline: {headline}"])


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True)
@click.option("--tiny", is_flag=True, help="CPU, smoke profile, demo data: seconds.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the tables.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def main(data: Path, tiny: bool, run_dir: Path | None, out: Path | None, extra) -> None:
    if not tiny and not torch.cuda.is_available():
        raise click.ClickException("no CUDA device: run on a GPU, or pass --tiny for the CPU")
    if not tiny and ham_missing(data):
        return
    root = run_dir or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    where = ["--device", "cpu"] if tiny else ["--device", "cuda", "--data", str(data)]
    full = [*where, "--run-dir", str(root / "full"), "--profile", "smoke" if tiny else "full"]
    run = [*where, "--run-dir", str(root), "--profile", "smoke" if tiny else "quick"]
    run += ["--seeds", "2", *extra]
    device = cpu_name() if tiny else torch.cuda.get_device_name()
    t0 = time.perf_counter()
    parts = [f"# gpu_check on {device} (torch {torch.__version__})", ""]
    parts += ["## 1. The full profile's units" + (" (smoke: --tiny)" if tiny else ""), ""]
    parts += [units(full)[0], "", "## 2. Classifiers side by side on the device", ""]
    parts += [side_by_side(full), "", "## 3. One comparison end to end", "", comparison(run)]
    parts += ["", f"gpu_check took {est.duration(time.perf_counter() - t0)}"]
    text = "\n".join(parts)
    print(text)
    if out is not None:
        out.write_text(text + "\n")


if __name__ == "__main__":
    main()
