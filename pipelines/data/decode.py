"""Decoding images into square uint8 RGB arrays, and the decode cache that makes it happen once.

The cache is keyed by the listing (ids and paths), each file's size and modification time, and
the pixel size; a changed file rebuilds it. Decoding runs in a pool of processes. Each entry
also keeps a CRC-32 of every file's bytes (read for decoding anyway, so it costs little): the
data's content hash, which notices a same-size pixel edit that the listing-and-sizes fingerprint
cannot. An edit that keeps the file's size and modification time (`cp -p`, `rsync -t` of
another file) is noticed by neither: delete the cache (--cache-dir) after such a change.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from gan.conventions import atomic_write
from gan.progress import progress_bar

CACHE_VERSION = 3  # 2: 16-bit images scaled to 8 bits (1: white); 3: EXIF orientation, CRCs
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


def decode_one(job: tuple[str | None, int]) -> tuple[np.ndarray | None, str, int]:
    """(pixels, "", crc) or (None, why, 0): a file that cannot be decoded is a bad image, whatever
    the reason (a dangling symlink too), never a crash of the whole load. crc is the CRC-32 of
    the file's bytes, for the content hash. The EXIF orientation is applied, as viewers do: a
    photo stored sideways with an orientation tag is seen (and cropped) upright."""
    path, size = job
    if path is None:
        return None, "missing", 0
    if os.path.islink(path) and not os.path.exists(path):
        name, target = Path(path).name, os.readlink(path)
        return None, f"unreadable: {name} is a symlink to {target}, which does not exist", 0
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale when large
            upright = _upright(im)
            return square(upright, size), "", zlib.crc32(data)
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        why = f"unreadable: {Path(path).name} is over Pillow's {limit}-pixel safety limit"
        return None, why, 0
    except UnsupportedImage as e:
        return None, f"unreadable: {Path(path).name} has {e}", 0
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None, "unreadable", 0


def _upright(im: Image.Image) -> Image.Image:
    """The image as displayed: transposed by its EXIF orientation tag, when it has one other
    than 1 (exif_transpose copies even an upright image; most have no tag, so ask first)."""
    if im.getexif().get(ExifTags.Base.Orientation, 1) in (None, 1):
        return im
    return ImageOps.exif_transpose(im)


def decode_cached(
    paths: list[Path | None],
    image_ids: list[str],
    size: int,
    cache_dir: Path,
    workers: int | None,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Decoded images, which decoded, why each of the others did not, and each file's CRC-32."""
    key = hashlib.sha256(f"v{CACHE_VERSION}|{size}".encode())
    for p, i in zip(paths, image_ids):
        stat = _stat(p)
        key.update(f"{i}|{p}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    cache_file = cache_dir / f"{key.hexdigest()[:24]}-{size}px.npz"
    if cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                return z["images"], z["ok"], z["why"].tolist(), z["crc"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache entry is rebuilt below
    images = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    why = [""] * len(paths)
    crc = np.zeros(len(paths), dtype=np.int64)
    jobs = [(str(p) if p is not None else None, size) for p in paths]
    workers = workers or min(os.cpu_count() or 1, 8)
    with get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
        decoded = pool.imap(decode_one, jobs, chunksize=64)
        for i, (im, reason, file_crc) in enumerate(
            progress_bar(
                decoded, total=len(jobs), desc=f"decode {size}px", unit="img", disable=not progress
            )
        ):
            if im is not None:
                images[i], ok[i] = im, True
            why[i], crc[i] = reason, file_crc
    reasons = np.array(why, dtype=str)  # a full disk: one line naming the file, no .tmp left
    atomic_write(cache_file, lambda f: np.savez(f, images=images, ok=ok, why=reasons, crc=crc))
    return images, ok, why, crc


def _stat(path: Path | None) -> os.stat_result | None:
    """The file's stat, or None when it is not listed or not there (a dangling symlink): such a
    file is a bad image that decoding names, not a crash while building the cache key."""
    if path is None:
        return None
    try:
        return path.stat()
    except OSError:
        return None
