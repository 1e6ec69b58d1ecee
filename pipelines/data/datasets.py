"""Read any supported dataset into memory as square uint8 images, labels and lesion ids.

Every command starts here. File-based formats are listed first (cheap: a CSV and a directory
walk), fingerprinted from that listing, and decoded only when the decode cache has no entry for
(listing, file times, size): decoding 10,015 JPEGs is the slow part, and it happens once.

Messy input is refused by name, with the fix, before any pixel is decoded where it can be
(UserError: one line, no traceback), or repaired with a note when the repair is unambiguous:
exact duplicate CSV rows are merged, a blank lesion_id makes an image its own lesion, MedMNIST
floats in 0..1 or 0..255 are scaled, one-hot labels are read by argmax.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.data.decode import decode_cached, square
from pipelines.data.listings import (
    Listing,
    detect_format,
    list_ham10000,
    list_imagefolder,
    list_isic,
)
from pipelines.errors import UserError

FORMATS = ("ham10000", "isic", "medmnist", "imagefolder", "demo")


@dataclass
class Dataset:
    """A whole dataset in memory. images: uint8 N×S×S×3; labels index into class_names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image_ids: list[str]
    lesion_ids: list[str]
    format: str
    source: str
    fingerprint: str  # of the data itself (listing + file sizes), not of the pixel size
    official_split: list[str] | None = None  # "train"/"val"/"test" per image (MedMNIST)
    skipped: dict[str, str] = field(default_factory=dict)  # image id -> why, left out on request
    # of the files' bytes (CRC-32 each, kept by the decode cache): sees a same-size pixel edit
    # that the fingerprint cannot. "" where the fingerprint covers the bytes (MedMNIST, demo).
    content_hash: str = ""

    @property
    def synthetic(self) -> bool:
        return self.format == "demo"

    def record(self) -> dict:
        """The data's identity, as every run record, checkpoint and sample set stores it."""
        return {
            "source": self.source,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "synthetic_demo_data": self.synthetic,
            "skipped_images": self.skipped,
            "content_hash": self.content_hash,
        }

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))

    def class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise UserError(
                f"class {name!r} is not in {self.source}; its classes are "
                f"{', '.join(self.class_names)}"
            )
        return self.class_names.index(name)


# ---------------------------------------------------------------- entry point


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("RAREGAN_CACHE", Path(root) / "raregan"))


def load_dataset(
    source: str | os.PathLike | None,
    size: int,
    fmt: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
    workers: int | None = None,
    progress: bool = True,
    allow_new_classes: bool = False,
) -> Dataset:
    """Load `source` (a path, or None/'demo' for the built-in synthetic data) at size×size px.

    allow_new_classes: keep labels outside a format's fixed class set (HAM10000's dx codes) as
    classes of their own, instead of refusing them as typos ('MEL', 'melanoma', '')."""
    if source is None or str(source) == "demo" or fmt == "demo":
        return _load_demo(size)
    path = Path(source)
    if not path.exists():
        raise UserError(f"data path {path} does not exist; pass --data PATH or --data demo")
    fmt = fmt or detect_format(path)
    if fmt == "medmnist":
        from pipelines.data.medmnist import load_medmnist  # it builds on this module

        return load_medmnist(path, size)
    if fmt == "ham10000":
        listing = list_ham10000(path, allow_new_classes)
    else:
        listing = {"isic": list_isic, "imagefolder": list_imagefolder}[fmt](path)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    images, ok, why, crc = decode_cached(
        listing.paths, listing.image_ids, size, cache, workers, progress
    )
    skipped = _bad_images(path, listing, ok, why, skip_bad_images)
    keep = np.flatnonzero(ok)
    return Dataset(
        images=images[keep],
        labels=listing.labels[keep],
        class_names=listing.class_names,
        image_ids=[listing.image_ids[i] for i in keep],
        lesion_ids=[listing.lesion_ids[i] for i in keep],
        format=fmt,
        source=str(path),
        fingerprint=_fingerprint(fmt, listing, keep),
        skipped=skipped,
        content_hash=_content_hash(listing, crc, keep),
    )


def _bad_images(
    path: Path, listing: Listing, ok: np.ndarray, why: list[str], skip_bad_images: bool
) -> dict[str, str]:
    """The images that did not decode, id -> why: refused unless --skip-bad-images, and refused
    even then when none is left (an empty dataset would fail later, far from its cause)."""
    skipped = {
        listing.image_ids[i]: "missing" if listing.paths[i] is None else why[i] or "unreadable"
        for i in np.flatnonzero(~ok)
    }
    first = ", ".join(f"{i} ({k})" for i, k in list(skipped.items())[:5])
    if skipped and not skip_bad_images:
        raise UserError(
            f"{len(skipped)} of {len(ok)} images in {path} are missing or unreadable "
            f"(first: {first}); restore them, or pass --skip-bad-images to go on without them"
        )
    if len(skipped) == len(ok):
        raise UserError(
            f"none of the {len(ok)} images in {path} could be read (first: {first}); "
            "--skip-bad-images would leave no data: restore them, or check --data"
        )
    return skipped


# ---------------------------------------------------------------- formats


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N×S×S×3 images at another square size, with the loader's antialiasing filter:
    how real and synthetic images alike reach a classifier smaller than the GANs."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([square(Image.fromarray(im), size) for im in images])


def _load_demo(size: int) -> Dataset:
    from pipelines.data.demo import DEMO_CLASS_NAMES, make_demo

    images, labels, image_ids, lesion_ids = make_demo(size)
    key = json.dumps({"demo": "v1", "n": len(labels), "ids": image_ids[-1]})
    return Dataset(
        images=images,
        labels=labels,
        class_names=list(DEMO_CLASS_NAMES),
        image_ids=image_ids,
        lesion_ids=lesion_ids,
        format="demo",
        source="demo",
        fingerprint="demo-" + hashlib.sha256(key.encode()).hexdigest()[:16],
    )


# ---------------------------------------------------------------- fingerprints and decoding


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _fingerprint(fmt: str, listing: Listing, keep: np.ndarray) -> str:
    """Identity of the data: ids, lesions, classes and file sizes of the images loaded."""
    h = hashlib.sha256(fmt.encode())
    for i in keep:
        p = listing.paths[i]
        row = (listing.image_ids[i], listing.lesion_ids[i], listing.class_names[listing.labels[i]])
        h.update(f"{row}|{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _content_hash(listing: Listing, crc: np.ndarray, keep: np.ndarray) -> str:
    """Identity of the bytes of the images loaded: each file's CRC-32, which the decode cache
    computes while decoding and keeps, so a reload costs nothing. Unlike the fingerprint it
    notices a same-size pixel edit (as far as the cache does: see pipelines/data/decode.py)."""
    h = hashlib.sha256(b"crc32")
    for i in keep:
        h.update(f"{listing.image_ids[i]}|{int(crc[i]):08x}\n".encode())
    return h.hexdigest()[:16]
