"""Metrics against closed forms and known answers."""

from __future__ import annotations

import math

import pytest
import torch

from gan.filtering import (
    COPY,
    DUPLICATE,
    KEPT,
    copy_threshold,
    mahalanobis_scores,
    realism_scores,
    select,
)
from gan.metrics.features import FeatureSpace, metric_label
from gan.metrics.fid import fid
from gan.metrics.kid import kid, kid_full, mixture_kid
from gan.metrics.precision_recall import precision_recall


def gaussian(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=g, dtype=torch.float64) * torch.tensor(
        std, dtype=torch.float64
    ) + torch.tensor(mean, dtype=torch.float64)


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T


def test_fid_equals_closed_form_of_the_fitted_gaussians():
    x = gaussian(400, [0.0, 1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 1.0], 0)
    y = gaussian(300, [1.0, 0.0, 2.0, -0.5], [0.5, 1.0, 1.5, 2.0], 1) @ torch.tensor(
        [[1.0, 0.3, 0, 0], [0, 1, 0.2, 0], [0, 0, 1, 0], [0.1, 0, 0, 1]], dtype=torch.float64
    )
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = torch.cov(x.T), torch.cov(y.T)
    r = sqrtm_psd(s1)
    expected = (mu1 - mu2).square().sum() + torch.trace(s1 + s2 - 2 * sqrtm_psd(r @ s2 @ r))
    assert fid(x, y) == pytest.approx(expected.item(), rel=1e-6)


def test_fid_of_diagonal_gaussians_matches_population_value():
    m1, s1, m2, s2 = [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, -1.0, 0.5], [2.0, 2.0, 1.0]
    expected = sum((a - b) ** 2 for a, b in zip(m1, m2)) + sum(
        a**2 + b**2 - 2 * a * b for a, b in zip(s1, s2)
    )
    got = fid(gaussian(50_000, m1, s1, 0), gaussian(50_000, m2, s2, 1))
    assert got == pytest.approx(expected, rel=0.03)


def test_fid_of_a_set_with_itself_is_zero():
    x = gaussian(200, [0.0] * 8, [1.0] * 8, 0)
    assert abs(fid(x, x)) < 1e-6


def test_kid_of_a_set_with_itself_is_the_closed_form_and_vanishes_with_n():
    """Unbiased MMD² of X against X = -(2/m)(mean diagonal - mean off-diagonal kernel)."""
    values = []
    for m in (50, 400):
        x = gaussian(m, [0.0] * 8, [1.0] * 8, 0)
        k = (x @ x.T / 8 + 1) ** 3
        diag, off = k.diagonal().mean(), (k.sum() - k.diagonal().sum()) / (m * (m - 1))
        values.append(kid(x, x)[0])
        assert values[-1] == pytest.approx((-2 / m * (diag - off)).item(), rel=1e-6)
    assert abs(values[1]) < abs(values[0]) / 5


def test_kid_is_unbiased_for_two_draws_and_positive_for_a_shift():
    draws = [
        kid(gaussian(150, [0.0] * 8, [1.0] * 8, s), gaussian(150, [0.0] * 8, [1.0] * 8, s + 100))[0]
        for s in range(6)
    ]
    shifted = kid(gaussian(150, [0.0] * 8, [1.0] * 8, 0), gaussian(150, [0.7] * 8, [1.0] * 8, 1))
    mean = sum(draws) / len(draws)
    assert abs(mean) < 0.2 * shifted[0] and shifted[0] > 0.1


def test_kid_subset_size_is_capped_by_the_smaller_set():
    mean, std = kid(gaussian(20, [0.0] * 4, [1.0] * 4, 0), gaussian(500, [0.0] * 4, [1.0] * 4, 1))
    assert math.isfinite(mean) and math.isfinite(std)


def _two_classes(n0: int, n1: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0 around 0, class 1 around +1.5 in every feature: a labelled two-class set."""
    x = torch.cat(
        [gaussian(n0, [0.0] * 6, [1.0] * 6, seed), gaussian(n1, [1.5] * 6, [1.0] * 6, seed + 50)]
    )
    return x, torch.cat([torch.zeros(n0, dtype=torch.long), torch.ones(n1, dtype=torch.long)])


def test_mixture_kid_with_one_class_is_plain_kid_in_closed_form():
    real, fake = gaussian(40, [0.0] * 6, [1.0] * 6, 0), gaussian(60, [0.3] * 6, [1.0] * 6, 1)
    labels = torch.zeros(40, dtype=torch.long)
    assert mixture_kid(real, labels, fake, {0: 1.0}) == pytest.approx(
        kid_full(real, fake), rel=1e-9
    )


def test_mixture_kid_matches_a_hand_computed_weighted_mmd():
    """Two 1-D classes, weights 0.25 / 0.75: every block mean written out by hand."""
    real = torch.tensor([[0.0], [1.0], [2.0], [4.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1])
    fake = torch.tensor([[0.5], [3.0], [4.5]], dtype=torch.float64)

    def k(a: float, b: float) -> float:
        return (a * b + 1) ** 3

    c0, c1, f = [0.0, 1.0], [2.0, 4.0, 5.0], [0.5, 3.0, 4.5]

    def mean(a, b, within=False):
        pairs = [
            (x, y) for i, x in enumerate(a) for j, y in enumerate(b) if not (within and i == j)
        ]
        return sum(k(x, y) for x, y in pairs) / len(pairs)

    w0, w1 = 0.25, 0.75
    xx = w0 * w0 * mean(c0, c0, True) + w1 * w1 * mean(c1, c1, True) + 2 * w0 * w1 * mean(c0, c1)
    ff = mean(f, f, True)
    xf = w0 * mean(c0, f) + w1 * mean(c1, f)
    assert mixture_kid(real, labels, fake, {0: 1.0, 1: 3.0}) == pytest.approx(xx + ff - 2 * xf)


def test_a_perfect_balanced_draw_is_at_the_floor_only_against_a_balanced_reference():
    """The source's case: a natural-mix reference (90 % class 0) against a generator that
    draws both classes equally. Plain KID scores the mix; mixture KID ~ 0 (unbiased), and a
    generator with the natural mix is the one it penalises."""
    plain, weighted, wrong_mix = [], [], []
    mix = {0: 0.5, 1: 0.5}
    for s in range(5):
        reference, ref_labels = _two_classes(270, 30, 10 * s)
        balanced, _ = _two_classes(150, 150, 10 * s + 1)
        natural, _ = _two_classes(270, 30, 10 * s + 2)
        plain.append(kid_full(reference, balanced))
        weighted.append(mixture_kid(reference, ref_labels, balanced, mix))
        wrong_mix.append(mixture_kid(reference, ref_labels, natural, mix))
    assert min(plain) > 1 and abs(sum(weighted)) / 5 < 0.05 * min(plain)
    assert min(wrong_mix) > 0.5 * min(plain)


def test_mixture_kid_is_unbiased_over_draws_and_compares_two_labelled_sets():
    mix = {0: 0.5, 1: 0.5}
    values = []
    for s in range(8):
        real, real_labels = _two_classes(60, 8, 10 * s)
        other, other_labels = _two_classes(20, 40, 10 * s + 5)
        values.append(mixture_kid(real, real_labels, other, mix, other_labels))
    shifted, shifted_labels = _two_classes(20, 40, 999)
    far = mixture_kid(real, real_labels, shifted + 0.7, mix, shifted_labels)
    assert abs(sum(values) / len(values)) < 0.1 * far


def test_mixture_kid_leaves_out_classes_without_two_images_and_refuses_when_none_is_left():
    real, labels = _two_classes(30, 1, 0)
    fake = gaussian(50, [0.0] * 6, [1.0] * 6, 3)
    only_0 = mixture_kid(real, labels, fake, {0: 0.5, 1: 0.5})
    assert only_0 == pytest.approx(kid_full(real[:30], fake))
    with pytest.raises(ValueError, match="2 or more"):
        mixture_kid(real, labels, fake, {1: 1.0})


def test_precision_recall_identical_and_disjoint_sets():
    x = gaussian(100, [0.0] * 4, [1.0] * 4, 0)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100) == (0.0, 0.0)


def test_precision_drops_for_outliers_and_recall_for_a_collapsed_set():
    real = gaussian(300, [0.0] * 4, [1.0] * 4, 0)
    half_far = torch.cat([gaussian(150, [0.0] * 4, [1.0] * 4, 1), real[:150] + 50])
    p, r = precision_recall(real, half_far)
    assert 0.35 < p < 0.65
    collapsed = gaussian(300, [0.0] * 4, [0.05] * 4, 2)
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.2


def test_metric_label_names_space_and_sizes():
    space = FeatureSpace("domain", 256, torch.nn.Identity())
    assert metric_label("FID", space, 80, 2000) == "FID[domain-256d, n=80 vs 2000]"


# ---------------------------------------------------------------- filtering


def test_realism_prefers_on_manifold_samples():
    real = gaussian(200, [0.0] * 4, [1.0] * 4, 0)
    on, off = gaussian(50, [0.0] * 4, [1.0] * 4, 1), gaussian(50, [6.0] * 4, [1.0] * 4, 2)
    s = realism_scores(torch.cat([on, off]), real)
    assert s[:50].median() > s[50:].max()
    m = mahalanobis_scores(torch.cat([on, off]), real)
    assert m[:50].median() > m[50:].max()


def test_select_rejects_copies_and_duplicates_and_keeps_n():
    real = gaussian(100, [0.0] * 4, [1.0] * 4, 0)
    thr = copy_threshold(real)
    fresh = gaussian(60, [0.0] * 4, [1.0] * 4, 1)
    copies = real[:5] + 1e-4
    dupes = fresh[:5] + 1e-4
    pool = torch.cat([fresh, copies, dupes])
    sel = select(pool, real, n=40)
    assert len(sel.kept) == 40 and len(set(sel.kept.tolist())) == 40
    assert all(sel.verdict[60 + i] == COPY for i in range(5))
    kept_or_dup = [sel.verdict[i] for i in range(5)] + [sel.verdict[65 + i] for i in range(5)]
    # of each original/duplicate pair at most one is kept
    for i in range(5):
        pair = {sel.verdict[i], sel.verdict[65 + i]}
        assert KEPT not in pair or pair <= {KEPT, DUPLICATE, "low-score"}
        assert not (sel.verdict[i] == KEPT and sel.verdict[65 + i] == KEPT)
    assert kept_or_dup
    assert (sel.nearest_real[sel.kept] >= thr).all()


def test_select_returns_fewer_when_the_pool_is_all_copies():
    real = gaussian(50, [0.0] * 4, [1.0] * 4, 0)
    sel = select(real.clone(), real, n=10)
    assert len(sel.kept) == 0 and set(sel.verdict) == {COPY}


@pytest.mark.parametrize("score", ["matching", "realism", "mahalanobis"])
def test_every_selection_rule_rejects_copies(score):
    real = gaussian(100, [0.0] * 4, [1.0] * 4, 0)
    pool = torch.cat([gaussian(60, [0.0] * 4, [1.0] * 4, 1), real[:5] + 1e-4])
    sel = select(pool, real, n=30, score=score)
    assert len(sel.kept) == 30 and all(sel.verdict[60 + i] == COPY for i in range(5))


def test_matching_selection_beats_a_random_subset_of_the_pool():
    """A pool that over-represents one mode: matching keeps a set shaped like the real one."""
    real = torch.cat(
        [gaussian(150, [0.0] * 4, [1.0] * 4, 0), gaussian(150, [4.0] * 4, [1.0] * 4, 1)]
    )
    pool = torch.cat(
        [gaussian(900, [0.0] * 4, [1.0] * 4, 2), gaussian(300, [4.0] * 4, [1.0] * 4, 3)]
    )
    sel = select(pool, real, n=400, score="matching")
    random = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:400]
    assert len(sel.kept) == 400
    assert fid(real, pool[sel.kept]) < 0.5 * fid(real, pool[random])
    far_mode = (pool[sel.kept].mean(1) > 2).float().mean()
    assert 0.4 < far_mode < 0.6  # the real set is half/half; the pool was 3:1
