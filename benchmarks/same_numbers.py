"""Do two runs give the same numbers? Compares two results.json files (or run directories)
value by value, every gain, interval, per-arm figure and sample-set measure, and lists what
differs; wall times, versions, host names and paths are not numbers of the experiment and
are left out. Used to show that a refactoring changed no result:

    python benchmarks/same_numbers.py runs/before runs/after
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

IGNORED_KEYS = {  # how long, where and with what it ran; not what it found
    "wall_seconds", "versions", "seconds", "train_seconds", "where", "finished", "_dir",
    "run_dir", "report", "cpu", "host", "created", "started", "command", "source",
}  # fmt: skip


def load(path: Path) -> dict:
    path = Path(path)
    return json.loads((path / "results.json" if path.is_dir() else path).read_text())


def differences(a, b, where: str = "") -> list[str]:
    """Every place where a and b differ (floats compared exactly: a refactoring must not move
    a single bit; NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in IGNORED_KEYS:
                continue
            if k not in a or k not in b:
                out.append(f"{where}/{k}: only in {'second' if k in b else 'first'}")
            else:
                out += differences(a[k], b[k], f"{where}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, str) and isinstance(b, str) and ("/" in a or "/" in b):
        return []  # a path: where the run was, not what it found
    same = a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )
    return [] if same else [f"{where}: {a!r} vs {b!r}"]


def count_numbers(x) -> int:
    if isinstance(x, dict):
        return sum(count_numbers(v) for k, v in x.items() if k not in IGNORED_KEYS)
    if isinstance(x, list):
        return sum(count_numbers(v) for v in x)
    return int(isinstance(x, int | float) and not isinstance(x, bool))


def main(first: str, second: str) -> int:
    a, b = load(Path(first)), load(Path(second))
    diff = differences(a, b)
    print(f"{count_numbers(a)} numbers compared: {len(diff)} differ")
    for line in diff[:50]:
        print(" ", line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
