"""TensorBoard: the event files of a GAN and a classifier, read back with tensorboard's own
reader; a resume continues the series; without the extra nothing breaks (trained_once,
evaluated_once: conftest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import SMOKE, TINY, invoke_cli, one_line_error, with_options
from tensorboard.backend.event_processing import event_accumulator

from pipelines.cli import augment_and_compare, gan_train

GAN_TAGS = {"loss/D", "loss/G", "D/D(x)", "D/D(G(z))", "speed/img_per_s"}
EVAL_TAGS = {"KID/heldout", "KID/floor", "KID/train", "FID/heldout", "FID/floor"}


def events(folder: Path) -> event_accumulator.EventAccumulator:
    """Every scalar and image of a folder's event files, as TensorBoard shows them."""
    keep_all = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=keep_all)
    acc.Reload()
    return acc


def steps(acc, tag: str, kind: str = "Scalars") -> list[int]:
    return [e.step for e in getattr(acc, kind)(tag)]


def test_a_gan_run_writes_its_scalars_and_sample_grids(trained_once: Path):
    acc = events(trained_once / "tb" / "gan" / "df")  # on by default: tensorboard is installed
    assert GAN_TAGS <= set(acc.Tags()["scalars"])
    assert steps(acc, "loss/D") == [56, 104]  # images seen, as metrics.jsonl's kimg
    assert steps(acc, "samples/fixed_noise", "Images") == [56, 104]  # every snapshot
    first = json.loads((trained_once / "gan/df/metrics.jsonl").read_text().splitlines()[0])
    assert acc.Scalars("loss/G")[0].value == pytest.approx(first["loss_G"])


def test_fid_tracking_writes_held_out_kid_with_its_floor(evaluated_once: Path):
    acc = events(evaluated_once / "tb" / "gan" / "df")
    assert EVAL_TAGS <= set(acc.Tags()["scalars"])
    rows = [json.loads(r) for r in (evaluated_once / "gan/df/eval.jsonl").read_text().splitlines()]
    assert steps(acc, "KID/heldout") == [round(r["kimg"] * 1000) for r in rows]
    assert [e.value for e in acc.Scalars("KID/floor")] == pytest.approx(
        [r["floor_kid"] for r in rows]
    )


def test_a_resume_continues_the_series_and_drops_a_killed_runs_orphans(trained: Path):
    from torch.utils.tensorboard import SummaryWriter

    folder = trained / "tb" / "gan" / "df"
    orphan = SummaryWriter(str(folder))  # what a run killed after its 104-image checkpoint
    orphan.add_scalar("loss/D", 999.0, 152)  # had written before dying
    orphan.close()
    args = ["--class", "df", "--run-dir", str(trained), "--kimg", "0.2", "--resume", "--quiet"]
    invoke_cli(gan_train, args)
    acc = events(folder)
    assert steps(acc, "loss/D") == [56, 104, 152, 160, 200]  # each step once, in order
    assert 999.0 not in [e.value for e in acc.Scalars("loss/D")]
    assert steps(acc, "samples/fixed_noise", "Images") == [56, 104, 152, 200]


def test_without_tensorboard_training_works_and_asking_for_it_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    args = ["--class", "df", "--run-dir", str(tmp_path / "run"), "--kimg", "0.05", *TINY]
    msg = one_line_error(invoke_cli(gan_train, [*args, "--tensorboard"], False))
    assert "pip install 'raregan[tensorboard]'" in msg
    assert not (tmp_path / "run").exists()  # refused before any work
    invoke_cli(gan_train, args)
    assert (tmp_path / "run/gan/df/last.pt").is_file()
    assert not (tmp_path / "run/tb").exists()


def test_no_tensorboard_writes_no_events(tmp_path: Path):
    args = ["--class", "df", "--run-dir", str(tmp_path / "run"), "--kimg", "0.05", *TINY]
    invoke_cli(gan_train, [*args, "--no-tensorboard"])
    assert not (tmp_path / "run/tb").exists()


def test_a_classifier_writes_its_loss_and_validation_balanced_accuracy(tmp_path: Path):
    run_dir = tmp_path / "run"
    smoke = with_options(SMOKE, seeds="1", arms="baseline")  # no GAN: quick
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *smoke])
    acc = events(run_dir / "tb" / "classifier" / "baseline" / "seed0")
    [result] = run_dir.glob("compare/*/baseline/seed0/result.json")
    history = json.loads(result.read_text())["history"]
    for tag, key in [("loss/train", "loss"), ("val/balanced_accuracy", "val_balanced_accuracy")]:
        assert steps(acc, tag) == [h["step"] for h in history]
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([h[key] for h in history])
