"""augment-and-compare end to end on the demo data with the `smoke` budgets."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke_cli, one_line_error

import pipelines.jobs as jobs
from pipelines.arms import DEFAULT_ARMS, build_arms, classifier_config, targets_for
from pipelines.cli import augment_and_compare
from pipelines.compare import _tensor
from pipelines.data.datasets import load_dataset, resize_images
from pipelines.data.demo import DEMO_CLASS_COUNTS
from pipelines.data.splits import load_or_make_split
from pipelines.profiles import PROFILES

SMOKE = ["--profile", "smoke", "--seeds", "2", "--classes", "df,vasc", "--target", "24",
         "--quiet", "--precision", "fp32"]  # fmt: skip


def invoke(args, ok=True):
    return invoke_cli(augment_and_compare, args, ok)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("compare") / "run"
    result = invoke(["--run-dir", str(run_dir), *SMOKE])
    assert "[SYNTHETIC demo data] df gan vs baseline: recall" in result.output
    return run_dir


@pytest.fixture
def run_dir(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_report_and_results(finished: Path):
    report = (finished / "report.md").read_text()
    lines = report.splitlines()
    assert "SYNTHETIC demo data" in lines[2]
    assert lines[4].startswith("## Headline")
    assert "One seed" not in report  # 2 seeds: the intervals have a seed part
    header = next(i for i, line in enumerate(lines) if line.startswith("| class | arm | vs |"))
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    headline_rows = {tuple(c.strip() for c in line.split("|")[1:4]) for line in rows}
    for c in ("df", "vasc"):
        for arm in ("gan", "oversample+gan"):
            for ref in ("baseline", "oversample", "reweight"):
                assert (c, arm, ref) in headline_rows
    results = json.loads((finished / "results.json").read_text())
    assert list(results["comparison"]["per_arm"]) == list(DEFAULT_ARMS)
    gains = results["comparison"]["gains"]
    want = {"gan vs reweight: df", "oversample+gan vs oversample: vasc", "reweight vs baseline: df"}
    assert want <= set(gains)
    for g in gains.values():
        for metric in ("recall", "prior_matched_recall", "average_precision"):
            m = g[metric]
            assert m["ci95"][0] <= m["gain"] <= m["ci95"][1], (g["arm"], metric)
            assert len(m["per_seed"]) == 2 and m["gain"] == pytest.approx(np.mean(m["per_seed"]))
    assert results["comparison"]["interval"].startswith("gain ± t·SE")
    assert all(len(folds) == 1 and len(folds[0]) == 2 for folds in results["runs"].values())
    out = finished / "compare" / results["config_id"]
    for fig in ("recall_per_class", "confusion_baseline_vs_gan", "pr_curves", "samples_df"):
        assert (out / "figures" / f"{fig}.png").is_file()
    assert set(results["wall_seconds"]) >= {"GAN training", "classifiers", "report"}
    assert results["data"]["fingerprint"] == results["config"]["data_fingerprint"]


def test_arms_differ_only_in_their_training_set_or_loss(finished: Path):
    results = json.loads((finished / "results.json").read_text())
    runs = {arm: folds[0] for arm, folds in results["runs"].items()}  # [fold][seed]
    for seed in range(2):
        configs = {a: dict(runs[a][seed]["config"]) for a in runs}
        assert configs["reweight"].pop("logit_adjust_tau") == 1.0
        assert all(c.pop("logit_adjust_tau") == 0.0 for a, c in configs.items() if a != "reweight")
        assert all(c == configs["baseline"] for c in configs.values())  # steps, lr, seed, ...
        assert configs["baseline"]["seed"] == seed
    sizes = {a: runs[a][0]["train_images"] for a in runs}
    assert sizes["oversample"] == sizes["gan"] == sizes["oversample+gan"] > sizes["baseline"]
    assert sizes["reweight"] == sizes["baseline"]


def test_build_arms_adds_exactly_the_rare_class_images(tmp_path: Path):
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    targets = targets_for(ds, split, ["df"], "40")
    df = ds.class_index("df")
    fake = {"gan": {"df": np.full((100, 32, 32, 3), 7, np.uint8)}}
    arms = build_arms(ds, split, targets, fake, ["baseline", "oversample", "gan"], seed=0)
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
    arm = build_arms(ds, split, targets, fake, ["oversample+gan"], 0, share)["oversample+gan"]
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
        training.train_classifier(make_classifier(3, 8), x, y, x, y, 3, cfg, progress=False)
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


def test_rerun_skips_finished_work(run_dir: Path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("retrained something that was finished")

    monkeypatch.setattr(jobs, "train_classifier", boom)
    monkeypatch.setattr(jobs, "train_class", boom)
    monkeypatch.setattr(jobs, "sample_class", boom)
    invoke(["--run-dir", str(run_dir), *SMOKE])


def test_changed_config_gets_new_runs(run_dir: Path):
    before = set((run_dir / "compare").iterdir())
    one_seed = [a if a != "2" else "1" for a in SMOKE]
    invoke(["--run-dir", str(run_dir), *one_seed])
    after = set((run_dir / "compare").iterdir())
    assert len(after) == len(before) + 1 and before < after


def test_external_test_set(run_dir: Path, tmp_path: Path):
    invoke(["--run-dir", str(run_dir), *SMOKE, "--external-test", "demo"])
    results = json.loads((run_dir / "results.json").read_text())
    ext = results["external_test"]
    assert ext["n"] == sum(DEMO_CLASS_COUNTS.values())
    # the same gain table as the home test set: every pair, class and metric, with CIs
    assert set(ext["gains"]) == set(results["comparison"]["gains"])
    g = ext["gains"]["gan vs reweight: df"]
    for metric in ("recall", "prior_matched_recall", "average_precision"):
        assert g[metric]["ci95"][0] <= g[metric]["gain"] <= g[metric]["ci95"][1]
    assert len(ext["per_arm"]["gan"]) == 2  # one per (fold, seed) model
    report = (run_dir / "report.md").read_text()
    external = report[report.index("## External test set") :]
    assert "| df | gan | reweight |" in external


def test_a_smaller_classifier_takes_real_and_synthetic_images_through_one_filter(
    run_dir: Path, monkeypatch
):
    """profile.classifier_size below the GANs' size: training (real and synthetic), validation,
    test and external images all reach the classifier resized by resize_images."""
    monkeypatch.setitem(
        PROFILES, "smoke", dataclasses.replace(PROFILES["smoke"], classifier_size=16)
    )
    seen: dict[str, tuple] = {}
    real_train = jobs.train_classifier

    def spy(model, train_x, train_y, val_x, val_y, *args, **kwargs):
        seen[kwargs["desc"]] = (train_x.clone(), train_y.clone(), val_x.shape)
        return real_train(model, train_x, train_y, val_x, val_y, *args, **kwargs)

    import pipelines.compare as compare

    predicted: list[tuple] = []
    real_predict = compare.predict_proba

    def predict_spy(model, images, *args, **kwargs):
        predicted.append(tuple(images.shape[1:]))
        return real_predict(model, images, *args, **kwargs)

    monkeypatch.setattr(jobs, "train_classifier", spy)
    monkeypatch.setattr(compare, "predict_proba", predict_spy)  # the external test's
    one_seed = [a if a != "2" else "1" for a in SMOKE]
    invoke(["--run-dir", str(run_dir), *one_seed, "--arms", "baseline,gan", "--external-test",
            "demo"])  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    names = results["data"]["class_names"]
    base_x, base_y, val_shape = seen["baseline seed 0"]
    gan_x, gan_y, _ = seen["gan seed 0"]
    assert base_x.shape[1:] == gan_x.shape[1:] == val_shape[1:] == (3, 16, 16)
    assert torch.equal(gan_x[: len(base_x)], base_x)  # the same real images, same filter
    start = len(base_x)
    for c in ("df", "vasc"):  # synthetic rows follow, class by class
        n = int((gan_y == names.index(c)).sum() - (base_y == names.index(c)).sum())
        with np.load(run_dir / "samples" / "filtered" / c / "samples.npz") as z:
            expected = resize_images(z["images"][:n], 16)
        assert n > 0 and torch.equal(gan_x[start : start + n], _tensor(expected, "cpu"))
        start += n
    assert start == len(gan_x)
    assert "16 px inputs" in results["classifier"]
    assert results["external_test"]["n"] == sum(DEMO_CLASS_COUNTS.values())
    assert predicted and set(predicted) == {(3, 16, 16)}


def test_bad_input(run_dir: Path, imagefolder_dir: Path, tmp_path: Path):
    base = ["--run-dir", str(run_dir), "--profile", "smoke", "--quiet"]
    assert "class 'melanoma' is not in" in one_line_error(
        invoke([*base, "--classes", "melanoma"], False)
    )
    assert "unknown arm(s) magic" in one_line_error(
        invoke([*base, "--arms", "baseline,magic"], False)
    )
    assert "need at least 1 seed" in one_line_error(invoke([*base, "--seeds", "0"], False))
    msg = one_line_error(invoke([*base, "--classes", "df", "--target", "3"], False))
    assert "smaller than the" in msg and "real training images of 'df'" in msg
    msg = one_line_error(
        invoke(
            [
                "--run-dir",
                str(run_dir),
                "--data",
                str(imagefolder_dir),
                "--classes",
                "cats",
                "--cache-dir",
                str(tmp_path / "c"),
                "--profile",
                "smoke",
                "--quiet",
            ],
            False,
        )
    )
    assert "belongs to other data" in msg
    msg = one_line_error(
        invoke([*SMOKE, "--run-dir", str(run_dir), "--external-test", str(imagefolder_dir)], False)
    )
    assert "missing: akiec, bcc" in msg and "extra: cats, dogs" in msg
