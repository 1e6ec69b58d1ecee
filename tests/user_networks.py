"""Networks of a user's own, for --classifier package.module:function (tests/ is on sys.path)."""

from __future__ import annotations

from torch import nn


def tiny_net(num_classes: int) -> nn.Module:
    """The contract: float RGB in [0, 1], NCHW at --classifier-size; logits out."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, num_classes),
    )  # fmt: skip


def wrong_outputs(num_classes: int) -> nn.Module:
    """Breaks the contract: one output more than there are classes."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, num_classes + 1))


def not_a_module(num_classes: int):
    return "resnet"


class _Aux(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x):
        logits = self.head(x.mean((2, 3)))
        return (logits, logits) if self.training else logits


def aux_in_training(num_classes: int) -> nn.Module:
    """Breaks the contract as inception_v3 does: aux logits beside the logits in training."""
    return _Aux(num_classes)
