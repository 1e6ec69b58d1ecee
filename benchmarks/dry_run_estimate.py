"""Does `augment-and-compare --dry-run`'s estimate hold? Its figures against real runs.

    python benchmarks/dry_run_estimate.py [--data HAM10000] [--cases demo,ham] [--out DIR]

For each case, in a new run directory: the estimate as --dry-run computes it (in a fresh
process, so nothing is timed twice), then the run itself with the same options, timed from
outside, and each stage's wall time from its job markers. Prints one table per case:
estimated, measured, and their ratio, per stage and in total. The cases: `demo` is README's
main command (the quick profile on the built-in demo data, its default seeds and arms); `ham`
a HAM10000 quick run with one seed and the arms baseline, oversample and gan (skipped, with a
word, where there is no HAM10000). Run it alone on the machine: it times things.
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

from pipelines.cli.augment_and_compare import augment_and_compare, experiment_config
from pipelines.graph.estimate import duration, estimate
from pipelines.graph.jobs import experiment_graph
from pipelines.graph.preflight import check_inputs
from pipelines.graph.scheduler import not_done, stage_seconds
from pipelines.store.records import cpu_name

HAM_OPTIONS = ["--profile", "quick", "--seeds", "1", "--arms", "baseline,oversample,gan"]


def config_of(args: list[str]):
    """The ExperimentConfig the command makes of these options (the CLI's own parsing)."""
    ctx = augment_and_compare.make_context("augment-and-compare", list(args))
    return experiment_config(ctx.params)


def estimate_of(args: list[str]) -> dict:
    """What --dry-run estimates for these options (run in a fresh process)."""
    cfg = config_of(args)
    check_inputs(cfg)
    nodes = experiment_graph(cfg)
    found = estimate(cfg, nodes, not_done(cfg.layout, nodes))
    return {"stages": found["stages"], "total": found["total"]}


def measure(args: list[str]) -> dict:
    """The estimate, then the run: its wall time and its stages' wall times."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--estimate-only", json.dumps(args)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    estimate_seconds = time.perf_counter() - t0
    estimated = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"estimated {duration(estimated['total'])}; running it", flush=True)
    t0 = time.perf_counter()
    command = Path(sys.executable).with_name("augment-and-compare")  # this environment's
    subprocess.run([str(command), *args, "--quiet"], check=True)
    wall = time.perf_counter() - t0
    cfg = config_of(args)
    stages = stage_seconds(cfg.layout, experiment_graph(cfg))
    return {"estimated": estimated, "wall": wall, "stages": stages, "dry_run": estimate_seconds}


def table(name: str, found: dict) -> str:
    rows = [f"### {name}", "", "| stage | jobs | estimated | measured | measured / estimated |"]
    rows.append("|---|---:|---:|---:|---:|")
    for stage, est in found["estimated"]["stages"].items():
        got = found["stages"].get(stage, 0.0)
        ratio = got / est["wall"] if est["wall"] > 0 else float("nan")
        rows.append(
            f"| {stage} | {est['jobs']} | {duration(est['wall'])} | {duration(got)} | {ratio:.2f} |"
        )
    est, got = found["estimated"]["total"], found["wall"]
    rows.append(f"| **total (wall)** | | {duration(est)} | {duration(got)} | {got / est:.2f} |")
    rows.append(f"\nthe dry run itself (timing included) took {duration(found['dry_run'])}")
    return "\n".join(rows)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True)
@click.option("--cases", default="demo,ham", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run dirs here.")
@click.option("--estimate-only", default=None, hidden=True)
def main(data: Path, cases: str, out: Path | None, estimate_only: str | None) -> None:
    if estimate_only is not None:
        print(json.dumps(estimate_of(json.loads(estimate_only))))
        return
    root = out or Path(tempfile.mkdtemp(prefix="dry_run_estimate_"))
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; run dirs under {root}\n")
    for case in cases.split(","):
        if case == "ham" and ham_missing(data):
            continue
        args = ["--run-dir", str(root / case)]
        args += [] if case == "demo" else ["--data", str(data), *HAM_OPTIONS]
        print(table(f"{case}: augment-and-compare {' '.join(args)}", measure(args)), flush=True)
        print()


if __name__ == "__main__":
    main()
