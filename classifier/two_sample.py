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
) -> dict:
    """Balanced accuracy of a CompactCNN trained on uint8 N×S×S×3 real vs generated images and
    tested on the other two sets (each class's accuracy too). The last step is scored: nothing
    is chosen on the test images."""
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
    real_acc = float((called[: len(real_test)] == REAL).mean())
    generated_acc = float((called[len(real_test) :] == GENERATED).mean())
    return {
        "accuracy": (real_acc + generated_acc) / 2,
        "real_accuracy": real_acc,
        "generated_accuracy": generated_acc,
        "n_test": [len(real_test), len(generated_test)],
        "steps": steps,
    }
