"""Figures (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

if "MPLCONFIGDIR" not in os.environ and not os.access(Path.home(), os.W_OK):
    # a read-only HOME: matplotlib would warn twice before the tool's own one-line error
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="raregan-matplotlib-")

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gan.conventions import atomic_write_bytes  # noqa: E402


def save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def fid_curve(rows: list[dict], path: Path, title: str, by: str) -> None:
    """KID and FID against kimg: held-out (validation reals; for a multi-class generator also
    weighted to its training's class mix) and training-side, with the real-vs-real floor; the
    checkpoint kept as best.pt (lowest `by`) is marked."""
    kimg = [r["kimg"] for r in rows]
    held = all("heldout_kid" in r for r in rows)
    fig, (ax_kid, ax_fid) = plt.subplots(1, 2, figsize=(10, 3.6))
    sides = [("heldout", "held-out (validation reals)"), ("train", "training reals")]
    for side, name in sides if held else sides[1:]:
        ax_kid.errorbar(
            kimg,
            [1e3 * r[f"{side}_kid"] for r in rows],
            yerr=[1e3 * r[f"{side}_kid_std"] for r in rows],
            marker="o",
            ms=3,
            capsize=2,
            label=name,
        )
        ax_fid.plot(kimg, [r[f"{side}_fid"] for r in rows], marker="o", ms=3, label=name)
    mixed = [r for r in rows if "heldout_mix_kid" in r]
    if mixed:
        ax_kid.plot(
            [r["kimg"] for r in mixed],
            [1e3 * r["heldout_mix_kid"] for r in mixed],
            marker="s",
            ms=3,
            label="held-out, training's class mix",
        )
        ax_kid.axhline(1e3 * mixed[-1]["floor_mix_kid"], color="k", ls=":", lw=1, label="its floor")
    chosen = [r for r in rows if by in r]
    best = min(chosen, key=lambda r: r[by])
    ax_kid.plot([best["kimg"]], [1e3 * best[by]], "r*", ms=12, label="best.pt")
    if held:
        ax_kid.axhline(1e3 * rows[-1]["floor_kid"], color="k", ls="--", lw=1, label="real floor")
        ax_fid.axhline(rows[-1]["floor_fid"], color="k", ls="--", lw=1, label="real floor")
    label = chosen[-1][f"{by}_label"]
    ax_kid.set(xlabel="kimg", ylabel="KID ×1e3", title=f"{title}: {label}")
    ax_fid.set(xlabel="kimg", ylabel="FID", title=rows[-1]["train_fid_label"])
    for ax in (ax_fid, ax_kid):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def confusion_pair(matrices: dict[str, list], class_names: list[str], path: Path) -> None:
    """Row-normalised confusion matrices (summed over seeds), side by side."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4.2))
    for ax, (name, m) in zip(np.atleast_1d(axes), matrices.items()):
        m = np.asarray(m, dtype=float)
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(m)):
            for j in range(len(m)):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if m[i, j] > 0.5 else "black",
                )
        ax.set(
            title=f"{name} (rows: true class)",
            xticks=range(len(class_names)),
            yticks=range(len(class_names)),
            xlabel="predicted",
            ylabel="true",
        )
        ax.set_xticklabels(class_names, rotation=45)
        ax.set_yticklabels(class_names)
    save_figure(fig, path)


def recall_bars(per_arm: dict[str, dict], class_names: list[str], path: Path) -> None:
    """Per-class test recall, mean ± sd over seeds, one bar per arm."""
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(class_names)), 3.6))
    width = 0.8 / len(per_arm)
    x = np.arange(len(class_names))
    for i, (arm, r) in enumerate(per_arm.items()):
        ax.bar(x + i * width, r["recall_mean"], width, yerr=r["recall_sd"], capsize=2, label=arm)
    ax.set_xticks(x + width * (len(per_arm) - 1) / 2)
    ax.set_xticklabels(class_names)
    ax.set(ylabel="test recall (mean ± sd over seeds)", ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def pr_curves(
    curves: dict[str, list],
    ap: dict[str, list[float]],
    class_names: list[str],
    path: Path,
    title: str = "",
) -> None:
    """curves[arm][class] = (precision, recall) from predictions pooled over seeds; each
    legend gives the arms' AP (mean over seeds)."""
    cols = 4
    rows = -(-len(class_names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False, layout="constrained"
    )
    for k, name in enumerate(class_names):
        ax = axes[k // cols][k % cols]
        for arm, per_class in curves.items():
            p, r = per_class[k]
            ax.plot(r, p, label=f"{arm} (AP {ap[arm][k]:.2f})", lw=1)
        ax.set(title=name, xlim=(0, 1), ylim=(0, 1.02))
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower left")
    for k in range(len(class_names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


FOREST_METRICS = {
    "recall": "recall gain",
    "prior_matched_recall": "prior-matched recall gain",
    "average_precision": "AP gain",
}
NS_COLOUR = "0.6"  # n.s. rows: hollow grey, so the significant ones stand out


@dataclass
class Forest:
    """A forest plot and what it shows: its row labels (top to bottom) and, per metric,
    which rows' CIs exclude 0 (drawn filled and coloured; the others hollow grey)."""

    figure: Figure
    rows: list[str]
    significant: dict[str, list[bool]]


def forest_figure(gains: dict, title: str = "") -> Forest:
    """Every gain of `gains` (results.json's gains: arm, reference, class and per metric
    gain/ci95/excludes_zero) as a point with its 95 % CI against a zero line, one row per
    (class, arm − reference), one panel per metric: the gains read at a glance, including
    which of them are n.s. Rows keep the dict's order, grouped by class."""
    entries = list(gains.values())
    classes = list(dict.fromkeys(g["class"] for g in entries))
    entries.sort(key=lambda g: classes.index(g["class"]))
    rows = [f"{g['class']}: {g['arm']} − {g['reference']}" for g in entries]
    colours = {a: f"C{i}" for i, a in enumerate(dict.fromkeys(g["arm"] for g in entries))}
    fig, axes = plt.subplots(
        1, len(FOREST_METRICS), sharey=True, squeeze=False, layout="constrained",
        figsize=(3.3 * len(FOREST_METRICS) + 1.6, 0.28 * len(rows) + 1.3),
    )  # fmt: skip
    y = np.arange(len(rows))[::-1]
    significant = {}
    for ax, (metric, label) in zip(axes[0], FOREST_METRICS.items()):
        significant[metric] = [bool(g[metric]["excludes_zero"]) for g in entries]
        for yi, g, sig in zip(y, entries, significant[metric]):
            _forest_point(ax, yi, g[metric], colours[g["arm"]] if sig else None)
        ax.axvline(0, color="k", lw=0.8)
        for yi, (a, b) in zip(y[1:], zip(entries, entries[1:])):
            if a["class"] != b["class"]:
                ax.axhline(yi + 0.5, color="0.85", lw=0.8)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set(yticks=y, ylim=(-0.7, len(rows) - 0.3))
    axes[0][0].set_yticklabels(rows, fontsize=7)
    handles = [
        *[
            plt.Line2D([], [], color=c, marker="o", ls="", label=f"{arm}: CI excludes 0")
            for arm, c in colours.items()
        ],
        plt.Line2D([], [], color=NS_COLOUR, marker="o", mfc="none", ls="", label="n.s."),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7, frameon=False
    )
    fig.suptitle(title or "gains with 95 % CIs", fontsize=9)
    return Forest(fig, rows, significant)


def _forest_point(ax, y: float, g: dict, colour: str | None) -> None:
    """One gain and its CI: filled in `colour`, or hollow grey where n.s. (colour None)."""
    lo, hi = g["ci95"]
    err = [[max(g["gain"] - lo, 0.0)], [max(hi - g["gain"], 0.0)]]
    sig = colour is not None
    drawn = ax.errorbar(
        [g["gain"]], [y], xerr=err, fmt="o", ms=4, capsize=2, lw=1,
        color=colour if sig else NS_COLOUR, mfc=colour if sig else "none",
    )  # fmt: skip
    drawn.lines[0].set_gid("significant" if sig else "n.s.")


def forest_plot(gains: dict, path: Path, title: str = "") -> Forest:
    """forest_figure of `gains`, written to `path` (PNG, atomically)."""
    forest = forest_figure(gains, title)
    save_figure(forest.figure, path)
    return forest
