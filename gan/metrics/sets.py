"""One generated set against one real reference set: every number labelled with space and n.

Generator quality is judged on **held-out** reals (the class's validation images, which neither
the GAN nor the filter ever sees); the same numbers against the training reals stay as a
diagnostic, since a generator that memorises its ~80 training images scores well there.
The real-vs-real floor (training reals scored against the held-out reals) says what "as good
as real data" looks like in that space at those sample sizes: a KID near the floor is the best
any generator can show.
"""

from __future__ import annotations

import torch

from gan.metrics.features import FeatureSpace, metric_label
from gan.metrics.fid import fid
from gan.metrics.kid import kid
from gan.metrics.precision_recall import precision_recall


def fid_at_n(reference: torch.Tensor, generated: torch.Tensor, n: int, draws: int = 5) -> float:
    """Mean FID of `draws` random n-subsets of `generated` (FID's bias depends on n: this puts
    a generated set on the floor's footing, whose 'generated' side has n training reals)."""
    if len(generated) <= n:
        return fid(reference, generated)
    g = torch.Generator().manual_seed(0)
    subsets = [torch.randperm(len(generated), generator=g)[:n] for _ in range(draws)]
    return sum(fid(reference, generated[s]) for s in subsets) / draws


def set_metrics(
    reference: torch.Tensor,
    generated: torch.Tensor,
    space: FeatureSpace,
    match_n: int | None = None,
    precision_recall_k: int | None = 3,
) -> dict:
    """FID, KID (mean ± subset sd), optionally precision/recall, and with `match_n` also FID of
    match_n-subsets of the generated set (comparable with a floor of that n)."""
    n_ref, n_gen = len(reference), len(generated)
    kid_mean, kid_std = kid(reference, generated)
    out = {
        "n": n_gen,
        "n_reference": n_ref,
        "fid": fid(reference, generated),
        "fid_label": metric_label("FID", space, n_ref, n_gen),
        "kid": kid_mean,
        "kid_std": kid_std,
        "kid_label": metric_label("KID", space, n_ref, n_gen),
    }
    if match_n is not None and match_n >= 2:
        out["fid_matched"] = fid_at_n(reference, generated, match_n)
        out["fid_matched_label"] = metric_label("FID", space, n_ref, min(match_n, n_gen))
    if precision_recall_k:
        out["precision"], out["recall"] = precision_recall(reference, generated, precision_recall_k)
    return out


def real_floor(train: torch.Tensor, heldout: torch.Tensor, space: FeatureSpace) -> dict:
    """Training reals scored as if generated, against the held-out reals."""
    return set_metrics(heldout, train, space, precision_recall_k=None)
