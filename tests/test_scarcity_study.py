"""The scarcity study (--rare-n): nested lesion draws, and no image of a dropped lesion reaches
any GAN, filter or classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, one_line_error

import pipelines.steps.classifier as classifier_step
import pipelines.steps.feature_space as feature_space
import pipelines.steps.gan_run as gan_run
import pipelines.steps.samples as samples_step
import pipelines.steps.sampling as sampling
from pipelines.cli import augment_and_compare
from pipelines.data.load import load_dataset
from pipelines.data.splits import keep_rare_lesions, load_or_make_split, split_lesions
from pipelines.errors import UserError

SCARCE = ["--profile", "smoke", "--seeds", "1", "--classes", "mel", "--arms", "baseline,gan",
          "--quiet", "--precision", "fp32", "--threads", "1"]  # fmt: skip


def test_the_draws_are_nested_and_leave_validation_and_test_whole():
    rng = np.random.default_rng(0)
    lesion_ids = [f"L{i // 2}" for i in range(400)]  # 200 lesions of 2 photos
    labels = np.repeat(rng.integers(0, 3, 200), 2)
    parts = split_lesions(lesion_ids, labels, seed=3)
    kept = {n: keep_rare_lesions(parts, lesion_ids, labels, {1: n}, seed=3) for n in (5, 10, 20)}
    of_class = {les for les, lab in zip(lesion_ids, labels) if lab == 1}
    train = {n: set(k["train"]) & of_class for n, k in kept.items()}
    assert [len(train[n]) for n in (5, 10, 20)] == [5, 10, 20]
    assert train[5] < train[10] < train[20] <= set(parts["train"])  # nested
    for k in kept.values():
        assert k["val"] == parts["val"] and k["test"] == parts["test"]
        assert set(k["train"]) - of_class == set(parts["train"]) - of_class  # others whole
    with pytest.raises(UserError, match="only"):
        keep_rare_lesions(parts, lesion_ids, labels, {1: 10_000}, seed=3)


@pytest.fixture(scope="module")
def scarce_run(tmp_path_factory):
    """A two-level study with every image that reached a GAN, a filter or a classifier."""
    run_dir = tmp_path_factory.mktemp("scarce") / "run"
    seen: dict[str, list] = {"gan": [], "filter": [], "classifier": [], "features": []}
    real_gan, real_sample = gan_run.train_gan, sampling.sample_class
    real_clf, real_feat = classifier_step.train_classifier, feature_space.train_classifier
    real_arm, real_space = classifier_step.train_arm, feature_space.domain_space
    where: dict[str, Path] = {}  # the run directory the classifier being trained belongs to

    def gan(run, *a, **k):
        seen["gan"].append((run.out, run.images.copy()))
        return real_gan(run, *a, **k)

    def sample(run, *a, **k):
        seen["filter"].append((run.out, run.images.copy()))
        return real_sample(run, *a, **k)

    def arm(plan, *a, **k):
        where["dir"] = Path(plan.cfg.run_dir)
        return real_arm(plan, *a, **k)

    def space(ds, split, run_dir, *a, **k):
        where["dir"] = Path(run_dir)
        return real_space(ds, split, run_dir, *a, **k)

    def nhwc(train) -> np.ndarray:
        return train[0].permute(0, 2, 3, 1).cpu().numpy().copy()

    def clf(model, train, *a, **k):
        seen["classifier"].append((where["dir"] / "classifier", nhwc(train)))
        return real_clf(model, train, *a, **k)

    def feat(model, train, *a, **k):
        seen["features"].append((where["dir"] / "features", nhwc(train)))
        return real_feat(model, train, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan_run, "train_gan", gan)
        mp.setattr(samples_step, "sample_class", sample)
        mp.setattr(classifier_step, "train_classifier", clf)
        mp.setattr(feature_space, "train_classifier", feat)
        mp.setattr(classifier_step, "train_arm", arm)
        mp.setattr(feature_space, "domain_space", space)
        invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *SCARCE, "--rare-n",
                                         "10,20"])  # fmt: skip
    return run_dir, seen


def _dropped_images(run_dir: Path, n: int) -> set[bytes]:
    """The bytes of every mel training image whose lesion level n dropped."""
    ds = load_dataset("demo", 32, progress=False)
    full = load_or_make_split(ds, run_dir / "full")  # the same seed: the uncut split
    cut = json.loads((run_dir / "scarce" / f"n{n}" / "split.json").read_text())["lesions"]
    kept = set(cut["train"])
    mel = ds.class_index("mel")
    return {
        ds.images[i].tobytes()
        for i in full.train
        if ds.labels[i] == mel and ds.lesion_ids[i] not in kept
    }


def test_no_image_of_a_dropped_lesion_reaches_any_gan_filter_or_classifier(scarce_run):
    run_dir, seen = scarce_run
    for n in (10, 20):
        dropped = _dropped_images(run_dir, n)
        assert dropped, "nothing was dropped: the test would not test anything"
        level = run_dir / "scarce" / f"n{n}"
        for what, calls in seen.items():
            mine = [imgs for out, imgs in calls if level in Path(out).parents]
            assert mine, (what, n)
            for imgs in mine:
                assert not {im.tobytes() for im in imgs} & dropped, (what, n)
        split = json.loads((level / "split.json").read_text())
        assert split["keep"] == {"mel": n} and split["counts"]["train"]["lesions"] > n


def test_each_level_has_its_own_controls_and_the_study_its_table(scarce_run):
    run_dir, _ = scarce_run
    results = json.loads((run_dir / "results.json").read_text())
    assert sorted(results["levels"]) == ["10", "20"]
    assert {(p["rare_n"], p["class"], p["arm"]) for p in results["points"]} == {
        (10, "mel", "gan"), (20, "mel", "gan")}  # fmt: skip
    for n in (10, 20):
        assert (run_dir / "scarce" / f"n{n}" / "report.md").is_file()
        markers = [p.name for p in (run_dir / "jobs").glob(f"n{n}__classifier__baseline*.json")]
        assert markers == [f"n{n}__classifier__baseline__seed0.json"]  # controls per level
    assert "| mel | gan | 10 |" in (run_dir / "scarcity.md").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rare-n", "10,x"], "whole lesion counts"),
        (["--rare-n", "0"], "distinct lesion counts >= 1"),
        (["--rare-n", "10", "--folds", "2"], "one split"),
        (["--rare-n", "10", "--gan-doses", "0.1,0.2"], "at most one --gan-doses"),
        (["--rare-n", "10000"], "--rare-n 10000: 'mel' has only"),
        (["--rare-n", "8,8"], "--rare-n 8,8: give distinct lesion counts"),
    ],
)
def test_a_bad_scarcity_study_is_refused_before_any_work(tmp_path: Path, extra, message):
    args = ["--run-dir", str(tmp_path / "run"), *SCARCE, *extra]
    assert message in one_line_error(invoke_cli(augment_and_compare, args, ok=False))
    assert not (tmp_path / "run" / "jobs").exists()


def test_another_rare_n_list_keeps_the_earlier_studys_summary(scarce_run):
    """Each --rare-n list's scarcity.md, results.json and figure live in a folder of its own
    (the top of the run shows the latest), as the dose study's do; on demo data they say
    SYNTHETIC. Runs last: it changes the run's top-level summary."""
    run_dir, _ = scarce_run
    first = json.loads((run_dir / "results.json").read_text())
    [both] = [p.parent for p in run_dir.glob("compare/*/scarcity.md")]
    out = invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *SCARCE, "--rare-n", "10"])
    assert "[SYNTHETIC demo data] scarcity study of n = 10;" in out.output
    summaries = {p.parent for p in run_dir.glob("compare/*/scarcity.md")}
    assert both in summaries and len(summaries) == 2
    assert json.loads((both / "results.json").read_text())["levels"] == first["levels"]
    assert (both / "figures" / "gains_vs_rare_n.png").is_file()
    assert sorted(json.loads((run_dir / "results.json").read_text())["levels"]) == ["10"]
    top = (run_dir / "scarcity.md").read_text()
    assert "SYNTHETIC demo data" in top.splitlines()[2]
    assert "](compare/" in top  # the figure link points into the study's own folder
