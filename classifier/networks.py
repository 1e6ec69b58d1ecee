"""Classifiers for 32-128 px images, trained from scratch (classifier.zoo adds any torchvision,
timm or user network).

`CompactCNN` is small enough to train in about a minute on a CPU; its penultimate layer is the
`domain` feature space in which raregan measures FID/KID of generated images. `SmallResNet` is a
ResNet-18-style network adapted to small inputs (3x3 stem, no max-pool) for the downstream
experiment. Both take uint8 images and expose `features(x)` (penultimate layer) and `forward(x)`
(logits).
"""

from __future__ import annotations

import torch
from torch import nn

from gan.conventions import to_model_range


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class CompactCNN(nn.Module):
    """Four VGG-style stages (two 3x3 convs + 2x2 max-pool) and a global-average-pooled head.

    Inputs larger than 32 px enter through a strided stem, so a 64 or 128 px network costs
    about what a 32 px one does: it is trained on a CPU in about a minute at every size.
    """

    def __init__(
        self, num_classes: int, width: int = 32, feature_dim: int = 256, input_size: int = 32
    ):
        super().__init__()
        widths = [width, width * 2, width * 4, feature_dim]
        stride = max(1, input_size // 32)
        layers: list[nn.Module] = [
            nn.Conv2d(3, width, 3 + stride - 1, stride, padding=(stride + 1) // 2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        c_in = width
        for i, c in enumerate(widths):
            layers += (_conv_bn_relu(c_in, c) if i else []) + _conv_bn_relu(c, c)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(feature_dim, num_classes)
        self.num_features = feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(to_model_range(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet with a 3x3 stem and four stages of `blocks` basic blocks (ResNet-18: 2,2,2,2).

    `stem_stride=2` halves the resolution in the stem: on a CPU the full-resolution layers cost
    most of the time, so a 32 px network twice as wide with a strided stem trains in the time of
    the narrow one with four times the weights (benchmarks/classifier_budget.py).
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        blocks: tuple[int, ...] = (1, 1, 1, 1),
        stem_stride: int = 1,
    ):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, width, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        c_in = width
        for stage, n in enumerate(blocks):
            c_out = width * 2**stage
            for b in range(n):
                layers.append(_BasicBlock(c_in, c_out, 2 if b == 0 and stage > 0 else 1))
                c_in = c_out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes)
        self.num_features = c_in

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(to_model_range(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
