"""Prior-matched recall: recall at a threshold every arm reaches on equal terms.

Arms differ in the class prior they were trained under (oversampling changes it, `reweight`
trains with a logit-adjusted loss that subtracts log pi from every class), and a changed prior
moves argmax recall without any better ranking. Matching each model's positive rate on
validation removes a shift of the class's own score, but not a per-class logit offset: softmax
couples the classes, so an offset on the *other* classes reorders images by p_c (a pure
-log pi adjustment moved mel's matched recall by -0.04 in simulation).

So each model's log-probabilities first get the per-class bias that maximises the likelihood of
the validation labels (bias-corrected calibration without temperature; Alexandari, Kundaje &
Shrikumar, ICML 2020). The likelihood is convex in the bias and the bias enters additively, so
a model that differs from another only by a logit offset gets exactly the other's calibrated
scores: the metric is invariant to any per-class offset. Then the threshold is the k-th largest
calibrated validation score of class c, k = the class's validation count.

The same calibrated scores rank a class's images for AP (classifier.gains): one-vs-rest p_c
moves under an offset on the other classes just as the threshold does (in the test's
simulation a -log pi adjustment moved a common class's raw AP by -0.13).
"""

from __future__ import annotations

import numpy as np

MIN_PROB = 1e-30  # probabilities are float32 softmax outputs: a 0 would be log -inf


def fit_class_bias(log_probs: np.ndarray, labels: np.ndarray, iters: int = 100) -> np.ndarray:
    """The bias b (K) maximising sum_i log softmax(log_probs_i + b)[labels_i] (Newton's method
    with a backtracking step; sum(b) = 0 fixes the free constant). Classes absent from
    `labels` get -inf: their likelihood has no finite optimum, and dropping them is its limit."""
    n, k = log_probs.shape
    present = np.bincount(labels, minlength=k) > 0
    z = log_probs[:, present].astype(np.float64)
    y = np.searchsorted(np.flatnonzero(present), labels)
    onehot = np.eye(present.sum())[y]
    b = np.zeros(present.sum())

    def nll(b: np.ndarray) -> float:
        s = z + b
        m = s.max(1, keepdims=True)
        return float((m[:, 0] + np.log(np.exp(s - m).sum(1)) - s[np.arange(n), y]).sum())

    f = nll(b)
    for _ in range(iters):
        s = z + b
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot).sum(0)
        if np.abs(grad).max() < 1e-9 * n:
            break
        hess = np.diag(p.sum(0)) - p.T @ p + 1.0  # + 1 1^T: the gauge direction
        step = np.linalg.solve(hess, -grad)
        t = 1.0
        while t > 1e-8:
            f_new = nll(b + t * step)
            if f_new <= f:
                break
            t /= 2
        b, f = b + t * step, f_new
    out = np.full(k, -np.inf)
    out[present] = b - b.mean()
    return out


def calibrate(
    val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's validation and test probabilities (S×Nv×K, S×N×K) on the validation prior,
    from one bias fit per seed on its own validation probabilities. Ranking a class's images by
    these is what AP needs to be fair as well: an offset on the other classes' logits reorders
    raw p_c too."""
    val_out, test_out = [], []
    for val, test in zip(val_probs, test_probs):
        bias = fit_class_bias(np.log(np.maximum(val, MIN_PROB)), val_labels)
        val_out.append(_with_bias(val, bias))
        test_out.append(_with_bias(test, bias))
    return np.stack(val_out), np.stack(test_out)


def _with_bias(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    s = np.log(np.maximum(probs.astype(np.float64), MIN_PROB)) + bias
    e = np.exp(s - s.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def calibrated_probs(
    val_probs: np.ndarray, val_labels: np.ndarray, probs: np.ndarray
) -> np.ndarray:
    """`probs` (S×N×K) on the validation prior (see calibrate)."""
    return calibrate(val_probs, val_labels, probs)[1]


def matched_hits(
    val_calibrated: np.ndarray, val_labels: np.ndarray, test_calibrated: np.ndarray, k: int
) -> np.ndarray:
    """S×N: test images whose calibrated class-k score reaches the threshold that flags as many
    validation images as class k has there."""
    if not (val_labels == k).any():
        raise ValueError("no validation image of this class: cannot match its prior")
    ones = np.ones((1, len(val_labels)))
    thresholds = matched_thresholds(val_calibrated[..., k], val_labels == k, ones)[0]
    return test_calibrated[..., k] >= thresholds[:, None]


def matched_thresholds(
    val_scores: np.ndarray, val_is_class: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """B×S thresholds, one per row of validation image weights (B×Nv, e.g. a lesion
    bootstrap's counts) and per seed's class scores (S×Nv): the highest score at which the
    images scoring at least that much weigh as much as the class's images. With unit weights
    it is the n_k-th largest score, n_k = the class's validation images; with no class image
    in a row, NaN (that draw has no threshold)."""
    n_k = weights @ val_is_class.astype(float)  # B
    out = np.full((len(weights), len(val_scores)), np.nan)
    for s, scores in enumerate(val_scores):
        order = np.argsort(-scores, kind="stable")
        reached = np.cumsum(weights[:, order], axis=1) >= n_k[:, None] - 1e-9
        first = reached.argmax(1)
        out[:, s] = np.where(n_k > 0, scores[order][first], np.nan)
    return out


def prior_matched_hits(
    val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray, k: int
) -> np.ndarray:
    """Test images flagged as class k by each seed's model (S×Nv×K, S×N×K -> S×N booleans): its
    scores calibrated on validation, then thresholded so that it flags as many validation
    images as class k has there."""
    val_calibrated, test_calibrated = calibrate(val_probs, val_labels, test_probs)
    return matched_hits(val_calibrated, val_labels, test_calibrated, k)
