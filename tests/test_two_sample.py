"""classifier.two_sample: a perfect generator (other real lesions) is not detectable, a
blurred one is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import stats

from classifier.two_sample import balanced_accuracy_interval, detectability
from pipelines.data.load import load_dataset


def _quarters():
    """The demo's nv images in four lesion-disjoint quarters (every 4th lesion), and the
    third quarter's lesion ids."""
    ds = load_dataset("demo", 16, progress=False)  # small: the test trains two networks
    nv = np.flatnonzero(ds.labels == ds.class_index("nv"))
    lesions = np.asarray(ds.lesion_ids)[nv]
    order = {les: i for i, les in enumerate(dict.fromkeys(lesions))}
    quarter = np.array([order[les] % 4 for les in lesions])
    return [ds.images[nv[quarter == q]] for q in range(4)], list(lesions[quarter == 2])


def _blurred(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images]
    )


def test_a_perfect_generator_is_not_detectable_and_a_blurred_one_is():
    (a, b, c, d), c_lesions = _quarters()  # ~140 images each, no lesion in two quarters
    perfect = detectability(a, b, c, d, steps=120, real_test_lesions=c_lesions)
    # ~280 test images: the accuracy's binomial SE at 0.5 is ~0.03; 0.5 +- 4 SE
    assert abs(perfect["accuracy"] - 0.5) < 0.12, perfect
    assert perfect["ci95"][0] < 0.5 < perfect["ci95"][1], perfect
    assert perfect["test_lesions"] == len(set(c_lesions)) < len(c)
    blurred = detectability(a, _blurred(b, 1.0), c, _blurred(d, 1.0), steps=120)
    assert blurred["accuracy"] > 0.9 and blurred["ci95"][0] > 0.8, blurred
    assert blurred["n_test"] == [len(c), len(d)]


def test_the_interval_by_hand_for_lesions_of_one_photo():
    """4 lesions of one photo (3 right), 6 samples (3 caught): design effect m/(m-1) = 4/3,
    so the reals count as 3 photos (2.25 right); each half gains one pseudo-success and one
    pseudo-failure; Welch-Satterthwaite df from 3 and 5."""
    got = balanced_accuracy_interval([1, 1, 0, 1], ["a", "b", "c", "d"], [1, 0, 1, 0, 0, 1])
    assert got["accuracy"] == (0.75 + 0.5) / 2 and got["design_effect"] == pytest.approx(4 / 3)
    p_r, n_r = (2.25 + 1) / 5, 5
    p_g, n_g = 4 / 8, 8
    v_r, v_g = p_r * (1 - p_r) / n_r, p_g * (1 - p_g) / n_g
    df = (v_r + v_g) ** 2 / (v_r**2 / 3 + v_g**2 / 5)
    half = stats.t.ppf(0.975, df) * np.sqrt(v_r + v_g) / 2
    center = (p_r + p_g) / 2
    assert got["df"] == pytest.approx(df)
    assert got["ci95"] == pytest.approx([center - half, min(1.0, center + half)])


def test_a_perfect_detector_still_has_an_interval_and_alike_photos_widen_it():
    perfect = balanced_accuracy_interval(np.ones(20), np.arange(20), np.ones(50))
    assert perfect["accuracy"] == 1.0 and perfect["ci95"][1] == 1.0
    assert 0.8 < perfect["ci95"][0] < 1.0  # never a zero-width "certainly 1"
    right = np.array([1, 1, 0, 0] * 5)  # 20 photos, half right
    apart = balanced_accuracy_interval(right, np.arange(20), np.ones(50))
    paired = balanced_accuracy_interval(right, np.arange(20) // 2, np.ones(50))  # photos agree
    assert paired["design_effect"] == pytest.approx(2 * 10 / 9 / (20 / 19) * (20 / 19), rel=0.2)
    width = lambda d: d["ci95"][1] - d["ci95"][0]  # noqa: E731
    assert width(paired) > 1.3 * width(apart) and paired["accuracy"] == apart["accuracy"]
