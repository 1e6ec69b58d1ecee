"""pipelines.graph.jobs and pipelines.graph.scheduler: the jobs, their keys and dependencies,
done-markers, the local scheduler and its workers, and a killed run that continues."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import (
    SMOKE,
    arm_metrics,
    invoke_cli,
    result_numbers,
    run_killed,
    started_jobs,
    with_options,
)

from pipelines.cli import augment_and_compare
from pipelines.cli.augment_and_compare import experiment_config
from pipelines.config.arms import default_arms


def invoke(args, ok=True):
    return invoke_cli(augment_and_compare, args, ok)


def _config(args: list[str]):
    """The ExperimentConfig of these arguments (a copy: click's parser consumes its list)."""
    ctx = augment_and_compare.make_context("augment-and-compare", list(args))
    return experiment_config(ctx.params)


def _graph(args: list[str]):
    from pipelines.graph.jobs import experiment_graph

    return {n.name: n for n in experiment_graph(_config(args))}


# ---------------------------------------------------------------- jobs: keys and dependencies


def test_a_change_upstream_reaches_every_job_downstream_and_nothing_else(tmp_path: Path):
    run = ["--run-dir", str(tmp_path / "run"), *SMOKE]
    before = _graph(run)
    after = _graph([*run, "--synthetic-share", "0.3"])  # read by the classifiers only
    changed = {name for name in before if before[name].key != after[name].key}
    assert changed == {n for n in before if n.startswith("classifier/")} | {"report"}
    df_only = _graph(with_options(run, target="55"))  # --target: samples onwards
    changed = {name for name in before if before[name].key != df_only[name].key}
    assert {"samples/gan/df", "samples/gan/vasc", "classifier/baseline/seed0"} <= changed
    assert not changed & {"features", "gan/all", "gan/df", "gan/vasc"}


def test_jobs_know_their_dependencies_by_type_not_by_name(tmp_path: Path):
    from pipelines.graph.jobs import ClassifierJob, GanJob, SamplesJob

    nodes = _graph(["--run-dir", str(tmp_path / "run"), *SMOKE])
    assert nodes["gan/df"].job == GanJob("df") and nodes["gan/df"].deps == ("features", "gan/all")
    assert nodes["samples/gan/vasc"].job == SamplesJob("gan", "vasc")
    assert nodes["classifier/gan/seed1"].job == ClassifierJob("gan", 1)
    assert set(nodes["classifier/gan/seed1"].deps) == {"samples/gan/df", "samples/gan/vasc"}


CONTROLS_ONLY = with_options(SMOKE, seeds="1", classes="df", arms="baseline,oversample")


@pytest.fixture(scope="module")
def controls_once(tmp_path_factory) -> Path:
    """A comparison of two controls (no GAN) at fp32 on one thread."""
    run_dir = tmp_path_factory.mktemp("controls") / "run"
    invoke(["--run-dir", str(run_dir), *CONTROLS_ONLY])
    return run_dir


def _classifier_markers(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (run_dir / "jobs").glob("classifier__*.json")]


@pytest.mark.parametrize(
    "change", [{"precision": "bf16"}, {"threads": "2"}], ids=["precision", "threads"]
)
def test_a_control_only_rerun_with_other_precision_or_threads_trains_again(
    controls_once: Path, tmp_path: Path, change: dict
):
    """Nothing upstream of these classifiers changes, so only their own keys can tell."""
    run_dir = Path(shutil.copytree(controls_once, tmp_path / "run"))
    before = json.loads((run_dir / "results.json").read_text())
    first_keys = {m["key"] for m in _classifier_markers(run_dir)}
    invoke(["--run-dir", str(run_dir), *with_options(CONTROLS_ONLY, **change)])
    after = json.loads((run_dir / "results.json").read_text())
    assert after["config_id"] != before["config_id"]  # its own compare/<id>/, the old one kept
    assert (run_dir / "compare" / before["config_id"] / "report.md").is_file()
    precision, threads = change.get("precision", "fp32"), int(change.get("threads", "1"))
    assert after["config"]["precision"] == precision and after["config"]["threads"] == threads
    assert all(r["config"]["precision"] == precision for r in after["runs"]["baseline"][0])
    markers = _classifier_markers(run_dir)
    assert len(markers) == 2 and not any(m.get("reused") for m in markers)  # trained again
    assert not first_keys & {m["key"] for m in markers}
    if precision != "fp32":
        assert after["runs"]["baseline"][0][0]["test"] != before["runs"]["baseline"][0][0]["test"]


# ---------------------------------------------------------------- graph: markers and schedule


def test_every_finished_job_has_a_marker_with_where_and_how_long(compared_once: Path):
    markers = [json.loads(p.read_text()) for p in (compared_once / "jobs").glob("*.json")]
    n_arms = len(default_arms(held_back=False, demo=True))
    assert (
        len(markers) == 1 + 1 + 2 + 2 + n_arms * 2 + 1
    )  # features, source, 2 GANs, 2 samples, ...
    assert all(m["seconds"] > 0 and ":" in m["where"] and len(m["key"]) == 16 for m in markers)
    assert not list((compared_once / "jobs").glob("*.running"))


@pytest.mark.long
def test_augment_and_compare_killed_in_a_gan_reruns_to_the_same_numbers(
    compared_once: Path, tmp_path: Path
):
    """The kill leaves gan/df without last.pt (once: every rerun failed); the rerun restarts
    it, and gives the numbers of a run that was never killed (once three identical runs got
    three feature networks and different kept counts)."""
    run_dir = tmp_path / "run"
    cond = "a[0].class_name == 'df'"
    args = ["--run-dir", str(run_dir), *SMOKE]
    run_killed("augment_and_compare", args, "pipelines.steps.gan_run", "_append_record", cond)
    out = run_dir / "gan" / "df"
    assert (out / "run.json").is_file() and not (out / "last.pt").exists()
    assert (run_dir / "jobs" / "features.json").is_file()  # the feature net of the killed run
    invoke(args)
    assert (out / "last.pt").is_file()
    numbers, clean = result_numbers(run_dir), result_numbers(compared_once)
    assert numbers["synthetic_sets"]["df"]["gan"]["kept"] > 0
    assert numbers == clean


def _intervals(run_dir: Path) -> dict[str, tuple[float, float, str]]:
    markers = [json.loads(p.read_text()) for p in (run_dir / "jobs").glob("*.json")]
    return {m["name"]: (m["finished"] - m["seconds"], m["finished"], m["where"]) for m in markers}


def test_local_workers_run_classifiers_side_by_side_with_the_one_at_a_time_numbers(
    compared_once: Path, tmp_path: Path
):
    """compared_once's classifiers again, on its GANs and samples, two at a time in worker
    processes on one thread each: the numbers of compared_once, which trained them one at a
    time in this process on one thread each."""
    parallel = Path(shutil.copytree(compared_once, tmp_path / "parallel"))
    shutil.rmtree(parallel / "compare")
    for marker in [*(parallel / "jobs").glob("classifier__*"), parallel / "jobs/report.json"]:
        marker.unlink()
    two = [*with_options(SMOKE, threads="2"), "--workers", "2"]  # 2 // 2: a thread per job
    result = invoke(["--run-dir", str(parallel), *two])
    assert started_jobs(result.output) == {
        n for n in _intervals(compared_once) if n.startswith("classifier/")
    } | {"report"}
    spans = {n: s for n, s in _intervals(parallel).items() if n in started_jobs(result.output)}
    main = {where for name, (_, _, where) in spans.items() if "classifier/" not in name}
    workers = {where for name, (_, _, where) in spans.items() if "classifier/" in name}
    assert len(main) == 1 and len(workers) == 2 and not main & workers  # pool of 2, GANs here
    for name, (start, end, _) in spans.items():  # a job that takes every slot runs alone
        if "classifier/" not in name:
            others = [s for n, s in spans.items() if n != name]
            assert all(e <= start + 0.05 or s >= end - 0.05 for s, e, _ in others), name

    wall = json.loads((parallel / "results.json").read_text())["wall_seconds"]["classifiers"]
    summed = sum(e - s for n, (s, e, _) in spans.items() if "classifier/" in n)
    assert wall < summed  # the stage's wall time counts overlapping jobs once
    assert arm_metrics(parallel) == arm_metrics(compared_once)


def test_stage_wall_time_counts_side_by_side_jobs_once():
    from pipelines.graph.scheduler import covered_seconds

    assert covered_seconds([]) == 0.0
    assert covered_seconds([(0, 10), (0, 10)]) == 10  # two jobs side by side
    assert covered_seconds([(0, 10), (5, 12), (20, 21)]) == 13  # overlap, then a gap
    assert covered_seconds([(0, 10), (2, 3)]) == 10  # one inside another


def test_kill_workers_stops_a_running_job_at_once():
    """What run_local calls when a job fails or Ctrl-C comes: the workers die now, rather than
    after their jobs (minutes) end."""
    import concurrent.futures as cf
    import multiprocessing

    from pipelines.graph.scheduler import _kill_workers

    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(1, mp_context=ctx)
    try:
        pool.submit(os.getpid).result(timeout=60)  # the worker is up
        long_job = pool.submit(time.sleep, 120)
        t0 = time.perf_counter()
        _kill_workers(pool)
        with pytest.raises(cf.process.BrokenProcessPool):
            long_job.result(timeout=60)
        assert time.perf_counter() - t0 < 30
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_the_scheduler_refuses_a_graph_it_could_never_finish(tmp_path: Path):
    from pipelines.errors import UserError
    from pipelines.graph import scheduler as graph
    from pipelines.store.layout import RunLayout

    def node(name: str, *deps: str) -> graph.Node:
        return graph.Node(job=name, name=name, deps=deps, key=name, stage="s")

    layout = RunLayout(tmp_path)
    ran: list[str] = []
    backend = graph.LocalBackend(layout, lambda n: ran.append(n.name) or {}, None, workers=1)
    for nodes, message in [
        ([node("a"), node("a")], "two jobs are named 'a'"),
        ([node("b", "a"), node("a")], "job b waits for a, not before it"),
    ]:
        with pytest.raises(UserError, match=message):
            graph.run_graph(layout, nodes, backend, lambda line: None, False)
    assert ran == []  # refused before anything ran
    graph.run_graph(layout, [node("a"), node("b", "a")], backend, lambda line: None, False)
    assert ran == ["a", "b"]


def test_a_job_whose_output_is_gone_is_not_done(tmp_path: Path):
    """A sample set whose summary.json was deleted (the advice for a damaged one) runs again."""
    from pipelines.graph import scheduler as graph
    from pipelines.store.layout import RunLayout

    layout, out = RunLayout(tmp_path), tmp_path / "samples" / "df" / "summary.json"
    node = graph.Node(job="s", name="samples/df", deps=(), key="k", stage="s", outputs=(out,))
    graph.mark_done(layout, node, {})
    assert not graph.is_done(layout, node)
    out.parent.mkdir(parents=True)
    out.write_text("{}")
    assert graph.is_done(layout, node)


def test_an_output_cut_short_or_changed_after_its_job_finished_makes_it_run_again(
    tmp_path: Path,
):
    """The marker records each output's size, time and SHA-256: a file cut short, or changed
    at the same size, no longer counts as done (and run_graph says why); one only touched
    (same bytes, new time) still does."""
    import os

    from pipelines.graph import scheduler as graph
    from pipelines.store.layout import RunLayout

    layout, out = RunLayout(tmp_path), tmp_path / "gan" / "all" / "doses" / "kimg0.3.pt"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"a checkpoint")
    node = graph.Node(job="g", name="gan/all", deps=(), key="k", stage="s", outputs=(out,))
    graph.mark_done(layout, node, {})
    assert graph.is_done(layout, node)
    os.utime(out, ns=(1, 1))  # touched: the same bytes
    assert graph.is_done(layout, node)
    out.write_bytes(b"a checkpoinT")  # same size, other bytes
    why = graph.changed_output(graph.read_marker(layout, node), node)
    assert not graph.is_done(layout, node) and why == f"{out} changed content"
    out.write_bytes(b"a check")  # cut short
    assert "changed size (12 -> 7 bytes)" in graph.changed_output(
        graph.read_marker(layout, node), node
    )
    lines: list[str] = []

    class Ran:  # a backend that runs the job at once (it rewrites the output)
        in_order, verb = True, "started"

        def __init__(self):
            self.finished = []

        def is_running(self, node):
            return False

        def fits(self, node):
            return True

        def place(self, node):
            return "here"

        def submit(self, node):
            out.write_bytes(b"a checkpoint")
            self.finished.append(node)
            return False

        def busy(self):
            return bool(self.finished)

        def next_finished(self):
            return self.finished.pop(), {}

        def stop(self):
            pass

        def close(self):
            pass

    graph.run_graph(layout, [node], Ran(), lines.append, progress=False)
    assert (
        lines[0]
        == f"note: gan/all runs again: {out} changed size (12 -> 7 bytes) since it finished"
    )
    assert graph.is_done(layout, node)


def test_jobs_declare_what_later_jobs_read_as_outputs(tmp_path: Path):
    nodes = _graph(["--run-dir", str(tmp_path / "run"), *SMOKE])
    run = tmp_path / "run"
    assert run / "samples" / "filtered" / "df" / "summary.json" in nodes["samples/gan/df"].outputs
    assert nodes["gan/df"].outputs == (run / "gan" / "df" / "last.pt",)
    assert {p.name for p in nodes["classifier/gan/seed0"].outputs} == {
        "model.pt", "test_probs.npz", "result.json"}  # fmt: skip
    assert not run.exists()  # planning the graph writes nothing


def test_profile_fields_added_later_leave_the_keys_of_earlier_runs_alone():
    """Profile.fresh_n and feature_width came after runs were keyed: at their defaults they are
    not hashed (a finished run's classifiers stay done), and any other value is a new key."""
    import dataclasses

    from pipelines.config.profiles import PROFILES
    from pipelines.graph.jobs import ADDED_LATER, profile_slice

    quick = PROFILES["quick"]
    assert set(profile_slice(quick)) == {f.name for f in dataclasses.fields(quick)} - set(
        ADDED_LATER
    )
    for name in ADDED_LATER:
        changed = dataclasses.replace(quick, **{name: 2 * ADDED_LATER[name]})
        assert profile_slice(changed)[name] == 2 * ADDED_LATER[name]
