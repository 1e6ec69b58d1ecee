"""Is there a checkerboard? Spectral peaks of generated images at the upsampling periods.

    python benchmarks/checkerboard.py --data ../shared/data/HAM10000 --run-dir runs/ham64

Stride-2 transposed convolutions overlap unevenly and stamp a pattern with period 2, 4, 8 …
pixels onto their outputs (Odena et al. 2016); it shows as a spike in the image's power
spectrum at frequency size/period. For each class this prints, for real images, the trained
best.pt generator and, as a same-run reference, freshly initialised `dcgan` and `resize`
generators, the power at those frequencies divided by the power at the neighbouring
frequencies (1.0 = no spike; natural images sit near 1).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from gan.networks import Architecture, Generator, init_weights
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps.sampling import load_generator


def axis_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean power along one frequency axis of grayscale N×S×S images (both axes pooled)."""
    x = images.astype(np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2
    return (power.mean(axis=(0, 1)) + power.mean(axis=(0, 2))) / 2


def peak_ratio(spectrum: np.ndarray, k: int) -> float:
    """Power at frequency k over the mean of its two neighbours (k is at most size/2)."""
    lo, hi = spectrum[k - 1], spectrum[k + 1] if k + 1 < len(spectrum) else spectrum[k - 1]
    return float(spectrum[k] / ((lo + hi) / 2))


def gray(batch: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1], N×3×S×S -> grayscale N×S×S in [0, 255]."""
    return ((batch.float().clamp(-1, 1) + 1) * 127.5).mean(dim=1).numpy()


@torch.no_grad()
def sample(G: Generator, n: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.nz, 1, 1, generator=g)
    return gray(G.eval()(z))


@click.command()
@click.option("--data", required=True)
@click.option("--run-dir", type=click.Path(path_type=Path), required=True)
@click.option("--classes", default="df,mel")
@click.option("--n", default=512)
def main(data: str, run_dir: Path, classes: str, n: int) -> None:
    torch.manual_seed(0)
    names = classes.split(",")
    size = None
    rows = []
    for c in names:
        G, ckpt = load_generator(run_dir / "gan" / c / "best.pt", 64, torch.device("cpu"))
        arch = Architecture(**ckpt["arch"])
        size, kind = arch.size, arch.kind
        ds = load_dataset(data, size, progress=False)
        split = load_or_make_split(ds, run_dir)
        idx = split.train[ds.labels[split.train] == ds.class_index(c)]
        reals = ds.images[idx[:n]].astype(np.float64).mean(axis=3)
        fresh = {
            k: Generator(Architecture(**{**arch.as_dict(), "kind": k})) for k in ("dcgan", "resize")
        }
        for G0 in fresh.values():
            G0.apply(init_weights)
        rows += [
            (c, "real (train split)", axis_spectrum(reals)),
            (c, f"trained best.pt ({kind})", axis_spectrum(sample(G, n, 1))),
        ] + [(c, f"untrained {k}", axis_spectrum(sample(G0, n, 1))) for k, G0 in fresh.items()]
    ks = [size // 2, size // 4, size // 8]
    print(f"\n{n} images per row, {size} px; power at frequency k / mean of k±1")
    print("| class | images | " + " | ".join(f"k={k} (period {size // k} px)" for k in ks) + " |")
    print("| --- | --- |" + " ---: |" * len(ks))
    for c, what, spec in rows:
        print(f"| {c} | {what} | " + " | ".join(f"{peak_ratio(spec, k):.2f}" for k in ks) + " |")


if __name__ == "__main__":
    main()
