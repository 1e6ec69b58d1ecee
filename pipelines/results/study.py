"""The dose study's report: the gain of each synthetic arm over the best control, per rare
class and metric, against how close its generator came to real (the kept set's held-out KID)
and against the generator's dose; study.md, results.json and figures.

"Best control" is, per class and metric, the control the synthetic arm gains least over (the
strongest one), with that pair's interval: the question a reviewer asks is whether synthetic
images beat the best thing one could do without them.
"""

from __future__ import annotations

import json
import time

from gan.conventions import atomic_write_text
from pipelines.config.arms import ARM_SPECS, CONTROLS, GAIN_METRICS, oracle_twin
from pipelines.config.experiment import ExperimentConfig, config_to_json, scarcity_config
from pipelines.report.study import scarcity_figure, scarcity_md, study_figures, study_md
from pipelines.results.collect import headline, public, publish, read_result
from pipelines.results.compare import compare, pool_predictions
from pipelines.steps.plan import plan_for
from pipelines.steps.samples import synthetic_sets
from pipelines.store.records import key_of, versions


def write_study(cfg: ExperimentConfig, ids: dict, wall: dict, t0: float) -> dict:
    """ids: the comparison id of the controls (None) and of each dose's synthetic arms."""
    ds, split = plan_for(cfg).dataset, plan_for(cfg).split
    controls, synthetic = cfg.control_arms, cfg.synthetic_arms
    out = cfg.layout.comparison_dir(key_of({"study": True}, [ids[k] for k in ids])[:10])
    runs = {a: _runs(cfg, ids[None], a) for a in controls}
    doses: dict[str, dict] = {}
    for d in cfg.gan_doses:
        arms = {**runs, **{a: _runs(cfg, ids[d], a) for a in synthetic}}
        pooled = pool_predictions(ds, [(split, arms)], list(cfg.classes))
        plan = plan_for(cfg, d)
        _, summaries, reached = synthetic_sets(plan)
        doses[f"{d:g}"] = {
            "source_kimg": d,
            "finetune_kimg": {c: plan.gans[c].train.kimg for c in cfg.classes},
            "comparison": compare(ds, pooled, list(cfg.classes), cfg.margin),
            "synthetic_sets": _public_sets(summaries),
            "reached": reached,
            "runs": {a: [public(r) for r in arms[a]] for a in synthetic},
        }
    results = {
        "config": {**config_to_json(cfg), "comparison_ids": {str(k): v for k, v in ids.items()}},
        "controls": {a: [public(r) for r in runs[a]] for a in controls},
        "doses": doses,
        "points": study_points(doses, cfg.classes, synthetic),
        "data": {**ds.record(), "class_names": ds.class_names},
        "versions": versions(),
        "wall_seconds": wall,
    }
    study_figures(out, results, cfg)
    results["wall_seconds"] = {**wall, "report": time.perf_counter() - t0}
    text = "\n".join(study_md(results, ds.synthetic))
    atomic_write_text(out / "study.md", text)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    publish(out, cfg.layout.root, ("study.md", cfg.layout.results_file.name))
    return headline(f"dose study of {len(doses)} doses; report: {out / 'study.md'}", ds.synthetic)


def _runs(cfg: ExperimentConfig, cid: str, arm: str) -> list[dict]:
    return [read_result(cfg.layout.classifier_dir(cid, arm, s)) for s in range(cfg.seeds)]


def _public_sets(summaries: dict) -> dict:
    return {c: {k: {**v, "_dir": str(v["_dir"])} for k, v in kinds.items()} for c, kinds in
            summaries.items()}  # fmt: skip


def study_points(doses: dict, classes, synthetic: list[str]) -> list[dict]:
    """One point per (dose, class, synthetic arm): the kept set's held-out KID, the raw
    pool's, the floor, and per metric the gain over the best control with its interval."""
    return [
        {"dose": float(d), **point(dose["comparison"]["gains"], dose["synthetic_sets"], c, arm)}
        for d, dose in doses.items()
        for c in classes
        for arm in synthetic
    ]


def point(gains: dict, sets: dict, c: str, arm: str) -> dict:
    """A synthetic arm's standing for class c: its sample set's held-out KIDs and
    detectability, per metric its gain over the best control (the one it gains least over),
    and, where its oracle twin ran, its gain against it (the gap to a perfect generator)."""
    s = sets.get(c, {}).get(ARM_SPECS[arm].synthetic, {})
    held = s.get("heldout_sets", {})
    out = {
        "class": c,
        "arm": arm,
        "kept_kid": held.get("kept", {}).get("kid"),
        "raw_kid": held.get("pool", {}).get("kid"),
        "floor_kid": s.get("floor", {}).get("kid"),
        "detectability": _detected(s.get("detectability")),
    }
    for m in GAIN_METRICS:
        vs = [g for g in gains.values()
              if g["arm"] == arm and g["class"] == c and g["reference"] in CONTROLS]  # fmt: skip
        if vs:
            best = min(vs, key=lambda g: g[m]["gain"])
            out[m] = {"vs": best["reference"], **_interval(best[m])}
    twin = oracle_twin(arm)
    gaps = [g for g in gains.values()
            if g["arm"] == arm and g["class"] == c and g["reference"] == twin]  # fmt: skip
    if gaps:  # the arm against a perfect generator's images in the same counts
        out["gap_to_oracle"] = {"vs": twin, **{m: _interval(gaps[0][m]) for m in GAIN_METRICS}}
    return out


def _detected(d: dict | None) -> dict | None:
    """The set's detectability (balanced accuracy and its interval), where it was measured."""
    return {"accuracy": d["accuracy"], "ci95": d["ci95"]} if d and "accuracy" in d else None


def write_scarcity(cfg: ExperimentConfig, ids: list[str], wall: dict, t0: float) -> dict:
    """scarcity.md and results.json, in a folder of this study's own (compare/<id>/, keyed by
    its levels' comparison ids: another --rare-n list keeps this one), copied to the top of
    the run: every level's gains over the best control against n, the training lesions each
    rare class kept (each level's own report is in its run directory, scarce/n<n>/). The
    oracle arms (the lesions a level cut, added back as a perfect generator would) are points
    too: what any generator could buy at n."""
    synthetic = cfg.synthetic_arms + tuple(a for a in cfg.arms if ARM_SPECS[a].held_back)
    levels, points = {}, []
    for n in cfg.rare_n:
        sub = scarcity_config(cfg, n)
        r = json.loads(sub.layout.results_file.read_text())
        one = next(iter(r["doses"].values())) if "doses" in r else r
        levels[n] = {"report": str(sub.layout.root), "train_images": r.get("train_images")}
        points += [
            {"rare_n": n, **point(one["comparison"]["gains"], one["synthetic_sets"], c, arm)}
            for c in cfg.classes
            for arm in synthetic
        ]
    results = {
        "config": config_to_json(cfg),
        "levels": levels,
        "points": points,
        "versions": versions(),
        "wall_seconds": {**wall, "report": time.perf_counter() - t0},
    }
    out = cfg.layout.comparison_dir(key_of({"scarcity": True}, ids)[:10])
    (out / "figures").mkdir(parents=True, exist_ok=True)
    scarcity_figure(points, cfg.classes, out / "figures" / "gains_vs_rare_n.png")
    synthetic_data = plan_for(scarcity_config(cfg, cfg.rare_n[0])).dataset.synthetic
    atomic_write_text(out / "scarcity.md", "\n".join(scarcity_md(results, synthetic_data)))
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    publish(out, cfg.layout.root, ("scarcity.md", cfg.layout.results_file.name))
    levels_text = ", ".join(str(n) for n in cfg.rare_n)
    text = f"scarcity study of n = {levels_text}; report: {out / 'scarcity.md'}"
    return headline(text, synthetic_data)


def _interval(g: dict) -> dict:
    """A gain as the study tables show it: with its verdict in words and what it could detect."""
    keep = ("gain", "ci95", "excludes_zero", "verdict", "mdg", "few_lesions")
    return {k: g[k] for k in keep if k in g}
