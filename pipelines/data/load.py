"""load_dataset: the format dispatcher."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from pipelines.data.dataset import Dataset, default_cache_dir
from pipelines.data.decode import decode_cached
from pipelines.data.demo import DEMO_CLASS_NAMES, DEMO_VERSION, make_demo
from pipelines.data.listings import (
    Listing,
    detect_format,
    list_ham10000,
    list_imagefolder,
    list_isic,
)
from pipelines.data.medmnist import load_medmnist
from pipelines.errors import UserError


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
        source=str(path.resolve()),  # the same from any working directory
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


def _load_demo(size: int) -> Dataset:
    images, labels, image_ids, lesion_ids = make_demo(size)
    key = json.dumps({"demo": DEMO_VERSION, "n": len(labels), "ids": image_ids[-1]})
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
