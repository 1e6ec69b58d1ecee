"""augment-and-compare's command line: --dry-run, and the one-line errors of a bad start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SMOKE, invoke_cli, job_lines, one_line_error, started_jobs, with_options

from pipelines.cli import augment_and_compare
from pipelines.errors import UserError


def invoke(args, ok=True):
    return invoke_cli(augment_and_compare, args, ok)


def test_dry_run_lists_jobs_dependencies_and_status(compared: Path, tmp_path: Path):
    fresh = invoke(["--run-dir", str(tmp_path / "new"), *SMOKE, "--dry-run"]).output
    lines = job_lines(fresh)
    assert lines["gan/df"].split()[1:3] == ["to-run", "cpu"]
    assert lines["gan/df"].endswith("features, gan/all")
    assert set(lines) >= {"features", "gan/all", "samples/gan/vasc", "classifier/gan/seed1"}
    assert "report" in lines and not (tmp_path / "new" / "jobs").exists()  # nothing ran
    done = invoke(["--run-dir", str(compared), *SMOKE, "--dry-run"]).output
    assert all(line.split()[1] == "done" for line in job_lines(done).values())
    more = with_options(SMOKE, seeds="3")  # a third seed: new jobs, stale report
    changed = invoke(["--run-dir", str(compared), *more, "--dry-run"]).output
    status = {name: line.split()[1] for name, line in job_lines(changed).items()}
    assert status["classifier/gan/seed2"] == "to-run" and status["gan/df"] == "done"
    assert status["classifier/gan/seed0"] == "stale" and status["report"] == "stale"
    margin = invoke(["--run-dir", str(compared), *SMOKE, "--margin", "0.1", "--dry-run"]).output
    status = {name: line.split()[1] for name, line in job_lines(margin).items()}
    assert status.pop("report") == "stale" and set(status.values()) == {"done"}  # report only


def test_bad_input(compared: Path, imagefolder_dir: Path, tmp_path: Path):
    base = ["--run-dir", str(compared), "--profile", "smoke", "--quiet"]
    assert "class 'melanoma' is not in" in one_line_error(
        invoke([*base, "--classes", "melanoma"], False)
    )
    assert "unknown arm(s) magic" in one_line_error(
        invoke([*base, "--arms", "baseline,magic"], False)
    )
    assert "need at least 1 seed" in one_line_error(invoke([*base, "--seeds", "0"], False))
    msg = one_line_error(invoke([*base, "--classes", "df", "--target", "3"], False))
    assert "smaller than the" in msg and "real training images of 'df'" in msg
    other = ["--data", str(imagefolder_dir), "--classes", "cats"]
    other += ["--cache-dir", str(tmp_path / "c")]
    msg = one_line_error(invoke([*base, *other], False))
    assert "belongs to other data" in msg
    msg = one_line_error(
        invoke([*SMOKE, "--run-dir", str(compared), "--external-test", str(imagefolder_dir)], False)
    )
    assert "missing: akiec, bcc" in msg and "extra: cats, dogs" in msg


def test_more_workers_than_threads_is_a_one_line_error(tmp_path: Path):
    args = ["--run-dir", str(tmp_path / "run"), "--threads", "2", "--workers", "3", "--dry-run"]
    msg = one_line_error(invoke(args, False))
    assert "--workers 3 is more than the 2 thread(s) of a job" in msg
    assert "use --workers 2 or fewer" in msg
    assert not (tmp_path / "run").exists()


def test_a_truncated_last_pt_under_augment_and_compare_is_a_one_line_error(compared: Path):
    (compared / "jobs" / "gan__df.json").unlink()  # the GAN job runs again and reads last.pt
    last = compared / "gan" / "df" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    msg = one_line_error(invoke(["--run-dir", str(compared), *SMOKE], False))
    assert f"{last} is not a readable checkpoint" in msg
    assert f"copy {last.parent / 'best.pt'} over it" in msg and f"delete {last.parent}" in msg


# ---------------------------------------------------------------- refused before any work


def refused_before_any_work(tmp_path: Path, **options: str) -> str:
    """The one-line error of a --dry-run on a fresh run directory, which stays uncreated."""
    run_dir = tmp_path / "run"
    args = ["--run-dir", str(run_dir), *with_options(SMOKE, **options), "--dry-run"]
    msg = one_line_error(invoke(args, False))
    assert not run_dir.exists(), sorted(p.name for p in run_dir.rglob("*"))
    return msg


def test_an_arm_given_twice_is_refused_before_any_work(tmp_path: Path):
    msg = refused_before_any_work(tmp_path, arms="baseline,baseline,gan")
    assert "--arms baseline,baseline,gan: baseline is given twice" in msg


def test_a_class_given_twice_or_none_is_refused_before_any_work(tmp_path: Path):
    msg = refused_before_any_work(tmp_path, classes="df,df,mel")
    assert "--classes df,df,mel: df is given twice" in msg
    for empty in ("", " , "):
        msg = refused_before_any_work(tmp_path, classes=empty)
        assert "--classes: no rare class given" in msg


def test_a_class_named_like_the_source_gan_is_refused_by_name(tmp_path: Path):
    from conftest import write_image

    data = tmp_path / "folder"
    for cls in ("all", "other"):
        for i in range(3):
            write_image(data / cls / f"{cls}{i}.png", (9 * i, 90, 90), (32, 32), fmt="PNG")
    msg = refused_before_any_work(
        tmp_path, data=str(data), classes="all", cache_dir=str(tmp_path / "cache")
    )
    assert "--classes all: 'all' is the name of the all-classes source GAN" in msg


def test_a_dry_run_writes_nothing(tmp_path: Path):
    run_dir = tmp_path / "run"
    out = invoke(["--run-dir", str(run_dir), *SMOKE, "--dry-run"]).output
    assert "gan/df" in job_lines(out) and not run_dir.exists()
    args = ["--run-dir", str(run_dir), *with_options(SMOKE, classes="df", target="3")]
    assert "smaller than the" in one_line_error(invoke(args, False))  # refused, not dry
    assert not run_dir.exists()


def test_a_split_seed_other_than_the_stored_splits_is_said(tmp_path: Path):
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split

    run_dir = tmp_path / "run"
    load_or_make_split(load_dataset("demo", 32, progress=False), run_dir, seed=0)
    args = ["--run-dir", str(run_dir), *SMOKE, "--dry-run", "--split-seed", "3"]
    msg = one_line_error(invoke(args, False))
    assert f"--split-seed 3: {run_dir / 'split.json'} was made with --split-seed 0" in msg
    assert "pass --split-seed 0" in msg and "another --run-dir" in msg
    invoke(["--run-dir", str(run_dir), *SMOKE, "--dry-run", "--split-seed", "0"])


def test_an_external_test_set_is_checked_before_any_work(tmp_path: Path, imagefolder_dir: Path):
    msg = refused_before_any_work(tmp_path, external_test=str(tmp_path / "nowhere"))
    assert f"--external-test {tmp_path / 'nowhere'} does not exist" in msg
    assert "--data" not in msg
    msg = refused_before_any_work(
        tmp_path, external_test=str(imagefolder_dir), cache_dir=str(tmp_path / "cache")
    )
    assert f"--external-test {imagefolder_dir}: its classes do not match" in msg
    assert "missing: akiec, bcc" in msg and "extra: cats, dogs" in msg


def test_a_huge_target_is_refused_up_front_in_its_own_terms(tmp_path: Path):
    msg = refused_before_any_work(tmp_path, target="20000000")
    assert "--target 20,000,000" in msg and "GiB" in msg and "lower --target" in msg
    assert "--n" not in msg and "--pool-factor" not in msg


@pytest.mark.parametrize("text", ["", "{", "[1, 2]"])
def test_a_damaged_split_json_is_a_one_line_error(tmp_path: Path, text: str):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "split.json").write_text(text)
    msg = one_line_error(invoke(["--run-dir", str(run_dir), *SMOKE, "--dry-run"], False))
    assert f"{run_dir / 'split.json'} is damaged" in msg
    assert "delete it and rerun" in msg and "another --run-dir" in msg


def test_oracle_options_are_refused_where_nothing_is_held_back(imagefolder_dir: Path, tmp_path):
    run = ["--run-dir", str(tmp_path / "run"), "--profile", "smoke", "--dry-run"]
    msg = one_line_error(invoke([*run, "--oracle-share", "1"], False))
    assert "--oracle-share 1: give a share between 0 and 1" in msg
    msg = one_line_error(invoke([*run, "--oracle-share", "0.5", "--folds", "2"], False))
    assert "--oracle-share holds back lesions of one split" in msg
    real = ["--data", str(imagefolder_dir), "--classes", "cats", "--cache-dir", str(tmp_path / "c")]
    msg = one_line_error(invoke([*run, *real, "--arms", "baseline,oracle"], False))
    assert "the oracle arms draw on held-back lesions; pass --oracle-share" in msg
    assert not (tmp_path / "run").exists()


def test_a_margin_outside_0_1_is_a_one_line_error(tmp_path: Path):
    run = ["--run-dir", str(tmp_path / "run"), "--profile", "smoke", "--dry-run"]
    for bad in ("0", "1", "nan"):
        msg = one_line_error(invoke([*run, "--margin", bad], False))
        assert "--margin" in msg and not (tmp_path / "run").exists()


def test_held_back_lesions_bring_the_oracle_arms_by_default(tmp_path: Path):
    args = ["--run-dir", str(tmp_path / "run"), *with_options(SMOKE, classes="mel", target="auto")]
    args += ["--dry-run"]
    plain = job_lines(invoke(args).output)  # the demo: its painter's fresh lesions
    assert {n for n in plain if "oracle" in n} == {
        "classifier/oracle/seed0",
        "classifier/oracle/seed1",
    }
    held = job_lines(invoke([*args, "--oracle-share", "0.5"]).output)
    assert {"classifier/oracle/seed0", "classifier/oversample+oracle/seed1"} <= set(held)


# ---------------------------------------------------------------- --classifier (issue 32)

ONE_SEED = with_options(SMOKE, seeds="1", arms="baseline,gan")


def test_another_classifier_retrains_only_the_classifiers(compared: Path):
    """A torchvision ResNet-18 at 64 px in a finished run: the dry run shows only the
    classifiers (and the report) to run, the run starts nothing else, and records it."""
    args = ["--run-dir", str(compared), *ONE_SEED, "--classifier", "resnet18",
            "--classifier-size", "64"]  # fmt: skip
    status = {
        n: line.split()[1] for n, line in job_lines(invoke([*args, "--dry-run"]).output).items()
    }
    assert {n for n, s in status.items() if s != "done"} == {
        "classifier/baseline/seed0", "classifier/gan/seed0", "report"}  # fmt: skip
    result = invoke(args)
    assert started_jobs(result.output) == {
        "classifier/baseline/seed0", "classifier/gan/seed0", "report"}  # fmt: skip
    saved = json.loads((compared / "experiment.json").read_text())["config"]["classifier"]
    assert saved == {"family": "torchvision", "name": "resnet18", "size": 64, "weights": None,
                     "weights_sha256": None}  # fmt: skip
    report = Path(result.output.split("report: ")[-1].strip()).read_text()
    assert "resnet18(from scratch, 64 px inputs)" in report


def test_a_network_of_ones_own_runs_end_to_end(compared: Path):
    """A `package.module:function` network (tests/user_networks.py) trained and reported in
    every arm of a finished run (its GANs and samples reused)."""
    args = ["--run-dir", str(compared), *ONE_SEED, "--classifier", "user_networks:tiny_net"]
    result = invoke(args)
    assert "df gan vs baseline: recall" in result.output
    report = Path(result.output.split("report: ")[-1].strip())
    assert "user_networks:tiny_net(from scratch, 32 px inputs)" in report.read_text()
    for arm in ("baseline", "gan"):
        [record] = report.parent.glob(f"{arm}/seed0/result.json")
        assert json.loads(record.read_text())["train_images"] > 0


@pytest.mark.parametrize("case", ["other-architecture", "truncated", "missing", "broken-net"])
def test_a_classifier_that_cannot_be_used_is_one_line_before_any_work(tmp_path, case):
    from torchvision.models import resnet34

    weights = tmp_path / "w.pt"
    if case != "missing":
        torch.save(resnet34().state_dict(), weights)
    if case == "truncated":
        weights.write_bytes(weights.read_bytes()[:4096])
    extra = {
        "other-architecture": ["--classifier", "resnet18", "--pretrained-weights", str(weights)],
        "truncated": ["--classifier", "resnet34", "--pretrained-weights", str(weights)],
        "missing": ["--classifier", "resnet18", "--pretrained-weights", str(weights)],
        "broken-net": ["--classifier", "user_networks:wrong_outputs"],
    }[case]
    msg = one_line_error(invoke(["--run-dir", str(tmp_path / "run"), *SMOKE, *extra], False))
    assert {
        "other-architecture": "w.pt is not a state dict of torchvision resnet18 (unexpected",
        "truncated": "w.pt: cannot be read as a state dict",
        "missing": "w.pt: no such file",
        "broken-net": "returns (2, 8) for 2 images, not logits of shape (2, 7)",
    }[case] in msg
    assert not (tmp_path / "run").exists()


def test_weights_that_changed_since_the_run_began_are_refused(tmp_path: Path):
    """The sha256 recorded with --pretrained-weights is checked at every start (a --config
    rerun carries the recorded one): another file under the same name is one line."""
    from torchvision.models import resnet18

    from pipelines.config.experiment import ClassifierChoice, ExperimentConfig
    from pipelines.config.profiles import PROFILES
    from pipelines.graph.preflight import check_classifier
    from pipelines.steps.plan import plan_for
    from pipelines.store.records import file_sha256

    weights = tmp_path / "w.pt"
    torch.save(resnet18().state_dict(), weights)
    choice = ClassifierChoice("torchvision", "resnet18", 32, str(weights), file_sha256(weights))
    cfg = ExperimentConfig(run_dir=str(tmp_path / "run"), profile=PROFILES["smoke"],
                           data="demo", classes=("df",), classifier=choice)  # fmt: skip
    check_classifier(plan_for(cfg))  # the file it began with: accepted
    torch.save(resnet18().state_dict(), weights)  # other weights, same name
    with pytest.raises(UserError, match="w.pt changed since this run began"):
        check_classifier(plan_for(cfg))
