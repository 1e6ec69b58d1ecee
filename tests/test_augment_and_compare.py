"""augment-and-compare end to end on the demo data with the `smoke` budgets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_cli, one_line_error

import pipelines.jobs as jobs
from pipelines.arms import build_arms, classifier_config, targets_for
from pipelines.cli import augment_and_compare
from pipelines.data.datasets import load_dataset
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
    assert "[SYNTHETIC demo data] df recall gain gan vs baseline" in result.output
    return run_dir


@pytest.fixture
def run_dir(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_report_and_results(finished: Path):
    report = (finished / "report.md").read_text()
    lines = report.splitlines()
    assert "SYNTHETIC demo data" in lines[2]
    assert lines[4].startswith("## Headline") and "recall, gan vs baseline" in lines[6]
    results = json.loads((finished / "results.json").read_text())
    assert set(results["comparison"]["per_arm"]) == {"baseline", "oversample", "gan"}
    gains = results["comparison"]["gains"]
    assert {"gan vs baseline: df", "gan vs oversample: vasc", "oversample vs baseline: df"} <= set(
        gains
    )
    for g in gains.values():
        assert g["ci95"][0] <= g["gain"] <= g["ci95"][1]
    assert all(len(rs) == 2 for rs in results["runs"].values())
    out = finished / "compare" / results["config_id"]
    for fig in ("recall_per_class", "confusion_baseline_vs_gan", "pr_curves", "samples_df"):
        assert (out / "figures" / f"{fig}.png").is_file()
    assert set(results["wall_seconds"]) >= {"GAN training", "classifiers", "report"}
    assert results["data"]["fingerprint"] == results["config"]["data_fingerprint"]


def test_arms_differ_only_in_their_training_set(finished: Path):
    results = json.loads((finished / "results.json").read_text())
    runs = results["runs"]
    for seed in range(2):
        configs = [runs[a][seed]["config"] for a in runs]
        assert all(c == configs[0] for c in configs)  # same steps, lr, seed, ...
        assert configs[0]["seed"] == seed
    sizes = {a: runs[a][0]["train_images"] for a in runs}
    assert sizes["oversample"] == sizes["gan"] > sizes["baseline"]


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
    assert big.steps == quick.classifier_steps_cap  # 12 epochs of 7000 would be 656 steps
    assert small.steps == int(quick.classifier_epochs * 1000 / quick.batch_size)
    assert big.sampling == small.sampling == "uniform"  # rebalancing comes from the data only


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
    assert results["external_test"]["n"] == 1271
    assert "## External test set" in (run_dir / "report.md").read_text()


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
