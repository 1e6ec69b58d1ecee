"""Tiny self-made datasets in every supported layout (no real data needed)."""

from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HAM10000 = Path(
    os.environ.get(
        "RAREGAN_HAM10000", Path(__file__).resolve().parents[1] / "../shared/data/HAM10000"
    )
)
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
