"""--folds K: lesion-grouped K-fold cross-validation, and no test lesion reaching a GAN."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import SMOKE, invoke_cli, one_line_error, with_options

import pipelines.steps.gan_run as gan_run
from pipelines.cli import augment_and_compare
from pipelines.config.profiles import PROFILES
from pipelines.data.load import load_dataset
from pipelines.data.splits import SPLITS, kfold_lesions, load_or_make_split
from pipelines.errors import UserError


def lesions_and_labels(n_lesions: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    per_lesion = rng.integers(1, 4, n_lesions)
    lesion_class = rng.choice(4, n_lesions, p=[0.7, 0.2, 0.07, 0.03])
    ids = [f"L{i}" for i, n in enumerate(per_lesion) for _ in range(n)]
    labels = np.array([c for c, n in zip(lesion_class, per_lesion) for _ in range(n)])
    return ids, labels, dict(zip([f"L{i}" for i in range(n_lesions)], lesion_class))


@pytest.mark.parametrize("k", [2, 5])
def test_folds_are_lesion_disjoint_and_test_every_lesion_once(k: int):
    ids, labels, lesion_class = lesions_and_labels()
    folds = kfold_lesions(ids, labels, k, seed=3)
    assert len(folds) == k
    tested = Counter(les for fold in folds for les in fold["test"])
    assert set(tested) == set(ids) and set(tested.values()) == {1}  # every lesion once
    for fold in folds:
        parts = [set(fold[s]) for s in SPLITS]
        assert sum(map(len, parts)) == len(set().union(*parts)) == len(set(ids))  # disjoint, all
        # stratified: each class's share of the test lesions is its 1/k share, +-1 lesion
        for c in range(4):
            n_c = sum(v == c for v in lesion_class.values())
            got = sum(lesion_class[les] == c for les in fold["test"])
            assert abs(got - n_c / k) <= 1
        assert len(fold["val"]) >= 4  # every class has validation lesions (thresholds, best.pt)


def test_a_class_too_small_for_a_folds_gan_fails_before_any_work(tmp_path: Path):
    args = ["--run-dir", str(tmp_path / "r"), "--profile", "smoke", "--folds", "2",
            "--classes", "vasc", "--quiet"]  # fmt: skip
    out = invoke_cli(augment_and_compare, args, ok=False).output
    assert "'vasc' has 8 training images" in out and not (tmp_path / "r" / "jobs").exists()


def test_folds_need_k_of_two_or_more():
    ids, labels, _ = lesions_and_labels(20)
    with pytest.raises(UserError, match="K >= 2"):
        kfold_lesions(ids, labels, 1)


def test_a_fold_directory_refuses_another_folds_split(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    load_or_make_split(ds, tmp_path, fold=(0, 3))
    with pytest.raises(UserError, match="fold"):
        load_or_make_split(ds, tmp_path, fold=(1, 3))


@pytest.mark.long
def test_gans_of_a_fold_never_see_its_test_or_validation_lesions(tmp_path: Path, monkeypatch):
    seen: list[tuple[Path, set]] = []
    real_train = gan_run.train_gan

    def spy(run, *args, **kwargs):
        seen.append((run.out, {im.tobytes() for im in run.images}))
        return real_train(run, *args, **kwargs)

    monkeypatch.setattr(gan_run, "train_gan", spy)
    run_dir = tmp_path / "run"
    folds = with_options(
        SMOKE, seeds="1", folds="2", arms="baseline,gan", classes="mel", target="60"
    )
    args = ["--run-dir", str(run_dir), *folds]
    invoke_cli(augment_and_compare, args)
    ds = load_dataset("demo", 32, progress=False)
    assert {out.parent.parent.name for out, _ in seen} == {"k0", "k1"}
    assert {out.name for out, _ in seen} == {"all", "mel"}
    for out, images in seen:
        split = json.loads((out.parent.parent / "split.json").read_text())["lesions"]
        held = set(split["test"]) | set(split["val"])
        held_images = {ds.images[i].tobytes() for i, les in enumerate(ds.lesion_ids) if les in held}
        assert images and not images & held_images, out
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_set"]["lesions"] == len(set(ds.lesion_ids))  # all tested, pooled
    assert results["test_set"]["images"] == len(ds.lesion_ids)
    report = (run_dir / "report.md").read_text()
    assert "One seed: the intervals cover test-set noise only" in report
    forest = next(line for line in report.splitlines() if "/figures/forest.png)" in line)
    assert "pooled over 2 folds, 1 seed" in forest  # the K-fold pooled gains
    assert (run_dir / forest.split("](")[1].split(")")[0]).is_file()
    mel_lesions = {les for les, y in zip(ds.lesion_ids, ds.labels) if y == ds.class_index("mel")}
    gains = results["comparison"]["gains"]["gan vs baseline: mel"]
    assert gains["recall"]["test_lesions"] == len(mel_lesions)
    signature = results["signature"]["mel"]["gan"]  # each fold's generator and classifiers
    fresh_n = PROFILES["smoke"].fresh_n
    assert len(signature["fresh"]) == 2 and signature["intervals"]["fresh"]["images"] == 2 * fresh_n
    assert signature["intervals"]["real_recall"]["units"] == len(mel_lesions)


def test_more_folds_than_a_rare_class_has_lesions_are_refused_before_any_work(tmp_path: Path):
    run_dir = tmp_path / "r"
    args = ["--run-dir", str(run_dir), *with_options(SMOKE, folds="30"), "--dry-run"]
    msg = one_line_error(invoke_cli(augment_and_compare, args, ok=False))
    assert "--folds 30: 'vasc' has 19 lesions, the fewest of the rare classes" in msg
    assert "use --folds 19 or fewer" in msg
    assert not run_dir.exists()  # no split file of any fold
