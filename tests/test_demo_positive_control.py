"""The demo's positive control can show a gain: the oracle arm, fed freshly painted mel lesions
(the demo painter is the true distribution: a perfect generator), finds more of the test set's
mel than the baseline, with an interval that excludes 0, at the quick profile's real classifier
budget (about two minutes on 2 cores).

Wired to the real training images instead (copies of what the baseline already has), the arm
would be oversampling: its recall would not clear oversampling's, which the last assertion
checks. The default demo command's run (AMD EPYC, 2 threads, fp32), whose classifiers these
are: mel recall baseline 0.51, oversample 0.67, oracle 0.78 (mean of 3 seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke_cli

from pipelines.cli import augment_and_compare
from pipelines.data.demo import DEMO_CLASS_NAMES


def test_fresh_mel_lesions_gain_mel_recall_on_the_demo(tmp_path: Path):
    run = tmp_path / "run"
    args = ["--run-dir", str(run), "--arms", "baseline,oversample,oracle"]
    args += ["--seeds", "3", "--quiet", "--precision", "fp32", "--threads", "2"]
    invoke_cli(augment_and_compare, args)
    results = json.loads((run / "results.json").read_text())
    gain = results["comparison"]["gains"]["oracle vs baseline: mel"]["recall"]
    assert gain["excludes_zero"] and gain["gain"] > 0.05, gain
    mel = DEMO_CLASS_NAMES.index("mel")
    recall = {a: m["recall_mean"][mel] for a, m in results["comparison"]["per_arm"].items()}
    assert recall["baseline"] < 0.8  # the demo's mel is hard: there is something to gain
    assert recall["oracle"] > recall["oversample"] + 0.05, recall
