"""One rule for every folder this tool replaces (--export-overwrite, gan-sample --overwrite,
gan-train --overwrite): what it would destroy is named and refused, in one line, first.

A replaced folder is deleted whole, so a target that is, holds or lies inside the data, the
external test set, the decode cache or a run directory's managed folders would take them with
it (an export into `--data` once deleted HAM10000's metadata and images, exit 0). And a
target that holds files this tool did not write as that kind of folder (its marker files
absent) is never deleted: the user's files are not ours to replace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import UserError


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder the tool writes and may replace, known by files only it puts there."""

    name: str  # "an export", ...
    marks: tuple[str, ...]  # any one of them present: the folder is this tool's, of this kind


EXPORT = FolderKind("an export", ("DATASET_CARD.md",))
SAMPLE_SET = FolderKind("a sample set", ("summary.json", "manifest.csv"))
GAN_RUN = FolderKind("a GAN run", ("reals.png", "run.json", "last.pt", "best.pt"))  # reals first


def protected_places(
    data: str | Path | None,
    external: str | Path | None = None,
    cache_dir: Path | None = None,
    managed: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """What no replaced folder may touch: the data and external test folders (where they
    are folders on disk, not the built-in demo), the decode cache and a run directory's
    managed folders (RunLayout.managed, less the one the folder kind lives in)."""
    places = {"the --data folder": data, "the --external-test folder": external}
    places["the decode cache"] = cache_dir
    out = {k: Path(v) for k, v in places.items() if v is not None and Path(v).exists()}
    return out | dict(managed or {})


def check_replaceable(
    target: Path, kind: FolderKind, option: str, protected: Mapping[str, Path]
) -> None:
    """Refuse to replace `target` if that would delete a protected place (target is it,
    holds it, or lies inside it) or files this tool did not write as `kind`."""
    here = Path(target).resolve()
    for what, place in protected.items():
        there = Path(place).resolve()
        relation = (
            "is" if here == there
            else "holds" if there.is_relative_to(here)
            else "lies inside" if here.is_relative_to(there)
            else None
        )  # fmt: skip
        if relation:
            raise UserError(
                f"{option} {target} {relation} {what} ({place}), which replacing it would "
                "delete; pass another folder"
            )
    if not here.is_dir():
        return
    found = sorted(p.name for p in here.iterdir())
    if found and not any((here / m).exists() for m in kind.marks):
        raise UserError(
            f"{option} {target} holds files raregan did not write as {kind.name} (e.g. "
            f"{', '.join(found[:3])}); pass another folder, or empty this one yourself"
        )
