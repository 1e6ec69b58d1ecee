"""The dose and scarcity studies as text and figures: pure functions of their results."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.config.arms import GAIN_METRICS
from pipelines.config.experiment import ExperimentConfig
from pipelines.format import few_lesions_note, gain, kid_e3
from pipelines.plots import plt, save_figure

SYNTHETIC_NOTE = "> **SYNTHETIC demo data**: these numbers say nothing about dermoscopy."


def scarcity_md(results: dict, synthetic_data: bool = False) -> list[str]:
    md = ["# Scarcity study: gain of synthetic arms against the rare classes' training lesions"]
    md += ["", SYNTHETIC_NOTE] if synthetic_data else []
    md += [
        "",
        "Per rare class and n (training lesions kept; the smaller sets are inside the larger, "
        "validation and test untouched): the kept set's held-out KID (×1e3) and floor, and each "
        "synthetic arm's gain over the best control of its own level with its 95 % interval. "
        "The oracle arms (no KID: their images are real) add back the training lesions the "
        "level cut, where the synthetic arms add generated images: a perfect generator. Where "
        "an oracle gains nothing measurable at n, no generator could have.",
        "",
        "| class | arm | n | kept KID | floor | detectability | recall gain "
        "| prior-matched recall gain | AP gain |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in sorted(results["points"], key=lambda p: (p["class"], p["arm"], p["rare_n"])):
        cells = [gain(p.get(m)) for m in GAIN_METRICS]
        md.append(
            f"| {p['class']} | {p['arm']} | {p['rare_n']} | {kid_e3(p['kept_kid'])} | "
            f"{kid_e3(p['floor_kid'])} | {detected(p.get('detectability'))} | "
            + " | ".join(cells)
            + " |"
        )
    gaps = [p for p in results["points"] if "gap_to_oracle" in p]
    if gaps:
        md += [
            "",
            "**The gap to a perfect generator**: each synthetic arm against its oracle twin "
            "(the same counts, real images of the cut lesions instead of generated ones) at "
            "each n; below 0: the generator falls short of what real new lesions would buy.",
            "",
            "| class | arm | vs | n | recall | prior-matched recall | AP |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for p in sorted(gaps, key=lambda p: (p["class"], p["arm"], p["rare_n"])):
            g = p["gap_to_oracle"]
            md.append(
                f"| {p['class']} | {p['arm']} | {g['vs']} | {p['rare_n']} | "
                + " | ".join(gain(g[m]) for m in GAIN_METRICS)
                + " |"
            )
    md += few_lesions_note([p.get("average_precision") for p in results["points"]])
    md += ["", "![gains](figures/gains_vs_rare_n.png)", ""]
    md += [f"Level n = {n}: `{lvl['report']}/`" for n, lvl in results["levels"].items()]
    return md


def scarcity_figure(points: list[dict], classes, path: Path) -> None:
    """Gains against n, one panel per metric; the (class, arm) series are dodged apart so
    that their intervals can be told apart, and n's own values are the ticks."""
    series = [(c, arm) for c in classes for arm in sorted({p["arm"] for p in points})]
    fig, axes = plt.subplots(1, len(GAIN_METRICS), figsize=(13, 3.6), squeeze=False,
                             layout="constrained")  # fmt: skip
    for i, m in enumerate(GAIN_METRICS):
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


def study_md(results: dict, synthetic_data: bool) -> list[str]:
    md = ["# Dose study: gain of synthetic arms against generator quality", ""]
    if synthetic_data:
        md += [SYNTHETIC_NOTE, ""]
    md += [
        "Per rare class and dose: the source GAN's kimg, the class's fine-tune kimg, the held-out "
        "KID (×1e3, the class's validation images) of the raw pool and of the kept (filtered) "
        "set against the real-vs-real floor, and each synthetic arm's gain over the best control "
        "(the one it gains least over) with its 95 % interval; n.s. = the interval holds 0. "
        "The controls were trained once and serve every dose.",
        "",
        "| class | arm | source kimg | fine-tune kimg | raw KID | kept KID | floor | "
        "detectability | recall gain | prior-matched recall gain | AP gain |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    doses = results["doses"]
    for p in sorted(results["points"], key=lambda p: (p["class"], p["arm"], p["dose"])):
        dose = doses[f"{p['dose']:g}"]
        cells = [gain(p.get(m)) for m in GAIN_METRICS]
        md.append(
            f"| {p['class']} | {p['arm']} | {p['dose']:g} | "
            f"{dose['finetune_kimg'][p['class']]:.1f} | {kid_e3(p['raw_kid'])} | "
            f"{kid_e3(p['kept_kid'])} | {kid_e3(p['floor_kid'])} | "
            f"{detected(p.get('detectability'))} | " + " | ".join(cells) + " |"
        )
    md += few_lesions_note([p.get("average_precision") for p in results["points"]])
    md += [
        "",
        "Detectability: balanced accuracy [95 % CI] of a small CNN telling the class's "
        "validation reals from fresh samples of the kept set's kind (0.5: indistinguishable; "
        "report.md of each dose has the test's detail).",
        "",
        "![gains](figures/gains_vs_kid.png)",
        "",
        "![gains](figures/gains_vs_detectability.png)",
        "",
        "![kid](figures/kid_vs_dose.png)",
        "",
    ]
    md += [f"![{n}](figures/{n})" for n in results.get("grids", [])]
    md += ["", "Wall time per stage (s): "
           + ", ".join(f"{k} {v:.0f}" for k, v in results["wall_seconds"].items()), ""]  # fmt: skip
    return md


def study_figures(out: Path, results: dict, cfg: ExperimentConfig) -> None:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _gains_figure(results["points"], cfg.classes, figures / "gains_vs_kid.png", KID_AXIS)
    _gains_figure(
        results["points"], cfg.classes, figures / "gains_vs_detectability.png", DETECT_AXIS
    )
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


@dataclass(frozen=True)
class Axis:
    """What a gains figure puts on x: a point's value of it (None: not measured)."""

    value: Callable[[dict], float | None]
    label: str
    log: bool


KID_AXIS = Axis(
    lambda p: None if p["kept_kid"] is None else 1e3 * p["kept_kid"],
    "kept set's held-out KID ×1e3 (log)", True,
)  # fmt: skip
DETECT_AXIS = Axis(
    lambda p: (p.get("detectability") or {}).get("accuracy"),
    "detectability (balanced accuracy; 0.5: indistinguishable)", False,
)  # fmt: skip


def detected(d: dict | None) -> str:
    """A set's detectability as a table cell."""
    return "—" if not d else f"{d['accuracy']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]"


def _gains_figure(points: list[dict], classes, path: Path, axis: Axis) -> None:
    """One panel per class and metric: each dose is a point at its kept set's KID (or
    detectability), labelled with its dose; the points are not joined (neither is monotone in
    the dose, and a line in x order would draw a trajectory that no generator took). The arms
    are dodged apart."""
    arms = sorted({p["arm"] for p in points})
    fig, axes = plt.subplots(len(GAIN_METRICS), len(classes), figsize=(4.6 * len(classes), 9.5),
                             squeeze=False, layout="constrained")  # fmt: skip
    for j, c in enumerate(classes):
        for i, m in enumerate(GAIN_METRICS):
            ax = axes[i][j]
            for k, arm in enumerate(arms):
                ps = [p for p in points if p["class"] == c and p["arm"] == arm and m in p
                      and axis.value(p) is not None]  # fmt: skip
                shift = k - (len(arms) - 1) / 2  # dodge: a factor on a log axis, else a step
                x = [axis.value(p) * 1.04**shift if axis.log else axis.value(p) + 0.004 * shift
                     for p in ps]  # fmt: skip
                y = [p[m]["gain"] for p in ps]
                err = [[p[m]["gain"] - p[m]["ci95"][0] for p in ps],
                       [p[m]["ci95"][1] - p[m]["gain"] for p in ps]]  # fmt: skip
                ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label=arm)
                if k == 0:
                    for xi, p in zip(x, ps):
                        ax.annotate(f"{p['dose']:g}", (xi, 0.02), xycoords=ax.get_xaxis_transform(),
                                    fontsize=7, ha="center", color="dimgrey")  # fmt: skip
            floors = [p["floor_kid"] for p in points if p["class"] == c and p["floor_kid"]]
            if axis.log and floors:
                ax.axvline(1e3 * floors[0], color="grey", ls=":", label="real floor")
            if not axis.log:
                ax.axvline(0.5, color="grey", ls=":", label="indistinguishable")
            ax.axhline(0, color="black", lw=0.8)
            if axis.log:
                _plain_log_x(ax)
            ax.set_title(f"{c}: {m.replace('_', ' ')} (grey: source kimg)", fontsize=9)
            ax.set_xlabel(axis.label, fontsize=8)
            ax.set_ylabel("gain over the best control", fontsize=8)
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)


def _plain_log_x(ax) -> None:
    """A log x axis (linear within ±1: an unbiased KID on few judging images can be <= 0)
    with plain numbers at its ticks (matplotlib's 3×10^0 minor labels collide on short
    ranges)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("symlog", linthresh=1.0)
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
        ax.set_yscale("symlog", linthresh=1.0)  # unbiased KID on few judging images can be < 0
        ax.set_title(c)
        ax.set_xlabel("source kimg (dose)")
        ax.set_ylabel("held-out KID ×1e3")
        if ax.get_legend_handles_labels()[0]:  # a class with no judging KID has no lines
            ax.legend(fontsize=7)
    save_figure(fig, path)
