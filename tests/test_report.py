"""pipelines.report: what report.md says about the numbers it is given."""

from __future__ import annotations

from pipelines.report import _tables_md


def _arm(k: int) -> dict:
    per_seed = [[0.0] * k, [0.0] * k]
    return {
        "recall_mean": [0.5] + [0.0] * (k - 1),
        "recall_sd": [0.1] + [0.0] * (k - 1),
        "prior_matched_recall": {},
        "calibrated_average_precision": {},
        "average_precision": per_seed,
        "auc": per_seed,
        **{m: [0.5, 0.5] for m in ("balanced_accuracy", "macro_f1", "macro_auc", "accuracy")},
    }


def test_a_class_without_test_images_says_so_instead_of_a_recall_of_zero():
    names = ["nv", "df"]
    results = {
        "comparison": {"per_arm": {"baseline": _arm(2), "gan": _arm(2)}, "gains": {}},
        "config": {"classes": ["df"]},
        "test_set": {"images": 9, "lesions": 9, "per_class": {"nv": 9, "df": 0}},
    }
    md = "\n".join(_tables_md(results, names))
    assert "| nv | 0.500 ± 0.100 | 0.500 ± 0.100 |" in md
    assert "| df | no test images | no test images |" in md
    assert "| df | baseline | no test images |" in md
    assert "0.000 ± 0.000" not in md
