from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CLASS_COLOURS,
    TINY,
    ham_rows,
    invoke_cli,
    one_line_error,
    write_csv,
    write_image,
)
from PIL import Image

import pipelines.data.decode as decode
from pipelines.cli import augment_and_compare, gan_train
from pipelines.data.load import load_dataset
from pipelines.errors import UserError


def load(path, size=16, tmp=None, **kw):
    return load_dataset(path, size, cache_dir=kw.pop("cache_dir", tmp), progress=False, **kw)


def test_ham10000_layout(ham_dir: Path, tmp_path: Path):
    ds = load(ham_dir, 16, tmp_path / "cache")
    assert ds.format == "ham10000"
    assert ds.images.shape == (114, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.class_names == ["df", "mel", "nv"]
    assert ds.class_counts() == {"df": 24, "mel": 30, "nv": 60}
    assert len(set(ds.lesion_ids)) == 57  # two images per lesion
    # every image was decoded at its own index: its colour matches its class
    for label, name in enumerate(ds.class_names):
        mean = ds.images[ds.labels == label].reshape(-1, 3).mean(0)
        assert np.abs(mean - CLASS_COLOURS[name]).max() < 12


def test_isic_layout_maps_to_ham_names_and_uses_lesion_groupings(isic_dir: Path, tmp_path: Path):
    ds = load(isic_dir, 8, tmp_path / "cache")
    assert ds.format == "isic"
    assert ds.class_names == ["df", "mel", "nv", "vasc"]
    assert [ds.class_names[i] for i in ds.labels] == ["df", "df", "mel", "nv", "nv", "vasc"]
    assert ds.lesion_ids == ["L0", "L0", "L1", "L1", "L2", "L2"]


def test_isic_row_with_two_diagnoses_is_refused(isic_dir: Path, tmp_path: Path):
    csv_path = isic_dir / "Task3_GroundTruth" / "GroundTruth.csv"
    text = csv_path.read_text().splitlines()
    text[1] = text[1].replace("0.0", "1.0", 1)
    csv_path.write_text("\n".join(text) + "\n")
    with pytest.raises(UserError, match="has 2 diagnoses"):
        load(isic_dir, 8, tmp_path / "cache")


def test_medmnist_npz_keeps_official_split_and_names(npz_file: Path):
    ds = load(npz_file, 32)
    assert ds.format == "medmnist"
    assert ds.images.shape == (34, 32, 32, 3)
    assert ds.class_names == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert ds.official_split.count("train") == 20 and ds.official_split.count("test") == 8
    assert ds.lesion_ids == ds.image_ids


def test_medmnist_grayscale_and_generic_names(tmp_path: Path):
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"{s}_images"] = np.full((3, 28, 28), 77, np.uint8)
        arrays[f"{s}_labels"] = np.array([[0], [1], [1]])
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)
    ds = load(tmp_path / "pneumoniamnist.npz", 28)
    assert ds.images.shape == (9, 28, 28, 3) and (ds.images == 77).all()
    assert ds.class_names == ["class_0", "class_1"]


def test_imagefolder_layout(imagefolder_dir: Path, tmp_path: Path):
    ds = load(imagefolder_dir, 16, tmp_path / "cache")
    assert ds.format == "imagefolder"
    assert ds.class_counts() == {"cats": 4, "dogs": 3}
    assert ds.image_ids[0] == "cats/cats0" and ds.lesion_ids == ds.image_ids
    # 32x48 portrait image is centre-cropped to a square, not squashed
    assert ds.images.shape == (7, 16, 16, 3)


def test_two_files_of_one_stem_are_two_images_in_an_imagefolder(
    imagefolder_dir: Path, tmp_path: Path
):
    """x.png beside x.jpg: both load, under ids that keep their extensions (one was dropped)."""
    write_image(imagefolder_dir / "cats" / "cats0.jpg", (10, 200, 10))
    ds = load(imagefolder_dir, 16, tmp_path / "cache")
    assert ds.class_counts() == {"cats": 5, "dogs": 3}
    assert sorted(i for i in ds.image_ids if i.startswith("cats/cats0")) == [
        "cats/cats0.jpg", "cats/cats0.png"]  # fmt: skip
    assert "cats/cats1" in ds.image_ids  # ids without twins are as before
    assert len(set(ds.image_ids)) == len(ds.image_ids)


def test_two_files_of_one_image_id_in_a_ham10000_folder_are_refused(ham_dir: Path, tmp_path: Path):
    first = next((ham_dir / "HAM10000_images_part_1").glob("*.jpg"))
    write_image(ham_dir / "HAM10000_images_part_2" / first.name, (0, 0, 0), (200, 150))
    with pytest.raises(UserError, match=f"image id {first.stem} has two files"):
        load(ham_dir, 16, tmp_path / "cache")


def test_demo_is_default_and_flagged_synthetic():
    ds = load(None, 32)
    assert ds.format == "demo" and ds.synthetic and ds.source == "demo"
    assert "df" in ds.class_names and ds.class_counts()["nv"] > ds.class_counts()["df"]
    assert load("demo", 32).fingerprint == ds.fingerprint == load(None, 16).fingerprint


def test_format_can_be_forced(imagefolder_dir: Path, tmp_path: Path):
    with pytest.raises(UserError, match="no HAM10000_metadata.csv"):
        load(imagefolder_dir, 16, tmp_path / "cache", fmt="ham10000")


def test_cache_hit_decodes_nothing(ham_dir: Path, tmp_path: Path, monkeypatch):
    first = load(ham_dir, 16, tmp_path / "cache")
    monkeypatch.setattr(decode, "get_context", lambda *a: pytest.fail("decoded again"))
    again = load(ham_dir, 16, tmp_path / "cache")
    assert np.array_equal(first.images, again.images)
    assert first.fingerprint == again.fingerprint


def test_cache_is_per_size_and_rebuilt_when_an_image_changes(ham_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = load(ham_dir, 16, cache)
    assert load(ham_dir, 8, cache).images.shape[1] == 8
    target = next(ham_dir.rglob(f"{first.image_ids[0]}.jpg"))
    write_image(target, (0, 250, 0), (200, 150))
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = load(ham_dir, 16, cache)
    assert np.abs(changed.images[0].reshape(-1, 3).mean(0) - (0, 250, 0)).max() < 12
    assert np.array_equal(changed.images[1:], first.images[1:])
    assert len(list(cache.glob("*.npz"))) == 3


# ---------------------------------------------------------------- bad input


def test_missing_path():
    with pytest.raises(UserError, match="does not exist"):
        load("/no/such/folder", 16)


def test_unknown_layout_lists_layouts(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no known layout.*HAM10000.*ISIC.*MedMNIST.*ImageFolder"):
        load(tmp_path / "empty", 16)


def test_csv_without_needed_columns(tmp_path: Path):
    write_csv(tmp_path / "HAM10000_metadata.csv", [{"image_id": "a", "dx": "nv"}])
    with pytest.raises(UserError, match="lacks the column.*lesion_id"):
        load(tmp_path, 16, tmp_path / "cache")


def test_missing_and_unreadable_images_are_reported_then_skippable(ham_dir: Path, tmp_path: Path):
    images = sorted(ham_dir.rglob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    with pytest.raises(UserError) as err:
        load(ham_dir, 16, tmp_path / "cache")
    msg = str(err.value.message)
    assert "2 of 114 images" in msg and "--skip-bad-images" in msg
    assert f"{images[0].stem} (missing)" in msg and f"{images[1].stem} (unreadable)" in msg
    ds = load(ham_dir, 16, tmp_path / "cache", skip_bad_images=True)
    assert len(ds.labels) == 112 and sorted(ds.skipped) == sorted([images[0].stem, images[1].stem])
    assert images[0].stem not in ds.image_ids


def test_npz_without_medmnist_arrays(tmp_path: Path):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4, 3)))
    with pytest.raises(UserError, match="not a MedMNIST file"):
        load(tmp_path / "x.npz", 16)


def test_unknown_class_lists_classes(ham_dir: Path, tmp_path: Path):
    ds = load(ham_dir, 16, tmp_path / "cache")
    with pytest.raises(UserError, match="class 'bcc' is not in .*classes are df, mel, nv"):
        ds.class_index("bcc")


def test_resize_images_uses_the_loaders_filter_and_keeps_flat_colour():
    from pipelines.data.dataset import resize_images

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    assert resize_images(images, 32) is images  # nothing to do
    small = resize_images(images, 24)
    assert small.shape == (5, 24, 24, 3) and small.dtype == np.uint8
    lanczos = Image.fromarray(images[2]).resize((24, 24), Image.Resampling.LANCZOS, reducing_gap=3)
    assert np.array_equal(small[2], np.asarray(lanczos))
    flat = np.full((2, 32, 32, 3), (200, 120, 90), dtype=np.uint8)
    assert (resize_images(flat, 16) == np.array([200, 120, 90], dtype=np.uint8)).all()


# ---------------------------------------------------------------- no silent bad data


def test_16_bit_pngs_decode_to_their_grey_level_not_white(tmp_path: Path):
    root = tmp_path / "folder"
    levels = {"dark": 0x2000, "mid": 0x8000}  # 8-bit: 32 and 128
    for cls, level in levels.items():
        (root / cls).mkdir(parents=True)
        for i in range(2):
            pixels = np.full((30, 40), level + 37 * i, dtype=np.uint16)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
            assert Image.open(root / cls / f"{i}.png").mode == "I;16"
    ds = load(root, 16, tmp_path / "cache")
    for label, cls in enumerate(ds.class_names):
        mean = ds.images[ds.labels == label].mean()
        assert abs(mean - levels[cls] / 257) < 1.5, (cls, mean)


def test_float_images_are_refused_by_name(tmp_path: Path, imagefolder_dir: Path):
    Image.fromarray(np.full((30, 40), 0.5, dtype=np.float32)).save(
        imagefolder_dir / "cats" / "f.tif"
    )
    with pytest.raises(UserError) as err:
        load(imagefolder_dir, 16, tmp_path / "cache")
    assert "cats/f (unreadable: f.tif has floating-point pixels (mode F)" in err.value.message


def test_a_decompression_bomb_is_a_named_bad_image_and_skippable(
    tmp_path: Path, imagefolder_dir: Path, monkeypatch
):
    write_image(imagefolder_dir / "dogs" / "huge.png", (0, 200, 0), (200, 150), fmt="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 30,000 px > 2 x 5,000; others 1,536
    with pytest.raises(UserError) as err:  # not a DecompressionBombError traceback
        load(imagefolder_dir, 16, tmp_path / "cache")
    assert "dogs/huge (unreadable: huge.png is over Pillow's 10000-pixel safety limit)" in (
        err.value.message
    )
    ds = load(imagefolder_dir, 16, tmp_path / "cache", skip_bad_images=True)
    assert list(ds.skipped) == ["dogs/huge"] and len(ds.labels) == 7


def test_skip_bad_images_prints_a_count_and_records_the_images(tmp_path: Path, ham_dir: Path):
    images = sorted(ham_dir.rglob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    run_dir, cache = tmp_path / "run", ["--cache-dir", str(tmp_path / "c")]
    args = ["--class", "nv", "--data", str(ham_dir), "--run-dir", str(run_dir), "--kimg", "0.02"]
    result = invoke_cli(gan_train, [*args, *TINY, "--skip-bad-images", *cache])
    assert "--skip-bad-images left out 2 of 114 images" in result.output
    want = {images[0].stem: "missing", images[1].stem: "unreadable"}
    assert json.loads((run_dir / "split.json").read_text())["skipped_images"] == want
    record = json.loads((run_dir / "gan" / "nv" / "run.json").read_text())["runs"][-1]
    assert record["data"]["skipped_images"] == want
    dry = invoke_cli(
        augment_and_compare,
        ["--data", str(ham_dir), "--run-dir", str(run_dir), "--skip-bad-images", "--dry-run",
         *cache, "--classes", "df", "--profile", "smoke"],
    )  # fmt: skip
    assert "--skip-bad-images left out 2 of 114 images" in dry.output


@pytest.mark.parametrize("bad", ["melanoma", "MEL", "", "xyz"])
def test_ham10000_labels_outside_the_known_classes_are_refused_by_name(tmp_path: Path, bad):
    root = tmp_path / "ham"
    rows = ham_rows({"df": 12, "nv": 12})
    rows[5]["dx"] = bad
    write_csv(root / "HAM10000_metadata.csv", rows)
    for r in rows:
        write_image(root / f"{r['image_id']}.jpg", (100, 100, 100), (40, 30))
    args = ["--class", "df", "--data", str(root), "--run-dir", str(tmp_path / "run"), "--kimg",
            "0.02", "--cache-dir", str(tmp_path / "c"), *TINY]  # fmt: skip
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert f"dx value(s) {bad!r} (line 7)" in msg
    assert "akiec, bcc, bkl, df, mel, nv, vasc" in msg and "--allow-new-classes" in msg
    ds = load(root, 16, tmp_path / "cache", allow_new_classes=True)
    assert bad in ds.class_names and ds.class_counts()[bad] == 1


def test_a_truncated_medmnist_npz_is_a_one_line_error(npz_file: Path, tmp_path: Path):
    npz_file.write_bytes(npz_file.read_bytes()[:3000])
    args = ["--class", "df", "--data", str(npz_file), "--run-dir", str(tmp_path / "r"), *TINY]
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert f"{npz_file} is not a readable .npz" in msg and "download it again" in msg


def test_an_isic_csv_with_a_non_numeric_cell_is_a_one_line_error(isic_dir: Path, tmp_path):
    csv_path = isic_dir / "Task3_GroundTruth" / "GroundTruth.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].replace("1.0", "yes", 1)
    csv_path.write_text("\n".join(lines) + "\n")
    args = ["--class", "df", "--data", str(isic_dir), "--run-dir", str(tmp_path / "r"), *TINY]
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert "line 4, column" in msg and "'yes' is not a number" in msg


# ---------------------------------------------------------------- messy metadata and files


def write_ham(root: Path, rows: list[dict]) -> Path:
    """A HAM10000 layout of `rows` (as ham_rows makes them), one JPEG per distinct image id."""
    write_csv(root / "HAM10000_metadata.csv", rows)
    for r in rows:
        write_image(root / f"{r['image_id']}.jpg", CLASS_COLOURS.get(r["dx"], (99, 99, 99)))
    return root


@pytest.mark.parametrize(
    "change, conflict",
    [({"lesion_id": "HAM_nv0003"}, "HAM_df0000/df"), ({"dx": "nv"}, "HAM_df0000/df")],
)
def test_an_image_id_listed_twice_with_other_lesion_or_label_is_refused_by_line(
    tmp_path: Path, change, conflict
):
    rows = ham_rows({"df": 6, "nv": 6})
    rows.append({**rows[0], **change})  # line 14: ISIC_0000000 again, other lesion or dx
    root = write_ham(tmp_path / "ham", rows)
    with pytest.raises(UserError) as err:
        load(root, 16, tmp_path / "cache")
    msg = err.value.message
    assert "'ISIC_0000000' on line 2 (" + conflict + ") and line 14" in msg
    assert "keep one row per image" in msg and "\n" not in msg


def test_exact_duplicate_ham_rows_are_merged_with_a_note(tmp_path: Path, capsys):
    rows = ham_rows({"df": 6, "nv": 6})
    root = write_ham(tmp_path / "ham", [*rows, rows[3], rows[3]])
    ds = load(root, 16, tmp_path / "cache")
    assert len(ds.image_ids) == len(set(ds.image_ids)) == 12
    assert "2 exact duplicate row(s) merged" in capsys.readouterr().err


def test_isic_duplicate_image_with_conflicting_labels_is_refused(isic_dir: Path, tmp_path):
    csv_path = isic_dir / "Task3_GroundTruth" / "GroundTruth.csv"
    lines = csv_path.read_text().splitlines()
    lines.append("ISIC_0000000,1.0,0.0,0.0,0.0,0.0,0.0,0.0")  # line 8: as MEL, line 2 says DF
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"'ISIC_0000000' on line 2 \(df\) and line 8 \(mel\)"):
        load(isic_dir, 8, tmp_path / "cache")
    lines[-1] = lines[1]  # an exact duplicate is merged
    csv_path.write_text("\n".join(lines) + "\n")
    assert load(isic_dir, 8, tmp_path / "cache").image_ids == [f"ISIC_{i:07d}" for i in range(6)]


def test_isic_lesion_groupings_with_an_image_in_two_lesions_are_refused(isic_dir: Path, tmp_path):
    groups = isic_dir / "LesionGroupings.csv"
    groups.write_text(groups.read_text() + "ISIC_0000000,L2\n")
    with pytest.raises(UserError, match=r"'ISIC_0000000' on line 2 \(L0\) and line 8 \(L2\)"):
        load(isic_dir, 8, tmp_path / "cache")


def test_blank_lesion_ids_become_one_lesion_per_image_with_a_note(tmp_path: Path, capsys):
    from pipelines.data.splits import load_or_make_split

    rows = ham_rows({"df": 6, "nv": 6})
    rows[2]["lesion_id"] = rows[3]["lesion_id"] = " "
    ds = load(write_ham(tmp_path / "ham", rows), 16, tmp_path / "cache")
    assert ds.lesion_ids[2:4] == [rows[2]["image_id"], rows[3]["image_id"]]
    assert ds.lesion_ids[:2] == ["HAM_df0000"] * 2
    assert "2 of 12 rows have a blank lesion_id (first: line 4)" in capsys.readouterr().err
    for r in rows:  # all blank: one lesion per image, and a split with every part filled
        r["lesion_id"] = ""
    ds = load(write_ham(tmp_path / "all", rows), 16, tmp_path / "cache")
    assert ds.lesion_ids == ds.image_ids
    split = load_or_make_split(ds, tmp_path / "run")
    assert all(len(split[s]) for s in ("train", "val", "test"))


def test_medmnist_float_images_are_scaled_by_their_range_never_truncated(tmp_path: Path):
    def npz(images):
        arrays = {f"{s}_images": images for s in ("train", "val", "test")}
        arrays.update({f"{s}_labels": np.array([[0], [1]]) for s in ("train", "val", "test")})
        np.savez(tmp_path / "x.npz", **arrays)
        return tmp_path / "x.npz"

    unit = np.full((2, 8, 8, 3), 0.5, np.float32)
    assert (load(npz(unit), 8).images == 128).all()  # 0.5 x 255 = 127.5, rounded
    assert (load(npz(unit * 200 + 0.4), 8).images == 100).all()  # 100.4 in 0..255, rounded
    ramp = np.linspace(0, 1, unit.size, dtype=np.float32).reshape(unit.shape)
    for bad, why in [(ramp * 300, "0..300"), (ramp - 1, "-1..0"), (unit * np.nan, "NaN")]:
        with pytest.raises(UserError, match=f"train_images holds floats .*{why}"):
            load(npz(bad), 8)
    with pytest.raises(UserError, match="train_images holds integers 0..300, outside 0..255"):
        load(npz(np.full((2, 8, 8, 3), 300, np.int64) * np.array([0, 1])[:, None, None, None]), 8)


def write_medmnist(path: Path, images=None, labels=None, **override) -> Path:
    """A tiny MedMNIST .npz, two images per part; keyword arrays (val_labels=...) replace."""
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"{s}_images"] = images if images is not None else np.full((2, 8, 8, 3), 9, np.uint8)
        arrays[f"{s}_labels"] = labels if labels is not None else np.array([[0], [1]])
    np.savez(path, **{**arrays, **override})
    return path


def test_medmnist_single_channel_arrays_are_squeezed(tmp_path: Path):
    path = write_medmnist(tmp_path / "x.npz", images=np.full((2, 28, 28, 1), 77, np.uint8))
    for size in (28, 16):
        ds = load(path, size)
        assert ds.images.shape == (6, size, size, 3) and (ds.images == 77).all()


def test_medmnist_one_hot_labels_are_read_by_argmax_and_multi_label_is_refused(tmp_path):
    ds = load(write_medmnist(tmp_path / "a.npz", labels=np.array([[0, 0, 1], [1, 0, 0]])), 8)
    assert ds.labels.tolist() == [2, 0] * 3 and ds.class_names == ["class_0", "class_1", "class_2"]
    multi = write_medmnist(tmp_path / "b.npz", labels=np.array([[0, 1, 1], [1, 0, 0]]))
    with pytest.raises(UserError, match=r"train_labels has shape \(2, 3\) but its rows are not "):
        load(multi, 8)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"val_labels": np.array([[0], [-1]])}, r"val_labels\[1\] is -1; labels are class indices"),
        ({"test_labels": np.array([[0.5], [1]])}, "test_labels holds non-integer values"),
        ({"val_images": np.zeros((0, 8, 8, 3), np.uint8), "val_labels": np.zeros((0, 1))},
         "val_images is empty"),
        ({"train_labels": np.array([[0], [1], [1]])}, "train_labels has 3 labels for 2 images"),
        ({"train_images": np.zeros((2, 8, 8, 4), np.uint8)},
         r"train_images has shape \(2, 8, 8, 4\); expected N×H×W"),
    ],
)  # fmt: skip
def test_malformed_medmnist_arrays_are_refused_by_name(tmp_path: Path, override, message):
    args = ["--class", "class_0", "--data", str(write_medmnist(tmp_path / "x.npz", **override)),
            "--run-dir", str(tmp_path / "r"), *TINY]  # fmt: skip
    assert re.search(message, one_line_error(invoke_cli(gan_train, args, False)))


@pytest.mark.parametrize("layout", ["imagefolder_dir", "ham_dir"])
def test_a_dangling_symlink_is_a_named_bad_image_and_skippable(tmp_path, layout, request):
    root = request.getfixturevalue(layout)
    if layout == "ham_dir":
        link = next(root.rglob("ISIC_0000005.jpg"))
        link.unlink()
    else:
        link = root / "cats" / "ghost.png"
    link.symlink_to(tmp_path / "gone.png")
    with pytest.raises(UserError) as err:
        load(root, 16, tmp_path / "cache")
    assert f"{link.name} is a symlink to {tmp_path / 'gone.png'}, which does not exist" in (
        err.value.message
    )
    ds = load(root, 16, tmp_path / "cache", skip_bad_images=True)
    assert len(ds.skipped) == 1 and link.stem not in [Path(i).name for i in ds.image_ids]


def test_a_header_only_csv_is_refused_as_listing_no_images(isic_dir: Path, tmp_path: Path):
    csv_path = isic_dir / "Task3_GroundTruth" / "GroundTruth.csv"
    csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")
    with pytest.raises(UserError, match=f"{csv_path} has a header but no rows; it lists no images"):
        load(isic_dir, 8, tmp_path / "cache")
    ham = tmp_path / "ham"
    write_csv(ham / "HAM10000_metadata.csv", [], fieldnames=["lesion_id", "image_id", "dx"])
    with pytest.raises(UserError, match="has a header but no rows"):
        load(ham, 8, tmp_path / "cache")


def test_all_images_bad_with_skip_bad_images_is_refused_not_an_empty_dataset(
    imagefolder_dir: Path, tmp_path: Path
):
    for f in imagefolder_dir.rglob("*.png"):
        f.write_bytes(b"not a png")
    with pytest.raises(UserError, match="none of the 7 images in .* could be read"):
        load(imagefolder_dir, 16, tmp_path / "cache", skip_bad_images=True)


def test_exif_orientation_is_applied(tmp_path: Path):
    pixels = np.zeros((20, 40, 3), np.uint8)  # stored: left half red, right half blue
    pixels[:, :20] = (220, 0, 0)
    pixels[:, 20:] = (0, 0, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: top half red, bottom half blue
    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / "f" / cls / "x.jpg", exif=exif, quality=95)
    ds = load(tmp_path / "f", 8, tmp_path / "cache")
    top, bottom = ds.images[0, 0, 0], ds.images[0, 7, 0]
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0], (top, bottom)
