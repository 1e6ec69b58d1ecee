"""Read any supported dataset into memory as square uint8 images, labels and lesion ids.

Every command starts here. File-based formats are listed first (cheap: a CSV and a directory
walk), fingerprinted from that listing, and decoded only when the decode cache has no entry for
(listing, file times, size): decoding 10,015 JPEGs is the slow part, and it happens once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.data.decode import decode_cached, square
from pipelines.errors import UserError

FORMATS = ("ham10000", "isic", "medmnist", "imagefolder", "demo")
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
class Dataset:
    """A whole dataset in memory. images: uint8 N×S×S×3; labels index into class_names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image_ids: list[str]
    lesion_ids: list[str]
    format: str
    source: str
    fingerprint: str  # of the data itself (listing + file sizes), not of the pixel size
    official_split: list[str] | None = None  # "train"/"val"/"test" per image (MedMNIST)
    skipped: dict[str, str] = field(default_factory=dict)  # image id -> why, left out on request

    @property
    def synthetic(self) -> bool:
        return self.format == "demo"

    def record(self) -> dict:
        """The data's identity, as every run record, checkpoint and sample set stores it."""
        return {
            "source": self.source,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "synthetic_demo_data": self.synthetic,
            "skipped_images": self.skipped,
        }

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))

    def class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise UserError(
                f"class {name!r} is not in {self.source}; its classes are "
                f"{', '.join(self.class_names)}"
            )
        return self.class_names.index(name)


@dataclass
class _Listing:
    """What a file-based format says before any pixel is decoded."""

    paths: list[Path | None]  # None: listed in the CSV but not found on disk
    labels: np.ndarray
    class_names: list[str]
    image_ids: list[str]
    lesion_ids: list[str]


# ---------------------------------------------------------------- entry point


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("RAREGAN_CACHE", Path(root) / "raregan"))


def load_dataset(
    source: str | os.PathLike | None,
    size: int,
    fmt: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
    workers: int | None = None,
    progress: bool = True,
    allow_new_classes: bool = False,
) -> Dataset:
    """Load `source` (a path, or None/'demo' for the built-in synthetic data) at size×size px.

    allow_new_classes: keep labels outside a format's fixed class set (HAM10000's dx codes) as
    classes of their own, instead of refusing them as typos ('MEL', 'melanoma', '')."""
    if source is None or str(source) == "demo" or fmt == "demo":
        return _load_demo(size)
    path = Path(source)
    if not path.exists():
        raise UserError(f"data path {path} does not exist; pass --data PATH or --data demo")
    fmt = fmt or detect_format(path)
    if fmt == "medmnist":
        return _load_medmnist(path, size)
    if fmt == "ham10000":
        listing = _list_ham10000(path, allow_new_classes)
    else:
        listing = {"isic": _list_isic, "imagefolder": _list_imagefolder}[fmt](path)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    images, ok, why = decode_cached(
        listing.paths, listing.image_ids, size, cache, workers, progress
    )
    bad = np.flatnonzero(~ok)
    skipped = {
        listing.image_ids[i]: "missing" if listing.paths[i] is None else why[i] or "unreadable"
        for i in bad
    }
    if skipped and not skip_bad_images:
        first = ", ".join(f"{i} ({k})" for i, k in list(skipped.items())[:5])
        raise UserError(
            f"{len(skipped)} of {len(ok)} images in {path} are missing or unreadable "
            f"(first: {first}); restore them, or pass --skip-bad-images to go on without them"
        )
    keep = np.flatnonzero(ok)
    ds = Dataset(
        images=images[keep],
        labels=listing.labels[keep],
        class_names=listing.class_names,
        image_ids=[listing.image_ids[i] for i in keep],
        lesion_ids=[listing.lesion_ids[i] for i in keep],
        format=fmt,
        source=str(path),
        fingerprint="",
        skipped=skipped,
    )
    ds.fingerprint = _fingerprint(fmt, listing, keep)
    return ds


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


# ---------------------------------------------------------------- formats


def _read_csv(path: Path, needed: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"{path} lacks the column(s) {', '.join(missing)}; it needs {', '.join(needed)}"
            )
        return list(reader)


def _images_below(root: Path) -> dict[str, Path]:
    """Image files anywhere below root, by file stem (the image id in CSV-based formats)."""
    found: dict[str, Path] = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS:
                found.setdefault(stem, Path(dirpath) / name)
    return found


def _listing(rows: list[tuple[str, str, str]], files: dict[str, Path]) -> _Listing:
    """rows: (image_id, lesion_id, class_name). Classes are sorted, so indices agree across
    formats that share class names (HAM10000 <-> ISIC <-> DermaMNIST)."""
    class_names = sorted({r[2] for r in rows})
    index = {c: i for i, c in enumerate(class_names)}
    return _Listing(
        paths=[files.get(r[0]) for r in rows],
        labels=np.array([index[r[2]] for r in rows], dtype=np.int64),
        class_names=class_names,
        image_ids=[r[0] for r in rows],
        lesion_ids=[r[1] for r in rows],
    )


def _list_ham10000(root: Path, allow_new_classes: bool = False) -> _Listing:
    csv_path = root / "HAM10000_metadata.csv"
    if not csv_path.is_file():
        raise UserError(f"{root} has no HAM10000_metadata.csv; point --data at the HAM10000 folder")
    table = _read_csv(csv_path, HAM_COLUMNS)
    rows = [(r["image_id"], r["lesion_id"], r["dx"]) for r in table]
    if not allow_new_classes:
        _refuse_unknown_labels(csv_path, [r[2] for r in rows], HAM10000_CLASSES, "dx")
    return _listing(rows, _images_below(root))


def _refuse_unknown_labels(csv_path: Path, labels: list[str], known, column: str) -> None:
    """A label outside the format's class set is a typo far more often than a new class, and
    would silently become one ('MEL' next to 'mel'): refuse it by name."""
    first: dict[str, int] = {}
    for line, label in enumerate(labels, start=2):  # line 1 is the header
        if label not in known:
            first.setdefault(label, line)
    if first:
        found = ", ".join(f"{label!r} (line {line})" for label, line in list(first.items())[:5])
        raise UserError(
            f"{csv_path}: {column} value(s) {found} are not classes of this format "
            f"({', '.join(known)}); fix them, or pass --allow-new-classes to keep them as new "
            "classes"
        )


def _find_isic_csv(root: Path) -> Path | None:
    for csv_path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        if "image" in header and len(set(header) & set(ISIC_CLASSES)) >= 2:
            return csv_path
    return None


def _list_isic(root: Path) -> _Listing:
    csv_path = _find_isic_csv(root)
    if csv_path is None:
        raise UserError(
            f"{root} holds no ISIC ground-truth CSV (columns image,MEL,NV,BCC,AKIEC,BKL,DF,VASC)"
        )
    table = _read_csv(csv_path, ("image",))
    diagnoses = [c for c in table[0] if c != "image"] if table else []
    rows = []
    for n, r in enumerate(table, start=2):
        hot = [c for c in diagnoses if _number(r[c], csv_path, n, c) >= 0.5]
        if len(hot) != 1:
            raise UserError(
                f"{csv_path} line {n} ({r['image']}) has {len(hot)} diagnoses; "
                "each row needs exactly one 1.0"
            )
        rows.append((r["image"], r["image"], ISIC_CLASSES.get(hot[0], hot[0].lower())))
    lesions = _isic_lesion_groupings(root)
    rows = [(i, lesions.get(i, i), c) for i, _, c in rows]
    return _listing(rows, _images_below(root))


def _number(cell: str | None, csv_path: Path, line: int, column: str) -> float:
    try:
        return float(cell or 0)
    except ValueError:
        raise UserError(
            f"{csv_path} line {line}, column {column}: {cell!r} is not a number; "
            "ground-truth cells hold 0.0 or 1.0"
        ) from None


def _isic_lesion_groupings(root: Path) -> dict[str, str]:
    """ISIC 2018 ships lesion ids in a separate CSV (image,lesion_id); use it when present."""
    for csv_path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if {"image", "lesion_id"} <= set(reader.fieldnames or []):
                return {r["image"]: r["lesion_id"] for r in reader if r["lesion_id"]}
    return {}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())
    )


def _list_imagefolder(root: Path) -> _Listing:
    rows, files = [], {}
    for d in _class_dirs(root):
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                image_id = f.relative_to(root).with_suffix("").as_posix()
                rows.append((image_id, image_id, d.name))
                files[image_id] = f
    if not rows:
        raise UserError(f"{root} has no class subfolders with images; expected {LAYOUTS_HELP}")
    return _listing(rows, files)


def _load_medmnist(path: Path, size: int) -> Dataset:
    try:
        with np.load(path) as npz:
            missing = [f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")]
            missing = [k for k in missing if k not in npz.files]
            if missing:
                raise UserError(
                    f"{path} lacks the array(s) {', '.join(missing)}; not a MedMNIST file"
                )
            parts = {s: (npz[f"{s}_images"], npz[f"{s}_labels"]) for s in ("train", "val", "test")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(
            f"{path} is not a readable .npz ({type(e).__name__}: truncated or damaged); "
            "download it again"
        ) from e
    images = np.concatenate([_to_rgb_size(p[0], size) for p in parts.values()])
    labels = np.concatenate([p[1].reshape(len(p[1]), -1)[:, 0] for p in parts.values()])
    split = [s for s, p in parts.items() for _ in range(len(p[1]))]
    ids = [f"{s}_{i:05d}" for s, p in parts.items() for i in range(len(p[1]))]
    n_classes = int(labels.max()) + 1
    derma = path.name.startswith("dermamnist") and n_classes <= len(DERMAMNIST_CLASSES)
    class_names = list(DERMAMNIST_CLASSES) if derma else [f"class_{i}" for i in range(n_classes)]
    return Dataset(
        images=images,
        labels=labels.astype(np.int64),
        class_names=class_names,
        image_ids=ids,
        lesion_ids=ids,
        format="medmnist",
        source=str(path),
        fingerprint=_file_hash(path),
        official_split=split,
    )


def _to_rgb_size(images: np.ndarray, size: int) -> np.ndarray:
    if images.ndim == 3:  # grayscale MedMNIST sets
        images = np.repeat(images[..., None], 3, axis=-1)
    return resize_images(images.astype(np.uint8), size)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 N×S×S×3 images at another square size, with the loader's antialiasing filter:
    how real and synthetic images alike reach a classifier smaller than the GANs."""
    if images.shape[1] == size:
        return images
    return np.stack([square(Image.fromarray(im), size) for im in images])


def _load_demo(size: int) -> Dataset:
    from pipelines.data.demo import DEMO_CLASS_NAMES, make_demo

    images, labels, image_ids, lesion_ids = make_demo(size)
    key = json.dumps({"demo": "v1", "n": len(labels), "ids": image_ids[-1]})
    return Dataset(
        images=images,
        labels=labels,
        class_names=list(DEMO_CLASS_NAMES),
        image_ids=image_ids,
        lesion_ids=lesion_ids,
        format="demo",
        source="demo",
        fingerprint="demo-" + hashlib.sha256(key.encode()).hexdigest()[:16],
    )


# ---------------------------------------------------------------- fingerprints and decoding


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _fingerprint(fmt: str, listing: _Listing, keep: np.ndarray) -> str:
    """Identity of the data: ids, lesions, classes and file sizes of the images loaded."""
    h = hashlib.sha256(fmt.encode())
    for i in keep:
        p = listing.paths[i]
        row = (listing.image_ids[i], listing.lesion_ids[i], listing.class_names[listing.labels[i]])
        h.update(f"{row}|{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]
