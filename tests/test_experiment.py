"""pipelines.config.experiment and steps.plan: the config as experiment.json, --config, and
the budgets derived from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import SMOKE, invoke_cli, one_line_error, with_options

from pipelines.cli import augment_and_compare
from pipelines.cli.augment_and_compare import experiment_config
from pipelines.config.experiment import config_from_json, config_to_json
from pipelines.steps.feature_space import DOMAIN_CONFIG, network_key
from pipelines.steps.plan import data_and_split, plan_for, write_experiment_record

ARGS = with_options(SMOKE, arms="baseline,gan")


def _config(run_dir: Path, *extra: str):
    args = ["--run-dir", str(run_dir), *ARGS, *extra]
    ctx = augment_and_compare.make_context("augment-and-compare", args)
    return experiment_config(ctx.params)


def test_the_config_survives_its_json_exactly(tmp_path: Path):
    cfg = _config(tmp_path / "run", "--folds", "2", "--external-test", "demo")
    again = config_from_json(json.loads(json.dumps(config_to_json(cfg))), tmp_path)
    assert again == cfg and again.profile == cfg.profile and isinstance(again.arms, tuple)


def test_the_record_holds_config_versions_and_data_and_keeps_an_older_one(tmp_path: Path):
    cfg = _config(tmp_path / "run")
    ds, _ = data_and_split(cfg)
    path = write_experiment_record(cfg, ds)
    record = json.loads(path.read_text())
    assert record["config"] == config_to_json(cfg)
    assert record["data"]["fingerprint"] == ds.fingerprint and "torch" in record["versions"]
    write_experiment_record(dataclasses.replace(cfg, seeds=3), ds)
    history = (path.parent / "experiment_history.jsonl").read_text().splitlines()
    assert [json.loads(h)["config"]["seeds"] for h in history] == [2]
    write_experiment_record(dataclasses.replace(cfg, seeds=3), ds)  # same config: no new entry
    assert len((path.parent / "experiment_history.jsonl").read_text().splitlines()) == 1


def test_config_reruns_exactly_that_experiment_and_refuses_changes(tmp_path: Path):
    run_dir = tmp_path / "run"
    cfg = _config(run_dir)
    ds, _ = data_and_split(cfg)
    path = write_experiment_record(cfg, ds)
    listed = invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *ARGS, "--dry-run"])
    again = invoke_cli(augment_and_compare, ["--config", str(path), "--dry-run"])
    assert again.output == listed.output  # the same jobs with the same keys
    line = one_line_error(invoke_cli(augment_and_compare, ["--config", str(path), "--seeds",
                                                           "3"], ok=False))  # fmt: skip
    assert "--seeds" in line and "--config" in line
    path.write_text("{not json")
    line = one_line_error(invoke_cli(augment_and_compare, ["--config", str(path)], ok=False))
    assert str(path) in line and "experiment.json" in line


@pytest.mark.parametrize("change", [{"steps": 601}, {"precision": "bf16"}, {"lr": 1e-3}])
def test_the_feature_network_key_hashes_its_whole_training_config(tmp_path: Path, change):
    cfg = _config(tmp_path / "run")
    _, split = data_and_split(cfg)
    key = network_key(split, 7, 32, DOMAIN_CONFIG)
    assert network_key(split, 7, 32, DOMAIN_CONFIG) == key
    assert network_key(split, 7, 32, dataclasses.replace(DOMAIN_CONFIG, **change)) != key
    assert network_key(split, 7, 32, plan_for(cfg).features) != key  # gan-train's is another file


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("seeds", "three", "seeds 'three': 'three' is not a valid integer"),
        ("seeds", -2, "--seeds -2: need at least 1 seed"),
        ("folds", 0, "folds 0:"),
        ("arms", "gan", "arms 'gan' is not a list of names"),
        ("arms", ["baseline", "nosuch"], "unknown arm(s) nosuch"),
        ("rare_n", [10, "x"], "rare_n [10, 'x'] is not a list of numbers"),
        ("synthetic_share", 7, "synthetic_share 7:"),
    ],
)
def test_a_config_file_gets_the_checks_of_the_command_line(tmp_path: Path, field, value, said):
    """--config used to skip every check: a string seed count was a TypeError traceback, a
    negative one a ValueError in the report job, and the bad config replaced the run's
    experiment.json. Now: the option's own check, in one line, and nothing written."""
    cfg = _config(tmp_path / "run")
    ds, _ = data_and_split(cfg)
    path = write_experiment_record(cfg, ds)
    record = json.loads(path.read_text())
    record["config"][field] = value
    path.write_text(json.dumps(record))
    before = path.read_text()
    line = one_line_error(invoke_cli(augment_and_compare, ["--config", str(path)], ok=False))
    assert said in line and (str(path) in line or field.replace("_", "-") in line), line
    assert path.read_text() == before and not (tmp_path / "run" / "jobs").exists()


def test_paths_are_stored_absolute_and_the_config_runs_from_anywhere(tmp_path: Path, monkeypatch):
    """A relative --run-dir or --data is stored absolute: --config from another working
    directory plans the very same jobs; --run-dir (a copy elsewhere) and --data (the data
    moved) may be given with it."""
    monkeypatch.chdir(tmp_path)
    cfg = _config(Path("run"))
    assert cfg.run_dir == str(tmp_path / "run")
    ds, _ = data_and_split(cfg)
    path = write_experiment_record(cfg, ds)
    listed = invoke_cli(augment_and_compare, ["--config", str(path), "--dry-run"]).output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert invoke_cli(augment_and_compare, ["--config", str(path), "--dry-run"]).output == listed
    copy = invoke_cli(
        augment_and_compare,
        ["--config", str(path), "--run-dir", "copy", "--data", "demo", "--dry-run"],  # fmt: skip
    ).output
    assert copy.replace(str(elsewhere / "copy"), str(tmp_path / "run")) == listed
