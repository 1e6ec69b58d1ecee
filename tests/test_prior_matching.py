from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from classifier.prior_matching import (
    calibrated_probs,
    fit_class_bias,
    matched_thresholds,
    prior_matched_hits,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _simulated_logits(
    rng: np.random.Generator, n: int, prior: np.ndarray, centres: np.ndarray | None = None
) -> tuple:
    """Logits of a fixed, imperfect K-class model (class c's images around centres[c])."""
    k = len(prior)
    labels = rng.choice(k, size=n, p=prior)
    if centres is None:
        centres = 2.5 * np.eye(k) + np.random.default_rng(99).normal(size=(k, k))
    z = centres[labels] + rng.normal(size=(n, k)) + np.log(prior)
    return z, labels


def test_fit_class_bias_undoes_a_known_offset():
    rng = np.random.default_rng(0)
    prior = np.array([0.6, 0.2, 0.1, 0.1])
    z, labels = _simulated_logits(rng, 5000, prior)
    b0 = fit_class_bias(z, labels)
    offset = np.array([0.0, 2.0, -1.0, 0.5])
    b1 = fit_class_bias(z + offset, labels)
    assert b1 - b0 == pytest.approx(-(offset - offset.mean()), abs=1e-6)
    # at the optimum the calibrated probabilities sum, per class, to the class counts
    p = _softmax(z + b0)
    assert p.sum(0) == pytest.approx(np.bincount(labels, minlength=4), rel=1e-6)


def test_a_class_absent_from_validation_is_dropped():
    z = np.random.default_rng(1).normal(size=(50, 3))
    labels = np.r_[np.zeros(25, int), np.full(25, 2)]
    b = fit_class_bias(z, labels)
    assert b[1] == -np.inf and np.isfinite(b[[0, 2]]).all()


def test_a_pure_logit_adjustment_leaves_prior_matched_recall_unchanged():
    """What `reweight` amounts to: the same model with -log(pi) added to every class's logit,
    which changes no ranking of the model's own making. Raw scores matched to the prior still
    move (softmax couples the classes: an offset on the others reorders p_c); calibrated ones
    must not (audit: -0.040 mel, -0.019 df in a 50k simulation)."""
    rng = np.random.default_rng(2)
    prior = np.array([0.67, 0.11, 0.11, 0.05, 0.03, 0.02, 0.01])  # HAM10000-like
    z_val, y_val = _simulated_logits(rng, 25_000, prior)
    z_test, y_test = _simulated_logits(rng, 25_000, prior)
    adjust = -np.log(prior)
    for k in (1, 5):  # a common and a rare class
        is_k = y_test == k

        def recall(val_logits, test_logits, k=k, is_k=is_k):
            hits = prior_matched_hits(
                _softmax(val_logits)[None], y_val, _softmax(test_logits)[None], k
            )
            return hits[0, is_k].mean()

        def raw_recall(val_logits, test_logits, k=k, is_k=is_k):
            n_k = int((y_val == k).sum())
            threshold = np.sort(_softmax(val_logits)[:, k])[-n_k]
            return (_softmax(test_logits)[is_k, k] >= threshold).mean()

        moved = recall(z_val + adjust, z_test + adjust) - recall(z_val, z_test)
        assert abs(moved) < 0.005
        raw_moved = raw_recall(z_val + adjust, z_test + adjust) - raw_recall(z_val, z_test)
        assert abs(raw_moved) > 0.005  # the artefact the calibration removes is real here


def test_threshold_comes_from_validation_not_test():
    """Validation flags its 2 class images at 0.6 (the calibrated 2nd largest); the test set's
    scores are all higher, so a threshold fitted on test (its own k-th largest) would flag
    fewer of them than the validation threshold does."""
    rng = np.random.default_rng(3)
    k = 1
    val = _softmax(rng.normal(size=(40, 3)))
    val_labels = rng.integers(0, 3, 40)
    val_labels[:2] = k
    test = _softmax(rng.normal(size=(30, 3)) + np.array([0.0, 3.0, 0.0]))
    hits = prior_matched_hits(val[None], val_labels, test[None], k)[0]
    cal_val = calibrated_probs(val[None], val_labels, val[None])[0, :, k]
    cal_test = calibrated_probs(val[None], val_labels, test[None])[0, :, k]
    threshold = np.sort(cal_val)[-int((val_labels == k).sum())]
    assert hits.tolist() == (cal_test >= threshold).tolist()
    assert hits.sum() > (val_labels == k).sum()  # test, not validation, prevalence of flags
    with pytest.raises(ValueError, match="no validation image"):
        prior_matched_hits(val[None], np.zeros(40, int), test[None], 2)


def test_each_seed_is_matched_on_its_own_validation_scores():
    rng = np.random.default_rng(4)
    val = _softmax(rng.normal(size=(2, 60, 3)))
    test = _softmax(rng.normal(size=(2, 50, 3)))
    labels = rng.integers(0, 3, 60)
    both = prior_matched_hits(val, labels, test, 2)
    for s in range(2):
        assert (both[s] == prior_matched_hits(val[s : s + 1], labels, test[s : s + 1], 2)[0]).all()


def test_ap_on_the_validation_prior_ignores_a_pure_logit_adjustment():
    """Raw one-vs-rest AP is not offset-free either: -log(pi) on every class reorders p_c
    (here it moves the AP of a class with prior 0.11 by > 0.05). On scores put on the
    validation prior it does not move."""
    rng = np.random.default_rng(5)
    prior = np.array([0.67, 0.11, 0.11, 0.05, 0.03, 0.02, 0.01])
    z_val, y_val = _simulated_logits(rng, 20_000, prior)
    z_test, y_test = _simulated_logits(rng, 20_000, prior)
    adjust = -np.log(prior)

    def ap(scores: np.ndarray, k: int) -> float:
        target = torch.from_numpy((y_test == k).astype(int))
        return binary_average_precision(torch.from_numpy(scores), target).item()

    for k in (1, 5):
        raw = ap(_softmax(z_test)[:, k], k), ap(_softmax(z_test + adjust)[:, k], k)
        cal = [
            ap(calibrated_probs(_softmax(v)[None], y_val, _softmax(t)[None])[0, :, k], k)
            for v, t in ((z_val, z_test), (z_val + adjust, z_test + adjust))
        ]
        assert abs(cal[1] - cal[0]) < 0.005
        if k == 1:
            assert abs(raw[1] - raw[0]) > 0.05


def test_weighted_thresholds_are_those_of_the_repeated_images():
    """A lesion bootstrap's weights (how often each validation image is drawn) give the
    threshold of the validation set with the images repeated; unit weights the n_k-th
    largest score; a draw without the class has no threshold."""
    rng = np.random.default_rng(1)
    scores = rng.random((3, 40))  # S×Nv
    is_class = np.zeros(40, bool)
    is_class[:7] = True
    weights = rng.multinomial(40, np.full(40, 1 / 40), size=5).astype(float)
    weights[4, :7] = 0.0  # this draw holds no image of the class
    got = matched_thresholds(scores, is_class, np.vstack([np.ones(40), weights]))
    assert (got[0] == np.sort(scores, axis=1)[:, -7]).all()
    for b, w in enumerate(weights[:4], start=1):
        repeated = np.repeat(scores, w.astype(int), axis=1)
        n_k = int(w[:7].sum())
        assert (got[b] == np.sort(repeated, axis=1)[:, -n_k]).all()
    assert np.isnan(got[5]).all()
