from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.data.load import load_dataset
from pipelines.data.splits import SPLITS, load_or_make_split, split_lesions
from pipelines.errors import UserError


def synthetic_lesions(n_lesions=300, seed=0):
    """Lesions with 1-3 images each; class sizes 60 %/30 %/10 % of lesions."""
    rng = np.random.default_rng(seed)
    lesion_ids, labels = [], []
    for i in range(n_lesions):
        label = 0 if i < 0.6 * n_lesions else 1 if i < 0.9 * n_lesions else 2
        for _ in range(rng.integers(1, 4)):
            lesion_ids.append(f"L{i:04d}")
            labels.append(label)
    return lesion_ids, np.array(labels)


def test_no_lesion_on_two_sides_and_all_assigned():
    lesion_ids, labels = synthetic_lesions()
    parts = split_lesions(lesion_ids, labels, seed=1)
    sets = [set(parts[s]) for s in SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(lesion_ids)


def test_stratified_by_class_at_lesion_level():
    lesion_ids, labels = synthetic_lesions()
    parts = split_lesions(lesion_ids, labels, seed=1)
    lesion_class = dict(zip(lesion_ids, labels.tolist()))
    for c, n in [(0, 180), (1, 90), (2, 30)]:
        got = {s: sum(lesion_class[les] == c for les in parts[s]) for s in SPLITS}
        assert got == {
            "train": n - 2 * round(0.15 * n),
            "val": round(0.15 * n),
            "test": round(0.15 * n),
        }


def test_tiny_class_still_reaches_every_part():
    parts = split_lesions(
        ["a", "b", "c"] + [f"n{i}" for i in range(40)], np.array([1] * 3 + [0] * 40)
    )
    for s in SPLITS:
        assert len({"a", "b", "c"} & set(parts[s])) == 1


def test_deterministic_for_a_seed_and_different_across_seeds():
    lesion_ids, labels = synthetic_lesions()
    assert split_lesions(lesion_ids, labels, 3) == split_lesions(lesion_ids, labels, 3)
    assert (
        split_lesions(lesion_ids, labels, 3)["test"] != split_lesions(lesion_ids, labels, 4)["test"]
    )


def test_split_json_is_written_then_reused(ham_dir: Path, tmp_path: Path):
    ds = load_dataset(ham_dir, 16, cache_dir=tmp_path / "c", progress=False)
    run = tmp_path / "run"
    first = load_or_make_split(ds, run, seed=0)
    record = json.loads((run / "split.json").read_text())
    assert record["fingerprint"] == ds.fingerprint and record["kind"] == "lesion-stratified"
    assert sum(record["counts"][s]["images"] for s in SPLITS) == 114
    # a different seed does not re-split an existing run directory
    again = load_or_make_split(ds, run, seed=99)
    for s in SPLITS:
        assert np.array_equal(first[s], again[s])
    lesions = np.array(ds.lesion_ids)
    assert not set(lesions[first.train]) & set(lesions[first.test])


def test_split_of_other_data_is_refused(ham_dir: Path, imagefolder_dir: Path, tmp_path: Path):
    run = tmp_path / "run"
    load_or_make_split(load_dataset(ham_dir, 16, cache_dir=tmp_path / "c", progress=False), run)
    other = load_dataset(imagefolder_dir, 16, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(UserError, match="belongs to other data.*another --run-dir"):
        load_or_make_split(other, run)


def test_official_split_is_used_as_given(npz_file: Path, tmp_path: Path):
    ds = load_dataset(npz_file, 28, progress=False)
    split = load_or_make_split(ds, tmp_path / "run")
    assert len(split.train) == 20 and len(split.val) == 6 and len(split.test) == 8
    assert all(ds.official_split[i] == "test" for i in split.test)


def test_an_image_id_under_two_lesions_is_refused_not_split_across_parts(ham_dir, tmp_path):
    ds = load_dataset(ham_dir, 16, cache_dir=tmp_path / "c", progress=False)
    ds.image_ids[1] = ds.image_ids[0]  # one image, two lesions: HAM_df0000 and HAM_df0001
    ds.lesion_ids[1] = "HAM_df0001"
    with pytest.raises(UserError, match="image ISIC_0000000 is listed under 2 lesions"):
        load_or_make_split(ds, tmp_path / "run")
    assert not (tmp_path / "run" / "split.json").exists()


def test_a_same_size_pixel_edit_is_refused_by_the_run_directory(tmp_path: Path):
    from conftest import write_image

    root = tmp_path / "bmp"
    for i in range(8):
        write_image(root / ("a" if i % 2 else "b") / f"{i}.bmp", (90, 90, 90), fmt="BMP")
    ds = load_dataset(root, 16, cache_dir=tmp_path / "c", progress=False)
    load_or_make_split(ds, tmp_path / "run")
    edited = root / "a" / "1.bmp"
    size = edited.stat().st_size
    write_image(edited, (200, 10, 10), fmt="BMP")  # same dimensions: same file size
    assert edited.stat().st_size == size
    st = edited.stat()
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a coarse clock: still newer
    again = load_dataset(root, 16, cache_dir=tmp_path / "c", progress=False)
    assert again.fingerprint == ds.fingerprint  # the fingerprint is the listing and sizes...
    with pytest.raises(UserError, match="images of .* changed since .* was split"):
        load_or_make_split(again, tmp_path / "run")  # ...the content hash sees the pixels
