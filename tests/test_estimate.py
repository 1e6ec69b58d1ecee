"""--dry-run's cost estimate: the units each job is counted in, the schedule that turns job
times into wall time, and the timing of one unit (pipelines.graph.estimate)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from conftest import SMOKE, invoke_cli

from pipelines.cli import augment_and_compare
from pipelines.config.arms import default_arms
from pipelines.config.experiment import ExperimentConfig
from pipelines.config.profiles import PROFILES
from pipelines.graph import estimate as est
from pipelines.graph import jobs
from pipelines.graph.scheduler import Node
from pipelines.steps.plan import plan_for


def node(name: str, deps=(), slots=None) -> Node:
    return Node(job=None, name=name, deps=tuple(deps), key="k", stage="s", slots=slots)


def test_the_schedule_runs_classifiers_side_by_side_and_the_rest_alone():
    nodes = [node("gan"), *[node(f"c{i}", ["gan"], slots=1) for i in range(3)],
             node("report", ["c0", "c1", "c2"])]  # fmt: skip
    seconds = {"gan": 10.0, "c0": 5.0, "c1": 5.0, "c2": 5.0, "report": 1.0}
    spans = est.schedule(nodes, seconds, workers=2)
    assert spans == {"gan": (0, 10), "c0": (10, 15), "c1": (10, 15), "c2": (15, 20),
                     "report": (20, 21)}  # fmt: skip
    one_worker = est.schedule(nodes, seconds, workers=1)
    assert one_worker["report"] == (25, 26)
    done = est.schedule(nodes, {"c2": 5.0, "report": 1.0}, workers=2)  # the rest are done
    assert done["c2"] == (0, 5) and done["report"] == (5, 6)


@pytest.fixture
def unit_seconds(monkeypatch) -> None:
    """Every unit takes 1 s, so a job's estimate is the count of its units."""
    for timer in ("train_step_seconds", "predict_seconds", "gan_step_seconds",
                  "generate_seconds", "feature_seconds"):  # fmt: skip
        monkeypatch.setattr(est, timer, lambda *a, **k: 1.0)


def smoke_plan(tmp_path: Path):
    cfg = ExperimentConfig(run_dir=str(tmp_path / "run"), profile=PROFILES["smoke"],
                           classes=("df", "vasc"), target=50, seeds=2)  # fmt: skip
    return plan_for(cfg)


def test_a_classifier_job_counts_its_steps_and_every_image_it_predicts(tmp_path, unit_seconds):
    plan = smoke_plan(tmp_path)
    train = plan.classifier_config("baseline", 0)
    units = est._classifier_units(plan, jobs.ClassifierJob("baseline", 0), threads=1)
    evaluations = math.ceil(train.steps / train.eval_every)
    val, test = len(plan.split.val), len(plan.split.test)
    assert units.terms == {"steps": (train.steps, 1.0),
                           "predicted images": (evaluations * val + test, 1.0)}  # fmt: skip
    assert units.seconds == train.steps + evaluations * val + test


def test_a_gan_job_counts_its_steps_and_its_evaluations(tmp_path, unit_seconds):
    plan = smoke_plan(tmp_path)
    spec = plan.gans["df"]
    units = est._gan_units(plan, jobs.GanJob("df"), threads=1)
    steps = math.ceil(spec.train.kimg * 1000 / spec.train.batch_size)
    evaluations = math.ceil(spec.train.kimg / spec.train.eval_kimg)
    assert units.terms["steps"] == (steps, 1.0)
    assert units.terms["generated images"] == (evaluations * spec.eval_n, 1.0)


def test_a_sample_set_counts_its_pool_and_fresh_samples(tmp_path, unit_seconds):
    plan = smoke_plan(tmp_path)
    units = est._samples_units(plan, jobs.SamplesJob("gan", "df"), threads=1)
    need = plan.targets["df"] - plan.real_counts["df"]
    fresh = plan.cfg.profile.fresh_n
    assert units.terms["generated images"] == (2 * need + 2 * fresh, 1.0)  # pool factor 2


def test_a_call_is_timed_after_its_warm_up(monkeypatch):
    monkeypatch.setattr(est, "TIMED_SECONDS", 0.1)
    calls = []

    def make():
        def call():
            time.sleep(0.05 if calls else 0.3)  # the first (warm-up) call is slow
            calls.append(1)

        return call

    seconds = est._seconds_per_call("a test sleep", est.torch.device("cpu"), 1, make)
    assert 0.05 <= seconds < 0.15 and len(calls) >= 3  # warm-up + at least 2 timed
    est._seconds_per_call("a test sleep", est.torch.device("cpu"), 1, make)
    assert len(calls) < 6  # timed once per process


def test_durations_read_as_a_person_would_say_them():
    assert [est.duration(s) for s in (12.4, 600, 2 * 3600 + 60)] == ["12 s", "10.0 min", "2.0 h"]


def test_the_dry_run_ends_with_the_estimate_and_a_finished_run_costs_nothing(
    compared: Path, tmp_path: Path
):
    fresh = invoke_cli(augment_and_compare, ["--run-dir", str(tmp_path / "new"), *SMOKE,
                                             "--dry-run"]).output  # fmt: skip
    block = fresh.split("estimated time on this machine")[1].splitlines()
    rows = {line.split()[0]: line for line in block[2:]}
    assert {"feature", "GAN", "sampling", "classifiers", "report", "total"} <= set(rows)
    arms = default_arms(held_back=False, demo=True)
    assert rows["classifiers"].split()[1] == str(2 * len(arms))  # every arm's 2 seeds to run
    done = invoke_cli(augment_and_compare, ["--run-dir", str(compared), *SMOKE, "--dry-run"])
    assert "every job is done" in done.output and done.output.rstrip().endswith("0 s")
