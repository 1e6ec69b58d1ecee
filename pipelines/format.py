"""How numbers read, everywhere a user sees them: KID, FID, gains with their intervals, seed
spreads, and the sample sets' quality table. One definition each, so that report.md, study.md,
gan-sample's summary and an export's dataset card agree to the digit.

On the ground floor (imported by steps, reports and commands alike): pure functions of numbers
and of the dicts the steps record, no I/O.
"""

from __future__ import annotations

import numpy as np

from classifier.gains import AP_MIN_LESIONS


def kid_e3(value: float | None, tag: bool = False) -> str:
    """KID in units of 1e-3 (its values are ~1e-3 to 1e-1): '12.34', or '12.34e-3' with tag."""
    if value is None:
        return "–"
    return f"{1e3 * value:.2f}" + ("e-3" if tag else "")


def kid_pm(m: dict | None) -> str:
    """A measured KID (×1e3) with its spread over KID's random subsets."""
    return "–" if m is None else f"{1e3 * m['kid']:.2f} ± {1e3 * m['kid_std']:.2f}"


def fid(value: float) -> str:
    return f"{value:.2f}"


def matched_fid(m: dict | None) -> str:
    """FID at the floor's n where it was measured so (held-out sets), else the plain FID."""
    return "–" if m is None else f"{m.get('fid_matched', m['fid']):.2f}"


def _detects(g: dict) -> str:
    mdg = g.get("mdg")
    return "" if mdg is None or mdg != mdg else f"; detects ≥ {mdg:.3f}"


def mean_sd(values: list[float]) -> str:
    """Mean ± standard deviation over seeds (0 for one seed)."""
    a = np.asarray(values, dtype=float)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.3f} ± {sd:.3f}"


def gain(g: dict | None) -> str:
    """A gain with its 95 % interval; where the interval includes 0, its verdict in words
    (n.s., cannot tell, no gain larger than the margin) and the smallest gain it could have
    detected; the arm it is measured against where the gain names one ('vs': a study's best
    control)."""
    if g is None:
        return "–"
    lo, hi = g["ci95"]
    mark = "" if g["excludes_zero"] else f" ({g.get('verdict', 'n.s.')}{_detects(g)})"
    vs = f" vs {g['vs']}" if "vs" in g else ""
    few = FEW_LESIONS_MARK if g.get("few_lesions") else ""
    return f"{g['gain']:+.3f}{few} [{lo:+.3f}, {hi:+.3f}]{mark}{vs}"


FEW_LESIONS_MARK = "‡"


def few_lesions_note(cells: list[dict | None]) -> list[str]:
    """The footnote for AP gains marked FEW_LESIONS_MARK, where any of `cells` is one."""
    if not any(c and c.get("few_lesions") for c in cells):
        return []
    return [
        "",
        f"{FEW_LESIONS_MARK} AP gain on fewer than {AP_MIN_LESIONS} test lesions: where the "
        "arms' score shapes differ it is biased toward 0 by up to a third of the gain "
        "(docs/what_could_be_detected.md): its size tends to be understated.",
    ]


def summary_table(summaries: list[dict]) -> str:
    """Markdown table: kept vs random vs pool, held-out and training side by side, with the
    real-vs-real floor, per class."""
    lines = [
        "| class | set | n | held-out KID (×1e3) | held-out FID | train KID (×1e3) | "
        "train FID | precision | recall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        held = s.get("heldout_sets", {})
        for name, m in s["sets"].items():
            h = held.get(name)
            lines.append(
                f"| {s['class']} | {name} | {m['n']} | {kid_pm(h)} | "
                f"{matched_fid(h)} | {kid_pm(m)} | {m['fid']:.2f} | "
                f"{m['precision']:.3f} | {m['recall']:.3f} |"
            )
        if "floor" in s:
            f = s["floor"]
            lines.append(
                f"| {s['class']} | **real floor** (train vs held-out reals) | {f['n']} | "
                f"{kid_pm(f)} | {f['fid']:.2f} | | | | |"
            )
    space = summaries[0]["feature_space"] if summaries else ""
    n_real = ", ".join(
        f"{s['class']} {s['n_real']} train / {s.get('n_heldout', 0)} held-out" for s in summaries
    )
    return (
        "\n".join(lines)
        + f"\n\nfeature space {space}; reals: {n_real}. Held-out FID is at the floor's n "
        "(generated sets subsampled to the training count), so it compares with the floor. "
        "KID ± is the spread over KID's random subsets of these same sets, not a sampling "
        "error: whether kept beats random is each class's held-out verdict, with its 95 % "
        "interval (summary.json: filter_vs_random_heldout)."
    )
