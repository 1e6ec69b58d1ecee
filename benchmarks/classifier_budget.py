"""What buys the baseline classifier most validation balanced accuracy per CPU second?

    python benchmarks/classifier_budget.py --data ../shared/data/HAM10000 --out runs/clf_budget

Trains the `baseline` arm (real HAM10000 training split, no rebalancing) under each recipe
below, under --seeds seeds (2), and prints its best **validation** balanced accuracy (the metric the
classifier is selected by) against its training seconds, as a ratio to the reference recipe
measured in the same run. The test split is not touched: the recipe is chosen here, on
validation, and tested only by augment-and-compare. Resumable (results.json).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click
import torch

from classifier.networks import SmallResNet
from classifier.training import train_classifier
from gan.conventions import to_nchw
from pipelines.cli import resolve_precision
from pipelines.config.profiles import PROFILES
from pipelines.data.dataset import resize_images
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps.recipe import classifier_config
from pipelines.store.records import cpu_name


@dataclass(frozen=True)
class Recipe:
    name: str
    size: int = 32
    width: int = 16
    steps: int = 600
    lr: float = 3e-3
    precision: str = "auto"
    label_smoothing: float = 0.1
    weight_decay: float = 0.05
    batch_size: int = 128
    tta: bool = False
    seed: int = 0
    stem_stride: int = 1
    input_size: int | None = None  # resize the `size` px images to this (as augment-and-compare
    # does when the classifier is smaller than the GANs); None: train at `size`


# fmt: off
_CANDIDATES = [
    Recipe("quick profile (reference)", steps=1200),
    Recipe("8-view TTA", steps=1200, tta=True),
    Recipe("batch 64, 2400 steps", steps=2400, batch_size=64),
    Recipe("batch 64, 2400 steps, TTA", steps=2400, batch_size=64, tta=True),
    Recipe("batch 64, 1800 steps", steps=1800, batch_size=64),
    Recipe("batch 64, 1800 steps, TTA", steps=1800, batch_size=64, tta=True),
    Recipe("width 32, stride-2 stem, b64, 2400 steps, TTA", width=32, stem_stride=2, steps=2400,
           batch_size=64, tta=True),
    Recipe("width 24, stride-2 stem, b64, 2400 steps, TTA", width=24, stem_stride=2, steps=2400,
           batch_size=64, tta=True),
    Recipe("batch 64, 2400 steps, TTA, no label smoothing", steps=2400, batch_size=64, tta=True,
           label_smoothing=0.0),
    # the current quick profile against the levers the issue names: steps, image size, precision
    Recipe("b64, 2400 steps, TTA, fp32", steps=2400, batch_size=64, tta=True, precision="fp32"),
    Recipe("b64, 4800 steps, TTA", steps=4800, batch_size=64, tta=True),
    Recipe("64 px, stride-2 stem, b64, 2400 steps, TTA", size=64, stem_stride=2, steps=2400,
           batch_size=64, tta=True),
    Recipe("24 px, b64, 3800 steps, TTA", size=24, steps=3800, batch_size=64, tta=True),
    Recipe("b64, 2400 steps, TTA, no weight decay or label smoothing", steps=2400, batch_size=64,
           tta=True, weight_decay=0.0, label_smoothing=0.0),
    # smaller inputs, more steps in the same time (step times 36 / 30 / 24 / 20 / 15 ms at
    # 32 / 28 / 24 / 20 / 16 px): the 32 px images resized, as the pipeline would
    Recipe("28 px from 32, b64, 2900 steps, TTA", input_size=28, steps=2900, batch_size=64,
           tta=True),
    Recipe("24 px from 32, b64, 3700 steps, TTA", input_size=24, steps=3700, batch_size=64,
           tta=True),
    Recipe("20 px from 32, b64, 4400 steps, TTA", input_size=20, steps=4400, batch_size=64,
           tta=True),
    Recipe("16 px from 32, b64, 5900 steps, TTA", input_size=16, steps=5900, batch_size=64,
           tta=True),
]
# fmt: on


def recipes(seeds: int) -> list[Recipe]:
    """Every candidate under each seed: one seed's validation balanced accuracy moves by a
    point or two, more than some recipes differ."""
    return [
        replace(r, name=f"{r.name} seed {s}", seed=s) for s in range(seeds) for r in _CANDIDATES
    ]


def run_recipe(recipe: Recipe, data: str, out: Path) -> dict:
    ds = load_dataset(data, recipe.size, progress=False)
    split = load_or_make_split(ds, out / f"split{recipe.size}")
    precision = resolve_precision(recipe.precision, torch.device("cpu"))
    cfg = replace(
        classifier_config(PROFILES["quick"], len(split.train), 0, precision),
        steps=recipe.steps,
        lr=recipe.lr,
        label_smoothing=recipe.label_smoothing,
        weight_decay=recipe.weight_decay,
        batch_size=recipe.batch_size,
        tta=recipe.tta,
        seed=recipe.seed,
        eval_every=max(recipe.steps // 5, 10),
    )
    torch.manual_seed(recipe.seed)
    k = len(ds.class_names)
    images = ds.images if recipe.input_size is None else resize_images(ds.images, recipe.input_size)
    t0 = time.perf_counter()
    trained = train_classifier(
        SmallResNet(k, recipe.width, stem_stride=recipe.stem_stride),
        (to_nchw(images[split.train]), torch.from_numpy(ds.labels[split.train])),
        (to_nchw(images[split.val]), torch.from_numpy(ds.labels[split.val])),
        k,
        cfg,
        progress=False,
    )
    return {
        "recipe": recipe.__dict__,
        "precision": precision,
        "seconds": time.perf_counter() - t0,
        "val_balanced_accuracy": trained.best_val_balanced_accuracy,
        "best_step": trained.best_step,
    }


@click.command()
@click.option("--data", required=True, help="HAM10000 folder.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/clf_budget"))
@click.option("--only", multiple=True, help="Run only recipes whose name contains this.")
@click.option("--seeds", default=2, show_default=True, help="Seeds per recipe.")
def main(data: str, out: Path, only: tuple[str, ...], seeds: int) -> None:
    torch.set_num_threads(torch.get_num_threads())
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    out.mkdir(parents=True, exist_ok=True)
    todo = recipes(seeds)
    for recipe in todo:
        wanted = not only or any(o in recipe.name for o in only) or recipe is todo[0]
        if wanted and recipe.name not in results:
            print(f"== {recipe.name}", flush=True)
            results[recipe.name] = run_recipe(recipe, data, out)
            results_file.write_text(json.dumps(results, indent=1))
    print(f"\n{cpu_name()}, {torch.get_num_threads()} threads; HAM10000 baseline arm")
    print("| recipe | precision | seconds | × reference time | best val balanced accuracy per seed "
          "| mean |")  # fmt: skip
    print("| --- | --- | ---: | ---: | --- | ---: |")
    reference = _CANDIDATES[0].name
    for base in dict.fromkeys(r["recipe"]["name"].rsplit(" seed ", 1)[0] for r in results.values()):
        runs = {k: r for k, r in results.items() if k.rsplit(" seed ", 1)[0] == base}
        ratios = [  # each seed against the reference of the same seed, same run
            r["seconds"] / results[k.replace(base, reference)]["seconds"]
            for k, r in runs.items()
            if k.replace(base, reference) in results
        ]
        accs = [r["val_balanced_accuracy"] for r in runs.values()]
        print(
            f"| {base} | {next(iter(runs.values()))['precision']} | "
            f"{sum(r['seconds'] for r in runs.values()) / len(runs):.0f} | "
            f"{sum(ratios) / max(len(ratios), 1):.2f} | {' / '.join(f'{a:.3f}' for a in accs)} | "
            f"{sum(accs) / len(accs):.3f} |"
        )


if __name__ == "__main__":
    main()
