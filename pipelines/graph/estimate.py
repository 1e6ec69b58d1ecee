"""--dry-run's cost estimate: how long the jobs still to run will take on this machine.

A job's time is what its plan fixes (GAN steps, classifier steps, images generated, put
through the feature network or predicted) times the seconds one such unit takes here, timed
on a few warm-up steps of the very network the job will run, on its device and with its
threads (the first steps, which build kernels, are not counted). The wall time then follows
the local scheduler: jobs in list order, classifiers `workers` side by side, everything else
alone. What no unit times (process start, writing files, the statistics of the report) is left
out; benchmarks/dry_run_estimate.py compares the estimate with measured runs.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from classifier.networks import CompactCNN
from classifier.training import ClassifierConfig, predict_proba, train_classifier
from gan.metrics.features import extract_features
from gan.networks import build
from gan.training import new_state, sample, train_step, training_end
from pipelines.config.arms import SAMPLE_SETS
from pipelines.config.experiment import ExperimentConfig
from pipelines.graph import jobs
from pipelines.graph.scheduler import Node, covered_seconds
from pipelines.results.collect import load_external
from pipelines.steps.feature_space import as_feature_space
from pipelines.steps.plan import ExperimentPlan, GanSpec, feature_space, plan_for
from pipelines.steps.samples import detect_steps
from pipelines.steps.sampling import SampleOptions, pool_size

TIMED_SECONDS = 0.5  # each unit is timed (after a warm-up call) until this much has passed


@dataclass(frozen=True)
class Units:
    """What a job does, in units whose seconds are timed: name -> (count, seconds per unit)."""

    terms: dict[str, tuple[float, float]]

    @property
    def seconds(self) -> float:
        return sum(n * s for n, s in self.terms.values())


_timed: dict[str, float] = {}  # seconds per unit, by what was timed: each timed once


def _seconds_per_call(
    what: str, device: torch.device, threads: int, make_call: Callable[[], Callable],
    warm_up: bool = True,
) -> float:  # fmt: skip
    """Seconds one call of make_call()'s function takes (after a warm-up call), timed until
    TIMED_SECONDS passed; made and timed once per process for each `what`."""
    key = f"{what}|{device}|{threads}"
    if key not in _timed:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            call = make_call()
            if warm_up:
                call()
                _sync(device)
            calls, t0 = 0, time.perf_counter()
            while calls < 1 or time.perf_counter() - t0 < TIMED_SECONDS:
                call()
                _sync(device)
                calls += 1
            _timed[key] = (time.perf_counter() - t0) / calls
        finally:
            torch.set_num_threads(before)
    return _timed[key]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(n: int, size: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g).to(device)


# ---------------------------------------------------------------------------- timed units


def gan_step_seconds(spec: GanSpec, device: torch.device, threads: int) -> float:
    """One optimiser step of D and G (with DiffAugment and the EMA), as gan.training trains."""

    def make() -> Callable:
        state = new_state(spec.arch, spec.train, device)
        reals = _images(256, spec.arch.size, device)
        return lambda: train_step(state, reals, spec.train)

    train = spec.train
    what = f"gan step {spec.arch} batch {train.batch_size} {train.precision} {train.loss}"
    return _seconds_per_call(what, device, threads, make)


def generate_seconds(spec: GanSpec, device: torch.device, threads: int, batch: int = 256) -> float:
    """Per generated image, sampled as every job samples (gan.training.sample)."""

    def make() -> Callable:
        G = build(spec.arch)[0].to(device, memory_format=torch.channels_last)
        z = torch.randn(batch, spec.arch.nz, device=device)
        return lambda: sample(G, z, precision=spec.train.precision)

    what = f"generate {spec.arch} {spec.train.precision}"
    return _seconds_per_call(what, device, threads, make) / batch


def feature_seconds(plan: ExperimentPlan, threads: int, batch: int = 256) -> float:
    """Per image through the FID/KID feature network (the domain one untrained: the same
    cost)."""
    size = plan.cfg.profile.size

    def make() -> Callable:
        space = feature_space_for_estimate(plan)
        images = _images(batch, size, next(space.net.parameters()).device)
        return lambda: extract_features(space, images)

    what = f"features {plan.cfg.feature_space} {size}"
    return _seconds_per_call(what, torch.device(plan.cfg.device), threads, make) / batch


def train_step_seconds(
    make_model: Callable[[], torch.nn.Module], what: str, size: int, num_classes: int,
    cfg: ClassifierConfig, device: torch.device, threads: int,
) -> float:  # fmt: skip
    """One step of classifier.training's loop (augmentation, forward, backward, AdamW): a
    3-step run less a 1-step one, so building the model and the final evaluation cancel."""

    def run(steps: int) -> Callable[[], Callable]:
        def make() -> Callable:
            x = _images(256, size, device)
            y = torch.arange(256, device=device) % num_classes
            quick = replace(cfg, steps=steps, eval_every=10**9)
            val = (x[:2], y[:2])
            return lambda: train_classifier(make_model(), (x, y), val, num_classes, quick, False)

        return make

    one = _seconds_per_call(f"{what} {size} 1 step", device, threads, run(1))
    three = _seconds_per_call(f"{what} {size} 3 steps", device, threads, run(3), warm_up=False)
    return max(three - one, 1e-9) / 2


def predict_seconds(
    make_model: Callable[[], torch.nn.Module], what: str, size: int, tta: bool,
    device: torch.device, threads: int,
) -> float:  # fmt: skip
    """Per image predicted in evaluation mode (with the 8 TTA views where the job uses them)."""

    def make() -> Callable:
        model = make_model().to(device, memory_format=torch.channels_last)
        images = _images(256, size, device)
        return lambda: predict_proba(model, images, tta=tta)

    return _seconds_per_call(f"predict {what} {size} tta={tta}", device, threads, make) / 256


# ---------------------------------------------------------------------------- jobs in units


def _classifier_units(plan: ExperimentPlan, job: jobs.ClassifierJob, threads: int) -> Units:
    cfg, ds = plan.cfg, plan.dataset
    train = plan.classifier_config(job.arm, job.seed)
    device, size, k = torch.device(cfg.device), cfg.classifier_size, len(ds.class_names)
    name = f"classifier {cfg.classifier} {cfg.profile.classifier_width} batch {train.batch_size}"
    step = train_step_seconds(plan.new_classifier, name, size, k, train, device, threads)
    predict = predict_seconds(plan.new_classifier, name, size, train.tta, device, threads)
    evaluations = math.ceil(train.steps / train.eval_every)
    predicted = evaluations * len(plan.split.val) + len(plan.split.test)
    return Units({"steps": (train.steps, step), "predicted images": (predicted, predict)})


def _gan_units(plan: ExperimentPlan, job: jobs.GanJob, threads: int) -> Units:
    spec, device = plan.gans[job.cls], torch.device(plan.cfg.device)
    steps = training_end(0, spec.train) // spec.train.batch_size
    evaluations = math.ceil(spec.train.kimg / spec.train.eval_kimg)
    generated = evaluations * spec.eval_n
    reals = len(plan.split.train) + len(plan.split.val)  # featurised once (at most)
    return Units({
        "steps": (steps, gan_step_seconds(spec, device, threads)),
        "generated images": (generated, generate_seconds(spec, device, threads)),
        "featurised images": (generated + reals, feature_seconds(plan, threads)),
    })  # fmt: skip


def _samples_units(plan: ExperimentPlan, job: jobs.SamplesJob, threads: int) -> Units:
    """A sample set as drawn at the first pool factor (a weak generator draws more)."""
    spec, device = plan.gans[job.cls], torch.device(plan.cfg.device)
    sset = SAMPLE_SETS[job.set_name]
    n = max(_most_needed(plan, job.cls), 2)
    fresh_n = plan.cfg.profile.fresh_n
    drawn = sum(pool_size(SampleOptions(n=m, filter=sset.filter)) for m in (n, fresh_n))
    size = plan.cfg.classifier_size
    probe = ClassifierConfig(batch_size=64, sampling="balanced", label_smoothing=0.0)
    make = lambda: CompactCNN(2, width=16, feature_dim=64, input_size=size)  # noqa: E731
    step = train_step_seconds(make, "detector", size, 2, probe, device, threads)
    detector_predict = predict_seconds(make, "detector", size, False, device, threads)
    return Units({
        "generated images": (drawn, generate_seconds(spec, device, threads)),
        "featurised images": (drawn, feature_seconds(plan, threads)),
        "detector steps": (detect_steps(plan), step),
        "detector predictions": (2 * fresh_n, detector_predict),
    })  # fmt: skip


def _most_needed(plan: ExperimentPlan, cls: str) -> int:
    """Synthetic images a set adds to the class at most (a matched set may add fewer)."""
    if cls in plan.companions:
        return plan.companions[cls]
    return max(plan.targets[cls] - plan.real_counts[cls], 0)


def _features_units(plan: ExperimentPlan, job: jobs.FeaturesJob, threads: int) -> Units:
    if plan.cfg.feature_space != "domain":
        return Units({})  # a weights file is loaded, nothing trains
    train, device = plan.features, torch.device(plan.cfg.device)
    size, k = plan.cfg.profile.size, len(plan.dataset.class_names)
    width = plan.cfg.profile.feature_width
    make = lambda: CompactCNN(k, width, input_size=size)  # noqa: E731 - as feature_space has it
    step = train_step_seconds(make, "domain features", size, k, train, device, threads)
    predict = predict_seconds(make, "domain features", size, False, device, threads)
    evaluations = math.ceil(train.steps / train.eval_every)
    return Units({
        "steps": (train.steps, step),
        "predicted images": (evaluations * len(plan.split.val), predict),
    })  # fmt: skip


def _report_units(plan: ExperimentPlan, models: int, threads: int) -> Units:
    """The report predicts each rare class's fresh samples (kept and filtered) and any external
    test set with every classifier."""
    cfg, device = plan.cfg, torch.device(plan.cfg.device)
    train = plan.classifier_config("baseline", 0)
    name = f"classifier {cfg.classifier} {cfg.profile.classifier_width} batch {train.batch_size}"
    predict = predict_seconds(plan.new_classifier, name, cfg.classifier_size, train.tta,
                              device, threads)  # fmt: skip
    fresh = 2 * cfg.profile.fresh_n * len(plan.classes) if plan.sample_sets else 0
    external = _external_n(plan)
    return Units({"predicted images": (models * (fresh + external), predict)})


def _external_n(plan: ExperimentPlan) -> int:
    if not plan.cfg.external:
        return 0
    return len(load_external(plan, plan.cfg.external, plan.dataset.images.shape[1])[0].labels)


def feature_space_for_estimate(plan: ExperimentPlan):
    """The run's FID/KID feature network, untrained where training it is a job of the run
    (the same network costs the same)."""
    cfg = plan.cfg
    if cfg.feature_space != "domain":
        return feature_space(plan)  # the weights file, as every job loads it
    k, width = len(plan.dataset.class_names), cfg.profile.feature_width
    return as_feature_space(CompactCNN(k, width, input_size=cfg.profile.size), cfg.device)


UNITS = {
    jobs.FeaturesJob: _features_units,
    jobs.GanJob: _gan_units,
    jobs.SamplesJob: _samples_units,
    jobs.ClassifierJob: _classifier_units,
}


def job_seconds(cfg: ExperimentConfig, node: Node, models: int) -> float:
    """Estimated seconds of one job on this machine with its threads."""
    job, fcfg = node.job, jobs.job_config(cfg, node.job)
    plan = plan_for(fcfg, getattr(job, "dose", None))
    if isinstance(job, jobs.ReportJob):
        return _report_units(plan, models, node.threads).seconds
    return UNITS[type(job)](plan, job, node.threads).seconds


# ---------------------------------------------------------------------------- the schedule


def schedule(nodes: list[Node], seconds: dict[str, float], workers: int) -> dict[str, tuple]:
    """(start, end) of each job as the local executor runs them: in list order, each once its
    dependencies are done; one that takes a slot (a classifier) on the first free worker, any
    other alone once every worker is free. Jobs already done take no time."""
    free = [0.0] * workers  # when each worker is next free
    spans: dict[str, tuple] = {}
    for node in nodes:
        ready = max((spans[d][1] for d in node.deps if d in spans), default=0.0)
        took = seconds.get(node.name, 0.0)
        if node.slots is not None and node.slots < workers:
            start = max(heapq.heappop(free), ready)
            heapq.heappush(free, start + took)
        else:
            start = max(max(free), ready)
            free = [start + took] * workers
        spans[node.name] = (start, start + took)
    return spans


def estimate(cfg: ExperimentConfig, nodes: list[Node], to_run: set[str]) -> dict:
    """Per stage: jobs to run, their summed seconds and their wall time; and the run's total."""
    models = sum(isinstance(n.job, jobs.ClassifierJob) for n in nodes)
    seconds = {n.name: job_seconds(cfg, n, models) for n in nodes if n.name in to_run}
    spans = schedule(nodes, seconds, cfg.workers)
    stages: dict[str, dict] = {}
    for node in nodes:
        if node.name in to_run:
            row = stages.setdefault(node.stage, {"jobs": 0, "job_seconds": 0.0, "spans": []})
            row["jobs"] += 1
            row["job_seconds"] += seconds[node.name]
            row["spans"].append(spans[node.name])
    for row in stages.values():
        row["wall"] = covered_seconds(row.pop("spans"))
    total = max((end for _, end in spans.values()), default=0.0)
    return {"stages": stages, "total": total, "seconds": seconds}


def describe_estimate(cfg: ExperimentConfig, found: dict) -> str:
    """The estimate under the job list: per stage and in total."""
    device = cfg.device if cfg.device != "cpu" else f"cpu, {cfg.threads} threads"
    lines = [
        f"estimated time on this machine ({device}, {cfg.workers} classifier worker(s); "
        "timed warm-up steps of each stage's network):",
        f"  {'stage':<24}{'jobs':>5}  {'each':>9}  {'wall':>9}",
    ]
    for stage, row in found["stages"].items():
        each = duration(row["job_seconds"] / row["jobs"])
        lines.append(f"  {stage:<24}{row['jobs']:>5}  {each:>9}  {duration(row['wall']):>9}")
    if not found["stages"]:
        lines.append("  every job is done")
    lines.append(f"  {'total':<24}{'':>5}  {'':>9}  {duration(found['total']):>9}")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
