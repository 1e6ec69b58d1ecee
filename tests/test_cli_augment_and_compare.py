"""augment-and-compare's command line: --dry-run, and the one-line errors of a bad start."""

from __future__ import annotations

from pathlib import Path

from conftest import SMOKE, invoke_cli, job_lines, one_line_error, with_options

from pipelines.cli import augment_and_compare


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
