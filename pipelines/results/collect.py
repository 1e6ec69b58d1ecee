"""The report job's numbers: every fold's classifiers pooled, compared, tested externally, and
written as results.json, report.md and figures (pipelines.report)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from classifier.zoo import display_name
from gan.conventions import atomic_write_text
from pipelines.config.experiment import ExperimentConfig, config_to_json, fold_configs
from pipelines.data.dataset import Dataset
from pipelines.data.load import load_dataset
from pipelines.data.overlap import without_home_images
from pipelines.report.markdown import one_line_summary, write_figures, write_report
from pipelines.results.compare import compare, external_test, per_class_counts, pool_predictions
from pipelines.results.signature import signature
from pipelines.steps.plan import ExperimentPlan, plan_for
from pipelines.steps.samples import synthetic_sets
from pipelines.store.records import key_of, versions


def write_results(cfg: ExperimentConfig, ids: list[str], wall: dict, t0: float) -> dict:
    """Gains with CIs (pooled over folds), the external test, report.md and results.json;
    returns the headline. ids: each fold's comparison id (compare/<id>/)."""
    plans = [plan_for(fcfg) for fcfg in fold_configs(cfg)]
    ds = plans[0].dataset
    parts, fold_sets, short = _collect(cfg, plans, ids)
    summaries = {f"{c}{_tag(cfg, p)}": v for p, s in zip(plans, fold_sets) for c, v in s.items()}
    out = cfg.layout.comparison_dir(ids[0] if cfg.folds == 1 else key_of({}, ids)[:10])
    config = {**config_to_json(cfg), "data_fingerprint": ds.fingerprint, "comparison_ids": ids}
    atomic_write_text(out / "config.json", json.dumps(config, indent=1, default=str))
    pooled = pool_predictions(ds, parts, list(cfg.classes))
    results = {
        "config": {**config, "seeds": list(range(cfg.seeds))},
        "config_id": out.name,
        "comparison": compare(ds, pooled, list(cfg.classes), cfg.margin),
        "classifier": _classifier_line(plans[0]),
        "test_set": {
            "images": len(pooled.labels),
            "lesions": len(set(pooled.lesion_ids)),
            "per_class": per_class_counts(pooled.labels, ds.class_names),
        },
        "train_images": pooled.train_images,
        "runs": {
            a: [[public(r) for r in arms[a]] for _, arms in parts] for a in cfg.arms
        },  # [fold][seed]
        "synthetic_sets": summaries,
        "targets_short": short,
        "external_test": _external(plans[0], parts),
        "signature": signature(plans, parts, fold_sets, pooled),
        "data": {**ds.record(), "class_names": ds.class_names},
        "versions": versions(),
        "wall_seconds": wall,
    }
    write_figures(out, results, ds, pooled, summaries)
    results["wall_seconds"] = {**wall, "report": time.perf_counter() - t0}
    report = write_report(out, results, ds, pooled, summaries, results["external_test"])
    publish(out, cfg.layout.root, (cfg.layout.report_file.name, cfg.layout.results_file.name))
    return headline(f"{one_line_summary(results)}; report: {report}", ds.synthetic)


def _collect(cfg: ExperimentConfig, plans: list, ids: list[str]) -> tuple[list, list, dict]:
    """Per fold: (its split, its classifiers' results per arm) and its sample summaries; the
    classes whose sample sets fell short of their target, named by fold where there are folds."""
    parts, fold_sets, short = [], [], {}
    for plan, cid in zip(plans, ids):
        out = plan.cfg.layout.comparison_dir(cid)
        arms = {a: [read_result(out / a / f"seed{s}") for s in range(cfg.seeds)] for a in cfg.arms}
        parts.append((plan.split, arms))
        _, fold_summaries, reached = synthetic_sets(plan)
        fold_sets.append(fold_summaries)
        short |= {
            f"{c}{_tag(cfg, plan)}": (reached[c], plan.targets[c])
            for c in cfg.classes
            if reached[c] < plan.targets[c]
        }
    return parts, fold_sets, short


def _tag(cfg: ExperimentConfig, plan: ExperimentPlan) -> str:
    return f" (fold {plan.cfg.fold})" if cfg.folds > 1 else ""


def publish(out: Path, root: Path, names: tuple[str, ...]) -> None:
    """Copy a comparison's (or study's) report files from compare/<id>/ to the top of the run,
    their figure links pointing into compare/<id>/figures/."""
    for name in names:
        text = (out / name).read_text().replace("](figures/", f"](compare/{out.name}/figures/")
        atomic_write_text(root / name, text)


def headline(text: str, synthetic_data: bool) -> dict:
    """The report job's result: its one line, marked where the data are the synthetic demo."""
    return {"headline": ("[SYNTHETIC demo data] " if synthetic_data else "") + text}


def _classifier_line(plan: ExperimentPlan) -> str:
    cfg = plan.cfg
    p, choice = cfg.profile, cfg.classifier
    recipe = plan.classifier_config("baseline", 0).as_dict()
    if choice.family == "builtin":
        net = f"{choice.name}(width={p.classifier_width}, stem stride {p.classifier_stem_stride}"
    else:
        weights = (
            f"weights {choice.weights} (sha256 {choice.weights_sha256[:12]})"
            if choice.weights
            else "ImageNet weights from the torch hub cache"
            if cfg.pretrained
            else "from scratch"
        )
        net = f"{display_name(choice.family, choice.name)}({weights}"
    return f"{net}, {cfg.classifier_size} px inputs), {recipe}"


def _external(plan: ExperimentPlan, parts: list) -> dict | None:
    cfg = plan.cfg
    if not cfg.external:
        return None
    ext, left_out = load_external(plan, cfg.external, plan.dataset.images.shape[1])
    result = external_test(
        ext, plan.dataset, parts, plan.classes, plan.new_classifier,
        torch.device(cfg.device), cfg.precision, cfg.margin,
    )  # fmt: skip
    return result | ({"left_out": left_out} if left_out else {})


def read_result(folder: Path) -> dict:
    """A classifier's result.json, with the folder it is in (not for results.json: public)."""
    return {**json.loads((folder / "result.json").read_text()), "_dir": folder}


def public(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "_dir"}


def load_external(plan: ExperimentPlan, path: str, size: int) -> tuple[Dataset, str | None]:
    """The external test set as the classifiers take it: loaded at the GANs' size like the
    home data, less the home data's own images (data.overlap; the note says how many), then
    resized as classifier_inputs resizes every arm's images."""
    cfg = plan.cfg
    ext = load_dataset(
        path, size, None, cfg.cache_dir, cfg.skip_bad_images, progress=False,
        allow_new_classes=cfg.allow_new_classes,
    )  # fmt: skip
    ext, left_out = without_home_images(plan.dataset, ext)
    return replace(ext, images=plan.classifier_inputs(ext.images)), left_out
