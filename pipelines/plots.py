"""Figures (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

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
