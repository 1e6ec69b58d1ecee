"""gan-train: training, resuming, and the errors of a bad start (trained_once: conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY, invoke_cli, one_line_error, run_killed, write_image

from pipelines.cli import gan_train


def run(args, expect_ok=True):
    return invoke_cli(gan_train, args, expect_ok)


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
    before = (out / "last.pt").read_bytes()
    smaller = run(["--class", "df", "--run-dir", str(trained), "--kimg", "0.1", "--resume",
                   "--quiet"])  # fmt: skip
    assert "already trained to 0.2 kimg, at least --kimg 0.1: nothing to train" in smaller.output
    assert (out / "last.pt").read_bytes() == before


def test_resume_past_kimg_reports_where_whole_batches_end(trained: Path):
    """Resuming at 0.104 kimg to --kimg 0.11 in batches of 8 ends at 0.112: the bar's end and
    the final line say so (they said 0.1 and 0.1)."""
    out = run(["--class", "df", "--run-dir", str(trained), "--kimg", "0.11", "--resume"]).output
    assert "done at 0.112 kimg (whole batches of 8 end past --kimg 0.11)" in out
    [last] = [line for line in out.splitlines() if "GAN" in line and "(done)" in line]
    assert "100% 0.112/0.112 kimg" in last


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


def test_resume_reads_last_pt_once(trained: Path, checkpoint_reads: list[Path]):
    reads = checkpoint_reads
    run(["--class", "df", "--run-dir", str(trained), "--kimg", "0.15", "--resume", "--quiet"])
    assert reads == [trained / "gan" / "df" / "last.pt"]  # once, not once per question


def test_trained_enough_reuses_only_the_same_gan(trained: Path):
    from dataclasses import replace

    from gan.networks import Architecture
    from gan.training import TrainConfig
    from pipelines.errors import UserError
    from pipelines.store.checkpoints import GanFolder, trained_enough

    folder = GanFolder.of(trained, "df")
    saved = torch.load(folder.last, weights_only=True)
    arch, cfg = Architecture(**saved["arch"]), TrainConfig(**saved["config"])
    assert trained_enough(folder, arch, cfg)
    assert trained_enough(folder, arch, replace(cfg, eval_kimg=5.0, snapshot_kimg=1.0))
    assert not trained_enough(folder, arch, replace(cfg, kimg=0.2))  # shorter: continue it
    assert not trained_enough(GanFolder.of(trained, "mel"), arch, cfg)  # none yet
    with pytest.raises(UserError) as err:
        trained_enough(folder, arch, replace(cfg, precision="bf16"))
    msg = err.value.message
    assert "\n" not in msg and f"{folder.last} holds a GAN trained with precision 'fp32'" in msg
    assert "(asked 'bf16')" in msg and f"use another --run-dir, or delete {folder.path}" in msg
    with pytest.raises(UserError, match=r"size 32 \(asked 64\); use another --run-dir"):
        trained_enough(folder, replace(arch, size=64), cfg)
    folder.last.write_bytes(folder.last.read_bytes()[:300])
    with pytest.raises(UserError, match=r"readable checkpoint \(\w+\); restore it, or delete"):
        trained_enough(folder, arch, cfg)


def test_gan_train_killed_before_its_first_checkpoint_starts_again(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY]
    run_killed("gan_train", args, "pipelines.steps.gan_run", "_append_record")
    out = run_dir / "gan" / "df"
    assert (out / "run.json").is_file() and not (out / "last.pt").exists()  # the stuck state
    msg = one_line_error(run([*args, "--resume"], False))
    assert "no checkpoint at" in msg and "without --resume" in msg
    run(args)  # a plain rerun starts it: no circle
    assert torch.load(out / "last.pt", weights_only=True)["nimg"] >= 20
    assert len(json.loads((out / "run.json").read_text())["runs"]) == 1  # a fresh history


def test_gan_train_killed_before_its_first_file_starts_again(tmp_path: Path):
    """A start killed right after creating gan/df left it empty: a rerun (a Ray retry, once:
    'File exists') trains there."""
    run_dir = tmp_path / "run"
    (run_dir / "gan" / "df").mkdir(parents=True)
    run(["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY])
    assert (run_dir / "gan" / "df" / "last.pt").is_file()


@pytest.mark.parametrize("budget", [["--kimg", "0"], ["--kimg", "-1"], ["--epochs", "0"]])
def test_gan_train_refuses_a_budget_that_trains_nothing(tmp_path: Path, budget: list[str]):
    run_dir = tmp_path / "run"
    msg = one_line_error(run(["--class", "df", "--run-dir", str(run_dir), *budget, *TINY], False))
    assert f"{budget[0]} " in msg and "must be > 0" in msg
    assert not (run_dir / "gan").exists()


def test_resume_drops_a_torn_last_line_of_metrics_jsonl(trained: Path):
    metrics = trained / "gan" / "df" / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"kimg": 0.112, "step": 14, "loss_D"')  # killed mid-write
    run(["--class", "df", "--run-dir", str(trained), "--kimg", "0.15", "--resume", "--quiet"])
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and rows[-1]["kimg"] >= 0.15


def _eval_ns(out: Path) -> list[str]:
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    return [r["train_kid_label"].rsplit(" vs ", 1)[1].rstrip("]") for r in rows]


def test_resume_keeps_eval_n_unless_changed_and_then_says_so(evaluated: Path):
    out = evaluated / "gan" / "df"
    base = ["--class", "df", "--run-dir", str(evaluated), "--resume", "--quiet"]
    assert set(_eval_ns(out)) == {"64"}
    run([*base, "--kimg", "0.15"])
    assert set(_eval_ns(out)) == {"64"}  # not the default 1000
    result = run([*base, "--kimg", "0.2", "--eval-n", "24"])
    assert "--eval-n 24 replaces the run's 64" in result.output
    assert _eval_ns(out)[-1] == "24"
    records = json.loads((out / "run.json").read_text())["runs"]
    assert [r["config"]["evaluation"]["eval_n"] for r in records] == [64, 64, 24]
    msg = one_line_error(run([*base, "--feature-space", "inception"], False))
    assert "in the domain feature space, not inception" in msg


@pytest.mark.parametrize(
    "option, value",
    [("--lr", "nan"), ("--lr", "-1"), ("--lr", "0"), ("--lr", "inf"),
     ("--snapshot-kimg", "nan"), ("--eval-every", "nan"), ("--r1-gamma", "nan")],
)  # fmt: skip
def test_gan_train_refuses_a_learning_rate_or_interval_that_is_no_number(
    tmp_path: Path, option: str, value: str
):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY]
    msg = one_line_error(run([*args, option, value], False))
    assert f"{option} {value}: " in msg and "must be" in msg
    assert not run_dir.exists()


def test_a_split_seed_other_than_the_stored_splits_is_said(tmp_path: Path):
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split

    run_dir = tmp_path / "run"
    load_or_make_split(load_dataset("demo", 32, progress=False), run_dir, seed=0)
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY]
    out = run([*args, "--split-seed", "3"]).output
    assert f"note: --split-seed 3 is not used: {run_dir / 'split.json'} was made with" in out
    assert "--split-seed 0" in out
    (run_dir / "split.json").write_text("")
    msg = one_line_error(run([*args, "--overwrite"], False))
    assert f"{run_dir / 'split.json'} is damaged (it is empty)" in msg


def test_overwrite_never_deletes_files_it_did_not_write(tmp_path: Path):
    """A class folder holding someone else's files is refused even with --overwrite, in one
    line naming them, and nothing in it is touched."""
    run_dir = tmp_path / "run"
    mine = run_dir / "gan" / "df" / "thesis.tex"
    mine.parent.mkdir(parents=True)
    mine.write_text("three years of work")
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY, "--overwrite"]
    line = one_line_error(run(args, False))
    assert "raregan did not write as a GAN run" in line and "thesis.tex" in line
    assert mine.read_text() == "three years of work"
