"""Which fine-tune recipe buys the best rare-class generator at a profile's budget: chosen on
one half of each class's validation lesions, judged on the other.

    python benchmarks/generator_recipes.py --data ../shared/data/HAM10000 --out runs/recipes

Everything but the recipe is augment-and-compare's own (the plan of a --profile run on this
data: split, source GAN, fine-tune budgets, feature network, filter, targets, detector).
Per recipe and rare class: a fine-tune from the source (trained once per source sampling),
its best.pt chosen on the selection half (gan_run.selection_and_judging), then sampled and
filtered to the class's target as the sampling job does; reported on the judging half: the
kept set's KID against the real-vs-real floor and its detectability (a small CNN telling
judging reals from fresh samples), beside the selection KID that chose best.pt (which
flatters it) and the seconds per stage. Resumable: a recipe whose row is in
<out>/results.json is not trained again. A recipe is chosen on the selection half too (the
selection KID of its best.pt), never on the judging columns, which then say how good the
chosen one is on images that chose nothing. Not yet here: the share
of fresh samples a baseline classifier calls the class (the signature of the report's own
table), and candidates that need new code (a class-conditional source, plateau stopping).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import torch

from pipelines.config.experiment import ExperimentConfig
from pipelines.config.profiles import PROFILES
from pipelines.steps.detect import Detector
from pipelines.steps.gan_run import SOURCE, TrainPlan, class_run, train_gan
from pipelines.steps.plan import feature_space, plan_for, write_splits
from pipelines.steps.samples import detect_steps
from pipelines.steps.sampling import SampleOptions, sample_class
from pipelines.store.checkpoints import best_eval
from pipelines.store.records import cpu_name


@dataclass(frozen=True)
class Recipe:
    """A fine-tune recipe: changes to the profile's TrainConfig, its length and its source."""

    name: str
    changes: dict = field(default_factory=dict)  # TrainConfig fields
    length: float = 1.0  # times the profile's fine-tune kimg
    source: str = "balanced"  # the source GAN's sampling


RECIPES = [
    Recipe("profile (today)"),
    Recipe("hinge loss", {"loss": "hinge"}),
    Recipe("R1 0.1", {"r1_gamma": 0.1}),
    Recipe("FreezeD 0", {"freeze_d": 0}),
    Recipe("FreezeD 2", {"freeze_d": 2}),
    Recipe("EMA 2 kimg", {"ema_kimg": 2.0}),
    Recipe("batch 64", {"batch_size": 64}),
    Recipe("2x longer", length=2.0),
    Recipe("uniform source", source="uniform"),
]


def recipe_row(recipe: Recipe, plan, out: Path, sources: dict, space) -> dict:
    """Train, sample and judge one recipe for every rare class of the plan."""
    ds, split, cpu = plan.dataset, plan.split, torch.device("cpu")
    source = sources.get(recipe.source) or _source(plan, recipe.source, out, space, sources)
    row = {"recipe": dataclasses.asdict(recipe), "classes": {}}
    for c in plan.classes:
        base = plan.gans[c].train
        cfg = dataclasses.replace(base, kimg=base.kimg * recipe.length, **recipe.changes)
        cfg = dataclasses.replace(cfg, eval_kimg=cfg.kimg / 8, snapshot_kimg=cfg.kimg / 4)
        run = class_run(ds, split, c, out / _folder(recipe.name))
        t0 = time.perf_counter()
        how = TrainPlan(plan.gans[c].arch, cfg, cpu, overwrite=True, space=space,
                        eval_n=plan.gans[c].eval_n, source=source)  # fmt: skip
        train_gan(run, ds, how)
        t_train = time.perf_counter() - t0
        need = plan.targets[c] - plan.real_counts[c]
        opts = SampleOptions(n=max(need, 2), fmt="npz", precision=plan.cfg.precision)
        detector = Detector(plan.classifier_inputs, detect_steps(plan))
        summary = sample_class(
            run, opts, space, run.out.parent.parent / "samples", cpu, ds.record(), True, detector
        )
        best = best_eval(run.folder) or {}
        row["classes"][c] = {
            "kimg": cfg.kimg,
            "best_kimg": best.get("kimg"),
            "selection_kid": best.get("heldout_kid"),
            "judging": summary.get("heldout_sets", {}).get("kept"),
            "floor": summary.get("floor"),
            "detectability": summary.get("detectability"),
            "n_selection": len(run.heldout),
            "n_judging": summary["n_heldout"],
            "seconds": {"train": t_train, "sample": summary["seconds"]["total"]},
        }
    return row


def _source(plan, sampling: str, out: Path, space, sources: dict) -> Path:
    """The source GAN of one sampling, trained once (its best.pt, chosen on the selection
    halves of every class), for every recipe that fine-tunes from it."""
    spec = plan.gans[SOURCE]
    cfg = dataclasses.replace(spec.train, sampling=sampling)
    run = class_run(plan.dataset, plan.split, SOURCE, out / f"source_{sampling}")
    if not run.folder.best.is_file():
        how = TrainPlan(spec.arch, cfg, torch.device("cpu"), overwrite=True, space=space,
                        eval_n=spec.eval_n)  # fmt: skip
        train_gan(run, plan.dataset, how)
    sources[sampling] = run.folder.best
    return run.folder.best


def _folder(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def table(results: dict) -> str:
    lines = [
        "| recipe | class | kimg (best) | selection KID ×1e3 | judging: kept KID ×1e3 | floor "
        "| detectability [95 % CI] | judging reals | train s | sample s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        for c, m in r["classes"].items():
            kid = m["judging"]
            d = m["detectability"] or {}
            kept = f"{1e3 * kid['kid']:.1f} ± {1e3 * kid['kid_std']:.1f}" if kid else "–"
            floor = f"{1e3 * m['floor']['kid']:.1f}" if m["floor"] else "–"
            det = (f"{d['accuracy']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"
                   if "accuracy" in d else "–")  # fmt: skip
            sel = f"{1e3 * m['selection_kid']:.1f}" if m["selection_kid"] is not None else "–"
            lines.append(
                f"| {name} | {c} | {m['kimg']:.1f} ({m['best_kimg'] or 0:.1f}) | {sel} | {kept} "
                f"| {floor} | {det} | {m['n_judging']} | {m['seconds']['train']:.0f} | "
                f"{m['seconds']['sample']:.0f} |"
            )
    return "\n".join(lines)


@click.command()
@click.option("--data", required=True, help="HAM10000 folder (or demo, for a smoke run).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/recipes"))
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="quick")
@click.option("--classes", default="df,mel")
@click.option("--only", multiple=True, help="Run only recipes whose name contains this.")
def main(data: str, out: Path, profile: str, classes: str, only: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    cfg = ExperimentConfig(
        run_dir=str(out.resolve()),
        profile=PROFILES[profile],
        data=data,
        classes=tuple(classes.split(",")),
        threads=torch.get_num_threads(),
    )
    write_splits(cfg)
    plan = plan_for(cfg)
    space = feature_space(plan)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    sources: dict[str, Path] = {}
    for recipe in RECIPES:
        if recipe.name in results or (only and not any(o in recipe.name for o in only)):
            continue
        print(f"== {recipe.name}", flush=True)
        results[recipe.name] = recipe_row(recipe, plan, out, sources, space)
        results_file.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nCPU: {cpu_name()}, {torch.get_num_threads()} threads, {cfg.precision}; "
          f"profile {profile}, data {data}")  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
