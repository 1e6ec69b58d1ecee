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

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.data.decode import square
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

    def skipped_note(self, record: str) -> str | None:
        """--skip-bad-images never drops images silently: how many, and where they are listed."""
        if not self.skipped:
            return None
        first = ", ".join(f"{i} ({why})" for i, why in list(self.skipped.items())[:3])
        more = ", ..." if len(self.skipped) > 3 else ""
        return (
            f"--skip-bad-images left out {len(self.skipped)} of "
            f"{len(self.skipped) + len(self.labels)} images ({first}{more}); all are listed in "
            f"{record}"
        )

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


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("RAREGAN_CACHE", Path(root) / "raregan"))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N×S×S×3 images at another square size, with the loader's antialiasing filter:
    how real and synthetic images alike reach a classifier smaller than the GANs."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([square(Image.fromarray(im), size) for im in images])
