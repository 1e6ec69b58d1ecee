"""The share of a set of images that an arm's classifiers call one class, with an interval over
new training seeds and new images: a recall on real test images, or the share of a
generator's fresh samples called the rare class (the generator's signature).

Seeds and images are crossed, as for a gain (classifier.gains): every seed's model sees the
same images, some images are hard for every model, some seeds call more of them. The
variance of the seed-averaged share is split as there (the seeds' spread plus the part they
share over an image-unit bootstrap; a lesion's photos are one unit). A share near 1 is the
case that matters here (synthetic arms call 99-100 % of fresh samples the class), where a
Wald interval collapses to zero width and misses on one side, so the variance is turned into
an effective number of images (the binomial variance at the share divided by the crossed
one) and the interval is Wilson's score interval at that n, with the crossed variance's
Welch-Satterthwaite degrees of freedom; with 1-3 effective misses (or hits) its end near the
bound is the Poisson one, where Wilson's is known to undercover (the "modified Wilson"
interval of Brown, Cai & DasGupta 2001). Where nothing varied (every seed called every image
the same), the effective n is the number of units. benchmarks/share_coverage.py measures its
coverage with known answers, down to shares of 0.999.
"""

from __future__ import annotations

import numpy as np

from classifier.crossed import LEVEL, Resamples, proportion, proportion_bounds


def share_interval(hits: np.ndarray, rs: Resamples, level: float = LEVEL) -> dict:
    """hits: S×N booleans (seed s's model calls image n the class); rs: a bootstrap over the
    images' units (classifier.gains.resamples of their lesion or sample ids)."""
    hits = np.asarray(hits, dtype=float)
    S, N = hits.shape
    units = len(np.unique(rs.image_lesion))
    w = rs.image_weights
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (w @ hits.T) / w.sum(1, keepdims=True)  # B×S
    pr = proportion(hits.mean(1), boot, units, S * N)
    return {
        "share": pr.p,
        "ci95": list(proportion_bounds(pr, level)),
        "n_eff": float(pr.n_eff),
        "df": float(pr.df),
        "seeds": S,
        "images": N,
        "units": units,
    }
