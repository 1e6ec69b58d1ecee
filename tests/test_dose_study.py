"""The dose study (--gan-doses): one source run serves every dose, controls are trained once,
a longer dose list reuses the finished doses, and a killed study reruns to the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SMOKE, invoke_cli, one_line_error, result_numbers, run_killed, with_options

import pipelines.steps.gan_run as gan_run
from pipelines.cli import augment_and_compare

DOSES = with_options(SMOKE, arms="baseline,oversample,gan")


def _markers(run_dir: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (run_dir / "jobs").glob("*.json")}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, list]:
    """A two-dose study, with every GAN training call recorded."""
    run_dir = tmp_path_factory.mktemp("dose") / "run"
    calls: list = []
    real = gan_run.train_gan

    def spy(run, ds, plan, *args, **kwargs):
        calls.append((run.class_name, run.out, plan.cfg.kimg, plan.resume, plan.source))
        return real(run, ds, plan, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan_run, "train_gan", spy)
        invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *DOSES, "--gan-doses",
                                         "0.1,0.2"])  # fmt: skip
    return run_dir, calls


def test_one_source_run_serves_every_dose(study):
    run_dir, calls = study
    source = [c for c in calls if c[0] == "all"]
    assert [(kimg, resume) for _, _, kimg, resume, _ in source] == [(0.1, False), (0.2, True)]
    runs = json.loads((run_dir / "gan" / "all" / "run.json").read_text())["runs"]
    assert len(runs) == 2 and runs[1]["config"]["resumed_from_kimg"] >= 0.1  # continued
    for dose in ("0.1", "0.2"):
        snapshot = run_dir / "gan" / "all" / "doses" / f"kimg{dose}.pt"
        fine_tunes = [c for c in calls if c[0] != "all" and c[4] == snapshot]
        assert {c[0] for c in fine_tunes} == {"df", "vasc"}, dose  # from its own dose
        assert all(c[1] == run_dir / "doses" / f"kimg{dose}" / "gan" / c[0] for c in fine_tunes)


def test_controls_are_trained_once_and_serve_every_dose(study):
    run_dir, _ = study
    markers = _markers(run_dir)
    controls = [n for n in markers if n.startswith("classifier__")]
    assert sorted(controls) == [f"classifier__{a}__seed{s}" for a in ("baseline", "oversample")
                                for s in (0, 1)]  # fmt: skip
    assert {n for n in markers if n.endswith("classifier__gan__seed0")} == {
        "dose0.1__classifier__gan__seed0", "dose0.2__classifier__gan__seed0"}  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    per_dose = [d["comparison"]["per_arm"]["baseline"] for d in results["doses"].values()]
    assert per_dose[0] == per_dose[1]  # the same control models, tested once
    points = results["points"]
    assert {(p["dose"], p["class"]) for p in points} == {(d, c) for d in (0.1, 0.2)
                                                         for c in ("df", "vasc")}  # fmt: skip
    for p in points:  # demo vasc: 1 of its 3 validation lesions judges, too few for a KID
        measured = p["kept_kid"] is not None and p["floor_kid"] is not None
        assert measured == (p["class"] == "df")
        assert p["recall"]["vs"] in ("baseline", "oversample")
    assert (run_dir / "study.md").is_file() and "| df | gan | 0.1 |" in (
        run_dir / "study.md").read_text()  # fmt: skip


def test_a_longer_dose_list_reuses_the_finished_doses(study, tmp_path: Path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(study[0], run_dir)
    before = _markers(run_dir)
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *DOSES, "--gan-doses",
                                     "0.1,0.2,0.3"])  # fmt: skip
    after = _markers(run_dir)
    kept = [n for n in before if n != "report"]
    assert all(after[n]["finished"] == before[n]["finished"] for n in kept)  # not run again
    assert "dose0.3__gan__all" in after and "dose0.3__classifier__gan__seed1" in after
    old = json.loads((study[0] / "results.json").read_text())["doses"]
    new = json.loads((run_dir / "results.json").read_text())["doses"]
    assert new["0.2"]["comparison"] == old["0.2"]["comparison"] and "0.3" in new


@pytest.mark.long
def test_a_study_killed_in_a_later_dose_reruns_to_the_numbers_of_an_unbroken_one(
    study, tmp_path: Path
):
    """kill -9 inside the second dose's df fine-tune (after its run record, before last.pt):
    the rerun of the same command finishes the study with the unbroken study's numbers."""
    run_dir = tmp_path / "run"
    args = ["--run-dir", str(run_dir), *DOSES, "--gan-doses", "0.1,0.2"]
    cond = "a[0].class_name == 'df' and 'kimg0.2' in str(a[0].out)"
    run_killed("augment_and_compare", args, "pipelines.steps.gan_run", "_append_record", cond)
    assert (run_dir / "jobs" / "dose0.1__gan__df.json").is_file()  # the first dose finished
    assert not (run_dir / "results.json").exists()
    invoke_cli(augment_and_compare, args)
    assert result_numbers(run_dir) == result_numbers(study[0])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gan-doses", "0.1,x"], "give kimg numbers"),
        (["--gan-doses", "0.1,-1"], "distinct kimg > 0"),
        (["--gan-doses", "0.1", "--folds", "2"], "one split"),
        (["--gan-doses", "0.1", "--arms", "baseline,oversample"], "synthetic images"),
        (["--gan-doses", "0.1", "--arms", "baseline,gan-all-classes"], "not part of a dose"),
    ],
)
def test_a_bad_dose_study_is_refused_before_any_work(tmp_path: Path, extra, message):
    args = ["--run-dir", str(tmp_path / "run"), *DOSES, *extra]
    assert message in one_line_error(invoke_cli(augment_and_compare, args, ok=False))
    assert not (tmp_path / "run" / "jobs").exists()
