"""report.md, results.json and figures of an augment-and-compare run.

The headline is the table of gains of the synthetic arms (gan, oversample+gan) over every
control (baseline, oversample, reweight) for each rare class, in recall, prior-matched recall
and AP, each with its CI and whether it excludes 0 — including when it does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_average_precision

from classifier.metrics import precision_recall_curves
from gan.conventions import atomic_write_text
from pipelines.config.arms import ARM_SPECS, CONTROLS, HEADLINE_ARMS, SAMPLE_SETS
from pipelines.format import few_lesions_note, gain, mean_sd, summary_table
from pipelines.plots import confusion_pair, forest_plot, pr_curves, recall_bars
from pipelines.report.controls import generator_md, multiplicity_md, positive_control_md


def gain_table(gains: dict, arms: tuple[str, ...] | None = None) -> list[str]:
    """One row per (arm, reference, class): recall, prior-matched recall and AP gains."""
    lines = [
        "| class | arm | vs | recall gain | prior-matched recall gain | AP gain | test lesions |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for g in sorted(gains.values(), key=lambda g: g["class"]):
        if arms is not None and g["arm"] not in arms:
            continue
        lines.append(
            f"| {g['class']} | {g['arm']} | {g['reference']} | {gain(g['recall'])} | "
            f"{gain(g['prior_matched_recall'])} | {gain(g['average_precision'])} | "
            f"{g['recall']['test_lesions']} |"
        )
    shown = [g["average_precision"] for g in gains.values() if arms is None or g["arm"] in arms]
    return lines + few_lesions_note(shown)


def prior_shift_notes(gains: dict) -> list[str]:
    """Which part of each significant recall gain survives prior matching."""
    notes = []
    for g in gains.values():
        r, m = g["recall"], g["prior_matched_recall"]
        if not r["excludes_zero"]:
            continue
        kept = (
            "survives" if m["excludes_zero"] and m["gain"] * r["gain"] > 0 else "does NOT survive"
        )
        notes.append(
            f"- {g['class']}, {g['arm']} vs {g['reference']}: recall gain {r['gain']:+.3f} at "
            f"the argmax, {m['gain']:+.3f} at matched validation prior — the gain {kept} "
            "prior matching"
        )
    return notes


def headline(results: dict) -> list[str]:
    gains = results["comparison"]["gains"]
    lines = gain_table(gains, HEADLINE_ARMS)
    if not any(g["arm"] in HEADLINE_ARMS for g in gains.values()):
        return ["No arm with synthetic images in this run."]
    notes = prior_shift_notes({k: g for k, g in gains.items() if g["arm"] in HEADLINE_ARMS})
    return [*lines, "", *notes] if notes else lines


def one_line_summary(results: dict) -> str:
    parts = []
    for g in results["comparison"]["gains"].values():
        if g["arm"] == "gan" and g["reference"] == "baseline":
            parts.append(
                f"{g['class']} gan vs baseline: recall {gain(g['recall'])}, "
                f"AP {gain(g['average_precision'])}"
            )
    return "; ".join(parts) or "no gan arm to compare"


def forest_gains(gains: dict) -> dict:
    """The forest plot's rows: each synthetic arm's gains over each control, the question the
    run asks; the other pairs (a control over baseline, gan over gan-unfiltered) stay in the
    tables."""
    return {
        k: g
        for k, g in gains.items()
        if getattr(ARM_SPECS.get(g["arm"]), "synthetic", None) and g["reference"] in CONTROLS
    }


def _forest_md(gains: dict, name: str, what: str) -> list[str]:
    """The forest plot's image line (nothing when the run has no synthetic arm)."""
    if not forest_gains(gains):
        return []
    return [
        f"![forest plot](figures/{name}) {what}: each synthetic arm's gain over each control "
        "with its 95 % CI; filled = the CI excludes 0, hollow grey = n.s.",
        "",
    ]


def _design(results: dict) -> str:
    folds = results["config"].get("folds", 1)
    seeds = len(results["config"]["seeds"])
    split = f"pooled over {folds} folds" if folds > 1 else "one lesion-level split"
    return f"{split}, {seeds} seed{'s' if seeds > 1 else ''}"


def _file_name(label: str) -> str:
    return label.replace(" (fold ", "_fold").replace(")", "").replace(" ", "_")


def write_report(
    out: Path,
    results: dict,
    ds,
    pooled,
    sample_summaries: dict,
    external: dict | None,
) -> Path:
    """report.md and results.json (the figures come first, from write_figures); `pooled`
    holds the test predictions of every arm (pipelines.compare.Pooled), over all folds."""
    md = [
        *_head_md(results, ds, pooled),
        *_tables_md(results, ds.class_names),
        *_synthetic_md(sample_summaries),
        *_external_md(external, ds.class_names),
        *_figures_md(sample_summaries),
        *_setup_md(results, pooled),
    ]
    text = "\n".join(md)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    return out / "report.md"


def write_figures(out: Path, results: dict, ds, pooled, sample_summaries: dict) -> None:
    """The report's figures, in out/figures: written before report.md so that the report can
    state its own wall time, figures included."""
    cmp, names, figures = results["comparison"], ds.class_names, out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    recall_bars(cmp["per_arm"], names, figures / "recall_per_class.png")
    if forest_gains(cmp["gains"]):
        title = f"Gains over each control, 95 % CIs ({_design(results)})"
        forest_plot(forest_gains(cmp["gains"]), figures / "forest.png", title)
    external = results.get("external_test")
    if external and forest_gains(external["gains"]):
        title = f"External test set {external['source']}: gains over each control, 95 % CIs"
        forest_plot(forest_gains(external["gains"]), figures / "forest_external.png", title)
    pair = {
        a: np.sum(cmp["per_arm"][a]["confusion_matrix"], axis=0)
        for a in ("baseline", "gan")
        if a in cmp["per_arm"]
    }
    if pair:
        confusion_pair(pair, names, figures / "confusion_baseline_vs_gan.png")
    labels = torch.from_numpy(pooled.labels)
    curves, ap = {}, {}
    for arm, probs in pooled.calibrated.items():  # on the validation prior, as the AP gains
        flat = torch.from_numpy(probs.reshape(-1, probs.shape[-1])).float()
        curves[arm] = precision_recall_curves(flat, labels.repeat(len(probs)), len(names))
        ap[arm] = np.mean(
            [
                multiclass_average_precision(
                    torch.from_numpy(p).float(), labels, len(names), average=None
                ).numpy()
                for p in probs
            ],
            axis=0,
        ).tolist()
    pr_curves(curves, ap, names, figures / "pr_curves.png", "scores on the validation prior")
    for c, kinds in sample_summaries.items():
        grid = Path(kinds.get("gan", next(iter(kinds.values())))["_dir"]) / "grid.png"
        if grid.is_file():
            shutil.copyfile(grid, figures / f"samples_{_file_name(c)}.png")


def _interval_note(margin: float, seeds: int) -> str:
    """What the headline's intervals and words mean."""
    one_seed = " **One seed: the intervals cover test-set noise only, not seed-to-seed variation.**"
    return (
        "95 % CIs: gain ± t·SE, the SE from the seeds' spread and the test lesions they share "
        "(lesion bootstrap, paired across arms; prior matching's validation lesions redrawn "
        "with them), a t at the Welch-Satterthwaite df with the seed part at its 80 % upper "
        "bound; for recall the SE is at least the Agresti-Caffo adjusted one at each arm's "
        "effective number of images, which keeps its width near recall 1. Coverage measured "
        "by benchmarks/interval_coverage.py (docs/intervals.md). Where the CI includes 0 a "
        f"cell says what that means: 'no gain larger than {margin:g}' (the whole CI lies below "
        "that margin, --margin), 'cannot tell' (the comparison could not have detected a gain "
        "of the margin's size, or of the oracle's: its minimum detectable gain, the true gain "
        "found 80 % of the time, is above it), else 'n.s.'; 'detects ≥' gives that minimum "
        "detectable gain. Prior-matched recall: each model's scores are put on the validation "
        "prior (a per-class bias fitted there), then thresholded to flag as many validation "
        "images as the class has, so a gain that is only a shifted prior or logit offset "
        "vanishes. AP: average precision of the class's one-vs-rest scores on that validation "
        "prior (tied scores are one threshold)." + (one_seed if seeds == 1 else "")
    )


def _head_md(results: dict, ds, pooled) -> list[str]:
    """Title, headline gain table, target notes and what the test set was."""
    md: list[str] = []
    seeds = results["config"]["seeds"]
    md += ["# augment-and-compare report", ""]
    if ds.synthetic:
        md += [
            "> **SYNTHETIC demo data.** These numbers exercise the pipeline; they say "
            "nothing about dermoscopy.",
            "",
        ]
    md += [
        f"## Headline: gains of the synthetic arms (and oracles) over each control "
        f"({len(seeds)} seeds)",
        "",
        _interval_note(results["comparison"]["margin"], len(seeds)),
        "",
        *_forest_md(results["comparison"]["gains"], "forest.png", f"Gains ({_design(results)})"),
        *headline(results),
        "",
        *multiplicity_md(results["comparison"].get("multiplicity")),
        *positive_control_md(results["comparison"]["gains"]),
        *generator_md(results),
    ]
    for c, (got, want) in results.get("targets_short", {}).items():
        md += [
            f"Note: {c} reached {got} training images in every arm, not the target {want}: "
            "the filter kept too few distinct samples of its generator.",
            "",
        ]
    folds = results["config"].get("folds", 1)
    how = (
        f"pooled over {folds} lesion-grouped folds, each lesion tested once per seed by models "
        "that never saw it (nor did the fold's GANs, filter or feature network)"
        if folds > 1
        else "one lesion-level split"
    )
    md += [
        f"Data: `{ds.source}` ({ds.format}, fingerprint {ds.fingerprint}); test set: "
        f"{len(pooled.labels)} images of {len(set(pooled.lesion_ids))} lesions ({how}), "
        "never used to choose anything.",
        "",
    ]
    return md


NO_TEST = "no test images"  # a recall of 0/0 is not 0.000 ± 0.000


def _untested(test_set: dict, names: list[str]) -> set[str]:
    """The classes with no image in a test set (results' per-class counts; older results
    without them: none known)."""
    counts = test_set.get("per_class") or {}
    return {c for c in names if c in counts and counts[c] == 0}


def _tables_md(results: dict, names: list[str]) -> list[str]:
    """Per-class recall; rare classes: AP, AUC, prior-matched recall; all gains; overall."""
    md: list[str] = []
    cmp = results["comparison"]
    md += [
        "## Per-class test recall (mean ± sd over seeds)",
        "",
        "| class | " + " | ".join(cmp["per_arm"]) + " |",
        "| --- |" + " ---: |" * len(cmp["per_arm"]),
    ]
    untested = _untested(results.get("test_set", {}), names)
    for k, c in enumerate(names):
        cells = [
            NO_TEST if c in untested else f"{r['recall_mean'][k]:.3f} ± {r['recall_sd'][k]:.3f}"
            for r in cmp["per_arm"].values()
        ]
        md.append(f"| {c} | " + " | ".join(cells) + " |")
    rare = results["config"]["classes"]
    md += [
        "",
        "## Rare classes: AP, one-vs-rest AUC and prior-matched recall (mean ± sd over seeds)",
        "",
        "| class | arm | recall | prior-matched recall | AP on the validation prior | raw AP "
        "| AUC |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in rare:
        k = names.index(c)
        for arm, r in cmp["per_arm"].items():
            if c in untested:
                md.append(f"| {c} | {arm} | {NO_TEST} | – | – | – | – |")
                continue
            pm = r["prior_matched_recall"].get(c)
            cap = r.get("calibrated_average_precision", {}).get(c)
            md.append(
                f"| {c} | {arm} | {r['recall_mean'][k]:.3f} | "
                f"{'–' if pm is None else mean_sd(pm)} | {'–' if cap is None else mean_sd(cap)} | "
                f"{mean_sd([a[k] for a in r['average_precision']])} | "
                f"{mean_sd([a[k] for a in r['auc']])} |"
            )
    md += ["", "## All gains", "", *gain_table(cmp["gains"])]
    md += [
        "",
        "## Overall test metrics per arm (mean ± sd over seeds)",
        "",
        "| arm | balanced accuracy | macro-F1 | macro AUC | accuracy |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for arm, r in cmp["per_arm"].items():
        md.append(
            f"| {arm} | {mean_sd(r['balanced_accuracy'])} | {mean_sd(r['macro_f1'])} | "
            f"{mean_sd(r['macro_auc'])} | {mean_sd(r['accuracy'])} |"
        )
    return md


def _synthetic_md(sample_summaries: dict) -> list[str]:
    """Held-out quality of the synthetic sets and the filter's verdicts."""
    md: list[str] = []
    md += ["", "## Synthetic sets: held-out quality and the filter's verdict", ""]
    for c, kinds in sample_summaries.items():
        for kind, s in kinds.items():
            md.append(f"- **{c}** ({kind}): {s.get('verdict', 'too few samples to compare')}")
    for kind in SAMPLE_SETS:
        summaries = [k[kind] for k in sample_summaries.values() if k.get(kind, {}).get("sets")]
        if summaries:
            md += ["", f"Samples of the `{kind}` arm:", "", summary_table(summaries)]
    md += [
        "",
        "Held-out = the class's validation images, which neither the GAN nor the filter saw "
        "(best.pt was chosen by held-out KID, so these are slightly optimistic); the floor is "
        "the training reals scored against them. FID/KID are only comparable within one "
        "space and sample size.",
        "",
    ]
    return md


def _external_md(external: dict | None, names: list[str]) -> list[str]:
    """The external test set's metrics and gain table, if there is one."""
    md: list[str] = []
    if external:
        md += [
            "## External test set",
            "",
            f"`{external['source']}`: {external['n']} images of {external['lesions']} lesions "
            "(resampled as lesions where it has lesion ids, else as images); prior-matched "
            "thresholds are the home validation set's."
            + (f" {external['left_out']}." if external.get("left_out") else ""),
            "",
            "| arm | balanced accuracy | " + " | ".join(f"recall {c}" for c in names) + " |",
            "| --- | ---: |" + " ---: |" * len(names),
        ]
        untested = _untested(external, names)
        for arm, rs in external["per_arm"].items():
            rec = np.array([r["recall"] for r in rs])
            md.append(
                f"| {arm} | {mean_sd([r['balanced_accuracy'] for r in rs])} | "
                + " | ".join(
                    NO_TEST if c in untested else f"{m:.3f}" for c, m in zip(names, rec.mean(0))
                )
                + " |"
            )
        md += ["", *_forest_md(external["gains"], "forest_external.png", "External test set")]
        md += [*gain_table(external["gains"]), ""]
        md += multiplicity_md(external.get("multiplicity"), "the external test set")
    return md


def _figures_md(sample_summaries: dict) -> list[str]:
    """Links to the figures."""
    md: list[str] = []
    md += [
        "## Figures",
        "",
        "![recall](figures/recall_per_class.png)",
        "",
        "![confusion](figures/confusion_baseline_vs_gan.png)",
        "",
        "![pr](figures/pr_curves.png) (scores on the validation prior: AP as in the gains)",
        "",
    ]
    md += [
        f"![{c}](figures/samples_{_file_name(c)}.png) real (top) · kept synthetic (middle) · "
        "rejected (bottom)"
        for c in sample_summaries
    ]
    return md


def _setup_md(results: dict, pooled) -> list[str]:
    """Training-set sizes, classifier recipe, wall times, config and versions."""
    md: list[str] = []
    md += [
        "",
        "## Setup",
        "",
        "Training images per arm (per fold): "
        + ", ".join(f"{a} {'/'.join(map(str, n))}" for a, n in pooled.train_images.items()),
        f"Classifier: {results['classifier']}",
        "",
        "Wall time per stage (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in results["wall_seconds"].items()),
        "",
        "```json",
        json.dumps({"config": results["config"], "versions": results["versions"]}, indent=1),
        "```",
        "",
    ]
    return md
