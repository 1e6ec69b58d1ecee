"""Lesion-level train/validation/test splits, made once per run directory and reused.

HAM10000 has 10,015 images of 7,470 lesions: an image-level split puts photos of one lesion on
both sides and inflates every number downstream. Lesions are assigned whole, stratified by
class, and the assignment is written to split.json so that every later command on the run
directory (GAN training, sampling, classifier) sees the same images and a GAN never trains on a
validation or test image.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gan.conventions import atomic_write_text
from pipelines.data.dataset import Dataset
from pipelines.errors import UserError
from pipelines.store.records import read_split_record

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Image indices of each part, into the Dataset they were made for. held_back: images of
    training lesions that a scarcity level or --oracle-share cut from training; they reach no
    job but the oracle arm, a perfect generator's output (new lesions of the true
    distribution)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_back: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __getitem__(self, name: str) -> np.ndarray:
        return getattr(self, name)


def split_lesions(
    lesion_ids: list[str],
    labels: np.ndarray,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
) -> dict[str, list[str]]:
    """Assign every lesion to one part, per class, in the given fractions of lesions.

    A lesion's class is its most frequent image label. Within each class the lesions are
    shuffled with `seed` and cut by rounded cumulative fractions, so each part gets its share of
    every class (a class with >= 3 lesions has at least one in each part).
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise UserError(f"split fractions {fractions} must be >= 0 and add up to 1")
    by_class = _lesions_by_class(lesion_ids, labels)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {s: [] for s in SPLITS}
    for label in sorted(by_class):
        lesions = by_class[label]
        order = rng.permutation(len(lesions))
        n = len(lesions)
        n_val = round(n * fractions[1])
        n_test = round(n * fractions[2])
        if n >= 3:  # every part sees every class that has enough lesions
            n_val = max(n_val, int(fractions[1] > 0))
            n_test = max(n_test, int(fractions[2] > 0))
        n_train = n - n_val - n_test
        cut = {"train": order[:n_train], "val": order[n_train : n_train + n_val]}
        cut["test"] = order[n_train + n_val :]
        for s in SPLITS:
            parts[s] += [lesions[i] for i in cut[s]]
    return {s: sorted(v) for s, v in parts.items()}


def _lesions_by_class(lesion_ids: list[str], labels: np.ndarray) -> dict[int, list[str]]:
    """Lesions (sorted) per class; a lesion's class is its most frequent image label."""
    votes: dict[str, Counter] = {}
    for lesion, label in zip(lesion_ids, labels.tolist()):
        votes.setdefault(lesion, Counter())[label] += 1
    by_class: dict[int, list[str]] = {}
    for lesion in sorted(votes):
        by_class.setdefault(votes[lesion].most_common(1)[0][0], []).append(lesion)
    return by_class


def kfold_lesions(
    lesion_ids: list[str],
    labels: np.ndarray,
    k: int,
    seed: int = 0,
    val_fraction: float = 0.15,
) -> list[dict[str, list[str]]]:
    """K lesion-disjoint folds, stratified by class: fold f tests on its own lesions (so every
    lesion is tested exactly once over the K folds), validates on `val_fraction` of each
    class's lesions taken from the other folds, and trains on the remainder.

    Within a class the lesions are shuffled with `seed` and dealt round-robin to the folds;
    each fold's validation lesions are a different slice of the others' (rotating with f).
    """
    if k < 2:
        raise UserError(f"--folds {k}: K-fold cross-validation needs K >= 2 (1 = one split)")
    rng = np.random.default_rng(seed)
    folds: list[dict[str, list[str]]] = [{s: [] for s in SPLITS} for _ in range(k)]
    for _, lesions in sorted(_lesions_by_class(lesion_ids, labels).items()):
        shuffled = [lesions[i] for i in rng.permutation(len(lesions))]
        for f in range(k):
            test = shuffled[f::k]
            rest = [les for i, les in enumerate(shuffled) if i % k != f]
            n_val = min(round(len(lesions) * val_fraction), len(rest) - 1)
            if len(rest) >= 2:
                n_val = max(n_val, 1)
            start = (f * n_val) % len(rest) if rest else 0
            val = (rest[start:] + rest[:start])[:n_val]
            val_set = set(val)
            folds[f]["test"] += test
            folds[f]["val"] += val
            folds[f]["train"] += [les for les in rest if les not in val_set]
    return [{s: sorted(v) for s, v in fold.items()} for fold in folds]


def keep_rare_lesions(
    lesions: dict[str, list[str]],
    lesion_ids: list[str],
    labels: np.ndarray,
    keep: dict[int, int],
    seed: int = 0,
    class_names: list[str] | None = None,
) -> dict[str, list[str]]:
    """The parts with the training lesions of each class in `keep` cut to its count (the
    scarcity study); validation and test stay whole, and the dropped lesions go nowhere.

    Each class's training lesions are shuffled once, by `seed` and the class alone, and the
    first n kept: the draws are nested (the 10 are among the 20), whatever n is asked."""
    by_class = _lesions_by_class(lesion_ids, labels)
    train = set(lesions["train"])
    dropped: set[str] = set()
    for label, n in sorted(keep.items()):
        mine = [les for les in by_class.get(label, []) if les in train]
        if n > len(mine):
            name = repr(class_names[label]) if class_names else f"class {label}"
            raise UserError(
                f"--rare-n {n}: {name} has only {len(mine)} training lesions; "
                f"choose at most {len(mine)}"
            )
        order = np.random.default_rng([seed, label, 17]).permutation(len(mine))
        dropped |= {mine[i] for i in order[n:]}
    return {**lesions, "train": [les for les in lesions["train"] if les not in dropped]}


def load_or_make_split(
    ds: Dataset,
    run_dir: Path,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    fold: tuple[int, int] | None = None,
    keep: dict[str, int] | None = None,
    write: bool = True,
) -> Split:
    """The run directory's split for `ds`: read split.json, or make it and (with write) store
    it; write=False makes the same split in memory, for a dry or refused run that must leave
    nothing behind. With
    fold=(f, K), the run directory is fold f's and its split is fold f of kfold_lesions; with
    keep={class: n}, only n training lesions of each of those classes stay (keep_rare_lesions).

    A split.json made for other data is an error, never silently replaced: the GANs and
    classifiers in that run directory were trained on its images. So is one image id under two
    lesions (_refuse_image_in_two_lesions): it would be split across parts, a test-set leak.
    """
    _refuse_image_in_two_lesions(ds)
    path = Path(run_dir) / "split.json"
    if path.is_file():
        saved = read_split_record(path)
        _check_saved(saved, ds, run_dir, fold, keep)
        return _indices(ds, saved["lesions"])
    lesions, kind = _make_lesions(ds, seed, fractions, fold)
    if keep:
        labels = {ds.class_index(c): n for c, n in keep.items()}
        lesions = keep_rare_lesions(lesions, ds.lesion_ids, ds.labels, labels, seed, ds.class_names)
        kind += ", rare classes cut to " + ", ".join(f"{n} {c} lesions" for c, n in keep.items())
    split = _indices(ds, lesions)
    record = {
        **ds.record(),  # skipped_images: left out by --skip-bad-images, id -> why
        "kind": kind,
        "fold": list(fold) if fold else None,
        "keep": keep,
        "seed": seed,
        "fractions": list(fractions),
        "counts": _counts(ds, split, lesions),
        "lesions": lesions,
    }
    if write:
        atomic_write_text(path, json.dumps(record, indent=1))
    return split


def _refuse_image_in_two_lesions(ds: Dataset) -> None:
    """Lesions are assigned whole, so an image id listed under two lesions could sit on two
    sides of the split. The loaders refuse such rows by line; this is the guard for any
    Dataset made otherwise."""
    lesions: dict[str, set[str]] = {}
    for image, lesion in zip(ds.image_ids, ds.lesion_ids):
        lesions.setdefault(image, set()).add(lesion)
    for image, mine in lesions.items():
        if len(mine) > 1:
            raise UserError(
                f"{ds.source}: image {image} is listed under {len(mine)} lesions "
                f"({', '.join(sorted(mine))}); give each image one lesion, or the split could "
                "put it in training and test at once"
            )


def _check_saved(saved: dict, ds: Dataset, run_dir: Path, fold, keep) -> None:
    """The saved split must be of this data: same fingerprint (listing and file sizes) and,
    where both sides have one, the same content hash (the files' bytes; split.json files
    written before it existed have none and are not checked)."""
    if saved.get("fingerprint") != ds.fingerprint:
        raise UserError(
            f"{run_dir} belongs to other data ({saved.get('source')}, fingerprint "
            f"{saved.get('fingerprint')}; this is {ds.fingerprint}); use another --run-dir"
        )
    then = saved.get("content_hash")
    if then and ds.content_hash and then != ds.content_hash:
        raise UserError(
            f"the images of {ds.source} changed since {run_dir} was split (same files and "
            f"sizes, other bytes: content hash {then} then, {ds.content_hash} now); its "
            "models saw the old pixels: restore the images, or use another --run-dir"
        )
    if fold is not None and saved.get("fold") != list(fold):
        raise UserError(
            f"{run_dir} holds the split of fold {saved.get('fold')}, not {list(fold)}; "
            "use another --run-dir"
        )
    if (saved.get("keep") or None) != (keep or None):
        raise UserError(
            f"{run_dir} holds a split with rare lesions kept {saved.get('keep')}, not {keep}; "
            "use another --run-dir"
        )


def _make_lesions(ds: Dataset, seed: int, fractions, fold) -> tuple[dict, str]:
    if fold is not None:
        if ds.official_split is not None:
            raise UserError(
                f"{ds.source} comes with an official split; --folds needs data without one "
                "(pass --folds 1)"
            )
        return kfold_lesions(ds.lesion_ids, ds.labels, fold[1], seed)[fold[0]], (
            f"k-fold, fold {fold[0]} of {fold[1]}"
        )
    if ds.official_split is not None:
        lesions = {
            s: sorted({les for les, p in zip(ds.lesion_ids, ds.official_split) if p == s})
            for s in SPLITS
        }
        return lesions, "official"
    return split_lesions(ds.lesion_ids, ds.labels, seed, fractions), "lesion-stratified"


def _counts(ds: Dataset, split: Split, lesions: dict[str, list[str]]) -> dict:
    return {
        s: {
            "lesions": len(lesions[s]),
            "images": int(len(split[s])),
            "per_class": _per_class(ds, split[s]),
        }
        for s in SPLITS
    }


def _per_class(ds: Dataset, idx: np.ndarray) -> dict[str, int]:
    counts = np.bincount(ds.labels[idx], minlength=len(ds.class_names))
    return dict(zip(ds.class_names, counts.tolist()))


def _indices(ds: Dataset, lesions: dict[str, list[str]]) -> Split:
    """Every part's images; an image whose lesion is in no part was held back (keep)."""
    part_of = {lesion: s for s in SPLITS for lesion in lesions[s]}
    parts = np.array([part_of.get(lesion, "") for lesion in ds.lesion_ids])
    return Split(
        **{s: np.flatnonzero(parts == s) for s in SPLITS}, held_back=np.flatnonzero(parts == "")
    )


def keep_for_share(ds: Dataset, seed: int, classes: list[str], share: float) -> dict[str, int]:
    """--oracle-share: the training lesions each rare class keeps when `share` of them is held
    back (at least one kept and one held back), counted on the uncut split of this seed."""
    lesions, _ = _make_lesions(ds, seed, (0.70, 0.15, 0.15), None)
    train, by_class = set(lesions["train"]), _lesions_by_class(ds.lesion_ids, ds.labels)
    keep = {}
    for c in classes:
        n = sum(les in train for les in by_class.get(ds.class_index(c), []))
        held = min(max(round(share * n), 1), n - 1)
        if held < 1:
            raise UserError(
                f"--oracle-share {share:g}: {c!r} has {n} training lesion(s), too few to hold "
                "any back and keep one; drop --oracle-share or the class"
            )
        keep[c] = n - held
    return keep
