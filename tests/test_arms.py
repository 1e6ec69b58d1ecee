"""pipelines.config.arms: what each arm trains on, and the classifier budget of a profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.config.profiles import PROFILES
from pipelines.data.load import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.steps.recipe import classifier_config
from pipelines.steps.training_set import build_arm, targets_for


def test_build_arms_adds_exactly_the_rare_class_images(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "40")
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
            expect[df] = 40
        assert (counts == expect).all(), name
    assert (arms["gan"].images[-(40 - n_real_df) :] == 7).all()
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
    targets = targets_for(ds, split, ["df"], "40")
    df = ds.class_index("df")
    fake = {"gan": {"df": np.full((100, 32, 32, 3), 7, np.uint8)}}
    arm = build_arm(ds, split, targets, fake, "oversample+gan", 0, share)
    n_real = int((ds.labels[split.train] == df).sum())
    added = arm.images[len(split.train) :]
    assert len(added) == 40 - n_real and (arm.labels[len(split.train) :] == df).all()
    synthetic = np.array([(im == 7).all() for im in added])
    assert synthetic.sum() == round(share * (40 - n_real))
    real_df = {ds.images[i].tobytes() for i in split.train[ds.labels[split.train] == df]}
    assert all(im.tobytes() in real_df for im in added[~synthetic])


def test_reweight_changes_only_the_loss(monkeypatch):
    """Same data, same steps, same batches: the reweight arm's training differs from the
    baseline's only in the prior added to the logits inside the loss."""
    import classifier.training as training
    from classifier.networks import make_classifier

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
        training.train_classifier(make_classifier(3, 8), (x, y), (x, y), 3, cfg, progress=False)
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
