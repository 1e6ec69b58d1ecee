"""gan-sample: sampling, filtering, and refusing what it cannot use (evaluated_once and
trained_once: conftest)."""

from __future__ import annotations

import csv
import errno
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, invoke_cli, one_line_error, run_killed, with_options

from pipelines.cli import gan_sample, gan_train
from pipelines.steps.detect import FRESH_N


def sample(args: list[str], ok: bool = True):
    """gan-sample with a short detectability measurement (its default 300 steps made most of
    every call's time; --detect-steps 0 skips it)."""
    return invoke_cli(gan_sample, [*args, "--detect-steps", "20"], ok)


def test_fid_tracking_during_training(evaluated_once: Path):
    out = evaluated_once / "gan" / "df"
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [round(r["kimg"], 3) for r in rows] == [0.056, 0.104]
    counts = json.loads((evaluated_once / "split.json").read_text())["counts"]
    n_train, n_val = counts["train"]["per_class"]["df"], counts["val"]["per_class"]["df"]
    assert (n_train, n_val) == (41, 10)  # demo df: training and validation images
    best = torch.load(out / "best.pt", weights_only=True)
    n_sel, n_judge = best["extra"]["n_heldout"], best["extra"]["n_judging"]
    assert n_sel + n_judge == n_val and n_sel >= n_judge >= 2  # the halves of its lesions
    assert rows[0]["train_fid_label"] == f"FID[domain-256d, n={n_train} vs 64]"
    assert rows[0]["heldout_kid_label"] == f"KID[domain-256d, n={n_sel} vs 64]"
    assert rows[0]["floor_fid_label"] == f"FID[domain-256d, n={n_sel} vs {n_train}]"
    assert best["extra"]["eval"]["heldout_kid"] == min(r["heldout_kid"] for r in rows)
    record = json.loads((out / "run.json").read_text())["runs"][-1]
    assert record["config"]["best_checkpoint"].startswith("lowest held-out KID")
    assert (out / "fid_curve.png").stat().st_size > 1000


def test_sample_all_classes_with_filter(evaluated: Path):
    result = sample(["--n", "30", "--run-dir", str(evaluated), "--quiet"])
    assert "SYNTHETIC" in result.output and "| df | kept |" in result.output
    for cls in ("df", "vasc"):
        out = evaluated / "samples" / cls
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
        assert "verdict" in summary and "filter_beats_random" not in summary
        assert summary["record"]["data"]["synthetic_demo_data"] is True
        gan = torch.load(evaluated / "gan" / cls / "best.pt", weights_only=True)["extra"]
        # judged on the judging half of the class's validation images, never the selection's
        assert summary["n_heldout"] == gan["n_judging"]
        if cls == "vasc":  # 3 validation lesions: 1 judges, too few images for a verdict
            assert gan["n_judging"] < 2 and "filter_vs_random_heldout" not in summary
            assert summary["verdict"].startswith("no held-out verdict: only 1 validation")
            continue
        assert summary["filter_vs_random_heldout"]["verdict"] in ("beats", "no difference", "worse")
        assert summary["filter_vs_random_heldout"]["unit"] == "lesions"
        held = summary["heldout_sets"]["kept"]
        assert held["n_reference"] == gan["n_judging"] >= 2
        assert summary["floor"]["n"] == summary["n_real"]
        assert summary["verdict"].startswith("on held-out reals, kept KID[")


def test_score_filter_keeps_the_best_scored_non_rejected(evaluated: Path):
    sample(
        [
            "--n",
            "20",
            "--class",
            "df",
            "--run-dir",
            str(evaluated),
            "--quiet",
            "--score",
            "realism",
        ],
    )
    with open(evaluated / "samples" / "df" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    kept = [float(r["score"]) for r in rows if r["status"] == "kept"]
    low = [float(r["score"]) for r in rows if r["status"] == "low-score"]
    assert 0 < len(kept) <= 20 and (not low or min(kept) >= max(low))


def test_npz_output_and_no_filter(evaluated: Path):
    sample(
        [
            "--n",
            "16",
            "--class",
            "df",
            "--run-dir",
            str(evaluated),
            "--quiet",
            "--filter",
            "none",
            "--format",
            "npz",
            "--checkpoint",
            "last",
        ],
    )
    out = evaluated / "samples" / "df"
    with np.load(out / "samples.npz") as z:
        assert z["images"].shape == (16, 32, 32, 3) and z["images"].dtype == np.uint8
    assert json.loads((out / "summary.json").read_text())["pool"] == 16


def test_refuses_to_overwrite_samples(evaluated: Path):
    args = ["--n", "8", "--class", "df", "--run-dir", str(evaluated), "--quiet"]
    sample(args)
    assert "already holds samples" in one_line_error(sample(args, ok=False))
    sample([*args, "--overwrite", "--seed", "3"])
    assert json.loads((evaluated / "samples/df/summary.json").read_text())["options"]["seed"] == 3
    assert not list((evaluated / "samples").glob(".df.*"))  # no temporary leftovers
    every = ["--n", "8", "--run-dir", str(evaluated), "--quiet"]  # df and vasc; df is done
    msg = one_line_error(sample(every, ok=False))  # as after a kill after df
    assert "--class vasc to sample only those not sampled yet" in msg


def test_bad_input(evaluated: Path, tmp_path: Path):
    base = ["--run-dir", str(evaluated), "--quiet"]
    msg = one_line_error(sample(["--n", "5", "--class", "mel", *base], ok=False))
    assert "gan-train --class mel" in msg
    result = sample(["--n", "0", *base], ok=False)
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
    msg = one_line_error(sample(["--n", "5", "--run-dir", str(tmp_path / "none")], False))
    assert "no split.json" in msg


def test_checkpoint_of_another_size(evaluated: Path, tmp_path: Path):
    other = tmp_path / "other"
    args = ["--class", "df", "--run-dir", str(other), "--kimg", "0.02"]
    invoke_cli(gan_train, [*args, *with_options(TINY, size="64")])
    args = [
        "--n",
        "5",
        "--class",
        "df",
        "--run-dir",
        str(evaluated),
        "--quiet",
        "--checkpoint",
        str(other / "gan" / "df" / "last.pt"),
    ]
    msg = one_line_error(sample(args, ok=False))
    assert "generates 64 px images but this run's data is loaded at 32 px" in msg
    assert "--size" not in msg  # an option gan-sample does not have
    assert "sample it in the run directory it was trained in" in msg


def test_each_checkpoint_is_read_once(evaluated: Path, checkpoint_reads: list[Path]):
    reads = checkpoint_reads
    args = ["--n", "4", "--class", "df", "--run-dir", str(evaluated), "--quiet", "--filter", "none"]
    sample(args)  # the size of the run, then the generator: one read
    assert reads == [evaluated / "gan" / "df" / "best.pt"]


def test_a_damaged_last_pt_leaves_best_pt_usable(evaluated: Path):
    out = evaluated / "gan" / "df"
    assert (out / "best.pt").is_file()
    (out / "last.pt").write_bytes((out / "last.pt").read_bytes()[:200])  # torn
    args = ["--n", "4", "--run-dir", str(evaluated), "--quiet", "--filter", "none"]
    sample(args)  # the class is found, and best.pt read, despite last.pt
    summary = json.loads((evaluated / "samples" / "df" / "summary.json").read_text())
    assert summary["checkpoint"].endswith("best.pt")
    msg = one_line_error(sample([*args, "--checkpoint", "last", "--overwrite"], False))
    assert "not a readable checkpoint" in msg and "try --checkpoint best" in msg
    resume = ["--class", "df", "--run-dir", str(evaluated), "--kimg", "0.15", "--resume", "--quiet"]
    msg = one_line_error(invoke_cli(gan_train, resume, False))
    assert f"copy {out / 'best.pt'} over it and rerun with --resume" in msg
    assert "--overwrite would start over and delete best.pt" in msg
    shutil.copyfile(out / "best.pt", out / "last.pt")  # the advice works
    invoke_cli(gan_train, [*resume, "--eval-every", "0"])  # (no FID: a faster test)
    assert torch.load(out / "last.pt", weights_only=True)["nimg"] >= 150


def test_gan_sample_with_a_huge_n_is_refused_up_front(trained: Path, monkeypatch):
    gan_sample_module = sys.modules["pipelines.cli.gan_sample"]

    def no_work(*a, **k):
        raise AssertionError("the work started: the memory check let 10,000,000 through")

    monkeypatch.setattr(gan_sample_module, "load_feature_space", no_work)
    args = ["--n", "10000000", "--run-dir", str(trained), "--quiet"]
    msg = one_line_error(sample(args, False))
    assert "--n 10,000,000 draws a pool of 20,000,000 images" in msg and "GiB" in msg
    assert "lower --n" in msg


def test_a_killed_gan_sample_leaves_no_temporary_folders(trained: Path):
    args = ["--n", "4", "--run-dir", str(trained), "--quiet", "--filter", "none"]
    run_killed(
        "gan_sample", [*args, "--detect-steps", "20"], "pipelines.steps.sampling", "new_temp_dir"
    )
    samples = trained / "samples"
    assert [p.name[:8] for p in samples.iterdir() if p.name != ".raregan.lock"] == [".df.tmp-"]
    (samples / ".df.a1b2c3d4").mkdir()  # an older version's leftover (mkdtemp's name)
    (samples / ".dfx.tmp-00000000").mkdir()  # another class's: not ours to touch
    sample(args)
    left = sorted(p.name for p in samples.iterdir())
    assert left == [".dfx.tmp-00000000", "df"]


def test_filter_none_does_not_train_the_feature_network(trained: Path):
    result = sample(["--n", "4", "--run-dir", str(trained), "--filter", "none"])
    assert not (trained / "features").exists()
    summary = json.loads((trained / "samples" / "df" / "summary.json").read_text())
    assert summary["kept"] == 4 and summary["verdict"].startswith("FID/KID not measured")
    assert "FID/KID not measured" in result.output
    det = summary["detectability"]  # needs no feature network: measured all the same
    assert det["n_test"][1] == FRESH_N and "small CNN tells" in summary["verdict"]
    assert det["steps"] == 20  # --detect-steps, as sample() passes it


def test_detect_steps_zero_skips_detectability_and_says_so(trained: Path):
    args = ["--n", "4", "--run-dir", str(trained), "--filter", "none", "--detect-steps", "0"]
    result = invoke_cli(gan_sample, args)
    summary = json.loads((trained / "samples" / "df" / "summary.json").read_text())
    assert summary["detectability"] == {"skipped": "--detect-steps 0"}
    assert "detectability not measured (--detect-steps 0)" in result.output


def test_a_generator_trained_on_other_data_is_refused(trained: Path, tmp_path: Path):
    ckpt = torch.load(trained / "gan" / "df" / "last.pt", weights_only=True)
    ckpt["extra"]["data_fingerprint"] = "0123456789abcdef"
    torch.save(ckpt, tmp_path / "foreign.pt")
    args = ["--n", "4", "--run-dir", str(trained), "--filter", "none", "--checkpoint"]
    msg = one_line_error(sample([*args, str(tmp_path / "foreign.pt")], False))
    assert "was trained on other data (fingerprint 0123456789abcdef" in msg


def test_generators_of_two_sizes_are_refused_with_advice_gan_sample_can_take(trained: Path):
    train = ["--class", "vasc", "--run-dir", str(trained), "--kimg", "0.02"]
    invoke_cli(gan_train, [*train, *with_options(TINY, size="64")])
    args = ["--n", "4", "--run-dir", str(trained), "--quiet", "--filter", "none"]
    msg = one_line_error(sample(args, False))
    assert "df 32 px, vasc 64 px" in msg and "--size" not in msg
    assert "one gan-sample per size" in msg and "--class" in msg
    assert not (trained / "samples").exists()
    sample([*args, "--class", "vasc"])  # the advice works


@pytest.mark.parametrize("text", ["", "{"])
def test_a_damaged_split_json_is_a_one_line_error(tmp_path: Path, text: str):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "split.json").write_text(text)
    args = ["--n", "4", "--run-dir", str(tmp_path / "run")]
    msg = one_line_error(sample(args, False))
    assert f"{tmp_path / 'run' / 'split.json'} is damaged" in msg and "delete it and rerun" in msg


def test_a_full_out_disk_is_a_one_line_error_and_leaves_no_temporary_folder(
    trained: Path, tmp_path: Path, monkeypatch
):
    from PIL import Image

    def full_disk(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "out"
    args = ["--n", "4", "--run-dir", str(trained), "--quiet", "--filter", "none", "--out", str(out)]
    msg = one_line_error(sample(args, False))
    assert f"no space left on the device of {out / 'df'}" in msg and "free there" in msg
    assert [p.name for p in out.iterdir()] == [".raregan.lock"]


def test_overwrite_never_deletes_a_generator_or_someone_elses_files(trained: Path, tmp_path):
    """--out at the run's GAN folder (gan-sample would replace gan/df, the generator), or at
    a folder whose df/ holds files this tool did not write, is refused in one line even
    with --overwrite, and nothing there is touched."""
    gan = trained / "gan" / "df"
    before = {p: p.read_bytes() for p in gan.iterdir() if p.is_file()}
    args = ["--n", "4", "--run-dir", str(trained), "--class", "df", "--quiet", "--overwrite"]
    line = one_line_error(sample([*args, "--out", str(trained / "gan")], ok=False))
    assert "lies inside the GAN runs of the run directory" in line
    assert {p: p.read_bytes() for p in gan.iterdir() if p.is_file()} == before
    notes = tmp_path / "mine" / "df" / "notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    mine = [*args, "--out", str(tmp_path / "mine")]
    line = one_line_error(sample(mine, ok=False))
    assert "did not write as a sample set" in line and "notes.txt" in line
    assert notes.read_text() == "mine"


def test_a_checkpoint_with_non_finite_weights_is_refused_not_sampled_black(trained: Path):
    """Bit rot that turns a weight into NaN used to give all-black "kept" samples and exit 0."""
    path = trained / "gan" / "df" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    weights = ckpt["G_ema"] if ckpt["G_ema"] is not None else ckpt["G"]
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name][(0,) * weights[name].dim()] = float("nan")
    torch.save(ckpt, path)
    args = ["--n", "4", "--run-dir", str(trained), "--class", "df", "--quiet", "--filter", "none",
            "--checkpoint", "last", "--out", str(trained / "new")]  # fmt: skip
    line = one_line_error(sample(args, ok=False))
    assert "non-finite generator weights" in line and name in line
    assert not (trained / "new" / "df").exists()


def test_a_generator_whose_output_is_not_finite_is_stopped():
    from gan.training import NonFiniteSamples, sample

    class Broken(torch.nn.Module):
        def forward(self, z):
            return torch.full((len(z), 3, 4, 4), float("nan"))

    with pytest.raises(NonFiniteSamples, match="not finite"):
        sample(Broken(), torch.zeros(2, 8))


def test_a_damaged_checkpoint_is_refused_before_the_feature_network_trains(
    trained: Path, monkeypatch
):
    """A truncated --checkpoint file was refused only after ~95 s of feature-network
    training: it is read with the other refusals, before any work."""
    gan_sample_module = sys.modules["pipelines.cli.gan_sample"]

    def no_work(*a, **k):
        raise AssertionError("the work started before the damaged checkpoint was refused")

    monkeypatch.setattr(gan_sample_module, "load_feature_space", no_work)
    cut = trained / "cut.pt"
    cut.write_bytes((trained / "gan" / "df" / "last.pt").read_bytes()[:1000])
    args = ["--n", "4", "--run-dir", str(trained), "--class", "df", "--quiet",
            "--checkpoint", str(cut)]  # fmt: skip
    msg = one_line_error(sample(args, False))
    assert str(cut) in msg
