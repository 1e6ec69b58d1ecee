"""What every command shares: --device, output directories checked before any work
(pipelines.store.records), and files written with the user's umask (gan.conventions)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import invoke_cli, one_line_error, subprocess_env

from pipelines.cli import augment_and_compare, gan_sample, gan_train


@pytest.mark.parametrize("command", [gan_train, gan_sample, augment_and_compare])
def test_device_gpu_is_a_one_line_error(command, tmp_path: Path):
    args = {gan_train: ["--class", "df"], gan_sample: ["--n", "4"]}.get(command, [])
    msg = one_line_error(
        invoke_cli(command, [*args, "--run-dir", str(tmp_path), "--device", "gpu"], False)
    )
    assert "--device gpu: not a device; use auto, cpu, cuda or cuda:N" in msg


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


def _unwritable_error(proc: subprocess.CompletedProcess) -> str:
    """The one 'Error' line of a refused command that could not write, with no traceback."""
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "is not writable by this user" in errors[0], errors
    return errors[0]


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
            error = _unwritable_error(_as_another_user(args, top))
            assert f"Error: {option} " in error
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_outputs_respect_the_umask(trained: Path, tmp_path: Path):
    from gan.conventions import atomic_write_text, new_temp_dir

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
        assert new_temp_dir(tmp_path, ".x.").stat().st_mode & 0o777 == 0o750
        os.umask(0o022)
        invoke_cli(gan_sample, ["--n", "4", "--run-dir", str(trained), "--quiet",
                                "--filter", "none", "--detect-steps", "0"])  # fmt: skip
    finally:
        os.umask(old)
    out = trained / "samples" / "df"
    assert out.stat().st_mode & 0o777 == 0o755  # was 0700 (mkdtemp)
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o644
    ckpt = trained / "gan" / "df" / "last.pt"  # was 0600 (mkstemp)
    assert ckpt.stat().st_mode & 0o777 == 0o644


def test_a_full_disk_is_a_one_line_error_naming_the_path_and_the_free_space(
    tmp_path: Path, monkeypatch
):
    from test_conventions import full_disk_temp_files

    run_dir = tmp_path / "run"
    full_disk_temp_files(monkeypatch, under=run_dir)  # the run directory's disk is full
    args = ["--run-dir", str(run_dir), "--profile", "smoke", "--classes", "df", "--quiet"]
    msg = one_line_error(invoke_cli(augment_and_compare, args, False))
    assert f"no space left on the device of {run_dir / 'split.json'}" in msg
    assert "free there" in msg and "rerun the same command" in msg
    assert [p.name for p in run_dir.iterdir()] == [".raregan.lock"]  # no temporary, no half


def test_a_cache_dir_that_is_a_file_is_a_one_line_error(imagefolder_dir: Path, tmp_path: Path):
    a_file = tmp_path / "cache"
    a_file.write_text("mine")
    for command, args in [
        (gan_train, ["--class", "cats", "--kimg", "0.02"]),
        (augment_and_compare, ["--classes", "cats", "--dry-run"]),
    ]:
        args = [*args, "--data", str(imagefolder_dir), "--run-dir", str(tmp_path / "run")]
        msg = one_line_error(invoke_cli(command, [*args, "--cache-dir", str(a_file)], False))
        assert f"--cache-dir {a_file} is a file, not a directory" in msg
    assert a_file.read_text() == "mine" and not (tmp_path / "run").exists()


def test_a_read_only_cache_dir_is_a_one_line_error(imagefolder_dir: Path):
    top = Path(tempfile.mkdtemp())  # not under pytest's 0700 tmp: the other user must reach it
    try:
        top.chmod(0o777)
        data = Path(shutil.copytree(imagefolder_dir, top / "data"))
        (top / "ro").mkdir(mode=0o555)
        (top / "ro").chmod(0o555)
        args = ["augment_and_compare", "--data", str(data), "--classes", "cats", "--dry-run",
                "--run-dir", str(top / "run"), "--cache-dir", str(top / "ro" / "c")]  # fmt: skip
        error = _unwritable_error(_as_another_user(args, top))
        assert f"--cache-dir {top / 'ro' / 'c'}" in error
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("command", [gan_train, gan_sample, augment_and_compare])
def test_a_path_component_too_long_for_the_filesystem_is_a_one_line_error(command, tmp_path: Path):
    args = {gan_train: ["--class", "df"], gan_sample: ["--n", "4"]}.get(command, [])
    long = tmp_path / ("x" * 300) / "run"
    msg = one_line_error(invoke_cli(command, [*args, "--run-dir", str(long)], False))
    assert f"--run-dir {long}: the name {'x' * 300} is too long" in msg
    if command is not gan_sample:
        data = tmp_path / ("d" * 300)
        last = "--quiet" if command is gan_train else "--dry-run"
        run = ["--run-dir", str(tmp_path / "run"), last]
        msg = one_line_error(invoke_cli(command, [*args, *run, "--data", str(data)], False))
        assert f"--data {data}: the name {'d' * 300} is too long" in msg


@pytest.mark.parametrize(
    "command, args",
    [(gan_sample, ["--n", "4", "--pool-factor", "nan"]),
     (augment_and_compare, ["--synthetic-share", "nan", "--dry-run"])],
)  # fmt: skip
def test_nan_is_not_in_any_range(command, args: list[str], tmp_path: Path):
    result = invoke_cli(command, [*args, "--run-dir", str(tmp_path / "run")], False)
    assert result.exit_code == 2 and "'nan' is not a number" in result.output
    assert not (tmp_path / "run").exists()
