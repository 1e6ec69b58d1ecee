"""DCGAN generators and discriminators for 32, 64 and 128 px images, in two variants.

`dcgan` follows pytorch/examples' dcgan: the generator grows a 4x4 map by stride-2 transposed
convolutions (BatchNorm + ReLU, tanh output), the discriminator mirrors it with stride-2
convolutions (BatchNorm + LeakyReLU 0.2). A 4x4 kernel at stride 2 covers output pixels
unevenly, which paints the checkerboard that small-data DCGAN samples show.

`resize` keeps the same widths and stages but upsamples by nearest-neighbour x2 followed by
a 3x3 convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"); its
discriminator is DCGAN's. `resize-sn` also normalises every discriminator convolution
spectrally instead of with BatchNorm (Miyato et al. 2018), which bounds D's Lipschitz constant
but, at CPU budgets, also slows how fast D (and so G) learns (docs/generator_budget.md).

The number of stages follows from the image size, so one definition serves every size. The
discriminator returns logits; the loss applies the link function.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

SUPPORTED_SIZES = (32, 64, 128)
ARCHS = ("dcgan", "resize", "resize-sn")


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes the shape of the weights; stored in every checkpoint."""

    size: int = 64
    nz: int = 100  # latent dimension
    ngf: int = 64  # generator width at the last stage
    ndf: int = 64  # discriminator width at the first stage
    kind: str = "dcgan"  # dcgan | resize | resize-sn (see the module docstring)

    def __post_init__(self) -> None:
        if self.kind not in ARCHS:
            raise ValueError(f"unknown architecture {self.kind!r}; use one of {ARCHS}")
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


def _upsample(c_in: int, c_out: int, kind: str) -> list[nn.Module]:
    """x2 upsampling: a strided transposed conv (dcgan) or nearest x2 + 3x3 conv (resize*)."""
    if kind == "dcgan":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
    ]


class Generator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        widths = _widths(arch.ngf, arch.stages)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(arch.nz, widths[0], 4, 1, 0, bias=False),  # 1x1 -> 4x4: no overlap
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [*_upsample(c_in, c_out, arch.kind), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [*_upsample(widths[-1], 3, arch.kind), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.nz = arch.nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        widths = _widths(arch.ndf, arch.stages)[::-1]
        sn = arch.kind == "resize-sn"

        def conv(c_in: int, c_out: int, k: int, stride: int, pad: int) -> nn.Module:
            c = nn.Conv2d(c_in, c_out, k, stride, pad, bias=sn)
            return nn.utils.parametrizations.spectral_norm(c) if sn else c

        layers: list[nn.Module] = [conv(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [conv(c_in, c_out, 4, 2, 1)]
            layers += [] if sn else [nn.BatchNorm2d(c_out)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        layers += [conv(widths[-1], 1, 4, 1, 0)]
        self.main = nn.Sequential(*layers)
        self.frozen: list[nn.Module] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()

    def freeze(self, k: int) -> None:
        """FreezeD (Mo et al. 2020): fix the first k conv blocks from the image end. Their
        spectral-norm power iteration stops too, so the frozen layers do not move at all."""
        starts = [i for i, m in enumerate(self.main) if isinstance(m, nn.Conv2d)]
        if not 0 <= k < len(starts):
            raise ValueError(f"can freeze 0..{len(starts) - 1} discriminator blocks, not {k}")
        self.frozen = list(self.main[: starts[k]]) if k else []
        for m in self.frozen:
            m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Discriminator:
        super().train(mode)
        for m in self.frozen:
            for sub in m.modules():
                if type(sub).__name__ == "_SpectralNorm":  # the parametrization, not the conv
                    sub.eval()
        return self


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)  # the spectral norm rescales it anyway
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(arch: Architecture) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator/discriminator pair (uses the global torch RNG)."""
    g, d = Generator(arch), Discriminator(arch)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d
