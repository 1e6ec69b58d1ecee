"""An arm's training set: real images, resampled ones and synthetic ones, each with its origin."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pipelines.config.arms import ARM_SPECS
from pipelines.data.dataset import Dataset
from pipelines.data.demo import make_demo
from pipelines.data.splits import Split
from pipelines.errors import UserError


@dataclass
class Arm:
    """An arm's training set, with where each image came from (what an export records)."""

    name: str
    images: np.ndarray  # uint8 N×S×S×3
    labels: np.ndarray
    rows: np.ndarray  # per image: its row in the Dataset (a real training image), else -1
    synthetic_index: np.ndarray  # per image: its index in its class's sample set, else -1


def targets_for(ds: Dataset, split: Split, classes: list[str], target: str) -> dict[str, int]:
    """Target training count per rare class. auto: max(2 × real, median class count)."""
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    out = {}
    for c in classes:
        real = int(counts[ds.class_index(c)])
        if target == "auto":
            out[c] = max(2 * real, int(np.median(counts)))
        else:
            try:
                out[c] = int(target)
            except ValueError:
                raise UserError(f"--target {target!r} is neither a number nor 'auto'") from None
            if out[c] < real:
                raise UserError(
                    f"--target {out[c]} is smaller than the {real} real training "
                    f"images of {c!r}; choose a target >= {real} or auto"
                )
    return out


def companion_counts(ds: Dataset, split: Split, targets: dict[str, int]) -> dict[str, int]:
    """Synthetic images each class that is not rare gets in an all-classes arm: as large a
    share of its training images as the rare classes' added images are of theirs (pooled),
    i.e. real * s / (1 - s). Why: where only the rare classes hold synthetic images, "looks
    generated" is a perfect cue for "rare"; at one share in every class it carries little
    (no information where the rare classes' own shares are equal)."""
    counts = np.bincount(ds.labels[split.train], minlength=len(ds.class_names))
    real = {c: int(counts[ds.class_index(c)]) for c in targets}
    share = sum(t - real[c] for c, t in targets.items()) / max(sum(targets.values()), 1)
    if share <= 0:
        return {}
    others = [c for c in ds.class_names if c not in targets]
    return {c: round(int(counts[ds.class_index(c)]) * share / (1 - share)) for c in others}


def build_arm(
    ds: Dataset,
    split: Split,
    targets: dict[str, int],
    synthetic: dict[str, dict[str, np.ndarray]],
    arm: str,
    seed: int,
    synthetic_share: float = 0.5,
) -> Arm:
    """Training set of one arm; synthetic[set][class] holds uint8 images of a sample set.
    Each image's origin is kept beside it, so that an export writes exactly this set (and
    its repeats) without mixing it a second way."""
    spec = ARM_SPECS[arm]
    train = np.asarray(split.train)
    base_x, base_y = ds.images[train], ds.labels[train]
    rng = np.random.default_rng(seed)
    xs, ys, rows, syn = [base_x], [base_y], [train], [np.full(len(train), -1)]
    for c, target in targets.items():
        label = ds.class_index(c)
        extra = target - int((base_y == label).sum())
        n_syn = spec.synthetic_count(extra, synthetic_share)
        n_over = extra - n_syn if spec.oversample else 0
        if extra <= 0 or n_syn + n_over == 0:
            continue
        if n_over:
            pool = np.flatnonzero(base_y == label)
            picked = rng.choice(pool, n_over, replace=True)
            xs.append(base_x[picked])
            rows.append(train[picked])
            syn.append(np.full(n_over, -1))
        if n_syn and spec.held_back:
            pool, pool_rows = oracle_pool(ds, split, label)
            picked = oracle_draw(len(pool), n_syn, rng)
            xs.append(pool[picked])
            rows.append(pool_rows[picked])
            syn.append(np.full(n_syn, -1))
        elif n_syn:
            xs.append(_synthetic_images(synthetic[spec.synthetic], c, n_syn))
            rows.append(np.full(n_syn, -1))
            syn.append(np.arange(n_syn))
        ys.append(np.full(n_syn + n_over, label, dtype=base_y.dtype))
    companions = companion_counts(ds, split, targets) if spec.all_classes else {}
    for c, n in companions.items():
        imgs = _synthetic_images(synthetic[spec.synthetic], c, n)
        xs.append(imgs)
        ys.append(np.full(n, ds.class_index(c), dtype=base_y.dtype))
        rows.append(np.full(n, -1))
        syn.append(np.arange(n))
    return Arm(arm, *(np.concatenate(part) for part in (xs, ys, rows, syn)))


def _synthetic_images(per_class: dict[str, np.ndarray], cls: str, n: int) -> np.ndarray:
    """The first n images of a class's sample set, or a one-line error if it has fewer."""
    imgs = per_class[cls][:n]
    if len(imgs) < n:
        raise UserError(
            f"only {len(imgs)} synthetic {cls!r} images for {n} needed; rerun with a larger "
            "--pool-factor"
        )
    return imgs


ORACLE_DEMO_SEED = 1  # the demo painter's seed for fresh lesions (the data are seed 0)


def oracle_pool(ds: Dataset, split: Split, label: int) -> tuple[np.ndarray, np.ndarray]:
    """What a perfect generator of the class gives, and each image's dataset row: real images
    of held-back training lesions, or, on the synthetic demo (whose painter is the true
    distribution), freshly painted lesions of the class (rows -1: in no split)."""
    if ds.synthetic:
        images, labels = _fresh_demo(ds.images.shape[1])
        mine = images[labels == label]
        return mine, np.full(len(mine), -1)
    rows = split.held_back[ds.labels[split.held_back] == label]
    if len(rows) == 0:
        raise UserError(
            f"no held-back images of {ds.class_names[label]!r} for the oracle arm; pass "
            "--oracle-share (or run a scarcity study) to hold training lesions back"
        )
    return ds.images[rows], rows


@functools.lru_cache(maxsize=2)
def _fresh_demo(size: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels, _, _ = make_demo(size, seed=ORACLE_DEMO_SEED)
    return images, labels


def oracle_draw(pool_size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices into an oracle pool: each distinct image once (in random order) before any
    is drawn again, as a generator's fresh samples would be."""
    first = rng.permutation(pool_size)[:n]
    return np.concatenate([first, rng.choice(pool_size, n - len(first), replace=True)])
