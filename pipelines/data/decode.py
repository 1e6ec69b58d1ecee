"""Decoding images into square uint8 RGB arrays, and the decode cache that makes it happen once.

The cache is keyed by the listing (ids and paths), each file's size and modification time, and
the pixel size; a changed file rebuilds it. Decoding runs in a pool of processes.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from gan.conventions import new_temp_file

CACHE_VERSION = 2  # 2: 16-bit images scaled to 8 bits (1 decoded them as white)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # "I": 32-bit ints, 16-bit data


class UnsupportedImage(ValueError):
    """An image whose pixels have no faithful 8-bit RGB reading."""


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit grey levels are scaled to 8 bits: convert("RGB") would clip every
    value above 255 and turn a 16-bit PNG white. Float pixels have no known range: refused."""
    if im.mode in SIXTEEN_BIT_MODES:
        a = np.asarray(im).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise UnsupportedImage(f"{im.mode} pixels outside 0..65535")
        im = Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif im.mode == "F":
        raise UnsupportedImage("floating-point pixels (mode F); convert it to 8 or 16 bits")
    return im.convert("RGB")


def square(im: Image.Image, size: int) -> np.ndarray:
    """Center-crop to a square and resize with an antialiasing filter."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    im = to_rgb(im).crop((left, top, left + s, top + s))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0))


def decode_one(job: tuple[str | None, int]) -> tuple[np.ndarray | None, str]:
    """(pixels, "") or (None, why): a file that cannot be decoded is a bad image, whatever
    the reason, never a crash of the whole load."""
    path, size = job
    if path is None:
        return None, "missing"
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale when large
            return square(im, size), ""
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        return None, f"unreadable: {Path(path).name} is over Pillow's {limit}-pixel safety limit"
    except UnsupportedImage as e:
        return None, f"unreadable: {Path(path).name} has {e}"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None, "unreadable"


def decode_cached(
    paths: list[Path | None],
    image_ids: list[str],
    size: int,
    cache_dir: Path,
    workers: int | None,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decoded images, which decoded, and why each of the others did not."""
    key = hashlib.sha256(f"v{CACHE_VERSION}|{size}".encode())
    for p, i in zip(paths, image_ids):
        stat = p.stat() if p is not None else None
        key.update(f"{i}|{p}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    cache_file = cache_dir / f"{key.hexdigest()[:24]}-{size}px.npz"
    if cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                return z["images"], z["ok"], z["why"].tolist()
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache entry is rebuilt below
    images = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    why = [""] * len(paths)
    jobs = [(str(p) if p is not None else None, size) for p in paths]
    workers = workers or min(os.cpu_count() or 1, 8)
    with get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
        decoded = pool.imap(decode_one, jobs, chunksize=64)
        for i, (im, reason) in enumerate(
            tqdm(
                decoded, total=len(jobs), desc=f"decode {size}px", unit="img", disable=not progress
            )
        ):
            if im is not None:
                images[i], ok[i] = im, True
            why[i] = reason
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp_file(cache_dir, f".{cache_file.name}.")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, images=images, ok=ok, why=np.array(why, dtype=str))
    os.replace(tmp, cache_file)
    return images, ok, why
