"""The report job's numbers: every fold's classifiers pooled, compared, tested externally, and
written as results.json, report.md and figures (pipelines.report)."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from gan.conventions import atomic_write_text
from pipelines.arms import classifier_config, classifier_inputs, classifier_network, targets_for
from pipelines.compare import compare, external_test, per_class_counts, pool_predictions
from pipelines.data.datasets import Dataset, load_dataset
from pipelines.experiment import (
    ExperimentConfig,
    config_to_json,
    data_and_split,
    dataset,
    fold_configs,
)
from pipelines.graph import key_of
from pipelines.rundir import versions
from pipelines.steps import synthetic_sets


def write_results(cfg: ExperimentConfig, ids: list[str], wall: dict, t0: float) -> dict:
    """Gains with CIs (pooled over folds), the external test, report.md and results.json;
    returns the headline. ids: each fold's comparison id (compare/<id>/)."""
    from pipelines.report import one_line_summary, write_figures, write_report

    ds = dataset(cfg)
    parts, summaries, short = [], {}, {}
    for fcfg, cid in zip(fold_configs(cfg), ids):
        _, split = data_and_split(fcfg)
        out = fcfg.layout.comparison_dir(cid)
        arms = {a: [_result(out / a / f"seed{s}") for s in range(cfg.seeds)] for a in cfg.arms}
        parts.append((split, arms))
        _, fold_summaries, reached = synthetic_sets(fcfg)
        targets = targets_for(ds, split, list(cfg.classes), cfg.target)
        tag = f" (fold {fcfg.fold})" if cfg.folds > 1 else ""
        summaries |= {f"{c}{tag}": v for c, v in fold_summaries.items()}
        short |= {
            f"{c}{tag}": (reached[c], targets[c]) for c in cfg.classes if reached[c] < targets[c]
        }
    out = cfg.layout.comparison_dir(ids[0] if cfg.folds == 1 else key_of({}, ids)[:10])
    config = {**config_to_json(cfg), "data_fingerprint": ds.fingerprint, "comparison_ids": ids}
    atomic_write_text(out / "config.json", json.dumps(config, indent=1, default=str))
    pooled = pool_predictions(ds, parts, list(cfg.classes))
    results = {
        "config": {**config, "seeds": list(range(cfg.seeds))},
        "config_id": out.name,
        "comparison": compare(ds, pooled, list(cfg.classes)),
        "classifier": _classifier_line(cfg, len(parts[0][0].train)),
        "test_set": {
            "images": len(pooled.labels),
            "lesions": len(set(pooled.lesion_ids)),
            "per_class": per_class_counts(pooled.labels, ds.class_names),
        },
        "train_images": pooled.train_images,
        "runs": {
            a: [[_public(r) for r in arms[a]] for _, arms in parts] for a in cfg.arms
        },  # [fold][seed]
        "synthetic_sets": summaries,
        "targets_short": short,
        "external_test": _external(cfg, ds, parts),
        "data": {**ds.record(), "class_names": ds.class_names},
        "versions": versions(),
        "wall_seconds": wall,
    }
    write_figures(out, results, ds, pooled, summaries)
    results["wall_seconds"] = {**wall, "report": time.perf_counter() - t0}
    report = write_report(out, results, ds, pooled, summaries, results["external_test"])
    for path in (cfg.layout.report_file, cfg.layout.results_file):
        text = (out / path.name).read_text().replace("](figures/", f"](compare/{out.name}/figures/")
        atomic_write_text(path, text)
    prefix = "[SYNTHETIC demo data] " if ds.synthetic else ""
    return {"headline": f"{prefix}{one_line_summary(results)}; report: {report}"}


def _classifier_line(cfg: ExperimentConfig, n_train: int) -> str:
    p = cfg.profile
    name = "PretrainedResNet18" if cfg.pretrained else "SmallResNet"
    recipe = classifier_config(p, n_train, 0, cfg.precision).as_dict()
    return (
        f"{name}(width={p.classifier_width}, stem stride {p.classifier_stem_stride}, "
        f"{p.classifier_size or p.size} px inputs), {recipe}"
    )


def _external(cfg: ExperimentConfig, ds: Dataset, parts: list) -> dict | None:
    if not cfg.external:
        return None
    new_model = functools.partial(
        classifier_network, cfg.profile, len(ds.class_names), cfg.pretrained
    )
    load = functools.partial(_load_external, cfg)
    return external_test(
        cfg.external, ds, parts, list(cfg.classes), new_model, torch.device(cfg.device), load,
        cfg.precision,
    )  # fmt: skip


def _result(folder: Path) -> dict:
    return {**json.loads((folder / "result.json").read_text()), "_dir": folder}


def _public(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "_dir"}


def _load_external(cfg: ExperimentConfig, path: str, size: int) -> Dataset:
    """The external test set as the classifiers take it: loaded at the GANs' size like the
    home data, then resized as classifier_inputs resizes every arm's images."""
    ext = load_dataset(
        path, size, None, cfg.cache_dir, cfg.skip_bad_images, progress=False,
        allow_new_classes=cfg.allow_new_classes,
    )  # fmt: skip
    return replace(ext, images=classifier_inputs(cfg.profile, ext.images))
