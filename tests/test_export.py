"""augment-and-compare --export: an arm's training set as an ImageFolder with its provenance."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from conftest import SMOKE, invoke_cli, one_line_error, started_jobs, with_options
from PIL import Image

from pipelines.cli import augment_and_compare
from pipelines.config.arms import ARMS
from pipelines.config.experiment import read_config_file
from pipelines.report.export import licence_line
from pipelines.steps.classifier import arm_training_set
from pipelines.steps.plan import data_and_split, plan_for


def _export(run_dir: Path, arm: str, out: Path, *extra: str):
    args = ["--run-dir", str(run_dir), *SMOKE, "--export", arm, str(out), *extra]
    return invoke_cli(augment_and_compare, args)


def _manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _check_export(run_dir: Path, arm: str, out: Path) -> list[dict]:
    """The export is exactly the arm's training set of seed 0, and nothing of val/test."""
    from torchvision.datasets import ImageFolder

    cfg = read_config_file(run_dir / "experiment.json")
    assert Path(cfg.run_dir) == run_dir
    arm_set, _ = arm_training_set(plan_for(cfg), arm, 0)
    ds, split = data_and_split(cfg)
    folder = ImageFolder(str(out))
    loaded = Counter(folder.classes[t] for t in folder.targets)
    assert loaded == Counter(ds.class_names[label] for label in arm_set.labels)
    [result] = run_dir.glob(f"compare/*/{arm}/seed0/result.json")
    assert len(folder) == json.loads(result.read_text())["train_images"]
    rows = _manifest(out)
    files = {Path(p).relative_to(out).as_posix() for p, _ in folder.samples}
    assert len(rows) == len(files) and {r["file"] for r in rows} == files  # a row per file
    for i, r in enumerate(rows):  # in the arm's order, the very pixels it trained on
        assert (np.asarray(Image.open(out / r["file"])) == arm_set.images[i]).all(), r["file"]
        assert r["kind"] == ("synthetic" if Path(r["file"]).name.startswith("syn_") else "real")
        assert (r["kind"] == "synthetic") == (arm_set.rows[i] < 0)
    held = {ds.image_ids[i] for i in np.concatenate([split.val, split.test])}
    train = {ds.image_ids[i] for i in split.train}
    real = {r["image_id"] for r in rows if r["kind"] == "real"}
    assert real <= train and not real & held
    card = (out / "DATASET_CARD.md").read_text()
    assert licence_line(ds.format, ds.source) in card
    assert "augment-and-compare --" in card and f"--export {arm} {out}" in card
    return rows


def test_export_writes_exactly_the_arms_training_set(compared: Path, tmp_path: Path):
    out = tmp_path / "exports" / "oversample_gan"
    result = _export(compared, "oversample+gan", out)
    assert started_jobs(result.output) == set()  # a finished run: every job reused
    assert f"-> {out}" in result.output
    rows = _check_export(compared, "oversample+gan", out)
    synthetic = [r for r in rows if r["kind"] == "synthetic"]
    assert synthetic and any(int(r["repeat"]) > 0 for r in rows)  # both ways of growing
    assert {r["class"] for r in synthetic} == {"df", "vasc"}
    for r in synthetic:
        assert len(r["checkpoint_sha256"]) == 64
        assert Path(r["checkpoint"]).is_relative_to(compared / "gan" / r["class"])
        assert r["checkpoint_kimg"] and r["filter_score"] and r["sample_seed"] == "0"
    card = (out / "DATASET_CARD.md").read_text()
    assert "held-out KID of the kept set" in card and "real-vs-real floor" in card
    assert "filter verdict" in card and "| df |" in card
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries

    base = tmp_path / "exports" / "baseline"
    base.mkdir()
    (base / "DATASET_CARD.md").write_text("an older export")  # ours: may be replaced
    (base / "stale.txt").write_text("old")
    refused = invoke_cli(
        augment_and_compare,
        ["--run-dir", str(compared), *SMOKE, "--export", "baseline", str(base)],
        ok=False,
    )
    assert "--export-overwrite" in one_line_error(refused)
    config = ["--config", str(compared / "experiment.json"), "--quiet"]  # a rerun's way too
    invoke_cli(
        augment_and_compare, [*config, "--export", "baseline", str(base), "--export-overwrite"]
    )
    assert not (base / "stale.txt").exists()
    rows = _check_export(compared, "baseline", base)
    assert all(r["kind"] == "real" and r["repeat"] == "0" for r in rows)


def test_a_full_disk_during_export_names_the_file_and_leaves_nothing(
    compared: Path, tmp_path: Path, monkeypatch
):
    """The message names the export's file that failed (not its folder, not the temporary
    copy) and --export among the places to move; no half export or temporary is left."""
    import errno

    write_bytes = Path.write_bytes

    def full_disk(self, data):
        if self.suffix == ".png":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    out = tmp_path / "exports" / "gan"
    args = ["--run-dir", str(compared), *SMOKE, "--export", "gan", str(out)]
    msg = one_line_error(invoke_cli(augment_and_compare, args, ok=False))
    assert f"no space left on the device of {out}{os.sep}" in msg and ".png" in msg
    assert "--export DIR" in msg
    assert not list((tmp_path / "exports").iterdir())


def test_a_bad_export_arm_is_one_line_before_any_work(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["--run-dir", str(run_dir), *SMOKE, "--export"]
    line = one_line_error(invoke_cli(augment_and_compare, [*args, "nosuch", "out"], ok=False))
    assert "nosuch" in line and all(a in line for a in ARMS)
    fewer = with_options(args[:-1], arms="baseline,gan")
    line = one_line_error(
        invoke_cli(augment_and_compare, [*fewer, "--export", "oversample", "o"], ok=False)
    )
    assert "no oversample arm" in line and "baseline, gan" in line
    line = one_line_error(
        invoke_cli(augment_and_compare, [*args, "gan", "o", "--export-seed", "5"], ok=False)
    )
    assert "--export-seed 5" in line
    line = one_line_error(invoke_cli(augment_and_compare, [*args, "oracle", "o"], ok=False))
    assert "--export oracle: an oracle arm is the positive control" in line
    assert not run_dir.exists()


def test_the_card_names_the_licence_of_the_source():
    assert "CC BY-NC-SA 4.0" in licence_line("ham10000", "/data/HAM10000")
    assert licence_line("isic", "/data/isic2019") == "licence of /data/isic2019: state it"


def test_export_overwrite_never_deletes_the_data_a_gan_or_foreign_files(
    ham_dir: Path, tmp_path: Path
):
    """--export DIR --export-overwrite, DIR the run's --data, its GAN or sample folders, or a
    folder of someone else's files: refused in one line before any work, nothing deleted."""
    run_dir = tmp_path / "run"
    gan = run_dir / "gan" / "df" / "last.pt"
    gan.parent.mkdir(parents=True)
    gan.write_bytes(b"a generator")
    foreign = tmp_path / "mine" / "thesis.tex"
    foreign.parent.mkdir()
    foreign.write_text("mine")
    cases = {
        ham_dir: "is the --data folder",
        run_dir / "gan": "is the GAN runs of the run directory",
        run_dir / "samples" / "x": "lies inside the sample sets of the run directory",
        foreign.parent: "holds files raregan did not write as an export (e.g. thesis.tex)",
    }
    files = lambda: sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())  # noqa: E731
    before = files()
    for target, said in cases.items():
        args = ["--run-dir", str(run_dir), "--data", str(ham_dir), "--profile", "smoke",
                "--classes", "df", "--quiet", "--export", "gan", str(target),
                "--export-overwrite"]  # fmt: skip
        line = one_line_error(invoke_cli(augment_and_compare, args, ok=False))
        assert said in line, line
        assert files() == before
    assert gan.read_bytes() == b"a generator"
