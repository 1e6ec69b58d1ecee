"""DCGAN generator and discriminator (Radford et al. 2015) for 32, 64 and 128 px images.

The layout follows pytorch/examples' dcgan: the generator grows a 4x4 map by stride-2
transposed convolutions (BatchNorm + ReLU, tanh output), the discriminator mirrors it with
stride-2 convolutions (BatchNorm + LeakyReLU 0.2). The number of stages follows from the image
size, so one definition serves every supported size. The discriminator returns logits; the loss
applies the sigmoid (numerically safer, and autocast-friendly).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

SUPPORTED_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes the shape of the weights; stored in every checkpoint."""

    size: int = 64
    nz: int = 100  # latent dimension
    ngf: int = 64  # generator width at the last stage
    ndf: int = 64  # discriminator width at the first stage

    def __post_init__(self) -> None:
        if self.size not in SUPPORTED_SIZES:
            raise ValueError(
                f"image size {self.size} is not supported; use one of {SUPPORTED_SIZES}"
            )

    @property
    def stages(self) -> int:
        """Stride-2 stages between 4x4 and the image size (3 for 32 px, 4 for 64 px)."""
        return int(math.log2(self.size)) - 2

    def as_dict(self) -> dict:
        return asdict(self)


def _widths(base: int, stages: int) -> list[int]:
    """Channel widths from the 4x4 end to the image end, capped at 8x base as in DCGAN."""
    return [base * min(2 ** (stages - 1 - i), 8) for i in range(stages)]


class Generator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        widths = _widths(arch.ngf, arch.stages)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(arch.nz, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.nz = arch.nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        widths = _widths(arch.ndf, arch.stages)[::-1]
        layers: list[nn.Module] = [
            nn.Conv2d(3, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(arch: Architecture) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator/discriminator pair (uses the global torch RNG)."""
    g, d = Generator(arch), Discriminator(arch)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d
