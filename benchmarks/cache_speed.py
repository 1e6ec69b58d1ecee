"""Decode-cache benchmark: build the 64 px cache of a dataset from scratch, then reload it.

    python benchmarks/cache_speed.py [--data ../shared/data/HAM10000] [--size 64]

Targets (HAM10000, 10,015 JPEGs, this 2-core machine): build <= 60 s, reload <= 2 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from pipelines.data.load import load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data/HAM10000"


@click.command()
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=DEFAULT_DATA)
@click.option("--size", type=int, default=64)
@click.option("--workers", type=int, default=None)
def main(data: Path, size: int, workers: int | None) -> None:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        ds = load_dataset(data, size, cache_dir=cache, workers=workers, progress=False)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_dataset(data, size, cache_dir=cache, progress=False)
        reload = time.perf_counter() - t0
    n = len(ds.labels)
    print(f"data: {data} ({ds.format}, {n} images) at {size} px")
    print("| stage | seconds | images/s | target |")
    print("| --- | ---: | ---: | --- |")
    print(f"| build cache (decode + crop + resize) | {build:.1f} | {n / build:.0f} | <= 60 s |")
    print(f"| reload from cache | {reload:.2f} | {n / reload:.0f} | <= 2 s |")
    print(f"reload is {build / reload:.0f}x faster than a build")


if __name__ == "__main__":
    main()
