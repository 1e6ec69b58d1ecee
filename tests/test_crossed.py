"""The crossed variance's df rule and the adjusted interval for recall gains."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from classifier.crossed import Proportion, crossed_df, crossed_interval, floored_difference_se
from classifier.gains import recall_draws, recall_gain, resamples


def test_the_seed_part_enters_the_df_at_its_upper_bound():
    # 11 lesions (10 df), 3 seeds (2 df); the seed part 5e-4 at its 80 % upper bound is
    # 5e-4 * 2 / chi2_0.2(2) = 2.2407e-3 (chi2_0.2(2) = 0.446287), so
    # df = (1e-3 + 2.2407e-3)^2 / (1e-3^2 / 10 + 2.2407e-3^2 / 2) = 4.0232
    assert crossed_df(1e-3, 5e-4, 11, 3) == pytest.approx(4.0232, abs=1e-3)
    # plug-in Welch-Satterthwaite would give (1.5e-3)^2 / (1e-7 + 1.25e-7) = 10.0
    assert crossed_df(0.0, 5e-4, 11, 3) == pytest.approx(2.0)  # seeds only: S - 1
    assert crossed_df(1e-3, 0.0, 11, 3) == pytest.approx(10.0)  # lesions only: L - 1
    assert crossed_df(1e-3, 0.0, 11, 1) == pytest.approx(10.0)


def test_floored_se_by_hand():
    """8/10 against 10/10, independent arms, n = 10: the plug-in SE (sqrt(0.016) = 0.126)
    counts no variance for the arm at 10/10; Agresti-Caffo's adjusted shares 9/12 and 11/12
    give variances 0.75 * 0.25 / 12 and (11/12)(1/12) / 12, SE sqrt(0.0219907) = 0.148293,
    which is the floor here. Where the crossed variance is the larger, it is the SE."""
    a, b = Proportion(0.8, 0.016, 10.0, 9.0), Proportion(1.0, 0.0, 10.0, 9.0)
    assert floored_difference_se(a, b, 0.016) == pytest.approx(0.148293, abs=1e-6)
    assert floored_difference_se(a, b, 0.04) == pytest.approx(0.2)


def test_the_floor_vanishes_far_from_the_bounds():
    """With many effective images and recalls near 0.5 the adjustment is negligible: the SE
    is the difference's crossed one, whatever the correlation."""
    a, b = Proportion(0.45, 2.5e-4, 990.0, 50.0), Proportion(0.55, 2.5e-4, 990.0, 50.0)
    for diff_var in (1e-4, 5e-4, 9e-4):
        assert floored_difference_se(a, b, diff_var) == pytest.approx(np.sqrt(diff_var), rel=0.01)


def test_at_the_ceiling_the_floor_keeps_the_width_of_possible_misses():
    """Arm b found every image with every seed (no spread: its plug-in variance is 0), arm a
    nearly all: the SE still counts the misses b could have had."""
    a, top = Proportion(0.95, 0.0019, 25.0, 10.0), Proportion(1.0, 0.0, 11.0, 10.0)
    assert floored_difference_se(a, top, 0.0019) > 1.2 * np.sqrt(0.0019)
    # both arms without spread (0 of 11 against 11 of 11): (1/13)(12/13)/13 each
    none = Proportion(0.0, 0.0, 11.0, 10.0)
    assert floored_difference_se(none, top, 0.0) == pytest.approx(np.sqrt(2 * 12 / 13**3))


def test_recall_gain_p_value_agrees_with_its_interval():
    """The p-value, the interval and the minimum detectable gain come from one SE and df."""
    rng = np.random.default_rng(2)
    lesions = [f"L{i}" for i in range(30)]
    is_class = np.ones(30, bool)
    rs = resamples(lesions, 500)
    for _ in range(10):
        a = rng.random((5, 30)) < rng.uniform(0.3, 0.95)
        b = rng.random((5, 30)) < rng.uniform(0.3, 0.99)
        g = recall_gain(a, b, is_class, rs)
        assert (g["p_value"] < 0.05) == g["excludes_zero"]
        t = stats.t.ppf(0.975, g["df"])
        assert g["ci95"][1] == pytest.approx(min(1.0, g["gain"] + t * g["se"]))


def test_recall_gain_near_the_ceiling_is_wider_than_the_plug_in_t_interval():
    """Arm b finds all but one image over 5 seeds, whose plug-in variance nearly vanishes;
    the recall gain's interval keeps the variance of the misses b could have had."""
    lesions = [f"L{i}" for i in range(40)]
    is_class = np.ones(40, bool)
    a = np.zeros((5, 40), bool)
    a[:, :36] = True  # 0.9
    b = np.ones((5, 40), bool)
    b[0, 3] = False
    rs = resamples(lesions, 1000)
    g = recall_gain(a, b, is_class, rs)
    d = recall_draws(a, b, is_class, rs)
    iv = crossed_interval(d.per_seed, d.boot, d.n_lesions)
    assert g["gain"] == pytest.approx(0.1 - 0.2 / 40)
    assert g["ci95"][1] - g["ci95"][0] > iv.high - iv.low
    assert -1 <= g["ci95"][0] and g["ci95"][1] <= 1
