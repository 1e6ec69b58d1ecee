"""The arms of the comparison: training sets that differ only in how the rare classes grow.

  baseline        real training images;
  oversample      real images, the rare classes resampled with replacement to the target count;
  reweight        the baseline's images, trained with the logit-adjusted loss (Menon et al.
                  2021): the control that rebalances without adding a single image;
  gan             real images plus filtered synthetic images up to the target count;
  oversample+gan  the standard practice plus synthetic images: of the images a rare class
                  needs to reach its target, a share --synthetic-share are (filtered)
                  synthetic and the rest resampled real ones (share 0 = oversample, 1 = gan);
  gan-unfiltered  the same count of synthetic images drawn without the filter;
  gan-then-real   gan's training set, but the last REAL_TAIL of the step budget draws real
                  images only: a classifier that learnt "looks generated" as a cue for the
                  rare classes (the generator's signature) gets the chance to unlearn it;
  gan-all-classes gan's rare-class images, and every other class as large a share of
                  synthetic images from its own fine-tune (training_set.companion_counts):
                  "looks generated" then says little about the class;
  oracle          the positive control: as gan, but the added images are real images of
                  held-back training lesions (--oracle-share, or what a scarcity level cuts),
                  i.e. a perfect generator's output; oversample+oracle likewise for
                  oversample+gan. Their gain is what any generator could buy at this n.
Every arm gets the same classifier, recipe, optimiser step budget and seeds; reweight differs
from baseline in the loss only. Each arm is one ArmSpec in ARM_SPECS: its training set, loss,
sample set, gain pairs and place in the report all derive from it, so adding an arm is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass

REWEIGHT_TAU = 1.0  # Menon et al.'s default
REAL_TAIL = 0.25  # gan-then-real: the share of the step budget, at its end, on real images only


@dataclass(frozen=True)
class SampleSet:
    """A synthetic sample set per rare class, drawn by a `samples` job from the class's GAN."""

    name: str  # as the arms' `synthetic` names it
    folder: str  # <run>/samples/<folder>/<class>/
    filter: str  # gan-sample's --filter: fid | none
    matched_to: str | None = None  # keeps no more images than this set reached (same counts)


@dataclass(frozen=True)
class ArmSpec:
    """One arm: how its rare classes grow to their target, and what it is compared with."""

    name: str
    oversample: bool = False  # real images of the rare classes resampled with replacement
    synthetic: str | None = None  # the SampleSet its synthetic images come from
    shared: bool = False  # with both: --synthetic-share of the added images are synthetic
    logit_adjust_tau: float = 0.0  # > 0: the logit-adjusted loss (reweight)
    control: bool = False  # an arm without synthetic images, that synthetic arms must beat
    headline: bool = False  # its gains over every control lead the report
    default: bool = True  # in --arms by default
    also_vs: tuple[str, ...] = ()  # gains over these arms too, after the headline ones
    held_back: bool = False  # adds held-back lesions' real images where gan adds synthetic ones
    real_tail: float = 0.0  # the last share of the step budget sees real images only
    all_classes: bool = False  # the classes that are not rare get synthetic images too

    def synthetic_count(self, extra: int, synthetic_share: float) -> int:
        """Of the `extra` images a rare class needs to reach its target, how many are
        synthetic (or, for an oracle arm, held-back reals; the rest are resampled real ones
        where the arm oversamples)."""
        if self.synthetic is None and not self.held_back:
            return 0
        return round(synthetic_share * extra) if self.shared else extra


SAMPLE_SETS = {
    s.name: s
    for s in (
        SampleSet("gan", "filtered", "fid"),
        SampleSet("gan-unfiltered", "unfiltered", "none", matched_to="gan"),
    )
}


ARM_SPECS = {
    a.name: a
    for a in (
        ArmSpec("baseline", control=True),
        ArmSpec("oversample", oversample=True, control=True, also_vs=("baseline",)),
        ArmSpec("reweight", logit_adjust_tau=REWEIGHT_TAU, control=True, also_vs=("baseline",)),
        ArmSpec("gan", synthetic="gan", headline=True, also_vs=("gan-unfiltered", "oracle")),
        ArmSpec(
            "oversample+gan",
            oversample=True,
            synthetic="gan",
            shared=True,
            headline=True,
            also_vs=("oversample+oracle",),
        ),  # fmt: skip
        ArmSpec("gan-unfiltered", synthetic="gan-unfiltered", default=False, also_vs=("baseline",)),
        ArmSpec(
            "gan-then-real",
            synthetic="gan",
            real_tail=REAL_TAIL,
            headline=True,
            default=False,
            also_vs=("gan", "oracle"),
        ),  # fmt: skip
        ArmSpec(
            "gan-all-classes",
            synthetic="gan",
            all_classes=True,
            headline=True,
            default=False,
            also_vs=("gan", "oracle"),
        ),  # fmt: skip
        ArmSpec("oracle", held_back=True, headline=True, default=False),
        ArmSpec(
            "oversample+oracle",
            oversample=True,
            held_back=True,
            shared=True,
            headline=True,
            default=False,
        ),  # fmt: skip
    )
}


ARMS = tuple(ARM_SPECS)


DEFAULT_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec.default)
ORACLE_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec.held_back)  # positive controls


def default_arms(held_back: bool, demo: bool) -> tuple[str, ...]:
    """The arms a run compares unless told: the default ones, with every oracle arm where
    training lesions are held back, and on the demo (whose painter draws fresh lesions: a
    perfect generator for free) `oracle` alone, to keep the first command short."""
    if held_back:
        return DEFAULT_ARMS + ORACLE_ARMS
    return DEFAULT_ARMS + (("oracle",) if demo else ())


CONTROLS = tuple(a for a, spec in ARM_SPECS.items() if spec.control)


HEADLINE_ARMS = tuple(a for a, spec in ARM_SPECS.items() if spec.headline)


GAIN_PAIRS = [  # (arm, reference): the gains the report shows, headline first
    *[(arm, ref) for arm in HEADLINE_ARMS for ref in CONTROLS],
    *[(arm, ref) for arm, spec in ARM_SPECS.items() for ref in spec.also_vs],
]


GAIN_METRICS = ("recall", "prior_matched_recall", "average_precision")  # each gain, per pair
# The smallest gain worth having (--margin; the same for every metric): an interval below it
# reads "no gain larger than", and a comparison that cannot detect it (minimum detectable gain
# above it) "cannot tell".
DEFAULT_MARGIN = 0.05


def oracle_twin(arm: str) -> str | None:
    """The oracle arm a synthetic arm is measured against: its gap to a perfect generator."""
    return next((r for r in ARM_SPECS[arm].also_vs if ARM_SPECS[r].held_back), None)


def companion_sets(arms: tuple[str, ...]) -> list[SampleSet]:
    """The sample sets the classes that are not rare need (those of the all-classes arms)."""
    wanted = {ARM_SPECS[a].synthetic for a in arms if ARM_SPECS[a].all_classes}
    return [s for name, s in SAMPLE_SETS.items() if name in wanted]


def sample_sets(arms: tuple[str, ...]) -> list[SampleSet]:
    """The sample sets the arms draw from, each after the set it is matched to."""
    wanted = {ARM_SPECS[a].synthetic for a in arms} - {None}
    return [s for name, s in SAMPLE_SETS.items() if name in wanted]
