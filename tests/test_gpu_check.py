"""benchmarks/gpu_check.py's code, run here in its CPU mode (--tiny: the smoke profile on the
demo data) on a finished smoke run, so that the script a GPU session runs once is known to work
to its last table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, subprocess_env


def test_gpu_check_writes_its_three_tables_in_tiny_mode(compared: Path, tmp_path: Path):
    out = tmp_path / "gpu_check.md"
    same_run = ["--classes", "df,vasc", "--target", "50", "--precision", "fp32", "--threads", "1"]
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--run-dir",
         str(compared), "--out", str(out), "--", *same_run],
        check=True, cwd=tmp_path, env=subprocess_env(), capture_output=True,
    )  # fmt: skip
    text = out.read_text()
    for part in ("## 1. The full profile's units", "## 2. Classifiers side by side",
                 "## 3. One comparison end to end"):  # fmt: skip
        assert part in text
    assert "| GAN training (images/s) |" in text and "| 2 side by side |" in text
    assert "| **total** |" in text  # the whole comparison's estimate
    assert "headline: [SYNTHETIC demo data] df gan vs baseline: recall" in text
