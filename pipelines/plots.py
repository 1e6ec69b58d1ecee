"""Figures (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipelines.rundir import atomic_write_bytes  # noqa: E402


def save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def fid_curve(rows: list[dict], path: Path, title: str) -> None:
    """FID and KID against kimg, one panel each; the best FID is marked."""
    kimg = [r["kimg"] for r in rows]
    fig, (ax_fid, ax_kid) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_fid.plot(kimg, [r["fid"] for r in rows], marker="o", ms=3)
    best = min(rows, key=lambda r: r["fid"])
    ax_fid.plot([best["kimg"]], [best["fid"]], "r*", ms=12, label=f"best {best['fid']:.2f}")
    ax_fid.set(xlabel="kimg", ylabel=rows[-1]["fid_label"], title=title)
    ax_fid.legend()
    ax_kid.errorbar(
        kimg,
        [r["kid"] for r in rows],
        yerr=[r["kid_std"] for r in rows],
        marker="o",
        ms=3,
        capsize=2,
    )
    ax_kid.set(xlabel="kimg", ylabel=rows[-1]["kid_label"])
    for ax in (ax_fid, ax_kid):
        ax.grid(alpha=0.3)
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


def pr_curves(curves: dict[str, list], class_names: list[str], path: Path) -> None:
    """curves[arm][class] = (precision, recall), from predictions pooled over seeds."""
    cols = 4
    rows = -(-len(class_names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for k, name in enumerate(class_names):
        ax = axes[k // cols][k % cols]
        for arm, per_class in curves.items():
            p, r = per_class[k]
            ax.plot(r, p, label=arm, lw=1)
        ax.set(title=name, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    for k in range(len(class_names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)
