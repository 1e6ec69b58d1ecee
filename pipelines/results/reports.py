"""The report job's one entry: which reports an experiment gets, in which run directory.

A comparison gets report.md and results.json (pooled over its folds); a dose study study.md;
a scarcity study one of those per level, in the level's run directory, and scarcity.md over
the levels. The job graph hands over how it names each comparison (its keyed compare/<id>/),
so this module needs no job code.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.config.experiment import ExperimentConfig, fold_configs, scarcity_config
from pipelines.results.collect import write_results
from pipelines.results.study import write_scarcity, write_study

ComparisonId = Callable[[ExperimentConfig, float | None], str]  # (split's config, dose) -> id


def write_reports(
    cfg: ExperimentConfig, comparison_id: ComparisonId, wall: dict, t0: float
) -> dict:
    """Every report of the experiment; returns the headline the command prints."""
    if not cfg.rare_n:
        return _one_split(cfg, comparison_id, wall, t0)
    for n in cfg.rare_n:  # each level's own report, in its own run directory
        _one_split(scarcity_config(cfg, n), comparison_id, wall, t0)
    ids = [comparison_id(scarcity_config(cfg, n), None) for n in cfg.rare_n]
    return write_scarcity(cfg, ids, wall, t0)


def _one_split(cfg: ExperimentConfig, comparison_id: ComparisonId, wall: dict, t0: float) -> dict:
    """One split's report: its comparison (pooled over folds), or its dose study."""
    if cfg.gan_doses:
        ids = {d: comparison_id(cfg, d) for d in (None, *cfg.gan_doses)}
        return write_study(cfg, ids, wall, t0)
    return write_results(cfg, [comparison_id(f, None) for f in fold_configs(cfg)], wall, t0)
