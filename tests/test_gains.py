from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torchmetrics.functional.classification import binary_average_precision

from classifier.gains import (
    AP_MIN_LESIONS,
    ap_gain,
    crossed_interval,
    holm,
    minimum_detectable_gain,
    p_value,
    recall_draws,
    recall_gain,
    resamples,
    verdict,
    weighted_average_precision,
)
from pipelines.config.arms import GAIN_METRICS


def test_recall_gain_known_answers():
    lesions = [f"L{i // 2}" for i in range(200)]  # 100 lesions, 2 images each
    is_class = np.ones(200, bool)
    rs = resamples(lesions, n_boot=4000)
    never, always = np.zeros((3, 200), bool), np.ones((3, 200), bool)
    r = recall_gain(never, always, is_class, rs)
    # no spread at all: the gain is exact on this test set, but a zero-width interval says
    # nothing about another one, and never declares significance
    assert r["gain"] == 1.0 and r["ci95"] == [1.0, 1.0] and not r["excludes_zero"]
    assert not r["estimable"]
    same = recall_gain(always, always, is_class, rs)
    assert same["gain"] == 0.0 and same["ci95"] == [0.0, 0.0] and not same["excludes_zero"]
    # b is right on exactly half of the lesions (every seed), a never: gain 0.5; no seed
    # spread, so only the lesions vary (99 df). The SE is floored at the one of each arm's
    # recall with a hit and a miss added at its effective n (100 lesions):
    # sqrt(0.5 * 0.5 / 102 + (1/102)(101/102) / 102) = 0.0505, t = 1.984
    half = np.zeros((3, 200), bool)
    half[:, :100] = True
    r = recall_gain(never, half, is_class, rs)
    assert r["gain"] == 0.5 and r["test_lesions"] == 100 and r["seed_var"] == 0.0
    assert r["ci95"][0] == pytest.approx(0.5 - 1.984 * 0.0505, abs=0.005)
    assert r["ci95"][1] == pytest.approx(0.5 + 1.984 * 0.0505, abs=0.005)


def test_a_worse_arm_has_a_negative_gain_whose_interval_excludes_zero():
    lesions = [f"L{i}" for i in range(100)]
    is_class = np.ones(100, bool)
    a = np.ones((3, 100), bool)
    b = a.copy()
    b[:, :60] = False  # b misses 60 % of what a finds, in every seed
    r = recall_gain(a, b, is_class, resamples(lesions))
    assert r["gain"] == pytest.approx(-0.6)
    assert r["ci95"][1] < 0 and r["excludes_zero"]


def test_recall_gain_counts_only_the_class():
    is_class = np.array([True, True, False, False])
    a = np.array([[False, False, True, True]])
    b = np.array([[True, False, False, False]])
    assert recall_gain(a, b, is_class, resamples(["a", "b", "c", "d"]))["gain"] == 0.5


def test_identical_arms_that_vary_by_lesion_have_a_zero_width_interval():
    """Paired resampling: the same lesion draw for both arms, so an arm compared with itself
    has gain 0 on every draw, however much its recall or AP varies from lesion to lesion. An
    unpaired bootstrap (independent draws per arm) would give a wide interval here."""
    rng = np.random.default_rng(0)
    n = 300
    lesions = [f"L{i // 3}" for i in range(n)]
    is_class = rng.random(n) < 0.4
    # lesion-driven: each seed's model mostly agrees with the others on which images it finds
    base_hits, base_scores = rng.random(n) < 0.5, rng.random(n)
    hits = np.stack([base_hits ^ (rng.random(n) < 0.1) for _ in range(3)])
    scores = np.stack([base_scores + 0.1 * rng.random(n) for _ in range(3)])
    rs = resamples(lesions, n_boot=500)
    for r in (recall_gain(hits, hits, is_class, rs), ap_gain(scores, scores, is_class, rs)):
        assert r["gain"] == 0.0 and r["ci95"] == [0.0, 0.0]
    # a few flips: a narrow interval around a small gain, not the width of recall's own noise
    flipped = hits.copy()
    flipped[:, :6] = ~flipped[:, :6]
    r = recall_gain(hits, flipped, is_class, rs)
    assert r["ci95"][1] - r["ci95"][0] < 0.1


def test_interval_is_the_t_interval_of_the_seeds_when_seeds_dominate():
    """Same mean gain (0.5) over 3 seeds; in one case every seed agrees, in the other the
    seeds gain 0, 0.5 and 1 on every lesion. The seed part is then the variance of (0, 0.5, 1)
    over 3 (the lesion part is negligible on 400 lesions), with a t of 2 df: 0.5 +- 4.30 *
    sqrt(0.25 / 3), which reaches past [-1, 1]. The recall interval (MOVER, from each arm's
    score interval) stays inside, and is still far wider than the steady arm's."""
    n = 400
    lesions = [f"L{i}" for i in range(n)]
    is_class = np.ones(n, bool)
    rs = resamples(lesions)
    never = np.zeros((3, n), bool)
    steady = np.zeros((3, n), bool)
    steady[:, ::2] = True  # every seed: half the images
    shaky = np.zeros((3, n), bool)
    shaky[1, ::2] = True  # seed 0: none, seed 1: half, seed 2: all
    shaky[2] = True
    d = recall_draws(never, shaky, is_class, rs)
    iv = crossed_interval(d.per_seed, d.boot, d.n_lesions)
    half = 4.303 * np.sqrt(0.25 / 3)
    assert [iv.low, iv.high] == pytest.approx([0.5 - half, 0.5 + half], abs=0.01)
    assert iv.df == pytest.approx(2.0, abs=0.05)
    r_steady = recall_gain(never, steady, is_class, rs)
    r_shaky = recall_gain(never, shaky, is_class, rs)
    assert r_steady["gain"] == r_shaky["gain"] == 0.5
    assert r_shaky["per_seed"] == [0.0, 0.5, 1.0]
    assert -1 <= r_shaky["ci95"][0] < 0.1 and 0.9 < r_shaky["ci95"][1] <= 1
    assert r_steady["ci95"][1] - r_steady["ci95"][0] < 0.15


def test_crossed_interval_counts_the_shared_lesion_noise_once():
    """Closed-form components: L lesions, S seeds, d[s, l] = a_l + e_sl with no seed effect.
    The seed-averaged gain's variance is var_a / L (lesions shared by every seed) plus
    var_e / (L S) (what the per-seed gains' spread shows, over S). The two-level bootstrap
    counted var_e / L once in each level."""
    rng = np.random.default_rng(3)
    L, S, B = 400, 5, 4000
    a = rng.normal(size=L)
    e = rng.normal(size=(S, L))
    d = a + e  # S×L
    counts = rng.multinomial(L, np.full(L, 1 / L), size=B)
    boot = counts @ d.T / L  # B×S
    iv = crossed_interval(d.mean(1), boot, L)
    assert iv.lesion_var == pytest.approx(1 / L, rel=0.15)
    assert iv.seed_var == pytest.approx(d.mean(1).var(ddof=1) / S)
    assert iv.seed_var < 0.6 * iv.lesion_var  # ~1/(LS): interaction, not 1/L again
    # a real seed effect b_s enters through the per-seed spread, with S - 1 df
    b = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    iv_b = crossed_interval(d.mean(1) + b, boot + b, L)
    assert iv_b.lesion_var == pytest.approx(iv.lesion_var)
    assert iv_b.seed_var == pytest.approx((d.mean(1) + b).var(ddof=1) / S)
    assert iv_b.df == pytest.approx(S - 1, abs=0.1)
    t = stats.t.ppf(0.975, iv_b.df)
    assert iv_b.high - iv_b.gain == pytest.approx(t * np.sqrt(iv_b.lesion_var + iv_b.seed_var))


def test_weighted_ap_equals_ap_of_repeated_images():
    rng = np.random.default_rng(0)
    scores, is_class = rng.random(30), rng.random(30) < 0.3
    weights = rng.integers(0, 4, size=(2, 30)).astype(float)
    got = weighted_average_precision(scores, is_class, weights)
    for w, ap in zip(weights, got):
        idx = np.repeat(np.arange(30), w.astype(int))
        want = binary_average_precision(torch.tensor(scores[idx]), torch.tensor(is_class[idx]))
        assert ap == pytest.approx(want.item(), abs=1e-6)


def test_weighted_ap_treats_tied_scores_as_one_threshold_like_torchmetrics():
    """Scores rounded to 0.1: many ties between positives and negatives. Ordering tied images
    by index would make AP depend on the images' order; torchmetrics takes every distinct
    score as one threshold, and so must the gain."""
    rng = np.random.default_rng(1)
    n = 200
    scores = np.round(rng.random(n), 1)
    is_class = rng.random(n) < 0.3
    weights = rng.integers(0, 3, size=(4, n)).astype(float)
    for perm in (np.arange(n), rng.permutation(n), np.argsort(is_class)):
        got = weighted_average_precision(scores[perm], is_class[perm], weights[:, perm])
        for w, ap in zip(weights, got):
            idx = np.repeat(np.arange(n), w.astype(int))
            want = binary_average_precision(
                torch.tensor(scores[idx]), torch.tensor(is_class[idx].astype(int))
            )
            assert ap == pytest.approx(want.item(), abs=1e-6)


def test_ap_gain_interval_sees_the_seeds():
    """Arm b's AP gain is large with seed 2 and nil with seeds 0 and 1: the interval must be
    far wider than when every seed gains the same, and each seed's AP gain is its own."""
    rng = np.random.default_rng(2)
    n = 400
    lesions = [f"L{i}" for i in range(n)]
    is_class = np.arange(n) < 100
    a = rng.random((3, n))
    perfect = np.where(is_class, 1.0 + rng.random(n), rng.random(n))
    b_shaky = a.copy()
    b_shaky[2] = perfect
    b_steady = np.stack([perfect] * 3)
    rs = resamples(lesions, n_boot=500)
    shaky, steady = ap_gain(a, b_shaky, is_class, rs), ap_gain(a, b_steady, is_class, rs)
    ones = np.ones((1, n))
    want = [
        weighted_average_precision(b, is_class, ones)[0]
        - weighted_average_precision(x, is_class, ones)[0]
        for x, b in zip(a, b_shaky)
    ]
    assert shaky["per_seed"] == pytest.approx(want)
    assert shaky["gain"] == pytest.approx(np.mean(want))
    assert shaky["seed_var"] > 10 * steady["seed_var"]
    assert shaky["ci95"][1] - shaky["ci95"][0] > 5 * (steady["ci95"][1] - steady["ci95"][0])


def test_ap_gain_on_lesions_by_hand():
    """Two lesions of two images each (a positive and a negative), one seed. The bootstrap can
    draw lesions {1,1}, {1,2}, {2,2} with probabilities 1/4, 1/2, 1/4.
    scores, images (L1+, L1-, L2+, L2-): arm a (0.9, 0.8, 0.1, 0.7), arm b (0.9, 0.1, 0.8, 0.2).
    AP of b is 1 in every draw (positives first). AP of a:
      {1,1}: 1 (L1+ above L1-);  {2,2}: 0.5 (L2+ last of 2);
      {1,2}: ranking L1+, L1-, L2-, L2+: precisions 1 and 2/4: AP = 0.75.
    So the gain is 0.25 on the data and {0, 0.25, 0.5} on the draws with probabilities
    1/4, 1/2, 1/4: bootstrap variance 0.03125, times L / (L - 1) = 2 for the bootstrap's bias,
    and the interval 0.25 +- t(1) * 0.25."""
    lesions = ["L1", "L1", "L2", "L2"]
    is_class = np.array([True, False, True, False])
    a = np.array([[0.9, 0.8, 0.1, 0.7]])
    b = np.array([[0.9, 0.1, 0.8, 0.2]])
    r = ap_gain(a, b, is_class, resamples(lesions, n_boot=20000))
    assert r["gain"] == pytest.approx(0.25)
    assert r["lesion_var"] == pytest.approx(0.0625, rel=0.05)
    assert r["se"] == pytest.approx(0.25, rel=0.03) and r["df"] == pytest.approx(1.0)
    assert r["ci95"] == [-1.0, 1.0]
    assert not r["excludes_zero"]


def test_holm_on_a_hand_computed_family():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, kept monotone: 0.06)
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert [round(a, 10) for a, _ in adjusted] == [0.03, 0.06, 0.06, 0.02]
    assert [r for _, r in adjusted] == [True, False, False, True]  # all four below 0.05 raw
    assert holm([float("nan"), 0.001]) == [(1.0, False), (0.002, True)]


def test_p_value_agrees_with_the_interval():
    """A gain whose 95 % interval just excludes 0 has p just below 0.05, and one without
    width has no p-value."""
    gain = {"gain": 0.1, "se": 0.1 / stats.t.ppf(0.975, 7) * 0.999, "df": 7.0}
    assert 0.049 < p_value(gain) < 0.05
    assert np.isnan(p_value({"gain": 1.0, "se": 0.0, "df": float("inf")}))


def test_minimum_detectable_gain_by_hand():
    # SE 0.1 at 10 df: t_0.975 = 2.228139, t_0.80 = 0.879058 -> (2.228139 + 0.879058) * 0.1
    assert minimum_detectable_gain(0.1, 10) == pytest.approx(0.3107197, abs=1e-6)
    assert minimum_detectable_gain(0.1, float("inf")) == pytest.approx(0.2801585, abs=1e-6)
    assert np.isnan(minimum_detectable_gain(0.0, 5))


def _g(gain, lo, hi, mdg):
    return {"gain": gain, "ci95": [lo, hi], "excludes_zero": lo > 0 or hi < 0, "mdg": mdg}


def test_verdict_words_separate_cannot_tell_from_no_gain():
    assert verdict(_g(0.2, 0.05, 0.35, 0.1), 0.05) == "gain"
    assert verdict(_g(-0.2, -0.35, -0.05, 0.1), 0.05) == "loss"
    # wide interval, small oracle gain: the comparison could not have seen a perfect generator
    assert verdict(_g(0.02, -0.25, 0.29, 0.38), 0.05, oracle_gain=0.1) == "cannot tell"
    # the whole interval below the margin: a bound, whatever the oracle did
    assert verdict(_g(0.0, -0.03, 0.04, 0.05), 0.05, oracle_gain=0.1) == "no gain larger than 0.05"
    # narrow enough to have seen the margin and the oracle's gain, and saw nothing
    assert verdict(_g(0.01, -0.02, 0.06, 0.04), 0.05, oracle_gain=0.1) == "n.s."
    assert verdict(_g(0.0, 0.0, 0.0, float("nan")), 0.05) == "not estimable"  # no spread seen


def test_a_zero_width_interval_declares_nothing():
    """One test lesion of 3 photos, found by arm b with every seed and never by arm a: the
    gain is 1.0, but its 'interval' [1, 1] has no width and must not count as significant."""
    is_class = np.ones(3, bool)
    rs = resamples(["L0"] * 3, n_boot=200)
    hits_a, hits_b = np.zeros((3, 3), bool), np.ones((3, 3), bool)
    g = recall_gain(hits_a, hits_b, is_class, rs)
    assert g["gain"] == 1.0 and not g["excludes_zero"] and not g["estimable"]
    assert np.isnan(g["mdg"]) and np.isnan(p_value(g))
    assert verdict(g, 0.05) == "not estimable"


def test_ap_gains_on_few_test_lesions_are_marked_in_every_table():
    """AP on fewer than AP_MIN_LESIONS test lesions is biased toward 0 where the arms' score
    shapes differ: the gain says so, and a table showing it carries the footnote."""
    from pipelines.format import FEW_LESIONS_MARK, few_lesions_note, gain
    from pipelines.report.markdown import gain_table

    rng = np.random.default_rng(5)
    out = {}
    for L in (AP_MIN_LESIONS - 1, AP_MIN_LESIONS):
        lesions = [f"L{i}" for i in range(L)] + [f"N{i}" for i in range(100)]
        is_class = np.r_[np.ones(L, bool), np.zeros(100, bool)]
        scores = rng.random((2, 3, L + 100)) + is_class
        out[L] = ap_gain(scores[0], scores[1], is_class, resamples(lesions, 200))
    assert out[AP_MIN_LESIONS - 1]["few_lesions"] and not out[AP_MIN_LESIONS]["few_lesions"]
    assert FEW_LESIONS_MARK in gain(out[AP_MIN_LESIONS - 1])
    assert FEW_LESIONS_MARK not in gain(out[AP_MIN_LESIONS])
    assert few_lesions_note([out[AP_MIN_LESIONS]]) == []
    row = {"arm": "gan", "reference": "baseline", "class": "df"}
    few = {"x": row | dict.fromkeys(GAIN_METRICS, out[AP_MIN_LESIONS - 1])}
    table = "\n".join(gain_table(few))
    assert table.count(FEW_LESIONS_MARK) == 4  # three gains in the row and the footnote
