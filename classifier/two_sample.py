"""Can a small CNN tell generated images from real ones? A classifier two-sample test
(Lopez-Paz & Oquab 2017).

KID and FID compare feature statistics; a classifier that must separate the two sets finds
whatever differs, in the pixels themselves: exactly the "generator's signature" that a
downstream classifier can learn instead of the lesion. The network trains on real training
images against kept synthetic ones (balanced), and is scored on images it never saw: held-out
reals against fresh samples of the same generator. Balanced accuracy 0.5 means the two are
indistinguishable to it; 1.0 that every generated image gives itself away.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from classifier.networks import CompactCNN
from classifier.training import ClassifierConfig, predict_proba, train_classifier
from gan.conventions import to_nchw

REAL, GENERATED = 0, 1


def detectability(
    real_train: np.ndarray,
    generated_train: np.ndarray,
    real_test: np.ndarray,
    generated_test: np.ndarray,
    steps: int = 300,
    seed: int = 0,
    real_test_lesions: list[str] | None = None,
) -> dict:
    """Balanced accuracy of a CompactCNN trained on uint8 N×S×S×3 real vs generated images and
    tested on the other two sets (each class's accuracy too), with its 95 % interval over the
    held-out lesions and samples (each real test image its own lesion unless
    real_test_lesions says otherwise). The last step is scored: nothing is chosen on the
    test images."""
    x = to_nchw(np.concatenate([real_train, generated_train]))
    y = torch.tensor([REAL] * len(real_train) + [GENERATED] * len(generated_train))
    cfg = ClassifierConfig(
        steps=steps, batch_size=64, sampling="balanced", eval_every=steps, seed=seed,
        label_smoothing=0.0,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = CompactCNN(2, width=16, feature_dim=64, input_size=real_train.shape[1])
    trained = train_classifier(model, (x, y), (x[:2], y[:2]), 2, cfg, progress=False)
    test = to_nchw(np.concatenate([real_test, generated_test]))
    called = predict_proba(trained.model, test).argmax(1).numpy()
    lesions = real_test_lesions if real_test_lesions is not None else range(len(real_test))
    return {
        **balanced_accuracy_interval(
            called[: len(real_test)] == REAL,
            [str(v) for v in lesions],
            called[len(real_test) :] == GENERATED,
        ),  # fmt: skip
        "steps": steps,
        "input_size": int(real_train.shape[1]),
    }


def balanced_accuracy_interval(
    real_correct: np.ndarray,
    real_lesions: list[str] | np.ndarray,
    generated_correct: np.ndarray,
    level: float = 0.95,
) -> dict:
    """Balanced accuracy of a trained real-vs-generated detector with an interval over new
    held-out lesions and new samples (the detector itself held fixed).

    A lesion's photos are alike, so the real half is clustered: its variance is the ratio
    estimator's between-lesion variance, turned into an effective sample size (n / design
    effect, the effect at least 1). Each half then gets one pseudo-success and one
    pseudo-failure before a Wald step (Agresti & Caffo 2000), so that a detector that is right
    about every image (the usual case for a poor generator) still has an interval of nonzero
    width; its t quantile has Welch-Satterthwaite degrees of freedom from the held-out lesions
    (m - 1) and the samples, since a few lesions estimate their spread poorly.
    benchmarks/detectability_coverage.py measures its coverage with known answers."""
    real_correct = np.asarray(real_correct, dtype=float)
    generated_correct = np.asarray(generated_correct, dtype=float)
    _, lesion = np.unique(np.asarray(real_lesions), return_inverse=True)
    x_lesion = np.bincount(lesion, weights=real_correct)
    n_lesion = np.bincount(lesion).astype(float)
    n_real, n_gen = len(real_correct), len(generated_correct)
    p_real, p_gen = real_correct.mean(), generated_correct.mean()
    m = len(n_lesion)
    binomial = p_real * (1 - p_real) / n_real
    clustered = m / max(m - 1, 1) * ((x_lesion - p_real * n_lesion) ** 2).sum() / n_real**2
    design_effect = max(1.0, clustered / binomial) if binomial > 0 else 1.0
    n_eff = n_real / design_effect
    halves = [(p_real * n_eff, n_eff), (p_gen * n_gen, float(n_gen))]
    adjusted = [((x + 1) / (n + 2), n + 2) for x, n in halves]
    center = sum(p for p, _ in adjusted) / 2
    v_real, v_gen = (p * (1 - p) / n for p, n in adjusted)
    df = (v_real + v_gen) ** 2 / (v_real**2 / max(m - 1, 1) + v_gen**2 / max(n_gen - 1, 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * float(np.sqrt(v_real + v_gen)) / 2
    return {
        "accuracy": float((p_real + p_gen) / 2),
        "ci95": [max(0.0, center - half), min(1.0, center + half)],
        "real_accuracy": float(p_real),
        "generated_accuracy": float(p_gen),
        "design_effect": float(design_effect),
        "df": float(df),
        "n_test": [n_real, n_gen],
        "test_lesions": m,
    }
