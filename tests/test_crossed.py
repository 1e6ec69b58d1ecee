"""The crossed variance's df rule and the adjusted interval for recall gains."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from classifier.crossed import Proportion, adjusted_difference, crossed_df, crossed_interval
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


def test_adjusted_difference_by_hand():
    """8/10 against 10/10, independent arms, n = 10: the plug-in SE (0.126) would count no
    variance for the arm at 10/10; Agresti-Caffo's adjusted shares 9/12 and 11/12 give
    variances 0.75 * 0.25 / 12 and (11/12)(1/12) / 12, SE sqrt(0.0219907) = 0.148293, which
    is the floor here: 0.2 +- 1.959964 * 0.148293 = [-0.09065, +0.49065]."""
    a, b = Proportion(0.8, 0.016, 10.0, 9.0), Proportion(1.0, 0.0, 10.0, 9.0)
    low, high, p = adjusted_difference(a, b, 0.016, float("inf"))
    assert (low, high) == pytest.approx((-0.09065, 0.49065), abs=1e-5)
    assert p == pytest.approx(2 * stats.norm.sf(0.2 / np.sqrt(0.0219907)), rel=1e-4)
    # where the crossed variance is the larger, it is the SE
    low, high, _ = adjusted_difference(a, b, 0.04, float("inf"))
    assert (low, high) == pytest.approx((0.2 - 1.959964 * 0.2, 0.2 + 1.959964 * 0.2), abs=1e-5)


def test_adjusted_difference_is_the_t_interval_far_from_the_bounds():
    """With many effective images and recalls near 0.5 the adjustment vanishes: the interval
    is d +- t * sqrt(Var(b - a)), whatever the correlation."""
    a, b = Proportion(0.45, 2.5e-4, 990.0, 50.0), Proportion(0.55, 2.5e-4, 990.0, 50.0)
    for diff_var in (1e-4, 5e-4, 9e-4):
        low, high, _ = adjusted_difference(a, b, diff_var, 50.0)
        half = stats.t.ppf(0.975, 50) * np.sqrt(diff_var)
        assert low == pytest.approx(0.1 - half, abs=0.003)
        assert high == pytest.approx(0.1 + half, abs=0.003)


def test_at_the_ceiling_the_interval_keeps_its_width_and_stays_in_bounds():
    """Arm b found every image with every seed (no spread: its plug-in variance is 0), arm a
    nearly all: the interval still has the width of b's possible misses, within [-1, 1]."""
    a, top = Proportion(0.95, 0.0019, 25.0, 10.0), Proportion(1.0, 0.0, 11.0, 10.0)
    low, high, _ = adjusted_difference(a, top, 0.0019, 10.0)
    t_half = stats.t.ppf(0.975, 10) * np.sqrt(0.0019)
    assert high - low > 2 * t_half
    assert -1 <= low < 0.05 < high <= 1
    low, high, _ = adjusted_difference(Proportion(0.0, 0.0, 11.0, 10.0), top, 0.0, 10.0)
    assert 0 < low < high == 1.0  # centred on the gain, 1.0, and clipped


def test_p_value_below_005_exactly_where_the_interval_excludes_zero():
    rng = np.random.default_rng(2)
    for _ in range(40):
        pa, pb = rng.uniform(0.5, 0.99, 2)
        va, vb = pa * (1 - pa) / 40, pb * (1 - pb) / 40
        a, b = Proportion(pa, va, 40.0, 12.0), Proportion(pb, vb, 40.0, 12.0)
        diff_var = va + vb - 2 * 0.3 * np.sqrt(va * vb)
        low, high, p = adjusted_difference(a, b, diff_var, 12.0)
        assert (p < 0.05) == (low > 0 or high < 0)
        lo_p, hi_p, _ = adjusted_difference(a, b, diff_var, 12.0, level=1 - p)
        assert min(abs(lo_p), abs(hi_p)) < 1e-9  # at the 1 - p level it touches 0


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
