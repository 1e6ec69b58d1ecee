"""What a reader needs before believing a gain or a "no gain": the positive control (the
oracle arm, a perfect generator: real images of held-back lesions, or freshly painted ones on
the demo) and how many of the report's intervals exclude 0 by chance alone (Holm)."""

from __future__ import annotations

from pipelines.config.arms import ARM_SPECS, CONTROLS, GAIN_METRICS, oracle_twin
from pipelines.format import gain, mean_sd

METRIC_NAMES = {"recall": "recall", "prior_matched_recall": "prior-matched recall",
                "average_precision": "AP"}  # fmt: skip


def _find(gains: dict, arm: str, ref: str, c: str) -> dict | None:
    return gains.get(f"{arm} vs {ref}: {c}")


def positive_control_md(gains: dict) -> list[str]:
    """Per class, metric and synthetic arm: its oracle's gain over the best control (the one
    the oracle gains least over), the synthetic arm's gain over that same control, its share
    of the oracle's gain (only where the oracle's interval excludes 0: otherwise the oracle
    bought nothing measurable, and no generator could have), and its gap to the oracle."""
    rows = []
    for g in sorted(gains.values(), key=lambda g: (g["class"], g["arm"])):
        oracle = oracle_twin(g["arm"]) if ARM_SPECS[g["arm"]].synthetic else None
        if g["reference"] != oracle or oracle is None:
            continue
        c, arm = g["class"], g["arm"]
        for m in GAIN_METRICS:
            vs = [o for ref in CONTROLS if (o := _find(gains, oracle, ref, c)) is not None]
            if not vs:
                continue
            best = min(vs, key=lambda o: o[m]["gain"])
            mine = _find(gains, arm, best["reference"], c)
            o = best[m]
            if o["gain"] <= 0:
                share = "– (oracle's gain ≤ 0)"
            elif not o["excludes_zero"]:
                share = "– (oracle's CI includes 0)"
            else:
                share = f"{mine[m]['gain'] / o['gain']:.0%}" if mine else "–"
            rows.append(
                f"| {c} | {METRIC_NAMES[m]} | {best['reference']} | {oracle}: {gain(o)} | "
                f"{arm}: {gain(mine[m]) if mine else '–'} | {share} | {gain(g[m])} |"
            )
    if not rows:
        return []
    return [
        "## Positive control: what a perfect generator buys here",
        "",
        "The oracle arms add real images of held-back training lesions (on the demo: freshly "
        "painted lesions) exactly where the synthetic arms add generated ones, in the same "
        "counts. Their gain is the most any generator could buy at this data size and test "
        'set; where it is not above 0, a synthetic arm\'s "no gain" says nothing about the '
        "generator.",
        "",
        "| class | metric | best control | oracle's gain over it | synthetic arm's gain over it "
        "| share of the oracle's gain | synthetic vs oracle (gap) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def multiplicity_md(multiplicity: dict | None, where: str = "this test set") -> list[str]:
    """How many intervals the report shows for a test set, how many exclude 0, and which of
    those survive Holm's correction over all of them."""
    if not multiplicity:
        return []
    n, hits = multiplicity["intervals"], multiplicity["exclude_zero"]
    survivors = multiplicity["survive_holm"]
    return [
        f"**Multiplicity.** {n} intervals on {where}; {hits} exclude 0 unadjusted (about "
        f"{0.05 * n:.1f} would by chance alone if no arm differed); "
        + (
            f"{len(survivors)} survive Holm's correction (family-wise 5 %): " + "; ".join(survivors)
            if survivors
            else "none survives Holm's correction (family-wise 5 %)"
        )
        + ".",
        "",
    ]


def generator_md(results: dict) -> list[str]:
    """What the classifiers and a two-sample test make of the generators' samples."""
    return signature_md(results.get("signature")) + detectability_md(
        results.get("synthetic_sets") or {}
    )


def signature_md(signature: dict | None) -> list[str]:
    """Per rare class and arm: recall on real test images next to the share of fresh,
    never-trained-on samples of the class's generator (unfiltered, and filtered as the kept
    ones were) that the arm's classifiers call the class (results.signature)."""
    if not signature:
        return []
    na = "— (drawn before fresh filtered samples were kept)"
    rows = [
        f"| {c} | {arm} | {_share(v, 'real_recall')} | {_share(v, 'fresh')} | "
        f"{_share(v, 'fresh_filtered') if 'fresh_filtered' in v else na} |"
        for c, arms in signature.items()
        for arm, v in arms.items()
    ]
    n = next(iter(next(iter(signature.values())).values()))["fresh_n"]
    return [
        "## The generator's signature",
        "",
        f"Each arm's classifiers on {n} fresh samples of each rare class's generator (a new "
        "latent seed, never trained on; unfiltered, and passed through the set's filter as "
        "its kept samples were), next to their recall on the real test images: the share "
        "over every seed's model, with a 95 % interval over new seeds and new images (lesions "
        "for the real ones; a Wilson interval at the crossed design's effective n, whose "
        "coverage benchmarks/share_coverage.py measured down to shares of 0.999). The baseline "
        "never saw a synthetic image: its column is how real the samples look to a "
        "real-trained classifier (a per-class Classification Accuracy Score). A synthetic arm "
        "that calls nearly every fresh sample the class while finding fewer real ones has "
        "learnt the generator's signature, not the lesion.",
        "",
        "| class | arm | recall on real test images | fresh samples called the class | "
        "fresh filtered samples called the class |",
        "| --- | --- | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def _share(row: dict, column: str) -> str:
    """A pooled share with its interval; mean ± sd over seeds for a run written before
    intervals were kept."""
    iv = row.get("intervals", {}).get(column)
    if iv is None:
        return mean_sd(row[column])
    return f"{iv['share']:.3f} [{iv['ci95'][0]:.3f}, {iv['ci95'][1]:.3f}]"


def detectability_md(sample_summaries: dict) -> list[str]:
    """Per rare class and sample set: can a small CNN tell the samples from real images?"""
    rows = [
        f"| {c} | {kind} | {_detect_cells(s.get('detectability'))} |"
        for c, kinds in sample_summaries.items()
        for kind, s in kinds.items()
    ]
    if not rows:
        return []
    return [
        "## Detectability: can a classifier tell the samples from real images?",
        "",
        "A classifier two-sample test (Lopez-Paz & Oquab 2017): the project's small CNN at the "
        "classifier's input size, trained on the class's training reals against the kept "
        "samples, tested on the judging half of its validation reals (the half that did not "
        "choose the GAN's checkpoint) against fresh samples made the same way "
        "(new latents, the same filter). Balanced accuracy 0.5: the two are "
        "indistinguishable; 1.0: every sample gives itself away, and a synthetic arm can "
        "learn 'looks generated' instead of the lesion. The 95 % interval is over new "
        "validation lesions and new samples for this trained detector "
        "(benchmarks/detectability_coverage.py measures its coverage).",
        "",
        "| class | set | balanced accuracy [95 % CI] | reals called real | samples called "
        "generated | validation images (lesions) / fresh samples | steps |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def _detect_cells(d: dict | None) -> str:
    if not d:
        return "not measured (drawn before detectability was) | | | |"
    if "skipped" in d:
        return f"not measured ({d['skipped']}) | | | |"
    lo, hi = d["ci95"]
    (n_real, n_gen), lesions = d["n_test"], d["test_lesions"]
    return (
        f"{d['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | {d['real_accuracy']:.3f} | "
        f"{d['generated_accuracy']:.3f} | {n_real} ({lesions}) / {n_gen} | {d['steps']}"
    )
