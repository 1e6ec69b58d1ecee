"""The studies' tables: a synthetic arm's point carries its set's detectability and its gap
to its oracle twin, and scarcity.md shows both (pure functions of results, no training)."""

from __future__ import annotations

from pipelines.config.arms import GAIN_METRICS
from pipelines.report.study import scarcity_md
from pipelines.results.study import point


def _gain(value: float, low: float, high: float) -> dict:
    return {
        "gain": value, "ci95": [low, high], "excludes_zero": low > 0 or high < 0,
        "verdict": "cannot tell", "mdg": 0.3,
    }  # fmt: skip


def _pair(arm: str, ref: str, value: float) -> dict:
    return {"arm": arm, "class": "df", "reference": ref} | {
        m: _gain(value + i / 100, value - 0.1, value + 0.1) for i, m in enumerate(GAIN_METRICS)
    }


GAINS = {
    "a": _pair("gan", "baseline", 0.05),
    "b": _pair("gan", "oversample", -0.02),  # the best control: the one gan gains least over
    "c": _pair("gan", "oracle", -0.40),
    "d": _pair("oracle", "oversample", 0.30),
}
SETS = {"df": {"gan": {
    "heldout_sets": {"kept": {"kid": 0.08}, "pool": {"kid": 0.09}}, "floor": {"kid": 1.1},
    "detectability": {"accuracy": 0.895, "ci95": [0.698, 1.0], "real_accuracy": 0.79},
}}}  # fmt: skip


def test_a_synthetic_point_has_its_gap_to_the_oracle_and_its_detectability():
    p = point(GAINS, SETS, "df", "gan")
    assert p["recall"]["vs"] == "oversample" and p["recall"]["gain"] == -0.02
    gap = p["gap_to_oracle"]
    assert gap["vs"] == "oracle" and gap["recall"]["gain"] == -0.40
    assert gap["average_precision"]["gain"] == -0.40 + 2 / 100
    assert p["detectability"] == {"accuracy": 0.895, "ci95": [0.698, 1.0]}
    assert "gap_to_oracle" not in point(GAINS, SETS, "df", "oracle")  # no twin of its own


def test_scarcity_md_shows_detectability_and_the_gap_table():
    points = [{"rare_n": 10, **point(GAINS, SETS, "df", a)} for a in ("gan", "oracle")]
    md = "\n".join(scarcity_md({"points": points, "levels": {10: {"report": "x"}}}))
    assert "| df | gan | 10 | 80.00 | 1100.00 | 0.90 [0.70, 1.00] | -0.020" in md
    assert "| df | oracle | 10 | – | – | — | +0.300" in md
    assert "**The gap to a perfect generator**" in md
    assert "| df | gan | oracle | 10 | -0.400 [-0.500, -0.300] |" in md
    assert "(cannot tell; detects ≥ 0.300)" in md  # the verdict words survive the study


def test_study_tables_mark_ap_gains_on_few_test_lesions():
    """An AP gain on fewer than 20 test lesions keeps its mark through the study's point and
    the table carries the footnote."""
    few = {k: g | {"average_precision": g["average_precision"] | {"few_lesions": True}}
           for k, g in GAINS.items()}  # fmt: skip
    p = point(few, SETS, "df", "gan")
    assert (
        p["average_precision"]["few_lesions"]
        and p["gap_to_oracle"]["average_precision"]["few_lesions"]
    )
    md = "\n".join(scarcity_md({"points": [{"rare_n": 10, **p}], "levels": {10: {"report": "x"}}}))
    assert md.count("‡") == 3  # the point's AP gain, its gap's, and the footnote
    assert "fewer than 20 test lesions" in md
