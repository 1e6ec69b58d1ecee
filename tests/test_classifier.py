from __future__ import annotations

import pytest
import torch

from classifier.metrics import classification_metrics
from classifier.networks import CompactCNN, SmallResNet
from classifier.training import (
    ClassifierConfig,
    balanced_accuracy,
    dihedral_views,
    predict_proba,
    train_classifier,
)


def one_hot(pred, k):
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float()


def test_metrics_against_a_hand_computed_confusion_matrix():
    # true:  0 0 0 0 1 1 2 2 2 2
    # pred:  0 0 1 2 1 1 2 2 0 2
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    probs = one_hot([0, 0, 1, 2, 1, 1, 2, 2, 0, 2], 3)
    m = classification_metrics(probs, labels, 3)
    assert m["confusion_matrix"] == [[2, 1, 1], [0, 2, 0], [1, 0, 3]]
    assert m["recall"] == pytest.approx([2 / 4, 2 / 2, 3 / 4])
    assert m["precision"] == pytest.approx([2 / 3, 2 / 3, 3 / 4])
    f1 = [2 * p * r / (p + r) for p, r in zip(m["precision"], m["recall"])]
    assert m["f1"] == pytest.approx(f1)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.75) / 3)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert balanced_accuracy(probs, labels, 3) == pytest.approx(m["balanced_accuracy"])


def test_auc_and_average_precision_of_a_perfect_ranking():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    probs = one_hot(labels.tolist(), 3) * 0.8 + 0.2 / 3
    m = classification_metrics(probs, labels, 3)
    assert m["macro_auc"] == pytest.approx(1.0) and m["average_precision"] == pytest.approx([1] * 3)


@pytest.mark.parametrize("net", [CompactCNN, SmallResNet])
@pytest.mark.parametrize("size", [32, 64])
def test_networks_take_uint8_and_return_logits_and_features(net, size):
    kwargs = {"input_size": size} if net is CompactCNN else {}
    m = net(5, **kwargs)
    x = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    assert m(x).shape == (2, 5) and m.features(x).shape == (2, m.num_features)


def test_training_learns_a_separable_problem_and_keeps_the_best_step():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randint(0, 60, (120, 3, 16, 16), dtype=torch.uint8, generator=g)
    x[y == 1, 0] += 150  # class 1: red, class 2: green
    x[y == 2, 1] += 150
    cfg = ClassifierConfig(steps=60, batch_size=32, eval_every=20, lr=3e-3)
    result = train_classifier(
        CompactCNN(3, width=8, feature_dim=16),
        (x[:90], y[:90]),
        (x[90:], y[90:]),
        3,
        cfg,
        progress=False,
    )
    assert result.best_val_balanced_accuracy > 0.9
    assert result.best_step in {20, 40, 60} and len(result.history) == 3
    best = max(h["val_balanced_accuracy"] for h in result.history)
    assert result.best_val_balanced_accuracy == best
    # the kept validation probabilities are the returned (best) model's, not the last step's
    assert torch.equal(result.val_probs, predict_proba(result.model, x[90:]))


def test_dihedral_views_are_the_eight_distinct_symmetries_of_a_square():
    x = torch.arange(16.0).view(1, 1, 4, 4)  # no symmetry: every view is different
    views = dihedral_views(x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert any(torch.equal(v, torch.rot90(x, 1, (2, 3))) for v in views)  # rotations included
    assert torch.equal(views[0], x)


def test_tta_is_the_mean_softmax_over_the_views():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x = torch.randn(5, 3, 4, 4)
    expected = torch.stack([model(v).softmax(1) for v in dihedral_views(x)]).mean(0)
    tta = predict_proba(model, x, batch_size=2, tta=True)
    assert torch.allclose(tta, expected, atol=1e-6)
    assert not torch.allclose(tta, predict_proba(model, x), atol=1e-3)  # it changed something
    invariant = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    invariant.append(torch.nn.Linear(3, 3))  # global pooling: every view gives the same output
    assert torch.allclose(predict_proba(invariant, x, tta=True), predict_proba(invariant, x))
