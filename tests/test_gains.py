from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from classifier.gains import (
    ap_gain,
    prior_matched_hits,
    recall_gain,
    resamples,
    weighted_average_precision,
)


def test_recall_gain_known_answers():
    lesions = [f"L{i // 2}" for i in range(200)]  # 100 lesions, 2 images each
    is_class = np.ones(200, bool)
    rs = resamples(3, lesions, n_boot=4000)
    never, always = np.zeros((3, 200), bool), np.ones((3, 200), bool)
    r = recall_gain(never, always, is_class, rs)
    assert r["gain"] == 1.0 and r["ci95"] == [1.0, 1.0] and r["excludes_zero"]
    same = recall_gain(always, always, is_class, rs)
    assert same["gain"] == 0.0 and same["ci95"] == [0.0, 0.0] and not same["excludes_zero"]
    # b is right on exactly half of the lesions (every seed), a never: gain 0.5, and the CI is
    # the binomial one over 100 lesions: 0.5 +- 1.96 * sqrt(0.25 / 100) = [0.402, 0.598]
    half = np.zeros((3, 200), bool)
    half[:, :100] = True
    r = recall_gain(never, half, is_class, rs)
    assert r["gain"] == 0.5 and r["test_lesions"] == 100
    assert r["ci95"][0] == pytest.approx(0.402, abs=0.02)
    assert r["ci95"][1] == pytest.approx(0.598, abs=0.02)


def test_recall_gain_counts_only_the_class():
    is_class = np.array([True, True, False, False])
    a = np.array([[False, False, True, True]])
    b = np.array([[True, False, False, False]])
    assert recall_gain(a, b, is_class, resamples(1, ["a", "b", "c", "d"]))["gain"] == 0.5


def test_interval_widens_with_seed_variance():
    """Same mean gain (0.5) over 3 seeds; in one case every seed agrees, in the other the
    seeds gain 0, 0.5 and 1. Only the seed level of the bootstrap can see the difference."""
    n = 400
    lesions = [f"L{i}" for i in range(n)]
    is_class = np.ones(n, bool)
    rs = resamples(3, lesions)
    never = np.zeros((3, n), bool)
    steady = np.zeros((3, n), bool)
    steady[:, ::2] = True  # every seed: half the images
    shaky = np.zeros((3, n), bool)
    shaky[1, ::2] = True  # seed 0: none, seed 1: half, seed 2: all
    shaky[2] = True
    r_steady = recall_gain(never, steady, is_class, rs)
    r_shaky = recall_gain(never, shaky, is_class, rs)
    assert r_steady["gain"] == r_shaky["gain"] == 0.5
    width = {k: r["ci95"][1] - r["ci95"][0] for k, r in (("steady", r_steady), ("shaky", r_shaky))}
    assert width["shaky"] > 5 * width["steady"]
    # 3 seeds drawn with replacement are all seed 0 (gain 0) or all seed 2 (gain 1) with
    # probability 1/27 = 3.7 % each, more than the 2.5 % tails: the interval is [0, 1]
    assert r_shaky["ci95"] == pytest.approx([0.0, 1.0], abs=0.02)


def test_weighted_ap_equals_ap_of_repeated_images():
    rng = np.random.default_rng(0)
    scores, is_class = rng.random(30), rng.random(30) < 0.3
    weights = rng.integers(0, 4, size=(2, 30)).astype(float)
    got = weighted_average_precision(scores, is_class, weights)
    for w, ap in zip(weights, got):
        idx = np.repeat(np.arange(30), w.astype(int))
        want = binary_average_precision(torch.tensor(scores[idx]), torch.tensor(is_class[idx]))
        assert ap == pytest.approx(want.item(), abs=1e-6)


def test_ap_gain_against_hand_computed_resamples():
    """Two lesions of two images each (a positive and a negative), one seed. The bootstrap can
    draw lesions {1,1}, {1,2}, {2,2} with probabilities 1/4, 1/2, 1/4.
    scores, images (L1+, L1-, L2+, L2-): arm a (0.9, 0.8, 0.1, 0.7), arm b (0.9, 0.1, 0.8, 0.2).
    AP of b is 1 in every draw (positives first). AP of a:
      {1,1}: 1 (L1+ above L1-);  {2,2}: 0.5 (L2+ last of 2);
      {1,2}: ranking L1+, L1-, L2-, L2+: precisions 1 and 2/4: AP = 0.75.
    So the gain is 0.25 on the data and {0, 0.25, 0.5} on the draws; the 2.5 and 97.5
    percentiles are the extremes 0 and 0.5."""
    lesions = ["L1", "L1", "L2", "L2"]
    is_class = np.array([True, False, True, False])
    a = np.array([[0.9, 0.8, 0.1, 0.7]])
    b = np.array([[0.9, 0.1, 0.8, 0.2]])
    r = ap_gain(a, b, is_class, resamples(1, lesions, n_boot=4000))
    assert r["gain"] == pytest.approx(0.25)
    assert r["ci95"] == pytest.approx([0.0, 0.5])
    assert not r["excludes_zero"]


def test_prior_matched_hits_flag_as_many_validation_images_as_the_class_has():
    val = np.array([[0.9, 0.2, 0.6, 0.1, 0.5]])  # 2 class images in validation
    val_is_class = np.array([True, False, False, False, True])
    hits = prior_matched_hits(val, val_is_class, np.array([[0.95, 0.6, 0.59, 0.0]]))
    assert hits.tolist() == [[True, True, False, False]]  # threshold: 2nd largest = 0.6
    with pytest.raises(ValueError, match="no validation image"):
        prior_matched_hits(val, np.zeros(5, bool), val)


def test_prior_matching_removes_a_pure_prior_shift():
    """Arm b is arm a with its class score multiplied by 3 (a shifted prior, same ranking):
    its argmax recall is higher, but at matched validation positive rate the hits are equal."""
    rng = np.random.default_rng(1)
    val_a, test_a = rng.random((1, 300)), rng.random((1, 300))
    val_is = rng.random(300) < 0.2
    a = prior_matched_hits(val_a, val_is, test_a)
    b = prior_matched_hits(3 * val_a, val_is, 3 * test_a)
    assert (a == b).all()
