"""pipelines.plots: the forest plot of the gains, drawn from hand-made gains."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors

from pipelines.plots import FOREST_METRICS, NS_COLOUR, forest_figure, forest_plot


def _gain(gain: float, lo: float, hi: float) -> dict:
    return {"gain": gain, "ci95": [lo, hi], "excludes_zero": lo > 0 or hi < 0, "test_lesions": 9}


def _gains() -> dict:
    """df: gan clearly better than baseline in every metric, oversample+gan n.s. in recall;
    vasc (listed between the df rows): every gain n.s."""
    out = {}
    for arm, ref, c, recall in [
        ("gan", "baseline", "df", _gain(0.2, 0.1, 0.3)),
        ("gan", "baseline", "vasc", _gain(0.05, -0.1, 0.2)),
        ("oversample+gan", "oversample", "df", _gain(0.1, -0.05, 0.25)),
    ]:
        sig = c == "df" and arm == "gan"
        other = _gain(0.1, 0.02, 0.2) if sig else _gain(0.0, -0.1, 0.1)
        out[f"{arm} vs {ref}: {c}"] = {
            "arm": arm, "reference": ref, "class": c, "recall": recall,
            "prior_matched_recall": other, "average_precision": other,
        }  # fmt: skip
    return out


def test_forest_rows_grouped_by_class_with_readable_labels():
    forest = forest_figure(_gains(), "test")
    assert forest.rows == ["df: gan − baseline", "df: oversample+gan − oversample",
                           "vasc: gan − baseline"]  # fmt: skip
    assert forest.significant == {
        "recall": [True, False, False],
        "prior_matched_recall": [True, False, False],
        "average_precision": [True, False, False],
    }
    ax = forest.figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == forest.rows and len(forest.figure.axes) == len(FOREST_METRICS)


def test_ns_rows_are_hollow_grey_and_significant_ones_filled_in_colour():
    forest = forest_figure(_gains())
    for ax, metric in zip(forest.figure.axes, FOREST_METRICS):
        points = [line for line in ax.get_lines() if line.get_gid() in ("significant", "n.s.")]
        assert len(points) == 3
        # drawn top to bottom: the y of each point gives its row
        by_row = sorted(points, key=lambda line: -line.get_ydata()[0])
        for line, sig in zip(by_row, forest.significant[metric]):
            assert line.get_gid() == ("significant" if sig else "n.s.")
            face = line.get_markerfacecolor()
            if sig:
                assert face != "none" and mcolors.to_rgb(face) != mcolors.to_rgb(NS_COLOUR)
            else:
                assert face == "none"
                assert mcolors.to_rgb(line.get_color()) == mcolors.to_rgb(NS_COLOUR)
        zero = [x for x in ax.get_lines() if list(x.get_xdata()) == [0, 0]]
        assert zero, "no zero line"


def test_forest_plot_writes_a_png(tmp_path: Path):
    path = tmp_path / "figures" / "forest.png"
    path.parent.mkdir()
    forest_plot(_gains(), path, "gains")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["forest.png"]  # no temporary left


def test_a_home_that_cannot_be_written_gives_no_matplotlib_warnings(tmp_path):
    """With HOME unwritable (here: absent), matplotlib warned twice about its config folder
    before any of the tool's own output; the figures module gives it a temporary one."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    env["HOME"] = str(tmp_path / "no-such-home")
    code = "import os, pipelines.plots; print(os.environ['MPLCONFIGDIR'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "raregan-matplotlib-" in done.stdout
