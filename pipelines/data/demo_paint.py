"""Drawing primitives of the built-in demo images: colours, value noise, soft edges and strokes,
lesion outlines, skin and hairs, on size-free coordinates in [-1, 1] (pipelines.data.demo).
Numpy only, like the demo module."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Field = NDArray[np.float32]  # an H x W scalar field, or a 3 x H x W image with values in [0, 1]

# Value-noise grids cover [-EXTENT, EXTENT]^2: wide enough for a rotated, shifted camera view.
EXTENT = 1.6

LIGHT_SKIN = np.array([236, 204, 188], np.float32) / 255
MEDIUM_SKIN = np.array([196, 146, 118], np.float32) / 255


# ----------------------------------------------------------------------------- primitives


def colour(rng: np.random.Generator, rgb: tuple[int, int, int], spread: float) -> Field:
    """A per-lesion variant of a reference colour: lightness +-spread, slight hue jitter.

    Shaped 3 x 1 x 1: images are rendered channels-first, so that every per-pixel operation
    runs over whole contiguous planes (channels-last broadcasting is several times slower).
    """
    jitter = (1 + spread * rng.uniform(-1, 1)) * (1 + 0.04 * rng.standard_normal(3))
    return np.clip(np.asarray(rgb) / 255 * jitter, 0, 1).astype(np.float32)[:, None, None]


def blend(img: Field, colour: Field, alpha: Field) -> None:
    """Paint `colour` (3 x 1 x 1 or 3 x H x W) over `img` in place with per-pixel `alpha`."""
    img += alpha * (colour - img)


def detail_gain(wavelength: float, px: float) -> float:
    """How much a pattern of this wavelength survives averaging over a pixel of size `px`.

    A Gaussian of sigma px/2 stands in for the pixel footprint: it is what makes a texture at
    32 px look like the 64 px texture downscaled instead of like aliased noise.
    """
    return float(np.exp(-2.0 * (np.pi * 0.5 * px / wavelength) ** 2))


def noise(rng: np.random.Generator, cells: int, channels: int, u: Field, v: Field) -> Field:
    """Smooth random fields: a `cells`-wide grid of N(0, 1) values, bilinearly interpolated.

    The grid is drawn in scene coordinates, so a re-photographed lesion keeps its texture and
    the same texture is sampled at any resolution. Returns channels x H x W.
    """
    grid = rng.standard_normal((channels, (cells + 1) ** 2), dtype=np.float32)
    scale = np.float32(cells / (2 * EXTENT))
    fx = np.clip((u + np.float32(EXTENT)) * scale, 0, cells - 1e-3)
    fy = np.clip((v + np.float32(EXTENT)) * scale, 0, cells - 1e-3)
    ix, iy = fx.astype(np.intp), fy.astype(np.intp)
    wx, wy = fx - ix.astype(np.float32), fy - iy.astype(np.float32)
    corner = iy * (cells + 1) + ix  # flat index of the top-left grid point
    g00, g01 = grid.take(corner, axis=1), grid.take(corner + 1, axis=1)
    g10, g11 = grid.take(corner + cells + 1, axis=1), grid.take(corner + cells + 2, axis=1)
    top = g00 + wx * (g01 - g00)
    return top + wy * (g10 + wx * (g11 - g10) - top)


def edge(signed: Field, width: float, px: float) -> Field:
    """Opacity from a signed distance (positive inside): a ramp `width` wide, never below 1 px."""
    return np.clip(signed / np.float32(max(width, px)) + np.float32(0.5), 0, 1)


def stroke(dist: Field, half_width: float, px: float) -> Field:
    """Opacity of a line at distance `dist`, antialiased; sub-pixel lines fade, not vanish.

    A line thinner than a pixel keeps its total ink (width x opacity) rather than its
    opacity, which is what downscaling a photo of a hair does.
    """
    drawn = max(half_width, 0.5 * px)
    ink = np.float32(half_width / drawn)
    return np.clip((np.float32(drawn) - dist) / np.float32(px) + np.float32(0.5), 0, 1) * ink


def segment_distance(u: Field, v: Field, p: NDArray, q: NDArray) -> Field:
    """Distance from every pixel to the segment p-q."""
    d = q - p
    t = np.clip(((u - p[0]) * d[0] + (v - p[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    du, dv = u - p[0] - t * d[0], v - p[1] - t * d[1]
    return np.sqrt(du * du + dv * dv)


@dataclass(frozen=True)
class Outline:
    """Per-class lesion outline: r(theta) = R * (1 + sum_k a_k cos(k theta + phi_k)).

    `harmonics` is the range of k; `roughness` the size of a_k: low k give ovals and
    asymmetry, high k a lobulated or ragged border; `edge` is how blurred the border is.
    """

    radius: tuple[float, float]  # R, in half image widths
    aspect: tuple[float, float]  # minor / major axis
    harmonics: tuple[int, int]
    roughness: float
    edge: float
    offset: float = 0.08  # how far from the centre the lesion may sit


OUTLINES: dict[str, Outline] = {
    "nv": Outline((0.32, 0.5), (0.75, 1.0), (2, 4), 0.035, 0.08),
    "mel": Outline((0.48, 0.68), (0.6, 0.9), (2, 9), 0.11, 0.04, offset=0.12),
    "bkl": Outline((0.38, 0.58), (0.65, 0.95), (4, 9), 0.045, 0.02),
    "bcc": Outline((0.36, 0.58), (0.7, 1.0), (2, 5), 0.06, 0.12),
    "akiec": Outline((0.4, 0.62), (0.65, 1.0), (2, 6), 0.09, 0.22),
    "df": Outline((0.24, 0.36), (0.75, 1.0), (2, 4), 0.04, 0.1),
}


def lesion(
    rng: np.random.Generator, u: Field, v: Field, px: float, shape: Outline
) -> tuple[Field, Field, NDArray, float]:
    """Draw an outline and rasterise it.

    Returns (opacity, depth, centre, radius); depth is rho / r(theta): 0 at the centre, 1 on
    the border, used for shading that follows the outline.
    """
    radius = rng.uniform(*shape.radius)
    aspect = rng.uniform(*shape.aspect)
    centre = rng.uniform(-shape.offset, shape.offset, 2).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ks = np.arange(shape.harmonics[0], shape.harmonics[1] + 1)
    amps = shape.roughness * rng.uniform(0.3, 1.0, ks.size) / (1 + 0.25 * (ks - ks[0]))
    phases = rng.uniform(0, 2 * np.pi, ks.size)

    du, dv = u - centre[0], v - centre[1]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    a = cos * du + sin * dv
    b = (cos * dv - sin * du) / np.float32(aspect)
    rho = np.sqrt(a * a + b * b)
    theta = np.arctan2(b, a)
    wobble = np.ones_like(rho)
    for k, amp, phase in zip(ks, amps, phases):
        wobble += np.float32(amp) * np.cos(np.float32(k) * theta + np.float32(phase))
    r = np.float32(radius) * np.maximum(wobble, np.float32(0.3))
    return edge(r - rho, shape.edge * radius, px), rho / r, centre, radius


# ----------------------------------------------------------------------------- scene


def skin(rng: np.random.Generator, u: Field, v: Field) -> Field:
    """Light-to-medium skin with blotchy shading and redness; a new tone for every lesion."""
    tone = LIGHT_SKIN + np.float32(rng.uniform(0, 1)) * (MEDIUM_SKIN - LIGHT_SKIN)
    tone = (tone * (1 + 0.015 * rng.standard_normal(3)))[:, None, None].astype(np.float32)
    n = noise(rng, 7, 2, u, v)
    redness = np.array([0.0, -0.04, -0.03], np.float32)[:, None, None]  # blood: less G and B
    return tone * (1 + np.float32(0.03) * n[0]) + redness * np.clip(n[1], 0, None)


def hairs(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """On about 30% of lesions, 1-4 thin dark gently curved hairs across the view."""
    if rng.random() > 0.3:
        return
    for _ in range(rng.integers(1, 5)):
        angle = rng.uniform(0, np.pi)
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        along, across = cos * u + sin * v, cos * v - sin * u
        bend = np.float32(rng.uniform(-0.25, 0.25))
        dist = np.abs(across - np.float32(rng.uniform(-0.9, 0.9)) - bend * along * along)
        start = rng.uniform(-1.8, 0.6)
        end = start + rng.uniform(0.8, 3.0)
        dist = np.where((along > start) & (along < end), dist, np.float32(9.0))
        hair = colour(rng, (52, 38, 32), 0.3)
        blend(img, hair, 0.85 * stroke(dist, rng.uniform(0.006, 0.014), px))
