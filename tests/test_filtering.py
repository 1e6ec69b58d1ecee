"""The filter, honestly: no order bias, a copy threshold that duplicates cannot shrink, and a
filter-vs-random verdict with an interval (tiny synthetic feature sets, no data needed)."""

from __future__ import annotations

import pytest
import torch

from gan.filtering import COPY, KEPT, copy_threshold, select
from gan.metrics.filter_verdict import BEATS, NO_DIFFERENCE, WORSE, filter_vs_random, word
from gan.metrics.kid import kid, kid_full


def gaussian(n: int, d: int, seed: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * std + mean


# ---------------------------------------------------------------- matching order


def test_matching_keeps_no_index_order_bias():
    """200 reals sorted by one coordinate, keep 100 of 400: with reals claiming in index order,
    the partial last round went to the low-index reals (kept mean of the coordinate -0.63 vs
    the reals' -0.05). Claiming in a random order per round keeps it at the reals' mean."""
    biases = []
    for seed in range(5):
        real = gaussian(200, 4, seed)
        pool = gaussian(400, 4, 100 + seed)
        for order in (real[:, 0].argsort(), real[:, 0].argsort(descending=True)):
            kept = select(pool, real[order], 100, seed=seed).kept
            assert len(kept) == 100
            biases.append(float(pool[kept, 0].mean() - real[:, 0].mean()))
    assert max(abs(b) for b in biases) < 0.3  # index order: about -0.6 and +0.6
    assert abs(sum(biases) / len(biases)) < 0.1


def test_matching_order_comes_from_the_seed():
    real, pool = gaussian(50, 4, 0), gaussian(120, 4, 1)
    a, b = select(pool, real, 30, seed=3), select(pool, real, 30, seed=3)
    assert torch.equal(a.kept, b.kept)
    others = [select(pool, real, 30, seed=s).kept for s in range(4, 8)]
    assert any(set(k.tolist()) != set(a.kept.tolist()) for k in others)


# ---------------------------------------------------------------- copy threshold


def test_exact_duplicate_reals_do_not_shrink_the_copy_threshold():
    """Mutant 'exact-duplicate reals shrink the copy threshold': with zero distances counted,
    20 of 60 nearest-real distances are 0, the 5 % threshold is 0 and copies pass."""
    real = gaussian(40, 4, 0)
    with_dupes = torch.cat([real, real[:20]])
    thr, thr_dupes = copy_threshold(real), copy_threshold(with_dupes)
    assert thr > 0 and thr_dupes == pytest.approx(thr, rel=0.5)
    pool = torch.cat([gaussian(60, 4, 1), real[:5] + 1e-4])
    sel = select(pool, with_dupes, n=30)
    assert all(sel.verdict[60 + i] == COPY for i in range(5))
    assert sel.threshold == thr_dupes


def test_photos_of_one_lesion_do_not_shrink_the_grouped_threshold():
    """Several photos of a lesion, near each other: without lesion ids they pull the threshold
    down to their own spacing; with them, the threshold is how close distinct lesions come."""
    lesions = gaussian(40, 4, 0)
    photos = torch.cat([lesions, lesions[:20] + 1e-3 * gaussian(20, 4, 1)])
    groups = [f"L{i}" for i in range(40)] + [f"L{i}" for i in range(20)]
    plain, grouped = copy_threshold(photos), copy_threshold(photos, groups=groups)
    assert plain < 0.01 < grouped
    assert grouped == pytest.approx(copy_threshold(lesions), rel=0.2)
    # a sample a little off a lesion: a copy by the grouped rule, not by the plain one
    near = lesions[:3] + grouped / 4  # at half the grouped threshold from a lesion's photos
    pool = torch.cat([gaussian(60, 4, 2), near])
    grouped_sel, plain_sel = select(pool, photos, 30, real_groups=groups), select(pool, photos, 30)
    assert all(grouped_sel.verdict[60 + i] == COPY for i in range(3))
    assert all(plain_sel.verdict[60 + i] != COPY for i in range(3))
    with pytest.raises(ValueError, match="group ids"):
        select(pool, photos, 30, real_groups=groups[:-1])


# ---------------------------------------------------------------- the verdict


def test_closed_form_kid_matches_torchmetrics_when_one_subset_covers_the_sets():
    a, b = gaussian(50, 8, 0), gaussian(50, 8, 1, mean=0.3)
    assert kid_full(a, b) == pytest.approx(kid(a, b, subsets=3, subset_size=50)[0], rel=1e-9)


def test_word_follows_the_interval():
    assert word(-2.0, -1.0) == BEATS and word(1.0, 2.0) == WORSE
    assert word(-1.0, 1.0) == NO_DIFFERENCE


def test_equal_sets_give_no_difference_in_most_draws():
    """The kept set a random subset of a pool from the held-out reals' distribution: equal by
    construction, so 'beats'/'worse' is a false alarm (nominal 5 % each way together)."""
    verdicts = []
    for seed in range(10):
        pool, held = gaussian(200, 8, seed), gaussian(60, 8, 100 + seed)
        kept = pool[torch.randperm(200, generator=torch.Generator().manual_seed(seed))[:100]]
        v = filter_vs_random(kept, pool, held, replicates=400, seed=seed)
        assert v.ci95[0] <= v.kid_diff <= v.ci95[1]
        verdicts.append(v.verdict)
    assert verdicts.count(NO_DIFFERENCE) >= 8


def _mixed_pool(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the pool from the held-out reals' distribution, half shifted off it."""
    return torch.cat([gaussian(100, 8, seed), gaussian(100, 8, seed + 1, mean=0.8)]), gaussian(
        60, 8, seed + 2
    )


def test_a_clearly_better_kept_set_beats_random():
    pool, held = _mixed_pool(0)
    v = filter_vs_random(pool[:100], pool, held, replicates=400)
    assert v.verdict == BEATS and v.ci95[1] < 0 and v.kid_kept < v.kid_random


def test_a_clearly_worse_kept_set_is_worse_than_random():
    pool, held = _mixed_pool(0)
    v = filter_vs_random(pool[100:], pool, held, replicates=400)
    assert v.verdict == WORSE and v.ci95[0] > 0


def test_the_random_reference_is_the_average_random_subset():
    pool, held = _mixed_pool(3)
    v = filter_vs_random(pool[:50], pool, held, replicates=50)
    assert v.kid_random == pytest.approx(kid_full(held, pool), rel=1e-9)
    assert v.kid_kept == pytest.approx(kid_full(held, pool[:50]), rel=1e-9)


def test_lesions_are_resampled_whole():
    """Five identical photos per held-out lesion are one observation, not five: resampling
    lesions gives the honest interval, about sqrt(5) wider than resampling photos (a large
    pool, so that the random subsets' share of the width is small)."""
    pool = torch.cat([gaussian(1000, 8, 0), gaussian(1000, 8, 1, mean=0.8)])
    held = gaussian(12, 8, 2).repeat_interleave(5, dim=0)
    groups = [f"L{i // 5}" for i in range(len(held))]
    by_photo = filter_vs_random(pool[:1000], pool, held, replicates=400)
    by_lesion = filter_vs_random(pool[:1000], pool, held, groups, replicates=400)
    width = lambda v: v.ci95[1] - v.ci95[0]  # noqa: E731
    assert by_lesion.clusters == 12 and by_photo.clusters == 60
    assert by_lesion.unit == "lesions" and by_photo.unit == "images"
    assert width(by_lesion) > 1.5 * width(by_photo)


def test_verdict_refuses_too_small_sets():
    pool, held = _mixed_pool(0)
    with pytest.raises(ValueError):
        filter_vs_random(pool[:1], pool, held)
    with pytest.raises(ValueError):
        filter_vs_random(pool, pool[:10], held)


def test_kept_and_verdict_statuses_are_consistent():
    real, pool = gaussian(60, 4, 0), gaussian(150, 4, 1)
    sel = select(pool, real, 40, seed=1)
    assert [i for i, v in enumerate(sel.verdict) if v == KEPT] == sorted(sel.kept.tolist())
