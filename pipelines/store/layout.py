"""Every path of a run directory, in one place.

    <run>/experiment.json                 what augment-and-compare was asked (--config reruns it)
    <run>/split.json                      the lesion-level split and the data fingerprint
    <run>/features/domain_<S>px_<key>.pt  the domain feature network, keyed by its training
    <run>/gan/<class>/{last,best}.pt      one GAN per class (the source GAN: gan/all/)
    <run>/samples/<set>/<class>/          one filtered (or unfiltered) sample set per class
    <run>/compare/<id>/<arm>/seed<k>/     one classifier per arm and seed; <id> keys the
                                          comparison, report.md and results.json sit beside
    <run>/jobs/<job>.json                 done-markers (<job>.running while a job runs)
    <run>/tb/<job>/                       TensorBoard events of each GAN and classifier job
    <run>/folds/k<f>/                     with --folds K: fold f's own run directory, as above
    <run>/gan/all/doses/kimg<d>.pt        with --gan-doses: the source GAN at each dose
    <run>/doses/kimg<d>/{gan,samples}/    with --gan-doses: the fine-tunes and samples of dose d
    <run>/scarce/n<n>/                    with --rare-n: a whole run directory per level n

Commands and jobs ask a RunLayout for a path and never build one themselves, so a folder's
name has one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCE = "all"  # the class name of the all-classes source GAN (gan/all/)


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def experiment_file(self) -> Path:
        return self.root / "experiment.json"

    @property
    def split_file(self) -> Path:
        return self.root / "split.json"

    def fold(self, f: int) -> RunLayout:
        """Fold f's own run directory (--folds K)."""
        return RunLayout(self.root / "folds" / f"k{f}")

    def dose(self, kimg: float | None) -> RunLayout:
        """Where the fine-tuned GANs and sample sets of one generator dose live (--gan-doses);
        None: this run directory's own (no dose study)."""
        return self if kimg is None else RunLayout(self.root / "doses" / f"kimg{kimg:g}")

    def scarce(self, n: int) -> RunLayout:
        """One scarcity level's own run directory (--rare-n): n training lesions per rare
        class, and everything trained on them."""
        return RunLayout(self.root / "scarce" / f"n{n}")

    def source_snapshot(self, kimg: float) -> Path:
        """The source GAN's checkpoint at `kimg`, kept for the dose study."""
        return self.gan_dir(SOURCE) / "doses" / f"kimg{kimg:g}.pt"

    # ------------------------------------------------------------------ feature network
    def feature_network(self, size: int, key: str) -> Path:
        return self.root / "features" / f"domain_{size}px_{key}.pt"

    def legacy_feature_network(self, size: int) -> Path:
        """Where raregan before keyed caches kept it (read if its saved config matches)."""
        return self.root / "features" / f"domain_{size}px.pt"

    # ------------------------------------------------------------------ GANs
    @property
    def gan_root(self) -> Path:
        return self.root / "gan"

    def gan_dir(self, cls: str) -> Path:
        return self.gan_root / cls

    def trained_classes(self) -> list[str]:
        """Classes with a checkpoint, the source GAN excepted."""
        return sorted({p.parent.name for p in self.gan_root.glob("*/*.pt")} - {SOURCE})

    # ------------------------------------------------------------------ samples
    @property
    def samples_root(self) -> Path:
        return self.root / "samples"

    def samples_dir(self, folder: str, cls: str) -> Path:
        return self.samples_root / folder / cls

    # ------------------------------------------------------------------ classifiers, report
    def comparison_dir(self, comparison_id: str) -> Path:
        return self.root / "compare" / comparison_id

    def classifier_dir(self, comparison_id: str, arm: str, seed: int) -> Path:
        return self.comparison_dir(comparison_id) / arm / f"seed{seed}"

    @property
    def report_file(self) -> Path:
        return self.root / "report.md"

    @property
    def results_file(self) -> Path:
        return self.root / "results.json"

    # ------------------------------------------------------------------ jobs
    def marker(self, job_name: str) -> Path:
        return self.root / "jobs" / f"{job_name.replace('/', '__')}.json"

    def running_marker(self, job_name: str) -> Path:
        return self.marker(job_name).with_suffix(".running")

    def tensorboard_dir(self, job_name: str) -> Path:
        """A job's TensorBoard events (gan/df, classifier/gan/seed0, fold0/gan/df): all under
        one tb/, so `tensorboard --logdir <run>/tb` shows every job of the run side by side."""
        return self.root / "tb" / job_name

    # ------------------------------------------------------------------ protection
    def managed(self, own: Path | None = None) -> dict[str, Path]:
        """The folders this run directory's jobs write, by what they hold (pipelines.store.
        guard keeps replaced folders out of them), less `own`: the one the replaced kind of
        folder lives in (gan-train's GAN runs in gan/, gan-sample's sets in samples/)."""
        folders = {
            "the feature networks": self.feature_network(0, "").parent,
            "the GAN runs": self.gan_root,
            "the sample sets": self.samples_root,
            "the classifiers": self.comparison_dir("x").parent,
            "the done-markers": self.marker("").parent,
            "the TensorBoard events": self.tensorboard_dir("x").parent,
            "the folds": self.fold(0).root.parent,
            "the dose study": self.dose(1.0).root.parent,
            "the scarcity study": self.scarce(1).root.parent,
        }
        mine = None if own is None else Path(own).resolve()
        return {
            f"{what} of the run directory": path
            for what, path in folders.items()
            if mine is None or path.resolve() != mine
        }
