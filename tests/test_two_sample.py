"""classifier.two_sample: a perfect generator (other real lesions) is not detectable, a
blurred one is."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from classifier.two_sample import detectability
from pipelines.data.load import load_dataset


def _quarters():
    """The demo's nv images in four lesion-disjoint quarters (every 4th lesion)."""
    ds = load_dataset("demo", 16, progress=False)  # small: the test trains two networks
    nv = np.flatnonzero(ds.labels == ds.class_index("nv"))
    lesions = np.asarray(ds.lesion_ids)[nv]
    order = {les: i for i, les in enumerate(dict.fromkeys(lesions))}
    quarter = np.array([order[les] % 4 for les in lesions])
    return [ds.images[nv[quarter == q]] for q in range(4)]


def _blurred(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images]
    )


def test_a_perfect_generator_is_not_detectable_and_a_blurred_one_is():
    a, b, c, d = _quarters()  # ~140 images each, no lesion in two quarters
    perfect = detectability(a, b, c, d, steps=120)
    # ~280 test images: the accuracy's binomial SE at 0.5 is ~0.03; 0.5 +- 4 SE
    assert abs(perfect["accuracy"] - 0.5) < 0.12, perfect
    blurred = detectability(a, _blurred(b, 1.0), c, _blurred(d, 1.0), steps=120)
    assert blurred["accuracy"] > 0.9, blurred
    assert blurred["n_test"] == [len(c), len(d)]
