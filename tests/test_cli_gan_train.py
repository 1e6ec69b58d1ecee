from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import invoke_cli, one_line_error, write_image

from pipelines.cli import gan_train

TINY = ["--size", "32", "--batch-size", "8", "--snapshot-kimg", "0.05", "--quiet",
        "--precision", "fp32", "--eval-every", "0"]  # fmt: skip


def run(args, expect_ok=True):
    return invoke_cli(gan_train, args, expect_ok)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    run(["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.1", *TINY])
    return run_dir


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of a finished tiny run, for tests that change it."""
    return Path(shutil.copytree(trained_once, tmp_path / "run"))


def test_trains_on_demo_data_and_writes_everything(trained: Path):
    out = trained / "gan" / "df"
    assert (trained / "split.json").is_file()
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["nimg"] == 104 and ckpt["arch"]["size"] == 32
    assert ckpt["extra"]["class"] == "df"
    grids = sorted(p.name for p in out.glob("grid_kimg*.png"))
    assert grids == ["grid_kimg00000.056.png", "grid_kimg00000.104.png"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and {"kimg", "loss_D", "loss_G", "D_real", "D_fake", "img_s"} <= set(rows[0])
    record = json.loads((out / "run.json").read_text())["runs"][0]
    assert record["data"]["synthetic_demo_data"] is True
    assert record["config"]["train"]["seed"] == 0 and "torch" in record["versions"]
    assert (out / "reals.png").is_file()


def test_trains_only_on_training_split_images(trained: Path):
    split = json.loads((trained / "split.json").read_text())
    ckpt = torch.load(trained / "gan" / "df" / "last.pt", weights_only=True)
    assert ckpt["extra"]["n_train"] == split["counts"]["train"]["per_class"]["df"]


def test_refuses_to_overwrite_then_overwrites(trained: Path):
    args = ["--class", "df", "--run-dir", str(trained), "--kimg", "0.05", *TINY]
    assert "already holds a GAN run" in one_line_error(run(args, expect_ok=False))
    run([*args, "--overwrite"])
    assert torch.load(trained / "gan/df/last.pt", weights_only=True)["nimg"] == 56


def test_resume_continues_to_a_larger_budget(trained: Path):
    run(["--class", "df", "--run-dir", str(trained), "--kimg", "0.2", "--resume", "--quiet"])
    out = trained / "gan" / "df"
    assert torch.load(out / "last.pt", weights_only=True)["nimg"] == 200
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated rows across the resume
    assert len(json.loads((out / "run.json").read_text())["runs"]) == 2


def test_resume_refuses_changed_options(trained: Path):
    base = ["--class", "df", "--run-dir", str(trained), "--kimg", "0.2", "--resume"]
    assert "batch_size=8, not 16" in one_line_error(run([*base, "--batch-size", "16"], False))
    assert "are 32 px, not 64 px" in one_line_error(run([*base, "--size", "64"], False))


def test_resume_without_checkpoint(tmp_path: Path):
    args = ["--class", "df", "--run-dir", str(tmp_path / "r"), "--resume", *TINY]
    assert "no checkpoint at" in one_line_error(run(args, expect_ok=False))


def test_resume_with_foreign_checkpoint(trained: Path):
    (trained / "gan" / "df" / "last.pt").write_bytes(b"garbage")
    args = ["--class", "df", "--run-dir", str(trained), "--resume", "--quiet"]
    assert "not a readable checkpoint" in one_line_error(run(args, expect_ok=False))


def test_unknown_class_lists_the_classes(tmp_path: Path):
    result = run(["--class", "melanoma", "--run-dir", str(tmp_path / "r"), *TINY], False)
    assert "classes are akiec, bcc, bkl, df, mel, nv, vasc" in one_line_error(result)


def test_class_with_too_few_training_images(tmp_path: Path):
    for cls, n in [("common", 40), ("rare", 6)]:
        for i in range(n):
            write_image(tmp_path / "data" / cls / f"{i}.png", (10 * i % 255, 50, 50), fmt="PNG")
    args = [
        "--class",
        "rare",
        "--data",
        str(tmp_path / "data"),
        "--run-dir",
        str(tmp_path / "r"),
        "--cache-dir",
        str(tmp_path / "c"),
        *TINY,
    ]
    assert "training images (needs >= 10" in one_line_error(run(args, expect_ok=False))


def test_unsupported_size(tmp_path: Path):
    result = run(["--class", "df", "--size", "48", "--run-dir", str(tmp_path)], False)
    assert result.exit_code == 2 and "'48' is not one of '32', '64', '128'" in result.output


def test_run_dir_of_other_data(trained: Path, imagefolder_dir: Path, tmp_path: Path):
    args = [
        "--class",
        "cats",
        "--data",
        str(imagefolder_dir),
        "--run-dir",
        str(trained),
        "--cache-dir",
        str(tmp_path / "c"),
        *TINY,
    ]
    assert "belongs to other data" in one_line_error(run(args, expect_ok=False))


def test_kimg_and_epochs_are_exclusive(tmp_path: Path):
    args = ["--class", "df", "--kimg", "1", "--epochs", "2", "--run-dir", str(tmp_path)]
    assert "not both" in one_line_error(run(args, expect_ok=False))


def test_epochs_set_the_budget_from_the_class_size(tmp_path: Path):
    run_dir = tmp_path / "r"
    run(["--class", "df", "--epochs", "2", "--run-dir", str(run_dir), *TINY])
    ckpt = torch.load(run_dir / "gan/df/last.pt", weights_only=True)
    n_train = ckpt["extra"]["n_train"]
    assert ckpt["config"]["kimg"] == pytest.approx(2 * n_train / 1000)
    assert 2 * n_train <= ckpt["nimg"] < 2 * n_train + 8
