"""Training-step throughput: the classic DCGAN step vs raregan's default step, same networks.

    python benchmarks/gan_step_speed.py [--size 64] [--batch 64] [--steps 20]
    python benchmarks/gan_step_speed.py --loss-check 10   # also: do bf16 losses behave like fp32?

(a) reference, written as pytorch/examples' dcgan: fp32, eager, NCHW, a DataLoader of float
    tensors, BCE-with-logits, no augmentation, no EMA.
(b) raregan's default step (gan.training.train_step): uint8 data on the device, dihedral flips,
    DiffAugment, EMA, channels_last, autocast at the default precision (--precision auto).
Both are timed in the same process, alternating, after warm-up; the ratio is b/a.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan.conventions import to_nchw
from gan.networks import Architecture, build
from gan.training import TrainConfig, new_state, train_step
from pipelines.cli import resolve_precision
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split

HAM10000 = Path(__file__).resolve().parents[1] / "../shared/data/HAM10000"


def classic_steps(arch: Architecture, reals: torch.Tensor, batch: int):
    """A generator of timed-able steps in the style of pytorch/examples/dcgan/main.py."""
    torch.manual_seed(0)
    G, D = build(arch)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()
    loader = DataLoader(
        TensorDataset(reals.float() / 127.5 - 1), batch_size=batch, shuffle=True, drop_last=True
    )
    while True:
        for (x,) in loader:
            D.zero_grad()
            ones, zeros = torch.ones(batch), torch.zeros(batch)
            err_real = loss(D(x), ones)
            err_real.backward()
            fake = G(torch.randn(batch, arch.nz, 1, 1))
            err_fake = loss(D(fake.detach()), zeros)
            err_fake.backward()
            opt_d.step()
            G.zero_grad()
            loss(D(fake), ones).backward()
            opt_g.step()
            yield


def raregan_steps(arch: Architecture, reals: torch.Tensor, cfg: TrainConfig):
    state = new_state(arch, cfg, torch.device("cpu"))
    images = reals.contiguous(memory_format=torch.channels_last)
    while True:
        train_step(state, images, cfg)
        yield


def timed(steps, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        next(steps)
    return time.perf_counter() - t0


def compare_losses(arch: Architecture, reals: torch.Tensor, kimg: float, batch: int) -> None:
    """Same seed, same data, fp32 vs bf16: compare the loss statistics over the last half."""
    print(f"\nloss behaviour, {kimg} kimg on {len(reals)} images, seed 0 (mean over 2nd half)")
    print("| precision | loss_D | loss_G | D(x) | D(G(z)) | max abs weight diff vs fp32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ref = None
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(precision=precision, batch_size=batch)
        state = new_state(arch, cfg, torch.device("cpu"))
        images = reals.contiguous(memory_format=torch.channels_last)
        rows = []
        while state.nimg < kimg * 1000:
            rows.append({k: v.item() for k, v in train_step(state, images, cfg).items()})
        half = rows[len(rows) // 2 :]
        means = {k: statistics.fmean(r[k] for r in half) for k in rows[0]}
        weights = torch.cat([p.detach().flatten() for p in state.G.parameters()])
        diff = "-" if ref is None else f"{(weights - ref).abs().max():.3g}"
        ref = weights if ref is None else ref
        print(
            f"| {precision} | {means['loss_D']:.3f} | {means['loss_G']:.3f} | "
            f"{means['D_real']:.3f} | {means['D_fake']:.3f} | {diff} |"
        )


@click.command()
@click.option("--size", type=int, default=64)
@click.option("--batch", type=int, default=64)
@click.option("--steps", type=int, default=20, help="Timed steps per round (3 rounds).")
@click.option(
    "--loss-check",
    type=float,
    default=0.0,
    help="Also train N kimg in fp32 and bf16 on the demo df class and compare the losses.",
)
def main(size: int, batch: int, steps: int, loss_check: float) -> None:
    torch.manual_seed(0)
    arch = Architecture(size=size)
    reals = torch.randint(0, 256, (512, 3, size, size), dtype=torch.uint8)
    cfg = TrainConfig(batch_size=batch, precision=resolve_precision("auto", torch.device("cpu")))
    variants = {
        "(a) classic: fp32, eager, DataLoader of floats": classic_steps(arch, reals, batch),
        f"(b) raregan default ({cfg.precision}, DiffAugment, EMA)": raregan_steps(arch, reals, cfg),
        "(c) raregan, fp32": raregan_steps(arch, reals, TrainConfig(batch_size=batch)),
    }
    for s in variants.values():
        timed(s, 3)  # warm-up: allocator, oneDNN kernel selection
    times = {k: [] for k in variants}
    for _ in range(3):
        for k, s in variants.items():
            times[k].append(timed(s, steps))
    ref = statistics.median(times[next(iter(variants))])
    print(
        f"DCGAN {size} px, batch {batch}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, median of 3 rounds x {steps} steps"
    )
    print("| step | img/s | ratio vs (a) |")
    print("| --- | ---: | ---: |")
    for k, t in times.items():
        med = statistics.median(t)
        print(f"| {k} | {steps * batch / med:.0f} | {ref / med:.2f}x |")
    if loss_check:
        ds = load_dataset(HAM10000 if HAM10000.is_dir() else "demo", size, progress=False)
        split = load_or_make_split(ds, Path(tempfile.mkdtemp()))
        train_df = split.train[ds.labels[split.train] == ds.class_index("df")]
        print(f"\ndata: {ds.source}, class df, {len(train_df)} training images")
        df = to_nchw(ds.images[train_df])
        compare_losses(arch, df, loss_check, batch)


if __name__ == "__main__":
    main()
