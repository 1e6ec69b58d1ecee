"""The synthetic demo set: exact structure, determinism, and classes that can be told apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from pipelines.data import demo
from pipelines.data.demo import DEMO_CLASS_COUNTS, DEMO_CLASS_NAMES, make_demo

Demo = tuple[np.ndarray, np.ndarray, list[str], list[str]]


@pytest.fixture(scope="module")
def demo32() -> Demo:
    return make_demo(32, seed=0)


@pytest.fixture(scope="module")
def demo64() -> Demo:
    return make_demo(64, seed=0)


def _lesion_numbers(lesion_ids: list[str]) -> np.ndarray:
    return np.array([int(lesion_id.split("_")[1]) for lesion_id in lesion_ids])


def _features(images: np.ndarray) -> np.ndarray:
    """Colour and texture summaries: centre mean/std, whole-image mean, gradient energy."""
    x = images.astype(np.float32) / 255
    s = x.shape[1]
    centre = x[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4]
    gradient = np.abs(np.diff(x, axis=1)).mean((1, 2)) + np.abs(np.diff(x, axis=2)).mean((1, 2))
    return np.concatenate([centre.mean((1, 2)), centre.std((1, 2)), x.mean((1, 2)), gradient], 1)


def test_class_table_mirrors_ham10000_imbalance() -> None:
    assert DEMO_CLASS_NAMES == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    assert set(DEMO_CLASS_COUNTS) == set(DEMO_CLASS_NAMES)
    assert min(DEMO_CLASS_COUNTS.values()) >= 24
    assert max(DEMO_CLASS_COUNTS, key=DEMO_CLASS_COUNTS.get) == "nv"
    assert DEMO_CLASS_COUNTS["nv"] > 0.6 * sum(DEMO_CLASS_COUNTS.values())


def test_shapes_dtypes_and_exact_class_counts(demo64: Demo) -> None:
    images, labels, image_ids, lesion_ids = demo64
    n = sum(DEMO_CLASS_COUNTS.values())
    assert images.shape == (n, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert len(image_ids) == len(lesion_ids) == n
    counts = np.bincount(labels, minlength=len(DEMO_CLASS_NAMES))
    assert dict(zip(DEMO_CLASS_NAMES, counts.tolist())) == DEMO_CLASS_COUNTS
    # Real pictures, not blank canvases: every image has contrast and uses a wide range.
    assert images.reshape(n, -1).std(1).min() > 5
    assert images.min() < 40 and images.max() > 215


def test_ids_are_unique_and_well_formed(demo32: Demo) -> None:
    _, _, image_ids, lesion_ids = demo32
    assert len(set(image_ids)) == len(image_ids)
    assert all(re.fullmatch(r"DEMO_\d{7}", i) for i in image_ids)
    assert all(re.fullmatch(r"DEMOL_\d{6}", i) for i in lesion_ids)


def test_lesions_have_one_class_and_one_to_three_images(demo32: Demo) -> None:
    _, labels, _, lesion_ids = demo32
    classes: dict[str, set[int]] = {}
    for lesion_id, label in zip(lesion_ids, labels.tolist()):
        classes.setdefault(lesion_id, set()).add(label)
    assert all(len(c) == 1 for c in classes.values())
    _, per_lesion = np.unique(lesion_ids, return_counts=True)
    assert per_lesion.min() == 1 and per_lesion.max() == 3
    assert len(classes) < len(lesion_ids)
    assert 1.2 < len(lesion_ids) / len(classes) < 1.5  # HAM10000: 10015 / 7470 = 1.34
    # A lesion's photos are contiguous, so the "same lesion" groups are easy to eyeball.
    numbers = _lesion_numbers(lesion_ids)
    assert np.all(np.diff(numbers) >= 0)


def test_rephotographs_look_like_their_lesion(demo32: Demo) -> None:
    """Photos of one lesion are closer to each other than to other lesions of the class."""
    images, labels, _, lesion_ids = demo32
    thumbs = images.reshape(-1, 8, 4, 8, 4, 3).astype(np.float32).mean((2, 4))
    thumbs = thumbs.reshape(len(images), -1)
    lesions = np.array(lesion_ids)
    # Photos of a lesion are contiguous and number at most 3, so image i + 3 is always another
    # lesion: compare each consecutive same-lesion pair with such a neighbour of the same class.
    i = np.arange(len(images) - 3)
    same = i[lesions[i] == lesions[i + 1]]
    other = i[(lesions[i] != lesions[i + 3]) & (labels[i] == labels[i + 3])]
    assert len(same) > 130 and len(other) > 600
    same_dist = np.abs(thumbs[same] - thumbs[same + 1]).mean(1)
    other_dist = np.abs(thumbs[other] - thumbs[other + 3]).mean(1)
    assert same_dist.mean() < 0.8 * other_dist.mean()
    # ...but they are new photographs (pose, exposure, noise), not copies.
    assert same_dist.min() > 0.5


def test_same_seed_is_bit_identical_and_other_seed_differs(demo32: Demo) -> None:
    images, labels, image_ids, lesion_ids = make_demo(32, seed=0)
    assert np.array_equal(images, demo32[0]) and np.array_equal(labels, demo32[1])
    assert image_ids == demo32[2] and lesion_ids == demo32[3]
    other = make_demo(32, seed=1)
    assert np.array_equal(other[1], demo32[1])  # same class layout...
    assert np.abs(other[0].astype(np.int16) - demo32[0]).mean() > 10  # ...different images


def test_changing_one_class_count_leaves_other_classes_alone(
    demo32: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DEMO_CLASS_COUNTS, "nv", 30)
    monkeypatch.setitem(DEMO_CLASS_COUNTS, "akiec", 60)
    images, labels, _, _ = make_demo(32, seed=0)
    assert np.bincount(labels)[DEMO_CLASS_NAMES.index("nv")] == 30
    for name in ("bcc", "bkl", "df", "mel", "vasc"):
        c = DEMO_CLASS_NAMES.index(name)
        assert np.array_equal(images[labels == c], demo32[0][demo32[1] == c]), name
    # A larger count only appends: the first 41 akiec photos are the ones we had.
    akiec = DEMO_CLASS_NAMES.index("akiec")
    before = demo32[0][demo32[1] == akiec]
    assert np.array_equal(images[labels == akiec][: len(before)], before)


@pytest.mark.parametrize("size", [16, 33, 256])
def test_any_size_works(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEMO_CLASS_NAMES:
        monkeypatch.setitem(DEMO_CLASS_COUNTS, name, 3)
    images, labels, _, _ = make_demo(size, seed=3)
    assert images.shape == (21, size, size, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [3] * 7


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        make_demo(8)
    with pytest.raises(ValueError, match="seed"):
        make_demo(32, seed=-1)


def test_geometry_is_resolution_independent(demo32: Demo, demo64: Demo) -> None:
    """The 32 px set is the 64 px set downscaled, up to noise and pixel-level detail."""
    down = demo64[0].reshape(-1, 32, 2, 32, 2, 3).astype(np.float32).mean((2, 4))
    small = demo32[0].astype(np.float32)
    matched = np.abs(down - small).mean()
    shuffled = np.abs(down - small[np.random.default_rng(0).permutation(len(small))]).mean()
    assert matched < 6 and matched < 0.25 * shuffled


def test_class_signatures_follow_the_dermoscopic_story(demo32: Demo) -> None:
    images, labels, _, _ = demo32
    centre = images[:, 8:24, 8:24].astype(np.float32).mean((1, 2))
    mean = {name: centre[labels == c].mean(0) for c, name in enumerate(DEMO_CLASS_NAMES)}
    brightness = {name: rgb.mean() for name, rgb in mean.items()}
    redness = {name: rgb[0] - rgb[1] for name, rgb in mean.items()}  # R - G
    assert min(brightness, key=brightness.get) == "mel"
    assert brightness["mel"] < brightness["nv"] - 5  # darker, though many mel are faint
    assert min(redness["akiec"], redness["vasc"]) > max(redness["nv"], redness["bkl"]) + 5
    pairwise = [
        np.linalg.norm(mean[a] - mean[b])
        for i, a in enumerate(DEMO_CLASS_NAMES)
        for b in DEMO_CLASS_NAMES[i + 1 :]
    ]
    assert np.median(pairwise) > 20


@pytest.mark.parametrize("fixture", ["demo32", "demo64"])
def test_classes_are_distinguishable_on_held_out_lesions(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """A nearest-class-mean classifier on 12 summary statistics beats chance (1/7) by far
    (df, mel and nv, which overlap on purpose, least: see the next test).

    Train and test split by lesion, so re-photographs of a training lesion cannot help.
    """
    images, labels, _, lesion_ids = request.getfixturevalue(fixture)
    features = _features(images)
    train = _lesion_numbers(lesion_ids) % 2 == 0
    mu, sd = features[train].mean(0), features[train].std(0)
    z = (features - mu) / sd
    means = np.stack([z[train & (labels == c)].mean(0) for c in range(len(DEMO_CLASS_NAMES))])
    predicted = np.argmin(((z[~train, None] - means) ** 2).sum(-1), axis=1)
    truth = labels[~train]
    recall = [np.mean(predicted[truth == c] == c) for c in range(len(DEMO_CLASS_NAMES))]
    assert np.mean(recall) > 0.3, dict(zip(DEMO_CLASS_NAMES, np.round(recall, 2)))
    assert min(recall) > 0.1


def test_rare_classes_overlap_the_nevi(demo32: Demo) -> None:
    """df and mel lesions are nevi with their signs painted over at partial strength, and some
    nevi carry faint mel or df signs: the two sides overlap both ways, so there is something
    for more examples (a positive control) to gain. On the centre's brightness, a quarter of
    the mel lesions are brighter than the median nevus and a quarter of the nevi darker than
    the median mel; a nearest-class-mean classifier sends mel and df to nv and nv to mel."""
    images, labels, _, lesion_ids = demo32
    nv, mel, df = (DEMO_CLASS_NAMES.index(c) for c in ("nv", "mel", "df"))
    centre = images[:, 8:24, 8:24].astype(np.float32).mean((1, 2, 3))
    assert np.mean(centre[labels == mel] > np.median(centre[labels == nv])) > 0.2
    assert np.mean(centre[labels == nv] < np.median(centre[labels == mel])) > 0.2
    z = _features(images)
    train = _lesion_numbers(lesion_ids) % 2 == 0
    z = (z - z[train].mean(0)) / z[train].std(0)
    means = np.stack([z[train & (labels == c)].mean(0) for c in range(len(DEMO_CLASS_NAMES))])
    predicted = np.argmin(((z[~train, None] - means) ** 2).sum(-1), axis=1)
    truth = labels[~train]

    def called(c: int, as_c: int) -> float:
        return float(np.mean(predicted[truth == c] == as_c))

    assert min(called(mel, nv), called(df, nv), called(nv, mel)) > 0.1


def test_module_is_numpy_only() -> None:
    """No torch, no PIL, no file or OS access: the demo set is pure in-memory numpy."""
    from pipelines.data import demo_paint

    for module in (demo, demo_paint):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported -= {"pipelines.data", "pipelines.data.demo_paint"}  # its own drawing module
        assert {name.split(".")[0] for name in imported} <= {
            "__future__",
            "collections",
            "dataclasses",
            "numpy",
        }
