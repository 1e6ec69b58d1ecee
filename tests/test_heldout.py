"""Generator quality is judged on the class's validation images, never on its training images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gan.metrics.features import FeatureSpace, extract_features
from gan.metrics.fid import fid
from gan.metrics.filter_verdict import filter_vs_random
from gan.metrics.kid import kid, mixture_kid
from gan.metrics.sets import fid_at_n, real_floor, set_metrics
from gan.networks import Architecture
from gan.training import TrainConfig, new_state, sample
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps.gan_run import ClassRun, FidTracker, class_mix, class_run
from pipelines.steps.sampling import _set_quality


class _ColourStats(nn.Module):
    """A transparent feature space: per-channel mean and std of the image (6-d)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # a device for extract_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


SPACE = FeatureSpace("colour", 6, _ColourStats())


def _images(n: int, level: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(level, 30, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def test_class_run_halves_the_class_validation_lesions_into_selection_and_judging(tmp_path):
    """best.pt is chosen on one half of a class's validation lesions and its samples judged
    on the other: together they are its validation images, no lesion is in both, and the
    source's halves cut every class."""
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    lesion = np.asarray(ds.lesion_ids)
    train_lesions = set(lesion[split.train])
    for cls, val in (
        ("df", split.val[ds.labels[split.val] == ds.class_index("df")]),
        ("all", split.val),
    ):
        run = class_run(ds, split, cls, tmp_path)
        both = np.concatenate([run.heldout, run.judging])
        assert sorted(map(bytes, both)) == sorted(map(bytes, ds.images[val]))
        picked, judged = set(run.heldout_lesions), set(run.judging_lesions)
        assert not picked & judged and picked | judged == set(lesion[val])
        assert not train_lesions & (picked | judged)
        labels = ds.labels[val]
        for k in np.unique(labels):  # each class's lesions halved (the larger half selects)
            ids = set(lesion[val][labels == k])
            n_judged = len(ids & judged)
            assert n_judged == len(ids) // 2 and len(ids & picked) == len(ids) - n_judged
    assert np.array_equal(run.labels, ds.labels[split.train])
    assert len(run.heldout_labels) == len(run.heldout)
    df = class_run(ds, split, "df", tmp_path)  # the source chose nothing on df's judging half
    k = ds.class_index("df")
    label_of = dict(zip(ds.lesion_ids, ds.labels))
    source_judged = {les for les in run.judging_lesions if label_of[les] == k}
    assert source_judged == set(df.judging_lesions)


def test_a_gan_chosen_on_every_validation_image_is_refused(tmp_path):
    from pipelines.errors import UserError
    from pipelines.steps.gan_run import SELECTION_RULE, check_selection

    check_selection({"extra": {"selection": SELECTION_RULE}}, tmp_path)
    with pytest.raises(UserError, match="chosen on all validation images.*delete"):
        check_selection({"extra": {"n_heldout": 12}}, tmp_path)


def test_tracker_scores_the_generator_against_heldout_reals_only(tmp_path):
    # training reals dark, held-out reals bright: a leak of either into the other's place
    # changes every number below
    run = ClassRun("x", tmp_path, _images(40, 60, 0), _images(12, 190, 1))
    saved = []
    tracker = FidTracker(run, SPACE, 64, 100, 0, lambda s, row: saved.append(row), "fp32")
    state = new_state(Architecture(size=32), TrainConfig(), torch.device("cpu"))
    tracker(state)
    row = saved[0]  # the first evaluation is always the best so far

    fakes = extract_features(SPACE, sample(state.sampler, tracker.z))
    train = extract_features(SPACE, torch.from_numpy(run.images).permute(0, 3, 1, 2))
    held = extract_features(SPACE, torch.from_numpy(run.heldout).permute(0, 3, 1, 2))
    assert row["heldout_kid"] == pytest.approx(kid(held, fakes)[0], rel=1e-9)
    assert row["heldout_fid"] == pytest.approx(fid(held, fakes), rel=1e-9)
    assert row["train_kid"] == pytest.approx(kid(train, fakes)[0], rel=1e-9)
    assert row["heldout_kid"] != pytest.approx(row["train_kid"], rel=1e-3)
    assert row["floor_kid"] == pytest.approx(kid(held, train)[0], rel=1e-9)
    assert row["heldout_kid_label"] == "KID[colour-6d, n=12 vs 64]"
    assert row["floor_fid_label"] == "FID[colour-6d, n=12 vs 40]"
    assert tracker.selection.startswith("lowest held-out KID (the class's 12 validation")


def test_tracker_falls_back_to_training_kid_without_validation_images(tmp_path):
    run = ClassRun("x", tmp_path, _images(40, 60, 0), _images(1, 190, 1))
    tracker = FidTracker(run, SPACE, 32, 100, 0, lambda s, row: None, "fp32")
    assert tracker.by == "train_kid" and "only 1 validation images" in tracker.selection


def test_the_source_is_judged_against_validation_reals_weighted_to_its_training_mix(tmp_path):
    """A balanced source (two classes, 36 : 4 training images, 10 : 2 validation images) is
    scored and its best.pt chosen by the mixture KID; its floor is the training reals against
    the validation reals, both weighted to the same mix."""
    images = np.concatenate([_images(36, 60, 0), _images(4, 190, 1)])
    labels = np.array([0] * 36 + [1] * 4)
    heldout = np.concatenate([_images(10, 60, 2), _images(2, 190, 3)])
    held_labels = np.array([0] * 10 + [1] * 2)
    run = ClassRun("all", tmp_path, images, heldout, labels, heldout_labels=held_labels)
    mix = class_mix(run, "balanced")
    assert mix == {0: 0.5, 1: 0.5} and class_mix(run, "uniform") == {0: 0.9, 1: 0.1}
    assert class_mix(ClassRun("x", tmp_path, images, heldout), "balanced") is None
    saved = []
    tracker = FidTracker(run, SPACE, 64, 100, 0, lambda s, row: saved.append(row), "fp32", mix)
    state = new_state(Architecture(size=32), TrainConfig(), torch.device("cpu"))
    tracker(state)
    row = saved[0]
    assert tracker.by == "heldout_mix_kid" and "class mix" in tracker.selection

    def feats(x: np.ndarray) -> torch.Tensor:
        return extract_features(SPACE, torch.from_numpy(x).permute(0, 3, 1, 2))

    fakes = extract_features(SPACE, sample(state.sampler, tracker.z))
    held_l, train_l = torch.from_numpy(held_labels), torch.from_numpy(labels)
    assert row["heldout_mix_kid"] == pytest.approx(
        mixture_kid(feats(heldout), held_l, fakes, mix), rel=1e-9
    )
    assert row["floor_mix_kid"] == pytest.approx(
        mixture_kid(feats(heldout), held_l, feats(images), mix, train_l), rel=1e-9
    )
    assert row["heldout_mix_kid"] != pytest.approx(row["heldout_kid"], rel=1e-3)
    assert row["heldout_mix_kid_label"].endswith("training's class mix")


def test_floor_is_training_reals_scored_against_heldout_reals():
    g = torch.Generator().manual_seed(0)
    train, held = torch.randn(80, 4, generator=g), torch.randn(20, 4, generator=g) + 0.5
    floor = real_floor(train, held, SPACE)
    assert floor["kid"] == kid(held, train)[0] and floor["fid"] == fid(held, train)
    assert floor["n"] == 80 and floor["n_reference"] == 20


def test_matched_fid_subsamples_to_the_floor_n():
    g = torch.Generator().manual_seed(0)
    ref, gen = torch.randn(30, 3, generator=g), torch.randn(500, 3, generator=g)
    m = set_metrics(ref, gen, SPACE, match_n=40)
    assert m["fid_matched_label"] == "FID[colour-6d, n=30 vs 40]"
    assert m["fid_matched"] == fid_at_n(ref, gen, 40)
    # FID is biased upwards at small n: the matched number is the larger one
    assert m["fid_matched"] > m["fid"]


def test_filter_verdict_follows_the_heldout_reals_not_the_training_reals():
    """Mutant 'the held-out filter flag computed on training sets': the kept half of the pool
    sits on the held-out reals' distribution and off the training reals', so the verdict on
    held-out reals is "beats" and one computed on the training reals would be "worse"."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(60, 4, generator=g, dtype=torch.float64)  # training reals: mean 0
    heldout = torch.randn(40, 4, generator=g, dtype=torch.float64) + 2.0  # held-out: mean 2
    on_heldout = torch.randn(100, 4, generator=g, dtype=torch.float64) + 2.0
    on_training = torch.randn(100, 4, generator=g, dtype=torch.float64)
    pool = torch.cat([on_heldout, on_training])
    random_n = torch.randperm(200, generator=g)[:100]
    subsets = {"kept": pool[:100], "random": pool[random_n], "pool": pool}
    lesions = [f"L{i // 2}" for i in range(40)]  # two photos per held-out lesion
    space = FeatureSpace("toy", 4, nn.Identity())
    out = _set_quality(subsets, real, heldout, space, lesions, seed=1)

    held = out["filter_vs_random_heldout"]
    assert held["verdict"] == "beats" and held["ci95"][1] < 0 and held["clusters"] == 20
    assert held == filter_vs_random(pool[:100], pool, heldout, lesions, seed=1).as_dict()
    assert out["verdict"].startswith("on held-out reals, kept KID[toy-4d, n=40 vs 100]")
    assert "the filter beats random selection" in out["verdict"]
    # the same question asked of the training reals has the opposite answer
    assert filter_vs_random(pool[:100], pool, real, seed=1).verdict == "worse"
    assert out["sets"]["kept"]["fid"] > out["sets"]["random"]["fid"]
    assert "filter_beats_random" not in out and "filter_beats_random_heldout" not in out


def test_the_selection_half_chooses_and_the_judging_half_reports(tmp_path, monkeypatch):
    """A spy on every image set each step reads: the GAN's evaluations (which choose best.pt)
    read the selection half and never the judging half; sampling's held-out KID, filter
    verdict and detectability read the judging half and never the selection half."""
    import pipelines.steps.detect as detect
    import pipelines.steps.gan_run as gan_run
    import pipelines.steps.sampling as sampling
    from gan.checkpoint import save_checkpoint
    from pipelines.steps.detect import Detector

    ds = load_dataset("demo", 32, progress=False)
    run = class_run(ds, load_or_make_split(ds, tmp_path), "df", tmp_path)
    read: dict[str, list[bytes]] = {"gan": [], "sampling": [], "detect": []}

    def spying(module, step: str, name: str, at: int):
        real = getattr(module, name)

        def spy(*args, **kwargs):
            x = args[at]
            read[step].append((x if isinstance(x, np.ndarray) else x.numpy()).tobytes())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    spying(gan_run, "gan", "extract_features", 1)
    spying(sampling, "sampling", "extract_features", 1)
    spying(detect, "detect", "detectability", 2)
    nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).numpy().tobytes()  # noqa: E731
    select, judge = nchw(run.heldout), nchw(run.judging)

    FidTracker(run, SPACE, 16, 100, 0, lambda s, row: None, "fp32")
    assert select in read["gan"] and judge not in read["gan"]

    cfg = TrainConfig()
    state = new_state(Architecture(size=32), cfg, torch.device("cpu"))
    extra = {"selection": gan_run.SELECTION_RULE, "eval": {"heldout_kid": 0.1}}
    run.folder.path.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run.folder.best, state, cfg, extra)
    opts = sampling.SampleOptions(n=6, fmt="npz", pool_factor=2.0)
    summary = sampling.sample_class(
        run, opts, SPACE, tmp_path / "samples", torch.device("cpu"), {}, True, Detector(steps=4)
    )
    assert judge in read["sampling"] and select not in read["sampling"]
    assert read["detect"] == [run.judging.tobytes()]  # the real test images of detectability
    assert summary["n_heldout"] == len(run.judging) < len(run.heldout) + len(run.judging)
