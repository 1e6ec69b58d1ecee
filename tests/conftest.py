"""What several test files share: tiny self-made datasets in every supported layout (no real
data needed), the CLI helpers, the argument lists of a tiny run, and the tiny runs themselves.

The runs are made once per session (`*_once`); a test that changes its run asks for the
function-scoped copy (`trained`, `evaluated`, `compared`) instead.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

HAM10000 = Path(
    os.environ.get(
        "RAREGAN_HAM10000", Path(__file__).resolve().parents[1] / "../shared/data/HAM10000"
    )
)


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (setup.cfg): a worker per core, at most 4 (each holds torch and a run's
    data in memory; the suite's longest files bound its time beyond that)."""
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_configure(config) -> None:
    """Under pytest-xdist every worker trains on one thread, its subprocesses too: workers x
    threads stay within the cores (more busy threads than cores slow every job 5-20x)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    # a dry run's estimate times each unit once, not for half a second: its figures are not
    # what the suite checks where a dry run lists jobs (tests/test_estimate.py checks them)
    from pipelines.graph import estimate

    estimate.TIMED_SECONDS = 0.0


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `long` first: under pytest-xdist (--dist loadfile: a file's tests, and its
    module-scoped fixtures, on one worker) their files start first, so that no worker begins
    one when the others are done."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


# Distinct colours make it easy to check that each image landed at its index.
CLASS_COLOURS = {"df": (200, 40, 40), "mel": (40, 40, 40), "nv": (150, 100, 60)}


def write_image(path: Path, colour, size=(40, 30), fmt="JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = np.clip(np.array(colour) + rng.integers(-10, 10, (size[1], size[0], 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)


def ham_rows(counts: dict[str, int], per_lesion: int = 2) -> list[dict[str, str]]:
    rows, n = [], 0
    for dx, k in counts.items():
        for i in range(k):
            rows.append(
                {
                    "lesion_id": f"HAM_{dx}{i // per_lesion:04d}",
                    "image_id": f"ISIC_{n:07d}",
                    "dx": dx,
                    "age": "50",
                    "sex": "male",
                    "localization": "back",
                }
            )
            n += 1
    return rows


def write_csv(path: Path, rows: list[dict], fieldnames=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames or list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def ham_dir(tmp_path: Path) -> Path:
    """HAM10000 layout: metadata CSV + JPEGs split over two part folders, 200x150 like ours."""
    root = tmp_path / "ham"
    rows = ham_rows({"df": 24, "mel": 30, "nv": 60})
    write_csv(root / "HAM10000_metadata.csv", rows)
    for i, r in enumerate(rows):
        part = "HAM10000_images_part_1" if i % 2 else "HAM10000_images_part_2"
        write_image(root / part / f"{r['image_id']}.jpg", CLASS_COLOURS[r["dx"]], (200, 150))
    return root


@pytest.fixture
def isic_dir(tmp_path: Path) -> Path:
    root = tmp_path / "isic"
    classes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    rows = []
    for i, c in enumerate(["DF", "DF", "MEL", "NV", "NV", "VASC"]):
        rows.append({"image": f"ISIC_{i:07d}", **{k: "1.0" if k == c else "0.0" for k in classes}})
        write_image(root / "Task3_Input" / f"ISIC_{i:07d}.jpg", (30 * i, 100, 100))
    write_csv(root / "Task3_GroundTruth" / "GroundTruth.csv", rows, ["image", *classes])
    groups = [{"image": r["image"], "lesion_id": f"L{i // 2}"} for i, r in enumerate(rows)]
    write_csv(root / "LesionGroupings.csv", groups)
    return root


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    parts = {"train": 20, "val": 6, "test": 8}
    arrays = {}
    for s, n in parts.items():
        arrays[f"{s}_images"] = rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{s}_labels"] = (np.arange(n) % 7).reshape(n, 1)
    path = tmp_path / "dermamnist.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture
def imagefolder_dir(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    for cls, n, colour in [("cats", 4, (200, 0, 0)), ("dogs", 3, (0, 200, 0))]:
        for i in range(n):
            write_image(root / cls / f"{cls}{i}.png", colour, (32, 48), fmt="PNG")
    return root


def demo_external_dir(root: Path, seed: int = 2) -> Path:
    """An ImageFolder of freshly painted demo lesions (another painter seed than the demo
    data's 0 and the oracle's 1): an external test set of other images of the same classes."""
    from pipelines.data.demo import DEMO_CLASS_NAMES, make_demo

    images, labels, image_ids, _ = make_demo(32, seed=seed)
    for im, label, name in zip(images, labels, image_ids):
        path = root / DEMO_CLASS_NAMES[label] / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(path)
    return root


def invoke_cli(command, args: list[str], ok: bool = True):
    """Run a click command in-process; with ok, fail the test on a non-zero exit."""
    from click.testing import CliRunner

    result = CliRunner().invoke(command, args)
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def one_line_error(result) -> str:
    """The user-facing error of a failed command: exactly one 'Error' line, no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    return lines[0]


def with_options(args: list[str], **options: str) -> list[str]:
    """`args` with each option's value replaced, or the option added:
    with_options(SMOKE, seeds="1", arms="baseline,gan")."""
    out = list(args)
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


# ---------------------------------------------------------------- argument lists

# gan-train: a 32 px GAN on small batches, a snapshot every 0.05 kimg, no FID tracking
TINY = ["--size", "32", "--batch-size", "8", "--snapshot-kimg", "0.05", "--quiet",
        "--precision", "fp32", "--eval-every", "0"]  # fmt: skip
# augment-and-compare: the smoke profile on two rare classes, every default arm, two seeds
SMOKE = ["--profile", "smoke", "--seeds", "2", "--classes", "df,vasc", "--target", "50",
         "--quiet", "--precision", "fp32", "--threads", "1"]  # fmt: skip


# ---------------------------------------------------------------- shared runs


def made_once(tmp_path_factory, name: str, make) -> Path:
    """<shared temp>/shared-<name>/run, made by make(run_dir) once per test session, also when
    pytest-xdist runs the session in several workers: the first to ask makes it under a file
    lock, the others wait and reuse it (a failed make is retried by the next to ask)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the workers' common folder
    folder, done = base / f"shared-{name}", base / f"shared-{name}.done"
    with FileLock(str(base / f"shared-{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            make(folder / "run")
            done.touch()
    return folder / "run"


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> Path:
    """A demo run with one tiny GAN (df, 0.1 kimg: grids at 0.056 and 0.104), no feature
    network."""
    from pipelines.cli import gan_train

    def make(run_dir: Path) -> None:
        args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.1", *TINY]
        invoke_cli(gan_train, args)

    return made_once(tmp_path_factory, "trained", make)


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of trained_once, for tests that change it."""
    return Path(shutil.copytree(trained_once, tmp_path / "run"))


def install_quick_feature_network(run_dir: Path) -> None:
    """Train a quick domain feature network (80 steps) and file it under the keys of the
    600-step one that the commands ask for, at fp32 and bf16 (gan-sample's --precision auto
    on a bf16 CPU), so that they use it rather than train theirs (about a minute each)."""
    from classifier.training import ClassifierConfig
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split
    from pipelines.steps.feature_space import (
        DOMAIN_CONFIG,
        FeatureRequest,
        domain_space,
        network_key,
    )
    from pipelines.store.layout import RunLayout

    quick = ClassifierConfig(steps=80, batch_size=32, eval_every=40, sampling="balanced")
    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, run_dir)
    domain_space(
        ds, split, run_dir, torch.device("cpu"), FeatureRequest(training=quick), progress=False
    )
    layout, k = RunLayout(run_dir), len(ds.class_names)
    [trained_file] = (run_dir / "features").glob("domain_32px_*.pt")
    for precision in ("fp32", "bf16"):
        cfg = ClassifierConfig(**{**DOMAIN_CONFIG.as_dict(), "precision": precision})
        shutil.copyfile(trained_file, layout.feature_network(32, network_key(split, k, 32, cfg)))


@pytest.fixture(scope="session")
def evaluated_once(tmp_path_factory) -> Path:
    """A demo run with a quick domain feature network and two tiny generators (df, vasc)
    trained with FID tracking every 0.05 kimg at --eval-n 64: best.pt and eval.jsonl."""
    from pipelines.cli import gan_train

    def make(run_dir: Path) -> None:
        install_quick_feature_network(run_dir)
        evaluation = with_options(TINY, eval_every="0.05", eval_n="64")
        for cls in ("df", "vasc"):
            args = ["--class", cls, "--run-dir", str(run_dir), "--kimg", "0.1", *evaluation]
            invoke_cli(gan_train, args)

    return made_once(tmp_path_factory, "evaluated", make)


@pytest.fixture
def evaluated(evaluated_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of evaluated_once, for tests that change it."""
    return Path(shutil.copytree(evaluated_once, tmp_path / "run"))


@pytest.fixture(scope="session")
def compared_once(tmp_path_factory) -> Path:
    """A finished augment-and-compare run with the SMOKE arguments."""
    from pipelines.cli import augment_and_compare

    def make(run_dir: Path) -> None:
        result = invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *SMOKE])
        assert "[SYNTHETIC demo data] df gan vs baseline: recall" in result.output

    return made_once(tmp_path_factory, "compared", make)


@pytest.fixture
def compared(compared_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of compared_once, for tests that change it."""
    return Path(shutil.copytree(compared_once, tmp_path / "run"))


def arm_metrics(run_dir: Path, arms=None) -> dict[str, list[dict]]:
    """results.json's test metrics of every (fold, seed) classifier, by arm (all, or `arms`)."""
    runs = json.loads((run_dir / "results.json").read_text())["runs"]
    return {arm: [r["test"] for fold in runs[arm] for r in fold] for arm in arms or runs}


def started_jobs(output: str) -> set[str]:
    """The jobs that augment-and-compare's log says it started."""
    return {line.split()[1] for line in output.splitlines() if " started on " in line}


def job_lines(output: str) -> dict[str, str]:
    """augment-and-compare --dry-run's rows by job name (without the header, the notes and
    the estimate under them)."""
    listing = output.split("estimated time on this machine")[0]
    rows = [line for line in listing.splitlines() if line.strip()]
    return {r.split()[0]: r for r in rows if not r.startswith(("note:", "job "))}


# ---------------------------------------------------------------- commands in a subprocess

REPO = Path(__file__).resolve().parents[1]

KILLER = """
import importlib, os, signal, sys
module, name, condition, command, *args = sys.argv[1:]
module = importlib.import_module(module)
original = getattr(module, name)
def hook(*a, **k):
    result = original(*a, **k)
    if eval(condition):
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(module, name, hook)
from pipelines import cli
getattr(cli, command).main(args)
"""


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_killed(command: str, args: list[str], module: str, name: str, condition: str = "True"):
    """Run a CLI command in a subprocess that SIGKILLs itself when module.name returns and
    `condition` (a Python expression over its arguments `a`, `k`) holds, so that the run
    directory is left exactly as a kill -9 at that point would leave it."""
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, module, name, condition, command, *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    return proc


TIMINGS = {"wall_seconds", "seconds", "versions", "record"}  # when and where, not what


def result_numbers(run_dir: Path):
    """results.json without timings, versions and the run directory's own path: what two runs
    of one experiment must agree on."""

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in TIMINGS}
        return [strip(v) for v in x] if isinstance(x, list) else x

    text = (run_dir / "results.json").read_text().replace(str(run_dir), "RUN")
    return strip(json.loads(text))


@pytest.fixture
def checkpoint_reads(monkeypatch) -> list[Path]:
    """Every checkpoint file read through gan.checkpoint.load_checkpoint, in order."""
    import gan.checkpoint

    reads: list[Path] = []
    load = gan.checkpoint.load_checkpoint

    def counted(path):
        reads.append(Path(path))
        return load(path)

    monkeypatch.setattr(gan.checkpoint, "load_checkpoint", counted)
    return reads
