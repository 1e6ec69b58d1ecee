"""pipelines.report.markdown: what report.md says about the numbers it is given."""

from __future__ import annotations

from types import SimpleNamespace

from pipelines.report.markdown import _external_md, _head_md, _tables_md, forest_gains


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


def _pair(arm: str, ref: str, c: str = "df") -> dict:
    g = {"gain": 0.1, "ci95": [0.05, 0.15], "excludes_zero": True, "test_lesions": 5}
    metrics = ("recall", "prior_matched_recall", "average_precision")
    return {"arm": arm, "reference": ref, "class": c, **{m: g for m in metrics}}


def test_the_forest_plot_shows_synthetic_arms_over_controls_before_the_table():
    gains = {
        f"{a} vs {r}: df": _pair(a, r)
        for a, r in [("gan", "baseline"), ("oversample+gan", "reweight"),
                     ("oversample", "baseline"), ("gan", "gan-unfiltered")]
    }  # fmt: skip
    assert list(forest_gains(gains)) == ["gan vs baseline: df", "oversample+gan vs reweight: df"]
    results = {
        "comparison": {"gains": gains, "margin": 0.08},
        "config": {"seeds": [0, 1], "folds": 5},
    }
    ds = SimpleNamespace(synthetic=False, source="ham", format="ham10000", fingerprint="f")
    pooled = SimpleNamespace(labels=[0, 1], lesion_ids=["a", "b"])
    md = _head_md(results, ds, pooled)
    forest = next(i for i, line in enumerate(md) if "](figures/forest.png)" in line)
    table = next(i for i, line in enumerate(md) if line.startswith("| class | arm | vs |"))
    assert forest < table and "pooled over 5 folds, 2 seeds" in md[forest]
    assert any(
        "'no gain larger than 0.08' (the whole CI lies below that margin, --margin)" in line
        for line in md
    )
    external = {"source": "isic", "n": 2, "lesions": 2, "per_arm": {}, "gains": gains}
    md = _external_md(external, ["nv", "df"])
    forest = next(i for i, line in enumerate(md) if "](figures/forest_external.png)" in line)
    assert forest < next(i for i, line in enumerate(md) if line.startswith("| class | arm |"))
    only_controls = {"oversample vs baseline: df": _pair("oversample", "baseline")}
    md = _head_md({**results, "comparison": {"gains": only_controls, "margin": 0.05}}, ds, pooled)
    assert not any("forest" in line for line in md)
