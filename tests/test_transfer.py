"""The all-classes source GAN and per-class fine-tuning from it (`--class all`, `--from all`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, invoke_cli, one_line_error

from gan.networks import Architecture, build
from pipelines.cli import gan_train


def train(run_dir: Path, *args: str, ok: bool = True):
    return invoke_cli(gan_train, ["--run-dir", str(run_dir), *args, *TINY], ok)


def ckpt(run_dir: Path, cls: str, name: str = "last.pt") -> dict:
    return torch.load(run_dir / "gan" / cls / name, weights_only=True)


@pytest.fixture(scope="module")
def source_once(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("source") / "run"
    train(run_dir, "--class", "all", "--kimg", "0.05")
    return run_dir


@pytest.fixture
def source(source_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source_once, tmp_path / "run"))


def test_source_trains_on_every_training_image(source: Path):
    split = json.loads((source / "split.json").read_text())
    c = ckpt(source, "all")
    assert c["extra"]["n_train"] == split["counts"]["train"]["images"]
    assert c["config"]["sampling"] == "balanced" and c["arch"]["kind"] == "resize"


def test_fine_tune_starts_from_the_source_and_freezed_keeps_the_frozen_block(source: Path):
    train(source, "--class", "df", "--from", "all", "--freeze-d", "1", "--kimg", "0.05")
    src, tuned = ckpt(source, "all"), ckpt(source, "df")
    assert tuned["extra"]["source"]["path"].endswith("gan/all/last.pt")
    frozen = [k for k in src["D"] if k.startswith("main.0.")]  # D's image-side block
    trained = [k for k in src["D"] if k.startswith("main.2.")]
    assert frozen and trained
    for k in frozen:
        assert torch.equal(src["D"][k], tuned["D"][k]), k
    for k in trained:
        assert not torch.equal(src["D"][k], tuned["D"][k]), k
    # the optimiser holds only D's trainable parameters
    D = build(Architecture(**src["arch"]))[1]
    n_trainable = sum(1 for name, _ in D.named_parameters() if not name.startswith("main.0."))
    assert len(tuned["opt_D"]["param_groups"][0]["params"]) == n_trainable
    assert tuned["config"]["freeze_d"] == 1


def test_fine_tune_without_freezing_starts_from_every_source_weight(source: Path, tmp_path):
    # after one step from the source, G is far closer to the source than another init is
    train(source, "--class", "df", "--from", "all", "--freeze-d", "0", "--kimg", "0.008")
    train(tmp_path / "scratch", "--class", "df", "--kimg", "0.008", "--seed", "1")
    src, tuned, fresh = ckpt(source, "all"), ckpt(source, "df"), ckpt(tmp_path / "scratch", "df")

    def dist(a: dict, b: dict) -> float:
        return sum((a[k].float() - b[k].float()).norm().item() for k in a if "weight" in k)

    assert dist(tuned["G"], src["G"]) < 0.1 * dist(fresh["G"], src["G"])


def test_source_and_fine_tune_resume_bit_exactly(source: Path, tmp_path: Path):
    straight = Path(shutil.copytree(source, tmp_path / "straight"))
    # source: 0.05 kimg then resumed to 0.1 == 0.1 straight through
    train(source, "--class", "all", "--kimg", "0.1", "--resume")
    train(straight, "--class", "all", "--kimg", "0.1", "--overwrite")
    for k, v in ckpt(straight, "all")["G"].items():
        assert torch.equal(v, ckpt(source, "all")["G"][k]), k
    # fine-tune: both from the same (resumed == straight) source, 0.05 then resumed to 0.1
    train(source, "--class", "df", "--from", "all", "--kimg", "0.05")
    train(source, "--class", "df", "--kimg", "0.1", "--resume")
    train(straight, "--class", "df", "--from", "all", "--kimg", "0.1")
    a, b = ckpt(source, "df"), ckpt(straight, "df")
    assert a["nimg"] == b["nimg"] == 104
    for part in ("G", "D", "G_ema"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
    # the resume remembers its source
    assert a["extra"]["source"]["kimg"] == b["extra"]["source"]["kimg"] == 0.104
    assert a["extra"]["source"]["path"] == str(source / "gan" / "all" / "last.pt")


def test_from_a_missing_source_names_the_command(tmp_path: Path):
    result = train(tmp_path / "r", "--class", "df", "--from", "all", ok=False)
    line = one_line_error(result)
    assert "no source GAN" in line and "`gan-train --class all --run-dir" in line
    assert "--size 32 --arch resize`" in line


def test_from_an_incompatible_source_names_the_command(source: Path):
    result = train(source, "--class", "df", "--from", "all", "--arch", "dcgan", ok=False)
    line = one_line_error(result)
    assert "kind resize (asked dcgan)" in line
    assert f"`gan-train --class all --run-dir {source} --size 32 --arch dcgan`" in line


def test_balanced_sampling_draws_every_class_equally(source: Path):
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split
    from pipelines.steps.gan_run import class_run, sampling_weights

    ds = load_dataset("demo", 32, progress=False)
    run = class_run(ds, load_or_make_split(ds, source), "all", source)
    w = sampling_weights(run, "balanced")
    per_class = np.bincount(run.labels, weights=w.numpy())
    assert np.allclose(per_class, 1.0) and sampling_weights(run, "uniform") is None


def test_freeze_d_needs_a_source(tmp_path: Path):
    result = train(tmp_path / "r", "--class", "df", "--freeze-d", "1", ok=False)
    assert "use it with --from all" in one_line_error(result)
    train(tmp_path / "r", "--class", "df", "--kimg", "0.01")  # the default needs no flag
    assert ckpt(tmp_path / "r", "df")["config"]["freeze_d"] == 0  # nothing to freeze


def test_fine_tunes_of_several_classes_read_the_source_once(
    source: Path, checkpoint_reads: list[Path]
):
    reads = checkpoint_reads
    train(source, "--class", "df", "--class", "vasc", "--from", "all", "--kimg", "0.01")
    assert reads == [source / "gan" / "all" / "last.pt"]
    assert ckpt(source, "vasc")["extra"]["source"]["path"].endswith("gan/all/last.pt")
