"""Issue 10: no stuck run directories, one writer per run, reproducible runs, no silent bad data.

Kill cases run the command in a subprocess that SIGKILLs itself right after a chosen function
returns (`run_killed`), so the run directory is left exactly as a kill -9 at that point would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke_cli, one_line_error, write_image

from pipelines.cli import augment_and_compare, gan_sample, gan_train
from pipelines.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--batch-size", "8", "--snapshot-kimg", "0.01", "--quiet",
        "--precision", "fp32", "--eval-every", "0"]  # fmt: skip

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
    `condition` (a Python expression over its arguments `a`, `k`) holds."""
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, module, name, condition, command, *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    return proc


# ---------------------------------------------------------------- 1. stuck run directories


def test_gan_train_killed_before_its_first_checkpoint_starts_again(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY]
    run_killed("gan_train", args, "pipelines.gan_run", "_append_record")
    out = run_dir / "gan" / "df"
    assert (out / "run.json").is_file() and not (out / "last.pt").exists()  # the stuck state
    msg = one_line_error(invoke_cli(gan_train, [*args, "--resume"], False))
    assert "no checkpoint at" in msg and "without --resume" in msg
    invoke_cli(gan_train, args)  # a plain rerun starts it: no circle
    assert torch.load(out / "last.pt", weights_only=True)["nimg"] >= 20
    assert len(json.loads((out / "run.json").read_text())["runs"]) == 1  # a fresh history


@pytest.mark.parametrize("budget", [["--kimg", "0"], ["--kimg", "-1"], ["--epochs", "0"]])
def test_gan_train_refuses_a_budget_that_trains_nothing(tmp_path: Path, budget: list[str]):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), *budget, *TINY]
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert f"{budget[0]} " in msg and "must be > 0" in msg
    assert not (run_dir / "gan").exists()


COMPARE = ["--profile", "smoke", "--seeds", "1", "--classes", "df", "--arms", "baseline,gan",
           "--target", "24", "--quiet", "--precision", "fp32", "--threads", "1"]  # fmt: skip
TIMINGS = {"wall_seconds", "seconds", "versions", "record"}  # when and where, not what


def _numbers(run_dir: Path):
    """results.json without timings, versions and the run directory's own path."""

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in TIMINGS}
        return [strip(v) for v in x] if isinstance(x, list) else x

    text = (run_dir / "results.json").read_text().replace(str(run_dir), "RUN")
    return strip(json.loads(text))


@pytest.fixture(scope="module")
def clean_compare(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("clean") / "run"
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *COMPARE])
    return run_dir


def test_augment_and_compare_killed_in_a_gan_reruns_to_the_same_numbers(
    clean_compare: Path, tmp_path: Path
):
    """Issue items 1 and 4: the kill leaves gan/df without last.pt (once: every rerun failed);
    the rerun restarts it, and gives the numbers of a run that was never killed (once three
    identical runs got three feature networks and different kept counts)."""
    run_dir = tmp_path / "run"
    cond = "a[0].class_name == 'df'"
    run_killed(
        "augment_and_compare", ["--run-dir", str(run_dir), *COMPARE],
        "pipelines.gan_run", "_append_record", cond,
    )  # fmt: skip
    out = run_dir / "gan" / "df"
    assert (out / "run.json").is_file() and not (out / "last.pt").exists()
    assert (run_dir / "jobs" / "features.json").is_file()  # the feature net of the killed run
    invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *COMPARE])
    assert (out / "last.pt").is_file()
    numbers, clean = _numbers(run_dir), _numbers(clean_compare)
    assert numbers["synthetic_sets"]["df"]["gan"]["kept"] > 0
    assert numbers == clean


def test_domain_feature_network_does_not_depend_on_the_global_rng(tmp_path: Path):
    from classifier.training import ClassifierConfig
    from pipelines.data.datasets import load_dataset
    from pipelines.data.splits import load_or_make_split
    from pipelines.feature_space import domain_space

    ds = load_dataset("demo", 32, progress=False)
    cfg = ClassifierConfig(steps=2, batch_size=16, eval_every=2, sampling="balanced")
    weights = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # what earlier work in the process left behind
        run_dir = tmp_path / f"run{seed}"
        with contextlib.suppress(UserError):  # 2 steps learn nothing; the file is written
            domain_space(
                ds, load_or_make_split(ds, run_dir), run_dir, torch.device("cpu"),
                progress=False, cfg=cfg,
            )  # fmt: skip
        weights.append(torch.load(run_dir / "features" / "domain_32px.pt", weights_only=True))
    a, b = (w["state_dict"] for w in weights)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- 2. one writer per run


def _lock_holder(run_dir: Path, pid: int, timeout: float = 120) -> None:
    """Wait until process `pid` holds run_dir's lock (it writes its pid into the lock file)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads((run_dir / ".raregan.lock").read_text())["pid"] == pid:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never took the lock of {run_dir}")


def test_two_gan_train_overwrite_on_one_class_the_second_is_refused(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["--class", "df", "--run-dir", str(run_dir), *TINY]
    first = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import gan_train; gan_train.main()",
         *args, "--kimg", "1000", "--overwrite"],
        env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _lock_holder(run_dir, first.pid)
        for flag in ("--overwrite", "--resume"):
            msg = one_line_error(invoke_cli(gan_train, [*args, "--kimg", "0.02", flag], False))
            assert f"is in use by pid {first.pid}" in msg and "--kimg 1000 --overwrite" in msg
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    invoke_cli(gan_train, [*args, "--kimg", "0.02", "--overwrite"])  # the dead one's lock is gone
    assert (run_dir / "gan" / "df" / "last.pt").is_file()


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    code = (
        "import time; from pipelines.lock import run_dir_lock\n"
        f"with run_dir_lock({str(run_dir)!r}):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_gan_sample_is_refused_while_another_process_writes_the_run(tmp_path: Path):
    from pipelines.data.datasets import load_dataset
    from pipelines.data.splits import load_or_make_split

    run_dir = tmp_path / "run"
    load_or_make_split(load_dataset("demo", 32, progress=False), run_dir)
    holder = _hold_lock(run_dir)
    try:
        msg = one_line_error(invoke_cli(gan_sample, ["--n", "4", "--run-dir", str(run_dir)], False))
        assert f"is in use by pid {holder.pid}" in msg
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


# ---------------------------------------------------------------- 3, 6, 8: no silent bad data


def _load(path: Path, tmp_path: Path, **kw):
    from pipelines.data.datasets import load_dataset

    return load_dataset(path, 16, cache_dir=tmp_path / "cache", progress=False, **kw)


def test_16_bit_pngs_decode_to_their_grey_level_not_white(tmp_path: Path):
    from PIL import Image

    root = tmp_path / "folder"
    levels = {"dark": 0x2000, "mid": 0x8000}  # 8-bit: 32 and 128
    for cls, level in levels.items():
        (root / cls).mkdir(parents=True)
        for i in range(2):
            pixels = np.full((30, 40), level + 37 * i, dtype=np.uint16)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
            assert Image.open(root / cls / f"{i}.png").mode == "I;16"
    ds = _load(root, tmp_path)
    for label, cls in enumerate(ds.class_names):
        mean = ds.images[ds.labels == label].mean()
        assert abs(mean - levels[cls] / 257) < 1.5, (cls, mean)


def test_float_images_are_refused_by_name(tmp_path: Path, imagefolder_dir: Path):
    from PIL import Image

    Image.fromarray(np.full((30, 40), 0.5, dtype=np.float32)).save(
        imagefolder_dir / "cats" / "f.tif"
    )
    with pytest.raises(UserError) as err:
        _load(imagefolder_dir, tmp_path)
    assert "cats/f (unreadable: f.tif has floating-point pixels (mode F)" in err.value.message


def test_a_decompression_bomb_is_a_named_bad_image_and_skippable(
    tmp_path: Path, imagefolder_dir: Path, monkeypatch
):
    from PIL import Image

    write_image(imagefolder_dir / "dogs" / "huge.png", (0, 200, 0), (200, 150), fmt="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 30,000 px > 2 x 5,000; others 1,536
    with pytest.raises(UserError) as err:  # not a DecompressionBombError traceback
        _load(imagefolder_dir, tmp_path)
    assert "dogs/huge (unreadable: huge.png is over Pillow's 10000-pixel safety limit)" in (
        err.value.message
    )
    ds = _load(imagefolder_dir, tmp_path, skip_bad_images=True)
    assert list(ds.skipped) == ["dogs/huge"] and len(ds.labels) == 7


def test_skip_bad_images_prints_a_count_and_records_the_images(tmp_path: Path, ham_dir: Path):
    images = sorted(ham_dir.rglob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    run_dir = tmp_path / "run"
    args = ["--class", "nv", "--data", str(ham_dir), "--run-dir", str(run_dir), "--kimg", "0.02"]
    result = invoke_cli(
        gan_train, [*args, *TINY, "--skip-bad-images", "--cache-dir", str(tmp_path / "c")]
    )
    assert "--skip-bad-images left out 2 of 114 images" in result.output
    want = {images[0].stem: "missing", images[1].stem: "unreadable"}
    assert json.loads((run_dir / "split.json").read_text())["skipped_images"] == want
    record = json.loads((run_dir / "gan" / "nv" / "run.json").read_text())["runs"][-1]
    assert record["data"]["skipped_images"] == want
    dry = invoke_cli(
        augment_and_compare,
        ["--data", str(ham_dir), "--run-dir", str(run_dir), "--skip-bad-images", "--dry-run",
         "--cache-dir", str(tmp_path / "c"), "--classes", "df", "--profile", "smoke"],
    )  # fmt: skip
    assert "--skip-bad-images left out 2 of 114 images" in dry.output


@pytest.mark.parametrize("bad", ["melanoma", "MEL", "", "xyz"])
def test_ham10000_labels_outside_the_known_classes_are_refused_by_name(tmp_path: Path, bad):
    from conftest import ham_rows, write_csv

    root = tmp_path / "ham"
    rows = ham_rows({"df": 12, "nv": 12})
    rows[5]["dx"] = bad
    write_csv(root / "HAM10000_metadata.csv", rows)
    for r in rows:
        write_image(root / f"{r['image_id']}.jpg", (100, 100, 100), (40, 30))
    args = ["--class", "df", "--data", str(root), "--run-dir", str(tmp_path / "run"), "--kimg",
            "0.02", "--cache-dir", str(tmp_path / "c"), *TINY]  # fmt: skip
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert f"dx value(s) {bad!r} (line 7)" in msg
    assert "akiec, bcc, bkl, df, mel, nv, vasc" in msg and "--allow-new-classes" in msg
    ds = _load(root, tmp_path, allow_new_classes=True)
    assert bad in ds.class_names and ds.class_counts()[bad] == 1


# ---------------------------------------------------------------- 5, 7: checkpoints and resume

EVAL = ["--size", "32", "--batch-size", "8", "--snapshot-kimg", "0.01", "--quiet",
        "--precision", "fp32", "--eval-every", "0.01"]  # fmt: skip


@pytest.fixture(scope="module")
def evaluated_once(tmp_path_factory) -> Path:
    """A demo run with a quickly trained domain feature network and one GAN (df) trained with
    FID tracking at --eval-n 16, so it has best.pt and eval.jsonl."""
    from classifier.training import ClassifierConfig
    from pipelines.data.datasets import load_dataset
    from pipelines.data.splits import load_or_make_split
    from pipelines.feature_space import domain_space

    run_dir = tmp_path_factory.mktemp("evaluated") / "run"
    ds = load_dataset("demo", 32, progress=False)
    quick = ClassifierConfig(steps=80, batch_size=32, eval_every=40, sampling="balanced")
    split = load_or_make_split(ds, run_dir)
    domain_space(ds, split, run_dir, torch.device("cpu"), progress=False, cfg=quick)
    args = ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.03", "--eval-n", "16"]
    invoke_cli(gan_train, [*args, *EVAL])
    return run_dir


@pytest.fixture
def evaluated(evaluated_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(evaluated_once, tmp_path / "run"))


def _eval_ns(out: Path) -> list[str]:
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    return [r["train_kid_label"].rsplit(" vs ", 1)[1].rstrip("]") for r in rows]


def test_a_damaged_last_pt_leaves_best_pt_usable(evaluated: Path):
    out = evaluated / "gan" / "df"
    assert (out / "best.pt").is_file()
    (out / "last.pt").write_bytes((out / "last.pt").read_bytes()[:200])  # torn
    sample = ["--n", "4", "--run-dir", str(evaluated), "--quiet", "--filter", "none"]
    invoke_cli(gan_sample, sample)  # the class is found, and best.pt read, despite last.pt
    summary = json.loads((evaluated / "samples" / "df" / "summary.json").read_text())
    assert summary["checkpoint"].endswith("best.pt")
    msg = one_line_error(
        invoke_cli(gan_sample, [*sample, "--checkpoint", "last", "--overwrite"], False)
    )
    assert "not a readable checkpoint" in msg and "try --checkpoint best" in msg
    resume = ["--class", "df", "--run-dir", str(evaluated), "--kimg", "0.04", "--resume", "--quiet"]
    msg = one_line_error(invoke_cli(gan_train, resume, False))
    assert f"copy {out / 'best.pt'} over it and rerun with --resume" in msg
    assert "--overwrite would start over and delete best.pt" in msg
    shutil.copyfile(out / "best.pt", out / "last.pt")  # the advice works
    invoke_cli(gan_train, [*resume, "--eval-every", "0"])  # (no FID: a faster test)
    assert torch.load(out / "last.pt", weights_only=True)["nimg"] >= 40


def test_resume_keeps_eval_n_unless_changed_and_then_says_so(evaluated: Path):
    out = evaluated / "gan" / "df"
    base = ["--class", "df", "--run-dir", str(evaluated), "--resume", "--quiet"]
    assert set(_eval_ns(out)) == {"16"}
    invoke_cli(gan_train, [*base, "--kimg", "0.04"])
    assert set(_eval_ns(out)) == {"16"}  # not the default 1000
    result = invoke_cli(gan_train, [*base, "--kimg", "0.05", "--eval-n", "24"])
    assert "--eval-n 24 replaces the run's 16" in result.output
    assert _eval_ns(out)[-1] == "24"
    records = json.loads((out / "run.json").read_text())["runs"]
    assert [r["config"]["evaluation"]["eval_n"] for r in records] == [16, 16, 24]
    msg = one_line_error(invoke_cli(gan_train, [*base, "--feature-space", "inception"], False))
    assert "in the domain feature space, not inception" in msg


# ---------------------------------------------------------------- tracebacks -> one line


@pytest.mark.parametrize("command", [gan_train, gan_sample, augment_and_compare])
def test_device_gpu_is_a_one_line_error(command, tmp_path: Path):
    args = {gan_train: ["--class", "df"], gan_sample: ["--n", "4"]}.get(command, [])
    msg = one_line_error(
        invoke_cli(command, [*args, "--run-dir", str(tmp_path), "--device", "gpu"], False)
    )
    assert "--device gpu: not a device; use auto, cpu, cuda or cuda:N" in msg


def test_more_workers_than_threads_is_a_one_line_error(tmp_path: Path):
    args = ["--run-dir", str(tmp_path / "run"), "--threads", "2", "--workers", "3", "--dry-run"]
    msg = one_line_error(invoke_cli(augment_and_compare, args, False))
    assert "--workers 3 is more than the 2 thread(s) of a job" in msg
    assert "use --workers 2 or fewer" in msg
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory) -> Path:
    """A demo run with one tiny GAN (df), no feature network."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    invoke_cli(gan_train, ["--class", "df", "--run-dir", str(run_dir), "--kimg", "0.02", *TINY])
    return run_dir


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_once, tmp_path / "run"))


def test_run_dir_or_out_that_is_a_file_fails_before_any_work(trained: Path, monkeypatch):
    gan_sample_module = sys.modules["pipelines.cli.gan_sample"]  # (the package exports the command)

    def no_work(*a, **k):
        raise AssertionError("the work started before the outputs were checked")

    monkeypatch.setattr(gan_sample_module, "load_run_data", no_work)
    a_file = trained.parent / "a_file"
    a_file.write_text("mine")
    for command, args in [
        (gan_train, ["--class", "df", "--kimg", "0.02", "--run-dir", str(a_file)]),
        (augment_and_compare, ["--profile", "smoke", "--run-dir", str(a_file)]),
        (gan_sample, ["--n", "4", "--run-dir", str(a_file)]),
        (gan_sample, ["--n", "4", "--run-dir", str(trained), "--out", str(a_file)]),
        (gan_sample, ["--n", "4", "--run-dir", str(trained), "--out", str(a_file / "x")]),
    ]:
        msg = one_line_error(invoke_cli(command, args, False))
        assert "not a directory; pass a directory" in msg and str(a_file) in msg
    assert a_file.read_text() == "mine"


def _as_another_user(args: list[str], home: Path) -> subprocess.CompletedProcess:
    """Run a CLI as an unprivileged user (root may write anywhere): nobody when we are root.
    setpriv, not Popen(user=): it drops the capabilities only at exec, so that the
    interpreter can still be reached if it lives under root's home."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a directory unwritable")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**subprocess_env(), "HOME": str(home), "MPLCONFIGDIR": str(home)}
    return subprocess.run(
        [*prefix, sys.executable, "-c", "import sys; from pipelines import cli; "
         "getattr(cli, sys.argv[1]).main(sys.argv[2:])", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_unwritable_run_dir_or_out_is_a_one_line_error(trained: Path):
    import tempfile

    top = Path(tempfile.mkdtemp())  # not under pytest's 0700 tmp: the other user must reach it
    try:
        top.chmod(0o777)
        shutil.copytree(trained, top / "run")
        (top / "run").chmod(0o777)  # gan-sample's lock goes in the run directory
        (top / "ro").mkdir(mode=0o555)
        (top / "ro").chmod(0o555)
        for args, option in [
            (["gan_train", "--class", "df", "--run-dir", str(top / "ro" / "r")], "--run-dir"),
            (["augment_and_compare", "--run-dir", str(top / "ro")], "--run-dir"),
            (["gan_sample", "--n", "4", "--run-dir", str(top / "run"), "--out",
              str(top / "ro" / "out")], "--out"),
        ]:  # fmt: skip
            proc = _as_another_user(args, top)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
            assert len(errors) == 1 and f"Error: {option} " in errors[0]
            assert "is not writable by this user" in errors[0]
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_truncated_medmnist_npz_is_a_one_line_error(npz_file: Path, tmp_path: Path):
    npz_file.write_bytes(npz_file.read_bytes()[:3000])
    args = ["--class", "df", "--data", str(npz_file), "--run-dir", str(tmp_path / "r"), *TINY]
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert f"{npz_file} is not a readable .npz" in msg and "download it again" in msg


def test_an_isic_csv_with_a_non_numeric_cell_is_a_one_line_error(isic_dir: Path, tmp_path):
    csv_path = isic_dir / "Task3_GroundTruth" / "GroundTruth.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].replace("1.0", "yes", 1)
    csv_path.write_text("\n".join(lines) + "\n")
    args = ["--class", "df", "--data", str(isic_dir), "--run-dir", str(tmp_path / "r"), *TINY]
    msg = one_line_error(invoke_cli(gan_train, args, False))
    assert "line 4, column" in msg and "'yes' is not a number" in msg


def test_a_truncated_domain_feature_file_is_trained_again(tmp_path: Path, capsys):
    from classifier.training import ClassifierConfig
    from pipelines.data.datasets import load_dataset
    from pipelines.data.splits import load_or_make_split
    from pipelines.feature_space import domain_space

    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, tmp_path)
    path = tmp_path / "features" / "domain_32px.pt"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 torn")
    cfg = ClassifierConfig(steps=2, batch_size=16, eval_every=2, sampling="balanced")
    with contextlib.suppress(UserError):  # 2 steps learn nothing; what matters is the file
        domain_space(ds, split, tmp_path, torch.device("cpu"), progress=False, cfg=cfg)
    assert f"note: {path} is unreadable" in capsys.readouterr().err
    assert torch.load(path, weights_only=True)["split_id"]  # written again, readable


def test_a_truncated_last_pt_under_augment_and_compare_is_a_one_line_error(
    clean_compare: Path, tmp_path: Path
):
    run_dir = Path(shutil.copytree(clean_compare, tmp_path / "run"))
    (run_dir / "jobs" / "gan__df.json").unlink()  # the GAN job runs again and reads last.pt
    last = run_dir / "gan" / "df" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    msg = one_line_error(
        invoke_cli(augment_and_compare, ["--run-dir", str(run_dir), *COMPARE], False)
    )
    assert f"{last} is not a readable checkpoint" in msg
    assert f"copy {last.parent / 'best.pt'} over it" in msg and f"delete {last.parent}" in msg


def test_resume_drops_a_torn_last_line_of_metrics_jsonl(trained: Path):
    metrics = trained / "gan" / "df" / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"kimg": 0.03, "step": 4, "loss_D"')  # killed mid-write
    invoke_cli(gan_train, ["--class", "df", "--run-dir", str(trained), "--kimg", "0.03",
                           "--resume", "--quiet"])  # fmt: skip
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and rows[-1]["kimg"] >= 0.03


def test_gan_sample_with_a_huge_n_is_refused_up_front(trained: Path, monkeypatch):
    gan_sample_module = sys.modules["pipelines.cli.gan_sample"]

    def no_work(*a, **k):
        raise AssertionError("the work started: the memory check let 10,000,000 through")

    monkeypatch.setattr(gan_sample_module, "load_feature_space", no_work)
    args = ["--n", "10000000", "--run-dir", str(trained), "--quiet"]
    msg = one_line_error(invoke_cli(gan_sample, args, False))
    assert "--n 10,000,000 draws a pool of 20,000,000 images" in msg and "GiB" in msg
    assert "lower --n" in msg


# ---------------------------------------------------------------- low


def test_a_killed_gan_sample_leaves_no_temporary_folders(trained: Path):
    args = ["--n", "4", "--run-dir", str(trained), "--quiet", "--filter", "none"]
    run_killed("gan_sample", args, "pipelines.sampling", "new_temp_dir")
    samples = trained / "samples"
    assert [p.name[:8] for p in samples.iterdir() if p.name != ".raregan.lock"] == [".df.tmp-"]
    (samples / ".df.a1b2c3d4").mkdir()  # an older version's leftover (mkdtemp's name)
    (samples / ".dfx.tmp-00000000").mkdir()  # another class's: not ours to touch
    invoke_cli(gan_sample, args)
    left = sorted(p.name for p in samples.iterdir())
    assert left == [".dfx.tmp-00000000", "df"]


def test_outputs_respect_the_umask(trained: Path, tmp_path: Path):
    from pipelines.rundir import atomic_write_text, new_temp_dir

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
        assert new_temp_dir(tmp_path, ".x.").stat().st_mode & 0o777 == 0o750
        os.umask(0o022)
        invoke_cli(gan_sample, ["--n", "4", "--run-dir", str(trained), "--quiet",
                                "--filter", "none"])  # fmt: skip
    finally:
        os.umask(old)
    out = trained / "samples" / "df"
    assert out.stat().st_mode & 0o777 == 0o755  # was 0700 (mkdtemp)
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o644
    ckpt = trained / "gan" / "df" / "last.pt"  # was 0600 (mkstemp)
    assert ckpt.stat().st_mode & 0o777 == 0o644


def test_filter_none_does_not_train_the_feature_network(trained: Path):
    result = invoke_cli(gan_sample, ["--n", "4", "--run-dir", str(trained), "--filter", "none"])
    assert not (trained / "features").exists()
    summary = json.loads((trained / "samples" / "df" / "summary.json").read_text())
    assert summary["kept"] == 4 and summary["verdict"].startswith("not measured")
    assert "not measured" in result.output


def test_a_generator_trained_on_other_data_is_refused(trained: Path, tmp_path: Path):
    ckpt = torch.load(trained / "gan" / "df" / "last.pt", weights_only=True)
    ckpt["extra"]["data_fingerprint"] = "0123456789abcdef"
    torch.save(ckpt, tmp_path / "foreign.pt")
    args = ["--n", "4", "--run-dir", str(trained), "--filter", "none", "--checkpoint"]
    msg = one_line_error(invoke_cli(gan_sample, [*args, str(tmp_path / "foreign.pt")], False))
    assert "was trained on other data (fingerprint 0123456789abcdef" in msg
