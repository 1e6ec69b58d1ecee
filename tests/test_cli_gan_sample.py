from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke_cli, one_line_error

from classifier.training import ClassifierConfig
from pipelines.cli import gan_sample, gan_train
from pipelines.data.datasets import load_dataset
from pipelines.data.splits import load_or_make_split
from pipelines.feature_space import domain_space

TRAIN = ["--size", "32", "--batch-size", "8", "--snapshot-kimg", "0.05", "--quiet",
         "--precision", "fp32"]  # fmt: skip
QUICK_FEATURES = ClassifierConfig(steps=80, batch_size=32, eval_every=40, sampling="balanced")


@pytest.fixture(scope="module")
def run_once(tmp_path_factory) -> Path:
    """A demo run directory with a quick domain feature net and two tiny generators."""
    run_dir = tmp_path_factory.mktemp("sample") / "run"
    ds = load_dataset("demo", 32, progress=False)
    domain_space(
        ds,
        load_or_make_split(ds, run_dir),
        run_dir,
        torch.device("cpu"),
        progress=False,
        cfg=QUICK_FEATURES,
    )
    for cls in ("df", "vasc"):
        invoke_cli(
            gan_train,
            [
                "--class",
                cls,
                "--run-dir",
                str(run_dir),
                "--kimg",
                "0.1",
                "--eval-every",
                "0.05",
                "--eval-n",
                "64",
                *TRAIN,
            ],
        )
    return run_dir


@pytest.fixture
def run_dir(run_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_once, tmp_path / "run"))


def test_fid_tracking_during_training(run_once: Path):
    out = run_once / "gan" / "df"
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [round(r["kimg"], 3) for r in rows] == [0.056, 0.104]
    counts = json.loads((run_once / "split.json").read_text())["counts"]
    n_train, n_val = counts["train"]["per_class"]["df"], counts["val"]["per_class"]["df"]
    assert (n_train, n_val) == (18, 3)  # demo df: training and validation images
    assert rows[0]["train_fid_label"] == f"FID[domain-256d, n={n_train} vs 64]"
    assert rows[0]["heldout_kid_label"] == f"KID[domain-256d, n={n_val} vs 64]"
    assert rows[0]["floor_fid_label"] == f"FID[domain-256d, n={n_val} vs {n_train}]"
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["extra"]["eval"]["heldout_kid"] == min(r["heldout_kid"] for r in rows)
    record = json.loads((out / "run.json").read_text())["runs"][-1]
    assert record["config"]["best_checkpoint"].startswith("lowest held-out KID")
    assert (out / "fid_curve.png").stat().st_size > 1000


def test_sample_all_classes_with_filter(run_dir: Path):
    result = invoke_cli(gan_sample, ["--n", "30", "--run-dir", str(run_dir), "--quiet"])
    assert "SYNTHETIC" in result.output and "| df | kept |" in result.output
    for cls in ("df", "vasc"):
        out = run_dir / "samples" / cls
        summary = json.loads((out / "summary.json").read_text())
        kept = summary["kept"]
        # a 0.1-kimg generator is nearly collapsed: duplicates are rejected, fewer may pass
        assert 2 <= kept <= 30 and (kept == 30 or "only" in summary["warning"])
        assert len(list(out.glob(f"{cls}_*.png"))) == kept and (out / "grid.png").is_file()
        with open(out / "manifest.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == summary["pool"] == 60
        assert sum(r["status"] == "kept" for r in rows) == kept
        assert all((out / r["file"]).is_file() for r in rows if r["status"] == "kept")
        assert sum(summary["rejected"].values()) == 60 - kept
        assert set(summary["sets"]) == {"kept", "random", "pool"}
        label = summary["sets"]["kept"]["fid_label"]
        assert label == f"FID[domain-256d, n={summary['n_real']} vs {kept}]"
        assert summary["filter_vs_random_heldout"]["verdict"] in ("beats", "no difference", "worse")
        assert summary["filter_vs_random_heldout"]["unit"] == "lesions"
        assert "verdict" in summary and "filter_beats_random" not in summary
        held = summary["heldout_sets"]["kept"]
        n_val = json.loads((run_dir / "split.json").read_text())["counts"]["val"]["per_class"][cls]
        assert held["n_reference"] == summary["n_heldout"] == n_val  # the class's validation images
        assert summary["floor"]["n"] == summary["n_real"]
        assert summary["verdict"].startswith("on held-out reals, kept KID[")
        assert summary["record"]["data"]["synthetic_demo_data"] is True


def test_score_filter_keeps_the_best_scored_non_rejected(run_dir: Path):
    invoke_cli(
        gan_sample,
        ["--n", "20", "--class", "df", "--run-dir", str(run_dir), "--quiet", "--score", "realism"],
    )
    with open(run_dir / "samples" / "df" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    kept = [float(r["score"]) for r in rows if r["status"] == "kept"]
    low = [float(r["score"]) for r in rows if r["status"] == "low-score"]
    assert 0 < len(kept) <= 20 and (not low or min(kept) >= max(low))


def test_npz_output_and_no_filter(run_dir: Path):
    invoke_cli(
        gan_sample,
        [
            "--n",
            "16",
            "--class",
            "df",
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--filter",
            "none",
            "--format",
            "npz",
            "--checkpoint",
            "last",
        ],
    )
    out = run_dir / "samples" / "df"
    with np.load(out / "samples.npz") as z:
        assert z["images"].shape == (16, 32, 32, 3) and z["images"].dtype == np.uint8
    assert json.loads((out / "summary.json").read_text())["pool"] == 16


def test_refuses_to_overwrite_samples(run_dir: Path):
    args = ["--n", "8", "--class", "df", "--run-dir", str(run_dir), "--quiet"]
    invoke_cli(gan_sample, args)
    assert "already holds samples" in one_line_error(invoke_cli(gan_sample, args, ok=False))
    invoke_cli(gan_sample, [*args, "--overwrite", "--seed", "3"])
    assert json.loads((run_dir / "samples/df/summary.json").read_text())["options"]["seed"] == 3
    assert not list((run_dir / "samples").glob(".df.*"))  # no temporary leftovers


def test_bad_input(run_dir: Path, tmp_path: Path):
    base = ["--run-dir", str(run_dir), "--quiet"]
    msg = one_line_error(invoke_cli(gan_sample, ["--n", "5", "--class", "mel", *base], ok=False))
    assert "gan-train --class mel" in msg
    result = invoke_cli(gan_sample, ["--n", "0", *base], ok=False)
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    (tmp_path / "foreign.pt").write_bytes(b"junk")
    msg = one_line_error(
        invoke_cli(
            gan_sample,
            ["--n", "5", "--class", "df", "--checkpoint", str(tmp_path / "foreign.pt"), *base],
            ok=False,
        )
    )
    assert "not a readable checkpoint" in msg
    msg = one_line_error(
        invoke_cli(gan_sample, ["--n", "5", "--run-dir", str(tmp_path / "none")], False)
    )
    assert "no split.json" in msg


def test_checkpoint_of_another_size(run_dir: Path, tmp_path: Path):
    other = tmp_path / "other"
    invoke_cli(
        gan_train,
        [
            "--class",
            "df",
            "--run-dir",
            str(other),
            "--kimg",
            "0.02",
            "--eval-every",
            "0",
            *[a if a != "32" else "64" for a in TRAIN],
        ],
    )
    args = [
        "--n",
        "5",
        "--class",
        "df",
        "--run-dir",
        str(run_dir),
        "--quiet",
        "--checkpoint",
        str(other / "gan" / "df" / "last.pt"),
    ]
    assert "generates 64 px images but the data is loaded at 32 px" in one_line_error(
        invoke_cli(gan_sample, args, ok=False)
    )
