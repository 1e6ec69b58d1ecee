"""Is one classifier job on every thread, or several side by side on a share each, faster?

    python benchmarks/parallel_jobs.py [--steps 40]

Times training steps of the quick profile's classifier (network, batch size) on random
images: one process with all threads (the reference), then `workers` processes at once with
threads/workers threads each, and prints throughput as a ratio to the reference, for every
precision this CPU runs. This is what `augment-and-compare --workers` (local executor) relies
on: its classifier jobs run side by side, the GAN chain on all threads alone.
"""

from __future__ import annotations

import subprocess
import sys

import click
import torch

from pipelines.cli import resolve_precision
from pipelines.config.profiles import PROFILES
from pipelines.store.records import cpu_name

_STEP_TIMER = """
import sys, time, torch
from pipelines.steps.recipe import classifier_network
from pipelines.config.experiment import ExperimentConfig
from pipelines.config.profiles import PROFILES
threads, precision, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
profile = PROFILES["quick"]
cfg = ExperimentConfig(run_dir=".", profile=profile)
model = classifier_network(cfg, 7).to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
px = cfg.classifier_size  # the classifier's input, as in a run
x = torch.randint(0, 256, (profile.batch_size, 3, px, px), dtype=torch.uint8)
x = x.contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 7, (profile.batch_size,))
mixed = autocast("cpu", precision)
for i in range(steps + 5):
    if i == 5:
        t0 = time.perf_counter()
    with mixed:
        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print((time.perf_counter() - t0) / steps)
"""


def seconds_per_step(threads: int, precision: str, steps: int, processes: int) -> list[float]:
    """Start `processes` timers at once; each returns its seconds per step."""
    cmd = [sys.executable, "-c", _STEP_TIMER, str(threads), precision, str(steps)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


@click.command()
@click.option("--steps", default=40, show_default=True, help="Timed steps per process.")
@click.option("--workers", default=2, show_default=True)
def main(steps: int, workers: int) -> None:
    threads = torch.get_num_threads()
    bf16 = resolve_precision("auto", torch.device("cpu")) == "bf16"  # what a run here would use
    p = PROFILES["quick"]
    print(f"{cpu_name()}, {threads} threads; quick-profile classifier "
          f"(width {p.classifier_width}, batch {p.batch_size}, "
          f"{p.classifier_size or p.size} px)")  # fmt: skip
    print("| precision | layout | s/step per job | images/s | × one job on all threads |")
    print("| --- | --- | ---: | ---: | ---: |")
    for precision in ["fp32", "bf16"] if bf16 else ["fp32"]:
        (one,) = seconds_per_step(threads, precision, steps, 1)
        side = seconds_per_step(max(1, threads // workers), precision, steps, workers)
        ref = p.batch_size / one
        rate = sum(p.batch_size / s for s in side)
        print(f"| {precision} | 1 job × {threads} threads | {one:.4f} | {ref:.0f} | 1.00 |")
        print(
            f"| {precision} | {workers} jobs × {max(1, threads // workers)} threads | "
            f"{sum(side) / len(side):.4f} | {rate:.0f} | {rate / ref:.2f} |"
        )


if __name__ == "__main__":
    main()
