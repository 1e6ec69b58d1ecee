"""classifier.shares: a share's interval over seeds and image units, checked where it has a
closed form or a known effective n."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from classifier.gains import resamples
from classifier.shares import share_interval


def test_every_image_called_gives_wilsons_interval_at_the_number_of_units():
    """Nothing varied: the effective n is the units, and the lower end is Wilson's at p = 1,
    n / (n + t^2) with n - 1 df; never a zero-width [1, 1]."""
    hits = np.ones((5, 256), bool)
    iv = share_interval(hits, resamples([str(i) for i in range(256)], 200))
    t2 = stats.t.ppf(0.975, 255) ** 2
    assert iv["share"] == 1.0 and iv["n_eff"] == 256 and iv["df"] == 255
    assert iv["ci95"] == pytest.approx([256 / (256 + t2), 1.0])
    none = share_interval(~hits, resamples([str(i) for i in range(256)], 200))
    assert none["ci95"] == pytest.approx([0.0, t2 / (256 + t2)])


def test_identical_seeds_count_once_and_a_lesions_identical_photos_count_once():
    """Five seeds that agree on every image carry one model's information (n_eff ~ images,
    not 5 x images); three identical photos per lesion carry one photo's (n_eff ~ lesions)."""
    rng = np.random.default_rng(0)
    row = rng.random(400) < 0.7
    iv = share_interval(np.tile(row, (5, 1)), resamples([str(i) for i in range(400)], 2000))
    assert iv["share"] == pytest.approx(row.mean())
    assert iv["n_eff"] == pytest.approx(400, rel=0.15)
    lesion_row = np.repeat(rng.random(150) < 0.7, 3)
    lesions = [str(i) for i in np.repeat(np.arange(150), 3)]
    clustered = share_interval(np.tile(lesion_row, (5, 1)), resamples(lesions, 2000))
    assert clustered["units"] == 150 and clustered["images"] == 450
    assert clustered["n_eff"] == pytest.approx(150, rel=0.15)


def test_seeds_that_disagree_widen_the_interval():
    """The same images and share, but seeds that lean differently: the seeds' spread counts."""
    rng = np.random.default_rng(1)
    units = resamples([str(i) for i in range(300)], 500)
    agree = np.tile(rng.random(300) < 0.9, (5, 1))
    lean = np.stack([rng.random(300) < p for p in (0.75, 0.85, 0.9, 0.95, 1.0)])
    a, b = share_interval(agree, units), share_interval(lean, units)
    assert np.diff(b["ci95"])[0] > 1.5 * np.diff(a["ci95"])[0]
    assert b["n_eff"] < a["n_eff"]
    for iv in (a, b):
        assert iv["ci95"][0] < iv["share"] < iv["ci95"][1]


def test_a_few_misses_get_the_poisson_end_where_wilson_undercovers():
    """One model that misses 1 of 200 images: 1 - p is ~1 effective miss, and the upper end is
    the Poisson one, 1 - chi2_{0.05}(2x) / 2n (Brown, Cai & DasGupta's modified Wilson), above
    Wilson's own."""
    hits = np.ones((1, 200), bool)
    hits[0, 7] = False
    iv = share_interval(hits, resamples([str(i) for i in range(200)], 2000))
    x = (1 - iv["share"]) * iv["n_eff"]
    assert 0.5 < x <= 3
    assert iv["ci95"][1] == pytest.approx(1 - stats.chi2.ppf(0.05, 2 * x) / 2 / iv["n_eff"])
    assert iv["ci95"][1] > 0.999
