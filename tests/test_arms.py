"""pipelines.config.arms: what each arm trains on, and the classifier budget of a profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.config.arms import ARM_SPECS
from pipelines.config.profiles import PROFILES
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps.recipe import classifier_config
from pipelines.steps.training_set import build_arm, targets_for


def test_build_arms_adds_exactly_the_rare_class_images(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "50")
    df = ds.class_index("df")
    fake = {"gan": {"df": np.full((100, 32, 32, 3), 7, np.uint8)}}
    arms = {
        a: build_arm(ds, split, targets, fake, a, seed=0) for a in ("baseline", "oversample", "gan")
    }
    n_real_df = int((ds.labels[split.train] == df).sum())
    for name, arm in arms.items():
        counts = np.bincount(arm.labels, minlength=7)
        base = np.bincount(ds.labels[split.train], minlength=7)
        expect = base.copy()
        if name != "baseline":
            expect[df] = 50
        assert (counts == expect).all(), name
    assert (arms["gan"].images[-(50 - n_real_df) :] == 7).all()
    real_df = {ds.images[i].tobytes() for i in split.train[ds.labels[split.train] == df]}
    added = arms["oversample"].images[len(split.train) :]
    assert all(im.tobytes() in real_df for im in added)  # resampled real df images only


def test_step_budget_follows_the_profile_epochs_and_cap():
    quick = PROFILES["quick"]
    big = classifier_config(quick, 7000, 0, "fp32")
    small = classifier_config(quick, 1000, 0, "fp32")
    assert quick.classifier_epochs * 7000 / quick.batch_size > quick.classifier_steps_cap
    assert big.steps == quick.classifier_steps_cap  # HAM10000-sized data reaches the cap
    assert small.steps == int(quick.classifier_epochs * 1000 / quick.batch_size)
    assert big.sampling == small.sampling == "uniform"  # rebalancing comes from the data only


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_oversample_plus_gan_has_the_requested_shares(tmp_path: Path, share: float):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "50")
    df = ds.class_index("df")
    fake = {"gan": {"df": np.full((100, 32, 32, 3), 7, np.uint8)}}
    arm = build_arm(ds, split, targets, fake, "oversample+gan", 0, share)
    n_real = int((ds.labels[split.train] == df).sum())
    added = arm.images[len(split.train) :]
    assert len(added) == 50 - n_real and (arm.labels[len(split.train) :] == df).all()
    synthetic = np.array([(im == 7).all() for im in added])
    assert synthetic.sum() == round(share * (50 - n_real))
    real_df = {ds.images[i].tobytes() for i in split.train[ds.labels[split.train] == df]}
    assert all(im.tobytes() in real_df for im in added[~synthetic])


def test_reweight_changes_only_the_loss(monkeypatch):
    """Same data, same steps, same batches: the reweight arm's training differs from the
    baseline's only in the prior added to the logits inside the loss."""
    import classifier.training as training
    from classifier.networks import SmallResNet

    calls: dict[float, list] = {}
    real_loss = training.logit_adjusted_loss

    def spy(logits, labels, log_prior, tau, label_smoothing=0.0):
        calls.setdefault(tau, []).append((labels.clone(), log_prior.clone()))
        return real_loss(logits, labels, log_prior, tau, label_smoothing)

    monkeypatch.setattr(training, "logit_adjusted_loss", spy)
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 30 + [1] * 6 + [2] * 4)
    x = torch.randint(0, 255, (40, 3, 16, 16), dtype=torch.uint8, generator=g)
    for arm in ("baseline", "reweight"):
        cfg = dataclasses.replace(
            classifier_config(PROFILES["smoke"], 40, 0, "fp32", arm), steps=6, batch_size=8
        )
        torch.manual_seed(0)
        training.train_classifier(SmallResNet(3, 8), (x, y), (x, y), 3, cfg, progress=False)
    base, rew = calls[0.0], calls[1.0]
    assert len(base) == len(rew) == 6
    for (yb, pb), (yr, pr) in zip(base, rew):
        assert torch.equal(yb, yr) and torch.equal(pb, pr)  # the same batches, same prior
    assert torch.allclose(pb.exp(), torch.tensor([30, 6, 4]) / 40)
    logits = torch.zeros(2, 3)
    labels = torch.tensor([1, 2])
    manual = torch.nn.functional.cross_entropy(logits + pb, labels)
    assert real_loss(logits, labels, pb, 1.0) == pytest.approx(manual.item())
    assert real_loss(logits, labels, pb, 0.0) == pytest.approx(np.log(3))


def _real_data_with_held_back(tmp_path: Path, share: float = 0.5):
    """The demo's images as if they were real data (the oracle then draws on held-back
    lesions, not on the painter), with `share` of mel's training lesions held back."""
    from pipelines.data.splits import keep_for_share

    ds = dataclasses.replace(load_dataset("demo", 32, progress=False), format="imagefolder")
    keep = keep_for_share(ds, 0, ["mel"], share)
    return ds, load_or_make_split(ds, tmp_path, keep=keep)


def test_held_back_lesions_are_in_no_part_of_the_split(tmp_path: Path):
    ds, split = _real_data_with_held_back(tmp_path)
    uncut = load_or_make_split(ds, tmp_path / "uncut")
    lesions = np.asarray(ds.lesion_ids)
    held = set(lesions[split.held_back])
    mel = ds.class_index("mel")
    uncut_mel = set(lesions[uncut.train][ds.labels[uncut.train] == mel])
    assert held and held <= uncut_mel  # only mel training lesions are held back ...
    assert len(held) == round(0.5 * len(uncut_mel))  # ... half of them
    for part in (split.train, split.val, split.test):
        assert not held & set(lesions[part])
    assert (split.val == uncut.val).all() and (split.test == uncut.test).all()  # stay whole


def test_the_oracle_adds_only_held_back_images_in_gan_counts(tmp_path: Path):
    ds, split = _real_data_with_held_back(tmp_path)
    mel = ds.class_index("mel")
    targets = targets_for(ds, split, ["mel"], "120")
    fake = {"gan": {"mel": np.full((200, 32, 32, 3), 7, np.uint8)}}
    arms = {
        a: build_arm(ds, split, targets, fake, a, seed=1)
        for a in ("baseline", "oversample", "gan", "oracle", "oversample+oracle", "oversample+gan")
    }
    held = set(split.held_back.tolist())
    n_train = len(split.train)
    for name, arm in arms.items():
        added = arm.rows[n_train:]
        if ARM_SPECS[name].held_back:
            n_from_held = int(np.isin(added, split.held_back).sum())
            twin = "gan" if name == "oracle" else "oversample+gan"
            assert n_from_held == int((arms[twin].synthetic_index >= 0).sum())  # gan's count
            assert (arm.labels == mel).sum() == (arms[twin].labels == mel).sum() == 120
            assert (ds.labels[added[np.isin(added, split.held_back)]] == mel).all()
        else:
            assert not held & set(arm.rows.tolist()), name  # no held-back image elsewhere
    oracle_rows = arms["oracle"].rows[n_train:]
    distinct = len(set(oracle_rows.tolist()))
    assert distinct == min(len(oracle_rows), int((ds.labels[split.held_back] == mel).sum()))


def test_the_demo_oracle_paints_fresh_lesions(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "50")
    arm = build_arm(ds, split, targets, {}, "oracle", seed=0)
    added = arm.images[len(split.train) :]
    known = {im.tobytes() for im in ds.images}
    assert len(added) == 50 - int((ds.labels[split.train] == ds.class_index("df")).sum())
    assert not any(im.tobytes() in known for im in added)  # new lesions, in no split
    assert (arm.rows[len(split.train) :] == -1).all()


def test_gan_then_real_ends_on_real_images_within_the_same_budget(monkeypatch):
    """gan-then-real trains on gan's set, the same number of steps as every arm, its last
    real_only_steps batches hold no synthetic image (a spy on every batch drawn), and the
    model it keeps is one that went through that phase."""
    import classifier.training as training
    from classifier.networks import SmallResNet

    batches: list[torch.Tensor] = []
    real_augment = training.augment

    def spy(images, g):
        batches.append(images.clone())
        return real_augment(images, g)

    monkeypatch.setattr(training, "augment", spy)
    scores = iter(np.linspace(0.9, 0.1, 100))  # every evaluation worse than the one before
    monkeypatch.setattr(training, "balanced_accuracy", lambda *_: float(next(scores)))
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 30 + [1] * 6 + [1] * 24)  # class 1: 6 real and 24 synthetic images
    x = torch.randint(0, 200, (60, 3, 16, 16), dtype=torch.uint8, generator=g)
    x[36:] = 255  # what marks a synthetic image in a batch
    synthetic = torch.arange(60) >= 36
    n = 40
    cfgs = {a: classifier_config(PROFILES["smoke"], n, 0, "fp32", a) for a in ARM_SPECS}
    assert len({c.steps for c in cfgs.values()}) == 1  # one step budget for every arm
    cfg = dataclasses.replace(cfgs["gan-then-real"], batch_size=16)
    assert cfg.real_only_steps == round(ARM_SPECS["gan-then-real"].real_tail * cfg.steps) > 0
    assert all(c.real_only_steps == 0 for a, c in cfgs.items() if a != "gan-then-real")
    trained = training.train_classifier(
        SmallResNet(2, 8), (x, y, synthetic), (x[:36], y[:36]), 2, cfg, progress=False
    )
    assert len(batches) == cfg.steps
    assert trained.best_step > cfg.steps - cfg.real_only_steps  # chosen after the real phase
    is_syn = [(b == 255).flatten(1).all(1) for b in batches]
    tail = is_syn[cfg.steps - cfg.real_only_steps :]
    assert not any(s.any() for s in tail)
    assert sum(int(s.sum()) for s in is_syn[: cfg.steps - cfg.real_only_steps]) > 0


def test_real_only_steps_refuses_what_it_cannot_do():
    import classifier.training as training
    from classifier.networks import SmallResNet

    x = torch.zeros(8, 3, 16, 16, dtype=torch.uint8)
    y = torch.tensor([0, 1] * 4)
    cfg = training.ClassifierConfig(steps=4, batch_size=4, eval_every=2, real_only_steps=2)
    with pytest.raises(ValueError, match="mask of synthetic"):
        training.train_classifier(SmallResNet(2, 8), (x, y), (x, y), 2, cfg, progress=False)
    too_long = dataclasses.replace(cfg, real_only_steps=5)
    with pytest.raises(ValueError, match="outside 1..4"):
        training.train_classifier(
            SmallResNet(2, 8), (x, y, torch.zeros(8, dtype=torch.bool)), (x, y), 2,
            too_long, progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="no training images"):
        training.train_classifier(
            SmallResNet(2, 8), (x, y, torch.ones(8, dtype=torch.bool)), (x, y), 2, cfg,
            progress=False,
        )  # fmt: skip


def test_gan_then_real_trains_on_gans_set(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "50")
    fake = {"gan": {"df": np.full((100, 32, 32, 3), 7, np.uint8)}}
    gan = build_arm(ds, split, targets, fake, "gan", seed=0)
    then_real = build_arm(ds, split, targets, fake, "gan-then-real", seed=0)
    assert np.array_equal(gan.images, then_real.images)
    assert np.array_equal(gan.synthetic_index, then_real.synthetic_index)
    assert ((gan.synthetic_index >= 0) == (gan.images == 7).all((1, 2, 3))).all()


def test_gan_all_classes_gives_every_class_the_rare_classes_synthetic_share(tmp_path: Path):
    """Every class that is not rare gets synthetic images of its own class, as large a share
    of its training images as the rare classes' added images are of theirs; the rare classes
    get exactly gan's images."""
    from pipelines.steps.training_set import companion_counts

    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df", "vasc"], "50")
    marks = {c: 10 + i for i, c in enumerate(ds.class_names)}  # a class's synthetic pixels
    fake = {"gan": {c: np.full((400, 32, 32, 3), v, np.uint8) for c, v in marks.items()}}
    gan = build_arm(ds, split, targets, fake, "gan", seed=0)
    every = build_arm(ds, split, targets, fake, "gan-all-classes", seed=0)
    base = np.bincount(ds.labels[split.train], minlength=7)
    real_rare = sum(base[ds.class_index(c)] for c in targets)
    share = (sum(targets.values()) - real_rare) / sum(targets.values())
    companions = companion_counts(ds, split, targets)
    assert set(companions) == set(ds.class_names) - set(targets)
    for c in ds.class_names:
        k = ds.class_index(c)
        syn = (every.labels == k) & (every.synthetic_index >= 0)
        assert (every.images[syn] == marks[c]).all()  # its own class's generator
        if c in targets:
            assert syn.sum() == ((gan.labels == k) & (gan.synthetic_index >= 0)).sum()
        else:
            assert syn.sum() == companions[c] > 0
            assert syn.sum() / (syn.sum() + base[k]) == pytest.approx(share, abs=0.5 / base[k])
    for c, target in targets.items():  # the rare classes reach gan's target in both arms
        assert (every.labels == ds.class_index(c)).sum() == target == 50


def test_gan_all_classes_trains_a_gan_for_every_class_and_only_then(tmp_path: Path):
    from conftest import SMOKE

    from pipelines.cli import augment_and_compare
    from pipelines.cli.augment_and_compare import experiment_config
    from pipelines.graph.jobs import experiment_graph

    def graph(arms: str) -> dict:
        args = ["--run-dir", str(tmp_path / arms), *SMOKE, "--arms", arms]
        ctx = augment_and_compare.make_context("augment-and-compare", args)
        return {n.name: n for n in experiment_graph(experiment_config(ctx.params))}

    plain, every = graph("baseline,gan"), graph("baseline,gan,gan-all-classes")
    classes = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert {n.split("/")[1] for n in plain if n.startswith("gan/")} == {"all", "df", "vasc"}
    assert {n.split("/")[1] for n in every if n.startswith("gan/")} == {"all"} | classes
    assert {n.split("/")[2] for n in every if n.startswith("samples/gan/")} == classes
    assert "samples/gan/nv" in every["classifier/gan/seed0"].deps
    for name in ("gan/df", "samples/gan/df", "gan/all"):  # the rare classes' work is shared
        assert plain[name].key == every[name].key
