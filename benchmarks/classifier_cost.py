"""What one training step of a --classifier network costs here, against the default one.

    python benchmarks/classifier_cost.py [--threads 1] [--batch 64]

Builds each network exactly as a run does (pipelines.steps.recipe.classifier_network: the zoo's
wrapper, uint8 input, channels-last, the precision a run here would use) and times optimiser
steps of a batch of random images at its size, after warm-up. Prints seconds per step, images
per second, the ratio to the quick profile's `small-resnet` at 24 px (the reference, timed in
the same run), and what a 3,700-step classifier job (the quick profile's budget on HAM10000)
would take at that rate. Slow networks get fewer timed steps: the figure is a mean over at
least 2 steps after 1 warm-up.
"""

from __future__ import annotations

import time

import click
import torch

from gan.conventions import autocast
from pipelines.cli import resolve_precision
from pipelines.config.experiment import ClassifierChoice, ExperimentConfig
from pipelines.config.profiles import PROFILES
from pipelines.steps.recipe import classifier_network
from pipelines.store.records import cpu_name

NETWORKS = [  # (family, name, px): the default first (the reference)
    ("builtin", "small-resnet", 24),
    ("builtin", "compact", 24),
    ("torchvision", "mobilenet_v3_large", 64),
    ("torchvision", "resnet18", 64),
    ("torchvision", "efficientnet_b0", 64),
    ("torchvision", "densenet121", 64),
    ("torchvision", "resnet50", 64),
    ("torchvision", "resnet18", 224),
]
JOB_STEPS = 3700  # the quick profile's classifier steps on HAM10000


def seconds_per_step(family: str, name: str, px: int, batch: int, precision: str,
                     budget_s: float) -> float:  # fmt: skip
    """Mean seconds of one optimiser step after one warm-up, over as many steps as fit in
    budget_s (at least 2, at most 10)."""
    profile = PROFILES["quick"]
    cfg = ExperimentConfig(run_dir=".", profile=profile,
                           classifier=ClassifierChoice(family, name, px))  # fmt: skip
    torch.manual_seed(0)
    model = classifier_network(cfg, 7).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randint(0, 256, (batch, 3, px, px), dtype=torch.uint8)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,))

    def step() -> float:
        t0 = time.perf_counter()
        with autocast("cpu", precision):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    first = step()  # warm-up
    n = int(min(10, max(2, budget_s // max(first, 1e-3))))
    return sum(step() for _ in range(n)) / n


@click.command()
@click.option("--threads", default=1, show_default=True, help="Torch threads (a job's share).")
@click.option("--batch", default=64, show_default=True, help="Images per step.")
@click.option("--budget", default=10.0, show_default=True, help="Seconds of timing per network.")
def main(threads: int, batch: int, budget: float) -> None:
    torch.set_num_threads(threads)
    precision = resolve_precision("auto", torch.device("cpu"))
    print(f"{cpu_name()}, {threads} torch thread(s), {precision}, batch {batch}")
    print("| --classifier | px | s/step | images/s | x small-resnet 24 px | 3,700-step job |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ref = None
    for family, name, px in NETWORKS:
        s = seconds_per_step(family, name, px, batch, precision, budget)
        ref = ref or s
        hours = JOB_STEPS * s / 3600
        job = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
        print(f"| {name} | {px} | {s:.3f} | {batch / s:.0f} | {s / ref:.1f} | {job} |")


if __name__ == "__main__":
    main()
