"""augment-and-compare end to end on the demo data with the `smoke` budgets: the shared run
(compared_once, conftest), its report, and what a rerun of it does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMOKE, demo_external_dir, invoke_cli, job_lines, started_jobs, with_options

import pipelines.steps.classifier as classifier_step
import pipelines.steps.gan_run as gan_run
import pipelines.steps.samples as samples_step
from gan.conventions import to_nchw
from pipelines.cli import augment_and_compare
from pipelines.config.arms import default_arms
from pipelines.config.profiles import PROFILES
from pipelines.data.dataset import resize_images

UPSTREAM = {"features", "gan/all", "gan/df", "gan/vasc", "samples/gan/df", "samples/gan/vasc"}
# written by every run: who holds the run, what it was asked (and, in a copy elsewhere, the
# record of the original's config, whose run_dir differs)
REWRITTEN = {".raregan.lock", "experiment.json", "experiment_history.jsonl"}

DEMO_ARMS = default_arms(held_back=False, demo=True)  # what SMOKE (demo data) runs


def invoke(args, ok=True):
    return invoke_cli(augment_and_compare, args, ok)


def _files(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of the run but those every run rewrites: modification time and contents."""
    return {
        str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in run_dir.rglob("*")
        if p.is_file() and str(p.relative_to(run_dir)) not in REWRITTEN
    }


def _markers(run_dir: Path) -> dict[str, dict]:
    return {
        m["name"]: m
        for m in map(json.loads, map(Path.read_text, (run_dir / "jobs").glob("*.json")))
    }


def test_report_and_results(compared_once: Path):
    report = (compared_once / "report.md").read_text()
    lines = report.splitlines()
    assert "SYNTHETIC demo data" in lines[2]
    assert lines[4].startswith("## Headline")
    assert "One seed" not in report  # 2 seeds: the intervals have a seed part
    header = next(i for i, line in enumerate(lines) if line.startswith("| class | arm | vs |"))
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    headline_rows = {tuple(c.strip() for c in line.split("|")[1:4]) for line in rows}
    for c in ("df", "vasc"):
        for arm in ("gan", "oversample+gan"):
            for ref in ("baseline", "oversample", "reweight"):
                assert (c, arm, ref) in headline_rows
    results = json.loads((compared_once / "results.json").read_text())
    assert list(results["comparison"]["per_arm"]) == list(DEMO_ARMS)
    gains = results["comparison"]["gains"]
    want = {"gan vs reweight: df", "oversample+gan vs oversample: vasc", "reweight vs baseline: df"}
    assert want <= set(gains)
    for g in gains.values():
        for metric in ("recall", "prior_matched_recall", "average_precision"):
            m = g[metric]
            assert m["ci95"][0] <= m["gain"] <= m["ci95"][1], (g["arm"], metric)
            assert len(m["per_seed"]) == 2 and m["gain"] == pytest.approx(np.mean(m["per_seed"]))
    method = results["comparison"]["interval"]  # what the intervals are, in words
    assert "Agresti-Caffo" in method and "80 % upper bound" in method
    assert method.startswith("gain ± t·SE")
    assert all(len(folds) == 1 and len(folds[0]) == 2 for folds in results["runs"].values())
    out = compared_once / "compare" / results["config_id"]
    for fig in ("recall_per_class", "confusion_baseline_vs_gan", "pr_curves", "samples_df"):
        assert (out / "figures" / f"{fig}.png").is_file()
    forest = f"](compare/{out.name}/figures/forest.png)"  # the root copy links into compare/
    assert (out / "figures" / "forest.png").is_file() and forest in report
    assert report.index(forest) < report.index("| class | arm | vs |")  # before the table
    assert "](figures/forest.png)" in (out / "report.md").read_text()
    assert not (out / "figures" / "forest_external.png").exists()
    assert set(results["wall_seconds"]) >= {"GAN training", "classifiers", "report"}
    assert results["data"]["fingerprint"] == results["config"]["data_fingerprint"]


def test_arms_differ_only_in_their_training_set_or_loss(compared_once: Path):
    results = json.loads((compared_once / "results.json").read_text())
    runs = {arm: folds[0] for arm, folds in results["runs"].items()}  # [fold][seed]
    for seed in range(2):
        configs = {a: dict(runs[a][seed]["config"]) for a in runs}
        assert configs["reweight"].pop("logit_adjust_tau") == 1.0
        assert all(c.pop("logit_adjust_tau") == 0.0 for a, c in configs.items() if a != "reweight")
        assert all(c == configs["baseline"] for c in configs.values())  # steps, lr, seed, ...
        assert configs["baseline"]["seed"] == seed
    sizes = {a: runs[a][0]["train_images"] for a in runs}
    assert sizes["oversample"] == sizes["gan"] == sizes["oversample+gan"] > sizes["baseline"]
    assert sizes["reweight"] == sizes["baseline"]


def test_rerun_skips_finished_work(compared: Path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("retrained something that was finished")

    monkeypatch.setattr(classifier_step, "train_classifier", boom)
    monkeypatch.setattr(gan_run, "train_gan", boom)
    monkeypatch.setattr(samples_step, "sample_class", boom)
    before = _files(compared)
    models = [f for f in before if f.endswith(".pt")]
    assert len(models) == 1 + 3 * 2 + 2 * len(DEMO_ARMS)  # features, GANs (last, best), arms
    result = invoke(["--run-dir", str(compared), *SMOKE])
    assert started_jobs(result.output) == set() and " finished on " not in result.output
    after = _files(compared)
    assert after == before  # every marker, model, sample set and result: same time, same bytes
    assert "df gan vs baseline: recall" in result.output  # the finished run's headline, again


def test_changed_config_gets_new_runs(compared: Path):
    """One seed instead of two: the classifiers and the report are stale and run again, into a
    new compare/<id>/ beside the old one, on the first run's features, GANs and samples."""
    one_seed = ["--run-dir", str(compared), *with_options(SMOKE, seeds="1")]
    dry = job_lines(invoke([*one_seed, "--dry-run"]).output)
    status = {name: line.split()[1] for name, line in dry.items()}
    affected = {f"classifier/{arm}/seed0" for arm in DEMO_ARMS} | {"report"}
    assert status == {**dict.fromkeys(UPSTREAM, "done"), **dict.fromkeys(affected, "stale")}
    first = json.loads((compared / "results.json").read_text())
    files, markers = _files(compared), _markers(compared)

    result = invoke(one_seed)
    assert started_jobs(result.output) == affected
    after = json.loads((compared / "results.json").read_text())
    assert all(len(folds) == 1 and len(folds[0]) == 1 for folds in after["runs"].values())
    old, new = (compared / "compare" / r["config_id"] for r in (first, after))
    assert sorted((compared / "compare").iterdir()) == sorted({old, new})  # two, not one
    assert sorted(p.name for p in new.glob("*/seed*")) == ["seed0"] * len(DEMO_ARMS)
    assert (old / "report.md").is_file() and len(list(old.glob("*/seed1/model.pt"))) == len(
        DEMO_ARMS
    )
    now, again = _files(compared), _markers(compared)
    kept = [f for f in files if f.split("/")[0] in ("features", "gan", "samples", "compare")]
    assert len(kept) > 50 and all(now[f] == files[f] for f in kept)  # reused, or kept: untouched
    assert all(again[name] == markers[name] for name in UPSTREAM)
    assert all(again[name]["key"] != markers[name]["key"] for name in affected)


def test_external_test_set(compared: Path, tmp_path: Path):
    external = demo_external_dir(tmp_path / "external")
    invoke(["--run-dir", str(compared), *SMOKE, "--external-test", str(external)])
    results = json.loads((compared / "results.json").read_text())
    ext = results["external_test"]
    assert ext["n"] == len(list(external.rglob("*.png"))) and "left_out" not in ext
    # the same gain table as the home test set: every pair, class and metric, with CIs
    assert set(ext["gains"]) == set(results["comparison"]["gains"])
    g = ext["gains"]["gan vs reweight: df"]
    for metric in ("recall", "prior_matched_recall", "average_precision"):
        assert g[metric]["ci95"][0] <= g[metric]["gain"] <= g[metric]["ci95"][1]
    assert len(ext["per_arm"]["gan"]) == 2  # one per (fold, seed) model
    report = (compared / "report.md").read_text()
    external = report[report.index("## External test set") :]
    assert "| df | gan | reweight |" in external
    assert "/figures/forest_external.png)" in external
    out = compared / "compare" / results["config_id"] / "figures"
    assert (out / "forest_external.png").is_file() and (out / "forest.png").is_file()


def test_a_smaller_classifier_takes_real_and_synthetic_images_through_one_filter(
    compared: Path, monkeypatch, tmp_path: Path
):
    """profile.classifier_size below the GANs' size: training (real and synthetic), validation,
    test and external images all reach the classifier resized by resize_images."""
    monkeypatch.setitem(
        PROFILES, "smoke", dataclasses.replace(PROFILES["smoke"], classifier_size=16)
    )
    seen: dict[str, tuple] = {}
    real_train = classifier_step.train_classifier

    def spy(model, train, val, *args, **kwargs):
        seen[kwargs["desc"]] = (train[0].clone(), train[1].clone(), val[0].shape)
        return real_train(model, train, val, *args, **kwargs)

    import pipelines.results.compare as compare

    predicted: list[tuple] = []
    real_predict = compare.predict_proba

    def predict_spy(model, images, *args, **kwargs):
        predicted.append(tuple(images.shape[1:]))
        return real_predict(model, images, *args, **kwargs)

    monkeypatch.setattr(classifier_step, "train_classifier", spy)
    monkeypatch.setattr(compare, "predict_proba", predict_spy)  # the external test's
    external = demo_external_dir(tmp_path / "external")
    one_seed = with_options(SMOKE, seeds="1", arms="baseline,gan", external_test=str(external))
    invoke(["--run-dir", str(compared), *one_seed])
    results = json.loads((compared / "results.json").read_text())
    names = results["data"]["class_names"]
    base_x, base_y, val_shape = seen["baseline seed 0"]
    gan_x, gan_y, _ = seen["gan seed 0"]
    assert base_x.shape[1:] == gan_x.shape[1:] == val_shape[1:] == (3, 16, 16)
    assert torch.equal(gan_x[: len(base_x)], base_x)  # the same real images, same filter
    start = len(base_x)
    for c in ("df", "vasc"):  # synthetic rows follow, class by class
        n = int((gan_y == names.index(c)).sum() - (base_y == names.index(c)).sum())
        with np.load(compared / "samples" / "filtered" / c / "samples.npz") as z:
            expected = resize_images(z["images"][:n], 16)
        assert n > 0 and torch.equal(gan_x[start : start + n], to_nchw(expected))
        start += n
    assert start == len(gan_x)
    assert "16 px inputs" in results["classifier"]
    assert results["external_test"]["n"] == len(list(external.rglob("*.png")))
    assert predicted and set(predicted) == {(3, 16, 16)}


@pytest.mark.parametrize("text", ["", "[]"])
def test_a_damaged_summary_json_is_named_with_what_to_do(tmp_path: Path, text: str):
    from pipelines.errors import UserError

    folder = tmp_path / "samples" / "filtered" / "df"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(text)
    with pytest.raises(UserError) as caught:
        samples_step.saved_summary(folder)
    msg = caught.value.message
    assert f"{folder / 'summary.json'} is damaged" in msg
    assert "delete it and rerun the same command" in msg and "\n" not in msg


def test_the_signature_is_each_classifier_on_fresh_samples_of_the_class_generator(
    compared_once: Path,
):
    """results.json's signature: per class and arm, each seed's share of fresh samples (a new
    latent seed; unfiltered, and filtered as the kept ones were) called the class, recomputed
    here from the generator's checkpoint, the set's fresh.npz and the saved classifier; its
    real-recall column is the classifier's own test recall."""
    from classifier.training import predict_proba
    from pipelines.config.experiment import read_config_file
    from pipelines.results.signature import fresh_samples
    from pipelines.steps.detect import FRESH_FILE, FRESH_SEED_OFFSET
    from pipelines.steps.plan import plan_for
    from pipelines.steps.sampling import SampleOptions, pool_size

    results = json.loads((compared_once / "results.json").read_text())
    sig = results["signature"]
    assert set(sig) == {"df", "vasc"} and set(sig["df"]) == set(DEMO_ARMS)
    plan = plan_for(read_config_file(compared_once / "experiment.json"))
    k = plan.dataset.class_index("vasc")
    ckpt = results["synthetic_sets"]["vasc"]["gan"]["checkpoint"]
    options = results["synthetic_sets"]["vasc"]["gan"]["options"]
    seed = sig["vasc"]["gan"]["fresh_seed"]
    assert seed == FRESH_SEED_OFFSET  # the sets drew their pools on latent seed 0
    fresh_n = options["fresh_n"]
    assert fresh_n == plan.cfg.profile.fresh_n == sig["vasc"]["gan"]["fresh_n"]
    fresh = fresh_samples(
        compared_once / "gan" / "vasc" / Path(ckpt).name, 32, "cpu", "fp32", seed, fresh_n
    )
    assert fresh.shape == (fresh_n, 32, 32, 3)
    set_dir = compared_once / "samples" / "filtered" / "vasc"
    kept = np.load(set_dir / "samples.npz")["images"]
    with np.load(set_dir / FRESH_FILE) as z:
        filtered, fresh_filter = z["images"], str(z["filter"])
    # the filter on a fresh pool of the set's factor: up to fresh_n (a weak generator's
    # near-duplicates are rejected, as in the kept set)
    assert fresh_filter == "fid" and 0 < len(filtered) <= fresh_n
    kept_bytes = {im.tobytes() for im in kept}
    assert not {im.tobytes() for im in fresh} & kept_bytes  # never trained on
    assert not {im.tobytes() for im in filtered} & kept_bytes
    assert {im.tobytes() for im in filtered} <= {  # the filter's choice out of a fresh pool
        im.tobytes() for im in fresh_samples(
            compared_once / "gan" / "vasc" / Path(ckpt).name, 32, "cpu", "fp32", seed,
            pool_size(SampleOptions(**{**options, "n": fresh_n})),
        )
    }  # fmt: skip
    folder = compared_once / "compare" / results["config_id"] / "gan" / "seed1"
    model = plan.new_classifier()
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    tta = json.loads((folder / "result.json").read_text())["config"]["tta"]
    for column, images in (("fresh", fresh), ("fresh_filtered", filtered)):
        probs = predict_proba(model, to_nchw(plan.classifier_inputs(images)), tta=tta)
        called = float((probs.argmax(1) == k).float().mean())
        assert sig["vasc"]["gan"][column][1] == pytest.approx(called, abs=1e-6)
    assert sig["vasc"]["gan"]["real_recall"] == [
        r["test"]["recall"][k] for r in results["runs"]["gan"][0]
    ]
    test = plan.split.test[plan.dataset.labels[plan.split.test] == k]
    seeds = len(results["runs"]["gan"][0])
    for column, images, units in (
        ("fresh", fresh_n, fresh_n),
        ("fresh_filtered", len(filtered), len(filtered)),
        ("real_recall", len(test), len({plan.dataset.lesion_ids[i] for i in test})),
    ):  # pooled over the seeds, with an interval over new seeds and images (lesions)
        iv = sig["vasc"]["gan"]["intervals"][column]
        assert iv["share"] == pytest.approx(np.mean(sig["vasc"]["gan"][column]))
        assert (iv["images"], iv["units"], iv["seeds"]) == (images, units, seeds)
        assert iv["ci95"][0] <= iv["share"] <= iv["ci95"][1] and iv["ci95"][0] < iv["ci95"][1]


def test_every_sample_set_reports_its_detectability(compared_once: Path):
    """summary.json, the verdict and report.md carry each set's real-vs-generated test: the
    judging half of the class's validation reals (by lesion) against the profile's fresh samples, at
    the classifier's input size, for no more steps than the classifiers train; a class whose
    judging half has fewer than 2 images (demo vasc: 3 validation lesions, 1 judges) says so."""
    from pipelines.config.experiment import read_config_file
    from pipelines.steps.detect import FRESH_FILE
    from pipelines.steps.gan_run import class_run
    from pipelines.steps.plan import plan_for
    from pipelines.steps.samples import detect_steps

    results = json.loads((compared_once / "results.json").read_text())
    plan = plan_for(read_config_file(compared_once / "experiment.json"))
    for c in ("df", "vasc"):
        summary = json.loads(
            (compared_once / "samples" / "filtered" / c / "summary.json").read_text()
        )
        d = summary["detectability"]
        n_judging = len(class_run(plan.dataset, plan.split, c, compared_once).judging)
        if c == "vasc":
            assert n_judging < 2 and d["skipped"].startswith(f"{n_judging} judging validation")
            assert results["synthetic_sets"][c]["gan"]["detectability"] == d
            continue
        size = plan.classifier_inputs(plan.dataset.images[:1]).shape[1]
        with np.load(compared_once / "samples" / "filtered" / c / FRESH_FILE) as z:
            fresh_n = len(z["images"])  # the filtered fresh samples: up to the profile's
        assert 0 < fresh_n <= plan.cfg.profile.fresh_n
        assert d["n_test"] == [n_judging, fresh_n] and d["input_size"] == size
        assert d["steps"] == detect_steps(plan) <= plan.classifier_config("baseline", 0).steps
        lo, hi = d["ci95"]
        assert 0 <= lo < hi <= 1 and lo <= d["accuracy"] <= hi
        assert d["accuracy"] == pytest.approx((d["real_accuracy"] + d["generated_accuracy"]) / 2)
        assert "a small CNN tells held-out reals from fresh samples" in summary["verdict"]
        assert results["synthetic_sets"][c]["gan"]["detectability"] == d
    report = (compared_once / "report.md").read_text()
    df = results["synthetic_sets"]["df"]["gan"]["detectability"]
    assert "## Detectability" in report and f"| df | gan | {df['accuracy']:.3f}" in report
