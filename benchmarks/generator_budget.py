"""Where a CPU budget buys generator quality: held-out KID against training seconds.

    python benchmarks/generator_budget.py --data ../shared/data/HAM10000 --out runs/budget

Trains df and mel of HAM10000 under each recipe below with the same total training time as
today's quick profile (its DCGAN: df 25 kimg + mel 30 kimg at 32 px, measured in this run),
and reports, per class, the held-out KID (the class's validation reals, never trained or
filtered on) of the EMA generator during training, and of the *kept* set that gan-sample's
default filter makes from best.pt at the end, next to the real-vs-real floor. A transfer
recipe's source GAN is charged to the classes in equal shares.

Every recipe is measured in one feature space, the 32 px domain network of the run's split:
64 px samples are downsampled (antialiased) to 32 px before it, so sizes compare directly.
Writes <out>/results.json, <out>/generator_budget.png and prints a markdown table. Resumable:
a recipe whose result is on disk is not trained again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from torch import nn

from gan.metrics.features import FeatureSpace
from gan.networks import Architecture
from gan.training import TrainConfig
from pipelines.cli import resolve_precision
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.plots import plt, save_figure
from pipelines.steps.feature_space import FeatureRequest, domain_space
from pipelines.steps.gan_run import SOURCE, TrainPlan, class_run, train_gan
from pipelines.steps.sampling import SampleOptions, sample_class
from pipelines.store.records import cpu_name

CLASSES = ("df", "mel")
TODAY_KIMG = {"df": 25.0, "mel": 30.0}  # today's quick profile at 32 px, batch 32
KEEP = {"df": 280, "mel": 783}  # synthetic images the quick profile adds (target - real)


@dataclass(frozen=True)
class Recipe:
    name: str
    arch: str = "resize-sn"
    loss: str = "hinge"
    r1_gamma: float = 0.0
    size: int = 32
    source: str | None = None  # None: from scratch; else the source's sampling
    source_share: float = 0.5  # of the total budget, with a source
    freeze_d: int = 0


RECIPES = [
    Recipe("dcgan ns scratch (today)", arch="dcgan", loss="ns"),
    Recipe("resize-sn hinge scratch"),
    Recipe("resize-sn ns scratch", loss="ns"),
    Recipe("resize-sn hinge R1 scratch", r1_gamma=0.1),
    Recipe("dcgan ns transfer", arch="dcgan", loss="ns", source="balanced"),
    Recipe("resize-sn hinge transfer", source="balanced"),
    Recipe("resize-sn hinge transfer uniform", source="uniform"),
    Recipe("resize-sn hinge transfer FreezeD1", source="balanced", freeze_d=1),
    Recipe("resize-sn hinge transfer 64px", source="balanced", size=64),
    # after the first nine: the spectral norm was what slowed resize-sn, so its G alone
    Recipe("resize ns scratch", arch="resize", loss="ns"),
    Recipe("resize ns transfer", arch="resize", loss="ns", source="balanced"),
    Recipe("resize ns transfer uniform", arch="resize", loss="ns", source="uniform"),
    Recipe("resize ns transfer FreezeD1", arch="resize", loss="ns", source="balanced", freeze_d=1),
    Recipe("resize ns transfer 64px", arch="resize", loss="ns", source="balanced", size=64),
]


class _Downsampled(nn.Module):
    """uint8 images of any size -> the 32 px feature network (antialiased resize first)."""

    def __init__(self, net: nn.Module, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x.float(), size=self.size, mode="bilinear", antialias=True)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return self.net(x)


def img_per_s(arch: Architecture, batch: int, loss: str, precision: str) -> float:
    """Training speed of one recipe on random data, measured now (for its kimg budget)."""
    from gan.training import new_state, train_step

    cfg = TrainConfig(batch_size=batch, precision=precision, loss=loss)
    state = new_state(arch, cfg, torch.device("cpu"))
    imgs = torch.randint(0, 255, (256, 3, arch.size, arch.size), dtype=torch.uint8)
    imgs = imgs.contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        train_step(state, imgs, cfg)
    t0, steps = time.perf_counter(), 15
    for _ in range(steps):
        train_step(state, imgs, cfg)
    return steps * batch / (time.perf_counter() - t0)


def run_recipe(recipe, budget_s, root, data, space, precision, speeds, scale) -> dict:
    ds = data[recipe.size]
    split = load_or_make_split(ds, root / "split")
    run_dir = root / recipe.name.replace(" ", "_")
    arch = Architecture(size=recipe.size, kind=recipe.arch)
    speed = speeds.setdefault(
        (recipe.size, recipe.arch, recipe.loss),
        img_per_s(arch, 32, recipe.loss, precision),
    )
    cpu = torch.device("cpu")
    base = TrainConfig(batch_size=32, precision=precision, loss=recipe.loss)
    base = replace(base, r1_gamma=recipe.r1_gamma)
    out = {"recipe": recipe.__dict__, "img_per_s": speed, "classes": {}}
    source, source_seconds = None, 0.0
    if recipe.source:
        kimg = recipe.source_share * budget_s * speed / 1000
        src = class_run(ds, split, SOURCE, run_dir)
        cfg = replace(base, kimg=kimg, eval_kimg=kimg / 4, snapshot_kimg=kimg / 4)
        cfg = replace(cfg, sampling=recipe.source)
        plan = TrainPlan(arch, cfg, cpu, overwrite=True, space=space, eval_n=500)
        state = train_gan(src, ds, plan)
        source, source_seconds = src.out / "best.pt", state.seconds
        out["source"] = {"kimg": kimg, "seconds": state.seconds, "eval": _rows(src)}
    for c in CLASSES:
        run = class_run(ds, split, c, run_dir)
        if recipe.name.endswith("(today)"):
            kimg = TODAY_KIMG[c] * scale
        else:
            share = (1 - recipe.source_share) if recipe.source else 1.0
            kimg = share * budget_s * speed / 1000 * TODAY_KIMG[c] / sum(TODAY_KIMG.values())
        cfg = replace(base, kimg=kimg, eval_kimg=kimg / 6, snapshot_kimg=kimg / 6)
        cfg = replace(cfg, freeze_d=recipe.freeze_d if source else 0)
        plan = TrainPlan(arch, cfg, cpu, overwrite=True, space=space, eval_n=500, source=source)
        state = train_gan(run, ds, plan)
        opts = SampleOptions(n=KEEP[c], fmt="npz", precision=precision)
        summary = sample_class(run, opts, space, run_dir / "samples", cpu, {}, overwrite=True)
        out["classes"][c] = {
            "kimg": kimg,
            "seconds": state.seconds,
            "charged_seconds": state.seconds + source_seconds / len(CLASSES),
            "eval": _rows(run),
            "kept_heldout": summary["heldout_sets"]["kept"],
            "random_heldout": summary["heldout_sets"]["random"],
            "kept_train": summary["sets"]["kept"],
            "floor": summary["floor"],
        }
    return out


def _rows(run) -> list[dict]:
    return [json.loads(line) for line in (run.out / "eval.jsonl").read_text().splitlines()]


@click.command()
@click.option("--data", required=True, help="HAM10000 folder.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/budget"))
@click.option("--only", multiple=True, help="Run only recipes whose name contains this.")
@click.option("--scale", type=float, default=1.0, help="Scale today's budget (0.02: a smoke run).")
def main(data: str, out: Path, only: tuple[str, ...], scale: float) -> None:
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    precision = resolve_precision("auto", cpu)
    sets = {s: load_dataset(data, s, progress=False) for s in (32, 64)}
    split = load_or_make_split(sets[32], out / "split")
    feat = domain_space(
        sets[32], split, out / "split", cpu, FeatureRequest(precision=precision), progress=False
    )
    space = FeatureSpace("domain32", feat.dim, _Downsampled(feat.net, 32).eval())
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    speeds: dict = {}
    budget = None
    for recipe in RECIPES:
        wanted = not only or any(o in recipe.name for o in only) or recipe is RECIPES[0]
        if not wanted and recipe.name not in results:
            continue
        if recipe.name not in results:
            print(f"== {recipe.name}", flush=True)
            results[recipe.name] = run_recipe(
                recipe, budget or 0.0, out, sets, space, precision, speeds, scale
            )
            results_file.write_text(json.dumps(results, indent=1))
        if recipe.name.endswith("(today)"):
            r = results[recipe.name]["classes"]
            budget = sum(c["seconds"] for c in r.values())
    cpu = cpu_name()
    print(f"\nCPU: {cpu}, {torch.get_num_threads()} threads, {precision}; budget {budget:.0f} s")
    print(table(results))
    figure(results, out / "generator_budget.png", cpu)


def table(results: dict) -> str:
    lines = [
        "| recipe | class | kimg | train s (charged) | best held-out KID ×1e3 (EMA G) | "
        "kept held-out KID ×1e3 | random held-out KID ×1e3 | kept train KID ×1e3 | "
        "floor KID ×1e3 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        for c, m in r["classes"].items():
            best = min(e["heldout_kid"] for e in m["eval"])
            k, rnd, f = m["kept_heldout"], m["random_heldout"], m["floor"]
            lines.append(
                f"| {name} | {c} | {m['kimg']:.1f} | {m['charged_seconds']:.0f} | "
                f"{1e3 * best:.1f} | {1e3 * k['kid']:.1f} ± {1e3 * k['kid_std']:.1f} | "
                f"{1e3 * rnd['kid']:.1f} | {1e3 * m['kept_train']['kid']:.1f} | "
                f"{1e3 * f['kid']:.1f} |"
            )
    return "\n".join(lines)


def figure(results: dict, path: Path, cpu_name: str) -> None:
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(14, 4.6))
    colours = plt.get_cmap("tab20").colors
    styles = {"dcgan": "-", "resize-sn": "--", "resize": "-."}
    for ax, c in zip(axes, CLASSES):
        for i, (name, r) in enumerate(results.items()):
            m = r["classes"][c]
            offset = m["charged_seconds"] - m["seconds"]  # this class's share of the source
            xs = [offset + e["train_seconds"] for e in m["eval"]]
            ys = [1e3 * max(e["heldout_kid"], 1e-4) for e in m["eval"]]  # log axis: KID can be < 0
            ls = styles[r["recipe"]["arch"]]
            ax.plot(xs, ys, ls, color=colours[i % 20], marker="o", ms=3, label=name)
        floor = next(iter(results.values()))["classes"][c]["floor"]["kid"]
        ax.axhline(1e3 * floor, color="k", ls="--", lw=1, label="real-vs-real floor")
        ax.set(
            xlabel="training seconds charged to the class (source shared equally)",
            ylabel="held-out KID ×1e3 (EMA G, 500 samples; log)",
            yscale="log",
            title=f"HAM10000 {c}",
        )
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{cpu_name}, 2 threads", fontsize=9)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
