"""augment-and-compare --export ARM DIR: one arm's training set for one seed, as an ImageFolder.

    DIR/<class>/<image_id>.png            a real training image (its first use)
    DIR/<class>/<image_id>__rep<k>.png    its k-th repeat, where the arm oversamples
    DIR/<class>/syn_<set>_<index>.png     a kept synthetic image (index: in its sample set)
    DIR/manifest.csv                      one row per file: where it came from
    DIR/DATASET_CARD.md                   source data and licence, generators, filter, counts

The set is the one the arm's classifier trained on, rebuilt by steps.arm_training_set (the
function train_arm calls) from the run's finished sample sets, never mixed a second way:
repeats are written as copies, so that torchvision.datasets.ImageFolder(DIR) sees the class
counts the arm trained on. Images are at the GANs' size, as build_arm holds them. DIR is
written in a temporary folder beside it and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gan.conventions import new_temp_dir, replace_dir, writing
from pipelines.config.arms import ARM_SPECS, ARMS, SAMPLE_SETS
from pipelines.config.experiment import ExperimentConfig, is_demo
from pipelines.data.dataset import default_cache_dir
from pipelines.errors import UserError
from pipelines.format import kid_e3
from pipelines.steps.classifier import arm_training_set
from pipelines.steps.plan import ExperimentPlan, plan_for
from pipelines.steps.training_set import Arm
from pipelines.store.guard import EXPORT, check_replaceable, protected_places
from pipelines.store.layout import SOURCE
from pipelines.store.records import check_output_dir, file_sha256, versions

MANIFEST_COLUMNS = (
    "file", "class", "kind", "image_id", "lesion_id", "repeat", "sample_set", "checkpoint",
    "checkpoint_sha256", "checkpoint_kimg", "sample_seed", "sample_index", "pool_index",
    "filter_score",
)  # fmt: skip
LICENCES = {  # data format -> its licence, where one format is one dataset
    "ham10000": "HAM10000 (Tschandl et al. 2018, doi:10.7910/DVN/DBW86T): CC BY-NC-SA 4.0",
    "demo": "raregan's built-in synthetic demo data: made by raregan, no third-party licence",
}


def licence_line(data_format: str, source: str) -> str:
    """The licence of the source data, which the synthetic images derive from too; where the
    format does not fix the dataset (ISIC, MedMNIST, an ImageFolder) the user must state it."""
    return LICENCES.get(data_format, f"licence of {source}: state it")


# ---------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class ExportRequest:
    """--export ARM DIR, --export-seed and --export-overwrite."""

    arm: str
    seed: int
    out: Path
    overwrite: bool = False


def check_export(cfg: ExperimentConfig, request: ExportRequest) -> None:
    """Refuse, in one line and before any work, an export this run cannot make."""
    arm, seed, out, overwrite = request.arm, request.seed, request.out, request.overwrite
    if arm not in ARMS:
        raise UserError(f"--export {arm}: not an arm; choose from {', '.join(ARMS)}")
    if ARM_SPECS[arm].held_back:
        raise UserError(
            f"--export {arm}: an oracle arm is the positive control (held-back lesions added "
            "back), not a training set to share; export gan, oversample+gan or a control"
        )
    if arm not in cfg.arms:
        raise UserError(
            f"--export {arm}: this run has no {arm} arm (its --arms: {', '.join(cfg.arms)}); "
            f"export one of those, or add {arm} to --arms"
        )
    if not 0 <= seed < cfg.seeds:
        raise UserError(
            f"--export-seed {seed}: this run trains seeds 0..{cfg.seeds - 1}; pass one of them"
        )
    if cfg.folds > 1 or cfg.gan_doses or cfg.rare_n:
        raise UserError(
            "--export writes the training set of one comparison; drop --folds, --gan-doses "
            "and --rare-n (each fold, dose and level trains on a set of its own)"
        )
    check_output_dir(out, "--export DIR")
    run = Path(cfg.run_dir).resolve()
    if out.resolve() == run or run.is_relative_to(out.resolve()):
        raise UserError(f"--export {out} holds the run directory {cfg.run_dir}; pass another DIR")
    data = None if is_demo(cfg.data) else cfg.data
    cache = cfg.cache_dir or default_cache_dir()
    places = protected_places(data, cfg.external, cache, cfg.layout.managed())
    check_replaceable(out, EXPORT, "--export", places)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(
            f"--export {out} already holds files; pass --export-overwrite to replace them, "
            "or another DIR"
        )


# ---------------------------------------------------------------------------- export


def export_arm(
    cfg: ExperimentConfig, request: ExportRequest, classifier_dir: Path, command: str
) -> dict[str, dict[str, int]]:
    """Write the (arm, seed) classifier's training set to request.out; returns the counts per
    class (real, repeats, synthetic). The run's sample sets must be finished; classifier_dir
    is where that classifier is (or will be) trained."""
    arm, seed, out = request.arm, request.seed, request.out
    check_export(cfg, request)
    plan = plan_for(cfg)
    arm_set, summaries = arm_training_set(plan, arm, seed)
    _check_trained_count(classifier_dir / "result.json", len(arm_set.labels))
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing(out):
        tmp = new_temp_dir(out.parent, f".{out.name}.tmp-")
        try:
            rows = _write_images(tmp, plan, arm_set, summaries)
            _write_manifest(tmp / "manifest.csv", rows)
            counts = _counts(rows)
            card = dataset_card(plan, arm, seed, summaries, counts, command)
            (tmp / "DATASET_CARD.md").write_text(card, encoding="utf-8")
            replace_dir(tmp, out)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _named_in_export(e, tmp, out) from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return counts


def _named_in_export(e: OSError, tmp: Path, out: Path) -> OSError:
    """The error naming the export's file that failed (a write to a full disk names none,
    an open names the temporary folder's copy): what the user will look for is in `out`."""
    failed = Path(str(e.filename)) if e.filename is not None else None
    if failed is not None and failed.is_relative_to(tmp):
        return OSError(e.errno, e.strerror, str(out / failed.relative_to(tmp)))
    return e


def _check_trained_count(result: Path, n: int) -> None:
    """The rebuilt set has as many images as the trained classifier saw, where it is done:
    a sample set drawn again since would otherwise be exported as if it had trained."""
    if result.is_file():
        trained = json.loads(result.read_text()).get("train_images", n)
        if trained != n:
            raise UserError(
                f"{result}: the classifier trained on {trained} images, and the run's sample "
                f"sets now give {n}; rerun augment-and-compare to bring the run up to date"
            )


def _safe(name: str) -> str:
    """A file or folder name of one part (an ImageFolder's image id holds its folder)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _write_images(tmp: Path, plan: ExperimentPlan, arm_set: Arm, summaries: dict) -> list[dict]:
    """Every image of the arm in order, one file each (a repeat is a copy); its manifest rows."""
    cfg, ds = plan.cfg, plan.dataset
    set_name = ARM_SPECS[arm_set.name].synthetic
    provenance = {c: _Provenance(cfg, s[set_name]) for c, s in summaries.items() if set_name}
    names: dict[int, str] = {}  # dataset row -> its file name (no suffix), per first use
    uses: Counter = Counter()
    taken: set[str] = set()
    rows = []
    for i, label in enumerate(arm_set.labels.tolist()):
        cls = ds.class_names[label]
        folder = tmp / _safe(cls)
        folder.mkdir(exist_ok=True)
        row, k = int(arm_set.rows[i]), int(arm_set.synthetic_index[i])
        if row >= 0:
            if row not in names:
                names[row] = _real_name(ds.image_ids[row], row, cls, taken)
            stem = names[row] + (f"__rep{uses[row]}" if uses[row] else "")
            record = {"kind": "real", "image_id": ds.image_ids[row], "repeat": uses[row],
                      "lesion_id": ds.lesion_ids[row]}  # fmt: skip
            uses[row] += 1
        else:
            stem = f"syn_{_safe(set_name)}_{k:05d}"
            record = {"kind": "synthetic", "image_id": stem, "repeat": 0,
                      **provenance[cls].row(k)}  # fmt: skip
        file = f"{_safe(cls)}/{stem}.png"
        try:
            (tmp / file).write_bytes(_png(arm_set.images[i]))
        except OSError as e:  # a full disk's write names no file
            raise OSError(e.errno, e.strerror, str(tmp / file)) from e
        rows.append({"file": file, "class": cls, **record})
    return rows


def _real_name(image_id: str, row: int, cls: str, taken: set[str]) -> str:
    """A real image's file name: its id, unless another image (or a synthetic name) of the
    class would share it, where its dataset row tells them apart."""
    name = _safe(image_id)
    if f"{cls}/{name}" in taken or name.startswith("syn_") or "__rep" in name:
        name = f"{name}__row{row}"
    taken.add(f"{cls}/{name}")
    return name


class _Provenance:
    """Where one class's synthetic images came from: its sample set's generator and scores."""

    def __init__(self, cfg: ExperimentConfig, summary: dict) -> None:
        folder = Path(summary["_dir"])
        with np.load(folder / "samples.npz") as z:
            self.pool_index, self.score = z["pool_index"], z["score"]
        self.set = folder.parent.name
        self.checkpoint = _checkpoint_file(cfg, summary)
        self.sha = file_sha256(self.checkpoint) if self.checkpoint.is_file() else "missing"
        self.kimg = summary.get("checkpoint_kimg")
        self.seed = summary.get("options", {}).get("seed")

    def row(self, k: int) -> dict:
        return {
            "sample_set": self.set, "checkpoint": str(self.checkpoint),
            "checkpoint_sha256": self.sha, "checkpoint_kimg": self.kimg,
            "sample_seed": self.seed, "sample_index": k,
            "pool_index": int(self.pool_index[k]), "filter_score": f"{float(self.score[k]):.6g}",
        }  # fmt: skip


def _checkpoint_file(cfg: ExperimentConfig, summary: dict) -> Path:
    """The generator checkpoint a sample set was drawn from: the file of its name in this
    run's GAN folder (the recorded path is another where the run was moved or copied since)."""
    recorded = Path(summary["checkpoint"])
    here = cfg.layout.gan_dir(summary["class"]) / recorded.name
    return here if here.is_file() else recorded


def _write_manifest(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, restval="")
        w.writeheader()
        w.writerows(rows)


def _counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Files per class: distinct real images, their repeats, synthetic images, all."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        c = out.setdefault(r["class"], {"real": 0, "repeats": 0, "synthetic": 0, "total": 0})
        kind = "synthetic" if r["kind"] == "synthetic" else "repeats" if r["repeat"] else "real"
        c[kind] += 1
        c["total"] += 1
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------- the card


def dataset_card(
    plan: ExperimentPlan,
    arm: str,
    seed: int,
    summaries: dict,
    counts: dict[str, dict[str, int]],
    command: str,
) -> str:
    """DATASET_CARD.md: what the images are, where they came from and under which licence,
    what made the synthetic ones and how good the filter judged them, and how to remake it."""
    cfg, ds, split = plan.cfg, plan.dataset, plan.split
    spec = ARM_SPECS[arm]
    lines = [
        f"# raregan export: arm `{arm}`, classifier seed {seed}",
        "",
        f"The training set of the `{arm}` classifier (seed {seed}) of the run `{cfg.run_dir}`, "
        "as an ImageFolder: `torchvision.datasets.ImageFolder(DIR)` loads it with the class "
        "counts that classifier trained on (class indices: folder names in sorted order). "
        f"Images are {cfg.profile.size} px, as the GANs make them{_classifier_size(cfg)}. "
        "Only training images "
        "of the split: no validation or test image is here. `manifest.csv` has a row per file.",
        "",
        "## Source data",
        "",
        f"- data: `{ds.source}` (format {ds.format}), fingerprint `{ds.fingerprint}`"
        + (f", content hash `{ds.content_hash}`" if ds.content_hash else ""),
        f"- licence: {licence_line(ds.format, ds.source)}",
        *(
            [
                "- the synthetic images come from generators trained on this data: its licence "
                "terms apply to them as to the real images"
            ]
            if spec.synthetic
            else []
        ),
        f"- split: seed {cfg.split_seed}, {len(split.train)} training images "
        f"(`{cfg.layout.split_file}`)",
        "",
        *_counts_table(counts),
        "",
        *(_synthetic_section(plan, spec, summaries, counts) if spec.synthetic else []),
        *(
            [
                f"The `{arm}` classifier drew from all of these images for the first "
                f"{1 - spec.real_tail:.0%} of its steps and from the real ones only for the "
                "rest: to train as it did, end on the real images.",
                "",
            ]
            if spec.real_tail
            else []
        ),
        "## How it was made",
        "",
        f"- exported by: `{command}`",
        f"- the run was made by: `{_run_command(cfg)}`",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
    ]
    return "\n".join(lines)


def _classifier_size(cfg: ExperimentConfig) -> str:
    size = cfg.classifier_size
    if size == cfg.profile.size:
        return " and the classifier took them"
    return f"; the classifier took them resized to {size} px"


def _counts_table(counts: dict[str, dict[str, int]]) -> list[str]:
    lines = [
        "## Counts per class",
        "",
        "| class | real (distinct) | real repeats (oversampling) | synthetic | total |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for cls, c in counts.items():
        lines.append(f"| {cls} | {c['real']} | {c['repeats']} | {c['synthetic']} | {c['total']} |")
    return lines


def _synthetic_section(plan: ExperimentPlan, spec, summaries: dict, counts: dict) -> list[str]:
    """Per rare class: its generator (checkpoint, recipe, kimg), the dose of synthetic images
    it adds, the held-out KID of the kept set against the real-vs-real floor, the verdict."""
    cfg = plan.cfg
    sset = SAMPLE_SETS[spec.synthetic]
    lines = [
        "## Synthetic images",
        "",
        f"Sample set `{sset.name}` (filter: {sset.filter}); "
        + (f"--synthetic-share {cfg.synthetic_share}; " if spec.shared else "")
        + (_source_recipe(plan) if SOURCE in plan.gans else "no source GAN."),
        "",
    ]
    for cls, sets in summaries.items():
        s, c = sets[sset.name], counts.get(cls, {})
        arch, train = plan.gans[cls].arch, plan.gans[cls].train
        held = s.get("heldout_sets", {}).get("kept", {})
        floor = s.get("floor", {})
        lines += [
            f"### {cls}",
            "",
            f"- dose: {c.get('synthetic', 0)} synthetic images beside {c.get('real', 0)} real "
            f"ones ({c.get('repeats', 0)} repeats), {c.get('total', 0)} in all",
            f"- generator: `{_checkpoint_file(cfg, s)}` at {s.get('checkpoint_kimg')} kimg; "
            f"recipe {json.dumps(arch.as_dict())}, {json.dumps(train.as_dict())}",
            f"- drawn with seed {s['options'].get('seed')}: kept {s['kept']} of a pool of "
            f"{s['pool']} (this arm uses the first {c.get('synthetic', 0)})",
            f"- held-out KID of the kept set: {_kid(held)} vs the real-vs-real floor "
            f"{_kid(floor)} ({s.get('feature_space')} features)",
            f"- filter verdict: {s.get('verdict', 'not measured')}",
            "",
        ]
    return lines


def _source_recipe(plan: ExperimentPlan) -> str:
    source = plan.gans[SOURCE]
    return (
        f"every class's GAN is fine-tuned from the all-classes source GAN "
        f"(`{plan.cfg.layout.gan_dir(SOURCE)}`, {source.train.kimg:g} kimg, architecture "
        f"{source.arch.kind})."
    )


def _run_command(cfg: ExperimentConfig) -> str:
    try:
        return json.loads(cfg.layout.experiment_file.read_text()).get("command", "unknown")
    except (OSError, ValueError):
        return "unknown (no readable experiment.json)"


def _kid(m: dict) -> str:
    return kid_e3(m["kid"], tag=True) if "kid" in m else "not measured"
