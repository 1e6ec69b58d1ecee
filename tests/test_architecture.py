"""The architecture as pyproject.toml declares it: import-linter's contracts hold on the tree,
and they would catch a new upward import or a click import below the commands (shown on a
temporary copy of the code, never on the tree itself); the size rules of the style guide."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "gan", "classifier")
LINT = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint(where: Path) -> subprocess.CompletedProcess:
    """lint-imports on the code under `where` (its own pyproject.toml, its own packages)."""
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"], cwd=where, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def copy_of_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("pipelines/store/layout.py", "from pipelines.graph import jobs", "stage folders"),
        ("pipelines/steps/plan.py", "import pipelines.results.collect", "stage folders"),
        ("pipelines/data/splits.py", "import click", "only pipelines.cli imports click"),
        ("gan/training.py", "import pipelines.errors", "never import pipelines"),
        ("pipelines/config/arms.py", "import torch", "without torch"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(copy_of_tree: Path, module, line, broken):
    path = copy_of_tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    done = _lint(copy_of_tree)
    assert done.returncode != 0
    assert "0 broken" not in done.stdout
    broken_lines = [x for x in done.stdout.splitlines() if x.endswith("BROKEN")]
    assert any(broken in x for x in broken_lines), done.stdout


def _python_files() -> list[Path]:
    return [f for p in PACKAGES for f in sorted((ROOT / p).rglob("*.py"))]


def test_modules_functions_and_parameter_lists_stay_short():
    """At most 450 lines a module, 60 a function, 8 parameters; at most three modules
    directly in pipelines/ besides __init__.py (the rest live in the stage folders)."""
    long = []
    for f in _python_files():
        src = f.read_text()
        if src.count("\n") > 450:
            long.append(f"{f.relative_to(ROOT)}: {src.count(chr(10))} lines")
        for n in ast.walk(ast.parse(src)):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                a = n.args
                self = 1 if a.args and a.args[0].arg in ("self", "cls") else 0
                params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - self
                if n.end_lineno - n.lineno + 1 > 60 or params > 8:
                    long.append(f"{f.relative_to(ROOT)}:{n.lineno} {n.name}")
    assert long == []
    top = sorted(p.name for p in (ROOT / "pipelines").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 3, top


def test_every_stage_folder_says_what_lives_there():
    for init in sorted((ROOT / "pipelines").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        where = init.relative_to(ROOT)
        assert doc and "import" in doc.lower(), f"{where} has no docstring on its imports"
