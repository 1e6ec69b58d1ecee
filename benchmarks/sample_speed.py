"""gan-sample benchmark: time to keep n filtered samples, and which filter score works best.

    python benchmarks/sample_speed.py --run-dir runs/ham64 --class df [--n 2000]

Times the whole `gan-sample` path for one class (pool of 2n, features, filter, metrics, PNG
files, manifest); target: 2000 kept 64 px samples in <= 15 s on the 2-core reference CPU.
Then compares the filter scores on one shared pool: FID/KID of the kept n vs a random n, on
the class's held-out validation reals (the honest verdict: the filter never saw them) and on
the training reals the filter selects with (a diagnostic: partly circular).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import torch

from gan.conventions import to_nchw
from gan.filtering import SCORES, select
from gan.metrics.features import extract_features
from gan.metrics.fid import fid
from gan.metrics.kid import kid
from gan.metrics.precision_recall import precision_recall
from gan.training import sample
from pipelines.cli import load_run_data, resolve_precision
from pipelines.steps.feature_space import FeatureRequest, load_feature_space
from pipelines.steps.gan_run import class_run, judging_images
from pipelines.steps.sampling import SampleOptions, checkpoint_path, load_generator, sample_class


@click.command()
@click.option("--run-dir", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--class", "cls", required=True)
@click.option("--n", type=int, default=2000)
@click.option("--repeats", type=int, default=2)
def main(run_dir: Path, cls: str, n: int, repeats: int) -> None:
    cpu = torch.device("cpu")
    precision = resolve_precision("auto", cpu)
    ds, split = load_run_data(run_dir, None, None, False, True, [cls])
    space = load_feature_space(FeatureRequest("domain", precision), ds, split, run_dir, cpu, False)
    run = class_run(ds, split, cls, run_dir)
    data = {"source": ds.source, "fingerprint": ds.fingerprint}
    times = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            s = sample_class(
                run, SampleOptions(n=n, precision=precision, seed=r), space, Path(out), cpu, data
            )
            times.append(time.perf_counter() - t0)
    size = ds.images.shape[1]
    print(
        f"gan-sample, class {cls}, {size} px, n={n} kept of a pool of {s['pool']} "
        f"({precision}, {torch.get_num_threads()} threads)"
    )
    print("| run | seconds | kept/s | target |")
    print("| --- | ---: | ---: | --- |")
    for r, t in enumerate(times):
        print(f"| {r + 1} | {t:.1f} | {s['kept'] / t:.0f} | <= 15 s |")
    print(f"(of which sampling + features: {s['seconds']['sample_and_features']:.1f} s)")

    # filter scores on one shared pool ------------------------------------------------
    G, _ = load_generator(checkpoint_path(run, "best"), size, cpu)
    z = torch.randn(2 * n, G.nz, generator=torch.Generator().manual_seed(123))
    pool = extract_features(space, sample(G, z, precision=precision))
    real = extract_features(space, to_nchw(run.images))
    held = extract_features(space, to_nchw(judging_images(run)))
    rand = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1))[:n]
    print(
        f"\nfilter scores, {space.name}-{space.dim}d, real n={len(real)} train / {len(held)} "
        f"held-out, pool {len(pool)}, keep {n}"
    )
    print(
        "| selection | held-out KID ×1e3 | held-out FID | train KID ×1e3 | train FID | "
        "precision | recall | kept |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = {"random n (control)": rand, "whole pool": torch.arange(len(pool))}
    for score in SCORES:
        rows[f"filter: {score}"] = select(pool, real, n, score).kept
    for name, idx in rows.items():
        p, rc = precision_recall(held, pool[idx])
        print(
            f"| {name} | {1e3 * kid(held, pool[idx])[0]:.1f} | {fid(held, pool[idx]):.2f} | "
            f"{1e3 * kid(real, pool[idx])[0]:.1f} | {fid(real, pool[idx]):.2f} | "
            f"{p:.3f} | {rc:.3f} | {len(idx)} |"
        )
    print(
        f"| real floor (train vs held-out) | {1e3 * kid(held, real)[0]:.1f} | "
        f"{fid(held, real):.2f} | | | | | {len(real)} |"
    )


if __name__ == "__main__":
    main()
