"""benchmarks/power.py's truth for AP: the population AP it solves the simulated gains on must
be the AP of an infinite test set, or its detection rates are measured against the wrong
gain."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier.gains import weighted_average_precision

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "power.py"


@pytest.fixture(scope="module")
def power():
    spec = importlib.util.spec_from_file_location("bench_power", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_population_ap_is_the_prevalence_without_signal_and_a_large_test_sets_ap(power):
    assert power.population_ap(0.0, 0.01) == pytest.approx(0.01, rel=1e-3)  # random ranking
    rng = np.random.default_rng(0)
    n_class, n_other = 20_000, 180_000  # prevalence 0.1
    scores = np.r_[rng.normal(3.0, power.SD_SCORE, n_class), rng.normal(0, power.SD_SCORE, n_other)]
    is_class = np.r_[np.ones(n_class, bool), np.zeros(n_other, bool)]
    empirical = weighted_average_precision(scores, is_class, np.ones((1, len(scores))))[0]
    assert power.population_ap(3.0, 0.1) == pytest.approx(empirical, abs=0.01)


def test_the_ap_centres_give_the_base_ap_and_the_gain(power):
    design = power.DESIGNS[0]
    prevalence = design.prevalence()
    base, better = power.ap_centres(design, 0.1)
    assert power.population_ap(base, prevalence) == pytest.approx(power.BASE_AP, abs=1e-6)
    assert power.population_ap(better, prevalence) == pytest.approx(power.BASE_AP + 0.1, abs=1e-6)


def test_a_wider_better_arm_still_gains_exactly_the_asked_ap(power):
    """--spread: the better arm's class scores spread 1.5 times as wide, its centre solved so
    that the population AP gain is still the one asked for (0 included)."""
    design = power.DESIGNS[2]
    prevalence = design.prevalence()
    for gain in (0.0, 0.1):
        base, better = power.ap_centres(design, gain, spread=1.5)
        assert better != base
        assert power.population_ap(better, prevalence, 1.5) == pytest.approx(
            power.population_ap(base, prevalence) + gain, abs=1e-6
        )
