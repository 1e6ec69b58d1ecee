"""Images of an external test set that are images of the home data.

A test set that is, or holds, the training data measures memory, not generalisation, and a
user pointing --external-test at the --data folder (or an ImageFolder of the same files, or
the demo on a demo run) got a confident "External test set" section without a word. Both
sets are decoded at the same size by the same loader, so an image of the home data has the
very same pixels in the external set: those are found by a digest of the decoded pixels
(exact duplicates only; a re-encoded or resized copy is not found). Every external image a
duplicate: refused. Some: left out of the external test, with a note that counts and names
them (ISIC 2019, for one, contains HAM10000's images).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from pipelines.data.dataset import Dataset
from pipelines.errors import UserError


def pixel_digests(images: np.ndarray) -> list[bytes]:
    """A digest of each decoded image's pixels (uint8 N×S×S×3)."""
    return [
        hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest()
        for im in images
    ]


def home_duplicates(home: Dataset, ext: Dataset) -> np.ndarray:
    """Per external image: whether its decoded pixels are a home image's."""
    if home.images.shape[1:] != ext.images.shape[1:]:
        raise ValueError(f"compare at one size: {home.images.shape[1:]} vs {ext.images.shape[1:]}")
    seen = set(pixel_digests(home.images))
    return np.array([d in seen for d in pixel_digests(ext.images)], dtype=bool)


def without_home_images(home: Dataset, ext: Dataset) -> tuple[Dataset, str | None]:
    """The external set less the home data's images, and a note saying how many were left
    out (None: none); refused in one line where it has no other image."""
    dup = home_duplicates(home, ext)
    if not dup.any():
        return ext, None
    first = ", ".join(ext.image_ids[i] for i in np.flatnonzero(dup)[:3])
    if dup.all():
        raise UserError(
            f"--external-test {ext.source}: all {len(dup)} of its images are images of --data "
            f"{home.source} (the same pixels, e.g. {first}); pass a test set of other images"
        )
    keep = np.flatnonzero(~dup)
    rest = dataclasses.replace(
        ext,
        images=ext.images[keep],
        labels=ext.labels[keep],
        image_ids=[ext.image_ids[i] for i in keep],
        lesion_ids=[ext.lesion_ids[i] for i in keep],
        official_split=None
        if ext.official_split is None
        else [ext.official_split[i] for i in keep],
    )
    note = (
        f"--external-test: {int(dup.sum())} of its {len(dup)} images are images of --data "
        f"({first}{', ...' if dup.sum() > 3 else ''}) and are left out of the external test"
    )
    return rest, note
