"""The dose study's report: the gain of each synthetic arm over the best control, per rare
class and metric, against how close its generator came to real (the kept set's held-out KID)
and against the generator's dose; study.md, results.json and figures.

"Best control" is, per class and metric, the control the synthetic arm gains least over (the
strongest one), with that pair's interval: the question a reviewer asks is whether synthetic
images beat the best thing one could do without them.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from gan.conventions import atomic_write_text
from pipelines.arms import ARM_SPECS, CONTROLS
from pipelines.compare import compare, pool_predictions
from pipelines.experiment import ExperimentConfig, config_to_json, data_and_split, gan_plan
from pipelines.graph import key_of
from pipelines.plots import plt, save_figure
from pipelines.results import _public, _result
from pipelines.rundir import versions
from pipelines.steps import synthetic_sets

METRICS = ("recall", "prior_matched_recall", "average_precision")


def write_study(cfg: ExperimentConfig, ids: dict, wall: dict, t0: float) -> dict:
    """ids: the comparison id of the controls (None) and of each dose's synthetic arms."""
    ds, split = data_and_split(cfg)
    controls = [a for a in cfg.arms if ARM_SPECS[a].synthetic is None]
    synthetic = [a for a in cfg.arms if a not in controls]
    out = cfg.layout.comparison_dir(key_of({"study": True}, [ids[k] for k in ids])[:10])
    runs = {a: _runs(cfg, ids[None], a) for a in controls}
    doses: dict[str, dict] = {}
    for d in cfg.gan_doses:
        arms = {**runs, **{a: _runs(cfg, ids[d], a) for a in synthetic}}
        pooled = pool_predictions(ds, [(split, arms)], list(cfg.classes))
        _, summaries, reached = synthetic_sets(cfg, d)
        doses[f"{d:g}"] = {
            "source_kimg": d,
            "finetune_kimg": {c: gan_plan(cfg, c, d)[1].kimg for c in cfg.classes},
            "comparison": compare(ds, pooled, list(cfg.classes)),
            "synthetic_sets": _public_sets(summaries),
            "reached": reached,
            "runs": {a: [_public(r) for r in arms[a]] for a in synthetic},
        }
    results = {
        "config": {**config_to_json(cfg), "comparison_ids": {str(k): v for k, v in ids.items()}},
        "controls": {a: [_public(r) for r in runs[a]] for a in controls},
        "doses": doses,
        "points": study_points(doses, cfg.classes, synthetic),
        "data": {**ds.record(), "class_names": ds.class_names},
        "versions": versions(),
        "wall_seconds": wall,
    }
    _figures(out, results, cfg)
    results["wall_seconds"] = {**wall, "report": time.perf_counter() - t0}
    text = "\n".join(study_md(results, ds.synthetic))
    atomic_write_text(out / "study.md", text)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    atomic_write_text(
        cfg.layout.root / "study.md", text.replace("](figures/", f"](compare/{out.name}/figures/")
    )
    atomic_write_text(cfg.layout.results_file, json.dumps(results, indent=1, default=str))
    prefix = "[SYNTHETIC demo data] " if ds.synthetic else ""
    return {"headline": f"{prefix}dose study of {len(doses)} doses; report: {out / 'study.md'}"}


def _runs(cfg: ExperimentConfig, cid: str, arm: str) -> list[dict]:
    return [_result(cfg.layout.classifier_dir(cid, arm, s)) for s in range(cfg.seeds)]


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
    """A synthetic arm's standing for class c: its sample set's held-out KIDs and, per
    metric, its gain over the best control (the one it gains least over)."""
    s = sets.get(c, {}).get(ARM_SPECS[arm].synthetic, {})
    held = s.get("heldout_sets", {})
    out = {
        "class": c,
        "arm": arm,
        "kept_kid": held.get("kept", {}).get("kid"),
        "raw_kid": held.get("pool", {}).get("kid"),
        "floor_kid": s.get("floor", {}).get("kid"),
    }
    for m in METRICS:
        vs = [g for g in gains.values()
              if g["arm"] == arm and g["class"] == c and g["reference"] in CONTROLS]  # fmt: skip
        if vs:
            best = min(vs, key=lambda g: g[m]["gain"])
            out[m] = {"vs": best["reference"], **_interval(best[m])}
    return out


def write_scarcity(cfg: ExperimentConfig, wall: dict, t0: float) -> dict:
    """scarcity.md and results.json at the top of the run: every level's gains over the best
    control against n, the training lesions each rare class kept (each level's own report
    is in its run directory, scarce/n<n>/)."""
    from pipelines.experiment import scarcity_config

    synthetic = [a for a in cfg.arms if ARM_SPECS[a].synthetic is not None]
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
    figures = cfg.layout.root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _scarcity_figure(points, cfg.classes, figures / "gains_vs_rare_n.png")
    atomic_write_text(cfg.layout.root / "scarcity.md", "\n".join(scarcity_md(results)))
    atomic_write_text(cfg.layout.results_file, json.dumps(results, indent=1, default=str))
    return {
        "headline": f"scarcity study of n = {cfg.rare_n}; report: {cfg.layout.root}/scarcity.md"
    }


def scarcity_md(results: dict) -> list[str]:
    md = [
        "# Scarcity study: gain of synthetic arms against the rare classes' training lesions",
        "",
        "Per rare class and n (training lesions kept; the smaller sets are inside the larger, "
        "validation and test untouched): the kept set's held-out KID (×1e3) and floor, and each "
        "synthetic arm's gain over the best control of its own level with its 95 % interval.",
        "",
        "| class | arm | n | kept KID | floor | recall gain | prior-matched recall gain "
        "| AP gain |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in sorted(results["points"], key=lambda p: (p["class"], p["arm"], p["rare_n"])):
        cells = [_gain(p.get(m)) for m in METRICS]
        md.append(
            f"| {p['class']} | {p['arm']} | {p['rare_n']} | {_kid(p['kept_kid'])} | "
            f"{_kid(p['floor_kid'])} | " + " | ".join(cells) + " |"
        )
    md += ["", "![gains](figures/gains_vs_rare_n.png)", ""]
    md += [f"Level n = {n}: `{lvl['report']}/`" for n, lvl in results["levels"].items()]
    return md


def _scarcity_figure(points: list[dict], classes, path: Path) -> None:
    """Gains against n, one panel per metric; the (class, arm) series are dodged apart so
    that their intervals can be told apart, and n's own values are the ticks."""
    series = [(c, arm) for c in classes for arm in sorted({p["arm"] for p in points})]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(13, 3.6), squeeze=False,
                             layout="constrained")  # fmt: skip
    for i, m in enumerate(METRICS):
        ax = axes[0][i]
        for k, (c, arm) in enumerate(series):
            ps = sorted((p for p in points if p["class"] == c and p["arm"] == arm and m in p),
                        key=lambda p: p["rare_n"])  # fmt: skip
            dodge = 1.03 ** (k - (len(series) - 1) / 2)  # on a log axis: a factor
            x = [p["rare_n"] * dodge for p in ps]
            y = [p[m]["gain"] for p in ps]
            err = [[p[m]["gain"] - p[m]["ci95"][0] for p in ps],
                   [p[m]["ci95"][1] - p[m]["gain"] for p in ps]]  # fmt: skip
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{c} {arm}")
        ax.axhline(0, color="black", lw=0.8)
        _plain_log_x(ax)
        ns = sorted({p["rare_n"] for p in points})
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_title(m.replace("_", " "), fontsize=9)
        ax.set_xlabel("training lesions per rare class (n)")
        ax.set_ylabel("gain over the best control")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)


def _interval(g: dict) -> dict:
    return {"gain": g["gain"], "ci95": g["ci95"], "excludes_zero": g["excludes_zero"]}


def study_md(results: dict, synthetic_data: bool) -> list[str]:
    md = ["# Dose study: gain of synthetic arms against generator quality", ""]
    if synthetic_data:
        md += ["> **SYNTHETIC demo data**: these numbers say nothing about dermoscopy.", ""]
    md += [
        "Per rare class and dose: the source GAN's kimg, the class's fine-tune kimg, the held-out "
        "KID (×1e3, the class's validation images) of the raw pool and of the kept (filtered) "
        "set against the real-vs-real floor, and each synthetic arm's gain over the best control "
        "(the one it gains least over) with its 95 % interval; n.s. = the interval holds 0. "
        "The controls were trained once and serve every dose.",
        "",
        "| class | arm | source kimg | fine-tune kimg | raw KID | kept KID | floor | recall gain "
        "| prior-matched recall gain | AP gain |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    doses = results["doses"]
    for p in sorted(results["points"], key=lambda p: (p["class"], p["arm"], p["dose"])):
        dose = doses[f"{p['dose']:g}"]
        cells = [_gain(p.get(m)) for m in METRICS]
        md.append(
            f"| {p['class']} | {p['arm']} | {p['dose']:g} | "
            f"{dose['finetune_kimg'][p['class']]:.1f} | {_kid(p['raw_kid'])} | "
            f"{_kid(p['kept_kid'])} | {_kid(p['floor_kid'])} | " + " | ".join(cells) + " |"
        )
    md += ["", "![gains](figures/gains_vs_kid.png)", "", "![kid](figures/kid_vs_dose.png)", ""]
    md += [f"![{n}](figures/{n})" for n in results.get("grids", [])]
    md += ["", "Wall time per stage (s): "
           + ", ".join(f"{k} {v:.0f}" for k, v in results["wall_seconds"].items()), ""]  # fmt: skip
    return md


def _gain(g: dict | None) -> str:
    if g is None:
        return "–"
    lo, hi = g["ci95"]
    ns = "" if g["excludes_zero"] else " (n.s.)"
    return f"{g['gain']:+.3f} [{lo:+.3f}, {hi:+.3f}]{ns} vs {g['vs']}"


def _kid(v: float | None) -> str:
    return "–" if v is None else f"{1e3 * v:.2f}"


def _figures(out: Path, results: dict, cfg: ExperimentConfig) -> None:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _gains_figure(results["points"], cfg.classes, figures / "gains_vs_kid.png")
    _kid_figure(results["points"], cfg.classes, figures / "kid_vs_dose.png")
    grids = []
    for d, dose in results["doses"].items():
        for c, kinds in dose["synthetic_sets"].items():
            grid = Path(kinds.get("gan", {}).get("_dir", "")) / "grid.png"
            if grid.is_file():
                name = f"samples_{c}_dose{d}.png"
                shutil.copyfile(grid, figures / name)
                grids.append(name)
    results["grids"] = grids


def _gains_figure(points: list[dict], classes, path: Path) -> None:
    """One panel per class and metric: each dose is a point at its kept set's KID, labelled
    with its dose; the points are not joined (KID is not monotone in the dose, and a line in
    KID order would draw a trajectory that no generator took). The arms are dodged apart."""
    arms = sorted({p["arm"] for p in points})
    fig, axes = plt.subplots(len(METRICS), len(classes), figsize=(4.6 * len(classes), 9.5),
                             squeeze=False, layout="constrained")  # fmt: skip
    for j, c in enumerate(classes):
        for i, m in enumerate(METRICS):
            ax = axes[i][j]
            for k, arm in enumerate(arms):
                ps = [p for p in points if p["class"] == c and p["arm"] == arm and m in p
                      and p["kept_kid"] is not None]  # fmt: skip
                dodge = 1.04 ** (k - (len(arms) - 1) / 2)  # on a log axis: a factor
                x = [1e3 * p["kept_kid"] * dodge for p in ps]
                y = [p[m]["gain"] for p in ps]
                err = [[p[m]["gain"] - p[m]["ci95"][0] for p in ps],
                       [p[m]["ci95"][1] - p[m]["gain"] for p in ps]]  # fmt: skip
                ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label=arm)
                if k == 0:
                    for xi, p in zip(x, ps):
                        ax.annotate(f"{p['dose']:g}", (xi, 0.02), xycoords=ax.get_xaxis_transform(),
                                    fontsize=7, ha="center", color="dimgrey")  # fmt: skip
            floors = [p["floor_kid"] for p in points if p["class"] == c and p["floor_kid"]]
            if floors:
                ax.axvline(1e3 * floors[0], color="grey", ls=":", label="real floor")
            ax.axhline(0, color="black", lw=0.8)
            _plain_log_x(ax)
            ax.set_title(f"{c}: {m.replace('_', ' ')} (grey: source kimg)", fontsize=9)
            ax.set_xlabel("kept set's held-out KID ×1e3 (log)", fontsize=8)
            ax.set_ylabel("gain over the best control", fontsize=8)
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)


def _plain_log_x(ax) -> None:
    """A log x axis with plain numbers at a few ticks (matplotlib's 3×10^0 minor labels
    collide on short ranges)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _kid_figure(points: list[dict], classes, path: Path) -> None:
    fig, axes = plt.subplots(1, len(classes), figsize=(4.2 * len(classes), 3.4), squeeze=False)
    for j, c in enumerate(classes):
        ax = axes[0][j]
        ps = sorted({p["dose"]: p for p in points if p["class"] == c}.values(),
                    key=lambda p: p["dose"])  # fmt: skip
        for key, label in (("raw_kid", "raw pool"), ("kept_kid", "kept (filtered)")):
            xy = [(p["dose"], 1e3 * p[key]) for p in ps if p[key] is not None]
            if xy:
                ax.plot(*zip(*xy), marker="o", label=label)
        floors = [p["floor_kid"] for p in ps if p["floor_kid"]]
        if floors:
            ax.axhline(1e3 * floors[0], color="grey", ls=":", label="real floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(c)
        ax.set_xlabel("source kimg (dose)")
        ax.set_ylabel("held-out KID ×1e3")
        ax.legend(fontsize=7)
    save_figure(fig, path)
