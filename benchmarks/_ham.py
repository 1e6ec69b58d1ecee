"""What the HAM10000 benchmarks share: where the data is, and the data, split and domain feature
network they measure in (a helper module, not a benchmark: it has no main)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from pipelines.data.dataset import Dataset
from pipelines.data.load import load_dataset
from pipelines.data.splits import Split, load_or_make_split
from pipelines.steps.feature_space import domain_space

DEFAULT_DATA = Path(
    os.environ.get(
        "RAREGAN_HAM10000", Path(__file__).resolve().parents[1] / "../shared/data/HAM10000"
    )
)


def ham_missing(data: Path) -> bool:
    """True (and says so) where there is no HAM10000 at `data`: the benchmark is skipped."""
    if (data / "HAM10000_metadata.csv").is_file():
        return False
    print(f"skipped: no HAM10000 at {data} (pass --data or set RAREGAN_HAM10000)")
    return True


def ham_space(data: Path, run_dir: Path, size: int) -> tuple[Dataset, Split, object, float]:
    """HAM10000 at `size` px, the split stored in `run_dir` (with any lesions it held back; a
    new one if there is none) and the domain feature network trained on it (cached there), and
    the seconds that took."""
    t0 = time.perf_counter()
    ds = load_dataset(data, size, progress=False)
    saved = run_dir / "split.json"
    keep = json.loads(saved.read_text()).get("keep") if saved.is_file() else None
    split = load_or_make_split(ds, run_dir, keep=keep)
    space = domain_space(ds, split, run_dir, torch.device("cpu"), progress=False)
    return ds, split, space, time.perf_counter() - t0
