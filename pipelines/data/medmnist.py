"""MedMNIST .npz files (e.g. DermaMNIST): arrays read with their official split, each checked
by name before use, since a wrong dtype or shape would otherwise be cast silently (floats in
0..1 truncated to a blank image by astype(uint8), a one-hot label matrix read by its first
column)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pipelines.data.dataset import Dataset, resize_images
from pipelines.data.listings import DERMAMNIST_CLASSES, note
from pipelines.errors import UserError
from pipelines.store.records import file_sha256


def load_medmnist(path: Path, size: int) -> Dataset:
    """A MedMNIST .npz with its official split. Arrays are checked by name before use
    (_images, _labels): every part needs images, one label per image."""
    parts = _read_npz(path)
    images = np.concatenate([resize_images(_images(path, s, p[0]), size) for s, p in parts.items()])
    labels = np.concatenate([_labels(path, s, p[1]) for s, p in parts.items()])
    split = [s for s, p in parts.items() for _ in range(len(p[1]))]
    ids = [f"{s}_{i:05d}" for s, p in parts.items() for i in range(len(p[1]))]
    n_classes = int(labels.max()) + 1
    derma = path.name.startswith("dermamnist") and n_classes <= len(DERMAMNIST_CLASSES)
    class_names = list(DERMAMNIST_CLASSES) if derma else [f"class_{i}" for i in range(n_classes)]
    return Dataset(
        images=images,
        labels=labels,
        class_names=class_names,
        image_ids=ids,
        lesion_ids=ids,
        format="medmnist",
        source=str(Path(path).resolve()),
        fingerprint=file_sha256(path)[:16],
        official_split=split,
    )


def _read_npz(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(images, labels) of each official part. An empty part is refused rather than an empty
    validation or test set made: the split is the file's, and a run needs all three parts."""
    try:
        with np.load(path) as npz:
            missing = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")]
            missing = [k for k in missing if k not in npz.files]
            if missing:
                raise UserError(
                    f"{path} lacks the array(s) {', '.join(missing)}; not a MedMNIST file"
                )
            parts = {s: (npz[f"{s}_images"], npz[f"{s}_labels"]) for s in ("train", "val", "test")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(
            f"{path} is not a readable .npz ({type(e).__name__}: truncated or damaged); "
            "download it again"
        ) from e
    for s, (images, labels) in parts.items():
        if images.ndim == 0 or len(images) == 0:
            raise UserError(
                f"{path}: {s}_images is empty; a MedMNIST file holds images in each of train, "
                f"val and test: move some training images (and their labels) into {s}_*"
            )
        if labels.ndim == 0 or len(labels) != len(images):
            n = labels.size if labels.ndim == 0 else len(labels)
            raise UserError(
                f"{path}: {s}_labels has {n} labels for {len(images)} images; "
                "each image needs exactly one"
            )
    return parts


def _images(path: Path, part: str, a: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 pixels: grey N×H×W and single-channel N×H×W×1 arrays are repeated to
    three channels; any other shape is refused by name."""
    name = f"{part}_images"
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[-1] != 3) or 0 in a.shape:
        raise UserError(
            f"{path}: {name} has shape {a.shape}; expected N×H×W (grey), N×H×W×1 or N×H×W×3 "
            "(RGB) pixels: save it in one of those"
        )
    a = _as_uint8(path, name, a)
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 3 else a


def _as_uint8(path: Path, name: str, a: np.ndarray) -> np.ndarray:
    """8-bit pixels, never truncated: astype(uint8) would turn floats in [0, 1] into 0s and 1s
    (a blank image) and wrap integers above 255. Floats within [0, 1] are scaled by 255, floats
    within [0, 255] taken as they are (both rounded; a [0, 255] array that happens to lie in
    [0, 1] is near-black either way); integers within 0..255 are kept; the rest is refused."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise UserError(
                f"{path}: {name} holds integers {lo}..{hi}, outside 0..255; save 8-bit pixels"
            )
        return a.astype(np.uint8)
    if a.dtype.kind != "f":
        raise UserError(f"{path}: {name} has {a.dtype} pixels; save 8-bit (uint8) pixels")
    if not np.isfinite(a).all():
        raise UserError(
            f"{path}: {name} holds floats with NaN or infinite values; save finite pixels"
        )
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > 255:
        raise UserError(
            f"{path}: {name} holds floats {lo:g}..{hi:g}, neither within 0..1 nor within "
            "0..255; save them scaled to 0..255 (uint8)"
        )
    scale = 255.0 if hi <= 1 else 1.0
    note(f"{path}: {name} holds floats in 0..{1 if hi <= 1 else 255}; read as 0..255, rounded")
    return np.rint(a * scale).astype(np.uint8)


def _labels(path: Path, part: str, a: np.ndarray) -> np.ndarray:
    """Class indices 0..K-1, int64. N and N×1 arrays hold indices; an N×K array (K > 1) is
    read by argmax when every row is exactly one-hot, and refused otherwise (multi-label data,
    such as ChestMNIST's 14 findings, has no single class per image). Negative or fractional
    labels are refused by name and position."""
    name = f"{part}_labels"
    if a.ndim == 2 and a.shape[1] > 1:
        one_hot = ((a == 0) | (a == 1)).all(axis=1) & ((a == 1).sum(axis=1) == 1)
        if not one_hot.all():
            row = int(np.flatnonzero(~one_hot)[0])
            raise UserError(
                f"{path}: {name} has shape {a.shape} but its rows are not one-hot (row {row}: "
                f"{a[row].tolist()}); multi-label data is not supported: save one class index "
                "per image"
            )
        a = a.argmax(axis=1)
    elif a.ndim not in (1, 2):
        raise UserError(
            f"{path}: {name} has shape {a.shape}; expected N or N×1 class indices (or N×K "
            "one-hot rows)"
        )
    a = a.reshape(len(a))
    if a.dtype.kind not in "biuf" or (
        a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all())
    ):
        raise UserError(
            f"{path}: {name} holds non-integer values; labels are class indices 0, 1, 2, ..."
        )
    if a.min() < 0:
        i = int(np.argmin(a))
        raise UserError(
            f"{path}: {name}[{i}] is {a[i]:g}; labels are class indices 0, 1, 2, ... "
            "(drop unlabelled images, or give them a class)"
        )
    return a.astype(np.int64)
