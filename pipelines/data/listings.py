"""Listing a file-based layout (HAM10000, ISIC, ImageFolder) before any pixel is decoded: which
files, under which image ids, lesions and labels. Messy listings are refused here by name and
line (UserError), or repaired with a note when the repair is unambiguous: exact duplicate CSV
rows are merged, a blank lesion_id makes an image its own lesion.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines import errors
from pipelines.errors import UserError

LAYOUTS_HELP = (
    "a HAM10000 folder (HAM10000_metadata.csv + JPEGs), an ISIC challenge folder "
    "(ground-truth CSV with image,MEL,NV,... columns + JPEGs), a MedMNIST .npz file, "
    "an ImageFolder (one subfolder of images per class), or 'demo'"
)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
HAM_COLUMNS = ("lesion_id", "image_id", "dx")
ISIC_CLASSES = {
    "MEL": "mel",
    "NV": "nv",
    "BCC": "bcc",
    "AKIEC": "akiec",
    "BKL": "bkl",
    "DF": "df",
    "VASC": "vasc",
}
DERMAMNIST_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")  # its label order
HAM10000_CLASSES = DERMAMNIST_CLASSES  # the dx codes of HAM10000_metadata.csv


@dataclass
class Listing:
    """What a file-based format says before any pixel is decoded."""

    paths: list[Path | None]  # None: listed in the CSV but not found on disk
    labels: np.ndarray
    class_names: list[str]
    image_ids: list[str]
    lesion_ids: list[str]


def detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix == ".npz":
            return "medmnist"
        raise UserError(f"{path} is a file but not a MedMNIST .npz; expected {LAYOUTS_HELP}")
    if (path / "HAM10000_metadata.csv").is_file():
        return "ham10000"
    if _find_isic_csv(path) is not None:
        return "isic"
    if any(_class_dirs(path)):
        return "imagefolder"
    raise UserError(f"{path} is in no known layout; expected {LAYOUTS_HELP} (or force --format)")


_NOTED: set[str] = set()


def note(message: str) -> None:
    """Say a repair of the input once per process: a command may load its data once per job,
    and the same note each time would bury the rest."""
    if message not in _NOTED:
        _NOTED.add(message)
        errors.note(message)


def _read_csv(path: Path, needed: tuple[str, ...]) -> tuple[list[dict[str, str]], list[int]]:
    """The rows (a short row's missing cells read as ""), and the line each ends on: messages
    name lines, and csv skips blank lines, so counting rows would misnumber the ones after."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, restval="")
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"{path} lacks the column(s) {', '.join(missing)}; it needs {', '.join(needed)}"
            )
        rows, lines = [], []
        for row in reader:
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise UserError(f"{path} has a header but no rows; it lists no images: add its rows")
    return rows, lines


def _images_below(root: Path) -> dict[str, Path]:
    """Image files anywhere below root, by file stem (the image id in CSV-based formats). Two
    files of one stem are refused: which of them the CSV row means cannot be known."""
    found: dict[str, Path] = {}
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            if stem in found:
                raise UserError(
                    f"{root}: image id {stem} has two files, {found[stem].relative_to(root)} "
                    f"and {path.relative_to(root)}; keep one of them"
                )
            found[stem] = path
    return found


def _listing(rows: list[tuple[str, str, str]], files: dict[str, Path]) -> Listing:
    """rows: (image_id, lesion_id, class_name). Classes are sorted, so indices agree across
    formats that share class names (HAM10000 <-> ISIC <-> DermaMNIST)."""
    class_names = sorted({r[2] for r in rows})
    index = {c: i for i, c in enumerate(class_names)}
    return Listing(
        paths=[files.get(r[0]) for r in rows],
        labels=np.array([index[r[2]] for r in rows], dtype=np.int64),
        class_names=class_names,
        image_ids=[r[0] for r in rows],
        lesion_ids=[r[1] for r in rows],
    )


def list_ham10000(root: Path, allow_new_classes: bool = False) -> Listing:
    """The metadata CSV's rows, checked before any pixel: labels (_refuse_unknown_labels), one
    row per image (_one_row_per_id), and a lesion for every image (_own_lesion_when_blank)."""
    csv_path = root / "HAM10000_metadata.csv"
    if not csv_path.is_file():
        raise UserError(f"{root} has no HAM10000_metadata.csv; point --data at the HAM10000 folder")
    table, lines = _read_csv(csv_path, HAM_COLUMNS)
    rows = [(r["image_id"], r["lesion_id"], r["dx"]) for r in table]
    if not allow_new_classes:
        _refuse_unknown_labels(csv_path, [r[2] for r in rows], HAM10000_CLASSES, "dx", lines)
    keep = _one_row_per_id(
        csv_path, "image_id", [r[0] for r in rows], [r[1:] for r in rows], lines, "lesion_id/dx"
    )
    rows, lines = [rows[i] for i in keep], [lines[i] for i in keep]
    return _listing(_own_lesion_when_blank(csv_path, rows, lines), _images_below(root))


def _refuse_unknown_labels(
    csv_path: Path, labels: list[str], known, column: str, lines: list[int]
) -> None:
    """A label outside the format's class set is a typo far more often than a new class, and
    would silently become one ('MEL' next to 'mel'): refuse it by name."""
    first: dict[str, int] = {}
    for line, label in zip(lines, labels):
        if label not in known:
            first.setdefault(label, line)
    if first:
        found = ", ".join(f"{label!r} (line {line})" for label, line in list(first.items())[:5])
        raise UserError(
            f"{csv_path}: {column} value(s) {found} are not classes of this format "
            f"({', '.join(known)}); fix them, or pass --allow-new-classes to keep them as new "
            "classes"
        )


def _one_row_per_id(
    csv_path: Path,
    id_column: str,
    ids: list[str],
    values: list[tuple[str, ...]],
    lines: list[int],
    what: str,
) -> list[int]:
    """Indices of the rows to keep, one per id (the first). An id on two rows with other
    values (`what`: another lesion, another label) is refused by id and line numbers: kept, it
    would put one image in two lesions, and so on both sides of the split, a test-set leak.
    Rows that repeat an id with the same values are exact duplicates: merged, with a note."""
    first: dict[str, int] = {}
    keep: list[int] = []
    conflicts: list[str] = []
    for n, (image, value) in enumerate(zip(ids, values)):
        if image not in first:
            first[image] = n
            keep.append(n)
        elif value != values[first[image]]:
            a = first[image]
            shown = ["/".join(v) for v in (values[a], value)]
            conflicts.append(
                f"{image!r} on line {lines[a]} ({shown[0]}) and line {lines[n]} ({shown[1]})"
            )
    if conflicts:
        raise UserError(
            f"{csv_path}: {len(conflicts)} row(s) repeat an {id_column} with another {what}, "
            f"first {conflicts[0]}; keep one row per image (one image in two lesions or "
            "classes would land on both sides of the split)"
        )
    if len(keep) < len(ids):
        note(
            f"{csv_path}: {len(ids) - len(keep)} exact duplicate row(s) merged (an {id_column} "
            f"repeated with the same {what})"
        )
    return keep


def _own_lesion_when_blank(
    csv_path: Path, rows: list[tuple[str, str, str]], lines: list[int]
) -> list[tuple[str, str, str]]:
    """rows with a blank lesion_id given the image id as lesion id, with a note saying how many.

    A blank cell says nothing about the lesion. Grouping all blank rows into one lesion ''
    would tie unrelated images together (all blank: one lesion, no validation or test images);
    refusing would stop a merely incomplete CSV. One lesion per image is what ISIC images
    without lesion groupings get; the note asks for the ids, since photos of one lesion kept
    apart could still land on both sides of the split."""
    blank = [n for n, r in enumerate(rows) if not r[1].strip()]
    if blank:
        note(
            f"{csv_path}: {len(blank)} of {len(rows)} rows have a blank lesion_id (first: line "
            f"{lines[blank[0]]}); each such image is taken as a lesion of its own (fill the "
            "ids in to keep photos of one lesion together)"
        )
    return [(i, les if les.strip() else i, c) for i, les, c in rows]


def _find_isic_csv(root: Path) -> Path | None:
    for csv_path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        if "image" in header and len(set(header) & set(ISIC_CLASSES)) >= 2:
            return csv_path
    return None


def list_isic(root: Path) -> Listing:
    """The ground-truth CSV's rows: exactly one diagnosis per row, one row per image (an
    image listed again with another diagnosis is refused by line, an exact repeat merged)."""
    csv_path = _find_isic_csv(root)
    if csv_path is None:
        raise UserError(
            f"{root} holds no ISIC ground-truth CSV (columns image,MEL,NV,BCC,AKIEC,BKL,DF,VASC)"
        )
    table, lines = _read_csv(csv_path, ("image",))
    diagnoses = [c for c in table[0] if c != "image"]
    rows = []
    for n, r in zip(lines, table):
        hot = [c for c in diagnoses if _number(r[c], csv_path, n, c) >= 0.5]
        if len(hot) != 1:
            raise UserError(
                f"{csv_path} line {n} ({r['image']}) has {len(hot)} diagnoses; "
                "each row needs exactly one 1.0"
            )
        rows.append((r["image"], ISIC_CLASSES.get(hot[0], hot[0].lower())))
    keep = _one_row_per_id(
        csv_path, "image", [r[0] for r in rows], [r[1:] for r in rows], lines, "diagnosis"
    )
    lesions = _isic_lesion_groupings(root)
    rows = [rows[i] for i in keep]
    return _listing([(i, lesions.get(i, i), c) for i, c in rows], _images_below(root))


def _number(cell: str | None, csv_path: Path, line: int, column: str) -> float:
    try:
        return float(cell or 0)
    except ValueError:
        raise UserError(
            f"{csv_path} line {line}, column {column}: {cell!r} is not a number; "
            "ground-truth cells hold 0.0 or 1.0"
        ) from None


def _isic_lesion_groupings(root: Path) -> dict[str, str]:
    """ISIC 2018 ships lesion ids in a separate CSV (image,lesion_id); use it when present.
    An image with a blank lesion_id is a lesion of its own; one under two lesion ids is
    refused by line (_one_row_per_id), since it would be split across parts."""
    for csv_path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, restval="")
            if not {"image", "lesion_id"} <= set(reader.fieldnames or []):
                continue
            rows, lines = [], []
            for r in reader:
                if r["lesion_id"].strip():
                    rows.append((r["image"], r["lesion_id"]))
                    lines.append(reader.line_num)
        ids, values = [r[0] for r in rows], [r[1:] for r in rows]
        keep = _one_row_per_id(csv_path, "image", ids, values, lines, "lesion_id")
        return {rows[i][0]: rows[i][1] for i in keep}
    return {}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())
    )


def list_imagefolder(root: Path) -> Listing:
    """Every image below each class folder; its id is its path without the extension, or with
    it where two files differ only in it (x.png and x.jpg are two images, not one)."""
    rows, files = [], {}
    for d in _class_dirs(root):
        images = [f for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_EXTENSIONS]
        stems = [f.with_suffix("") for f in images]
        for f, stem in zip(images, stems):
            twin = stems.count(stem) > 1
            image_id = f.relative_to(root).as_posix() if twin else stem.relative_to(root).as_posix()
            rows.append((image_id, image_id, d.name))
            files[image_id] = f
    if not rows:
        raise UserError(f"{root} has no class subfolders with images; expected {LAYOUTS_HELP}")
    return _listing(rows, files)
