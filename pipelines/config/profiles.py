"""Budgets of augment-and-compare: how long each GAN, classifier and feature network trains.

`quick` is sized from measurements on a 2-core CPU, `full` is meant for a GPU, `smoke` exists so
that tests and a first look finish in seconds (its numbers mean nothing).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Budgets. Epoch-based budgets are capped so small data (demo) finishes in minutes."""

    size: int
    gan_epochs: float  # passes over the class's training images ...
    gan_kimg_cap: float  # ... but at most this many kimg
    gan_kimg_min: float  # ... and at least this many (a tiny class still needs steps)
    gan_batch: int
    classifier_epochs: float  # passes over the baseline training set ...
    classifier_steps_cap: int  # ... but at most this many optimiser steps
    classifier_width: int
    classifier_stem_stride: int = 1  # 2: the classifier's stem halves the resolution
    classifier_size: int | None = None  # classifier input px (<= size); None: the GANs' size
    feature_epochs: float = 8  # domain feature network: passes over the training split ...
    feature_steps_cap: int = 600  # ... but at most this many steps
    feature_width: int = 32  # its first stage's channels (CompactCNN), and so its cost
    batch_size: int = 128  # classifier batch
    classifier_tta: bool = True  # predict with the mean over 8 flips/rotations (val and test)
    gan_arch: str = "resize"  # generator recipe: see gan.networks, docs/generator_budget.md
    gan_width: int = 64  # G's last and D's first stage channels (DCGAN's ngf = ndf)
    gan_loss: str = "ns"
    gan_r1_gamma: float = 0.0
    source_kimg: float = 0.0  # > 0: train an all-classes source GAN this long, fine-tune from it
    source_epochs: float = 4.0  # ... but at most this many passes over the training split
    source_sampling: str = "balanced"
    freeze_d: int = 1  # FreezeD blocks when fine-tuning from the source
    gan_eval_n: int = 500  # samples per GAN evaluation (KID against held-out reals); source 2x
    fresh_n: int = 256  # fresh samples per sample set: detectability's and the signature's


# fmt: off
PROFILES = {
    # 2-core CPU, full HAM10000: the GANs are spent as docs/generator_budget.md measured best:
    # a 25-kimg all-classes source, then 12-14 kimg fine-tunes per class. The classifier is
    # under-trained at CPU budgets (its best step is its last), so it takes every image at
    # 24 px (resized from the GANs' 32) and spends the time that saves on steps: 3700 of 64
    # images with 8-view TTA in the time 2400 took at 32 px (benchmarks/classifier_budget.py,
    # baseline val balanced accuracy over 4 seeds: see the README). 34 epochs reach the cap on
    # HAM10000; small data (demo) trains less.
    "quick": Profile(size=32, gan_epochs=150, gan_kimg_cap=14, gan_kimg_min=2, gan_batch=32,
                     classifier_epochs=34, classifier_steps_cap=3700, classifier_width=16,
                     classifier_size=24, batch_size=64, source_kimg=25),
    # meant for a GPU
    "full": Profile(size=64, gan_epochs=1000, gan_kimg_cap=150, gan_kimg_min=50,
                    gan_batch=64, classifier_epochs=40, classifier_steps_cap=8000,
                    classifier_width=64, feature_epochs=30, feature_steps_cap=3000,
                    source_kimg=300, source_epochs=50),
    # seconds, for tests and a first look at the outputs: the numbers mean nothing (no TTA:
    # its 8 views made predicting, mostly the signature's, half of a smoke run; 64 samples
    # per GAN evaluation and 64 fresh ones per sample set; GANs and a feature network of
    # width 16)
    "smoke": Profile(size=32, gan_epochs=5, gan_kimg_cap=0.2, gan_kimg_min=0.05, gan_batch=16,
                     classifier_epochs=1, classifier_steps_cap=20, classifier_width=8,
                     feature_epochs=12, feature_steps_cap=40, batch_size=32, source_kimg=0.1,
                     classifier_tta=False, gan_eval_n=64, feature_width=16, fresh_n=64,
                     gan_width=16),
}
# fmt: on
