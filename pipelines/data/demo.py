"""The built-in demo dataset: SYNTHETIC, dermoscopy-flavoured images for the seven HAM10000 classes.

This data exists so that every raregan command runs out of the box (no download, no licence,
no 3 GB of JPEGs) and so that the tests are fast and self-contained. It is drawn procedurally
from a few geometric and colour rules per class; results obtained on it (recall, FID, whether
GAN oversampling helps) say NOTHING about real dermoscopy and must never be reported as such.

What it does keep from HAM10000 is the structure a pipeline has to get right:

* the class imbalance (about 1/12 of HAM10000's counts, every class >= 24 images), so the rare
  classes are rare and nv dominates;
* several images per lesion (1-3, mean ~1.35, like 10015 images of 7470 lesions): the extra
  images are the same lesion re-photographed, so a split that ignores `lesion_ids` leaks;
* a class-specific look (colour, outline, texture) that a small CNN can learn and a GAN can
  imitate, while skin tone, hairs, pose, lighting and noise vary within each class.

Everything is a pure function of (size, seed): numpy only, in memory, no files. The geometry
lives in fractions of the image (coordinates in [-1, 1]), so a lesion rendered at 32 px looks
like the same lesion at 64 px downscaled; detail finer than a pixel is attenuated the way a
camera pixel would average it, instead of aliasing into noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Field = NDArray[np.float32]  # an H x W scalar field, or a 3 x H x W image with values in [0, 1]

DEMO_CLASS_NAMES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

# HAM10000 has 327 / 514 / 1099 / 115 / 1113 / 6705 / 142 images; ~1/12 of that, with the two
# rarest classes lifted to 24 so that a per-class GAN and a lesion-grouped split still have data.
# The scale is set by time: the default command (5 arms x 3 seeds, quick profile) finishes in
# under 5 minutes on a 2-core CPU without bf16 (README); at 1/8 it took 7.
DEMO_CLASS_COUNTS: dict[str, int] = {
    "akiec": 27,
    "bcc": 43,
    "bkl": 92,
    "df": 24,
    "mel": 93,
    "nv": 559,
    "vasc": 24,
}

# P(1, 2, 3 images of one lesion): mean 1.35, HAM10000's 10015 images / 7470 lesions.
_PHOTOS_PER_LESION_P = (0.72, 0.21, 0.07)

# Independent random streams: a SeedSequence pads short entropy with zeros, so [seed, c] and
# [seed, c, 0] would collide; a leading tag keeps the streams apart.
_STREAM_GROUPS, _STREAM_SCENE, _STREAM_PHOTO = 1, 2, 3

# Value-noise grids cover [-_EXTENT, _EXTENT]^2: wide enough for a rotated, shifted camera view.
_EXTENT = 1.6

_LIGHT_SKIN = np.array([236, 204, 188], np.float32) / 255
_MEDIUM_SKIN = np.array([196, 146, 118], np.float32) / 255


# ----------------------------------------------------------------------------- public API


def make_demo(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Render the whole demo set at `size` x `size` pixels.

    Returns (images uint8 N x size x size x 3, labels int64 N indexing DEMO_CLASS_NAMES,
    image_ids like DEMO_0000001, lesion_ids like DEMOL_000001). Images come grouped by class
    and lesion, so split by lesion id, never by position. Each lesion's scene is drawn from its
    own generator seeded by (seed, class index, lesion index), and each photo of it from one
    seeded by (seed, class index, lesion index, photo index): changing one class's count leaves
    every other class's images untouched, and the same (size, seed) is bit-identical (on one
    machine and numpy version: vectorised float32 maths may differ by an ulp across CPUs).
    """
    if size < 16:
        raise ValueError(f"demo images need size >= 16 px, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    x, y = _pixel_grid(size)
    images: list[np.ndarray] = []
    labels: list[int] = []
    lesion_ids: list[str] = []
    n_lesions = 0
    for c, name in enumerate(DEMO_CLASS_NAMES):
        groups = _photos_per_lesion(
            DEMO_CLASS_COUNTS[name], np.random.default_rng([_STREAM_GROUPS, seed, c])
        )
        for lesion, n_photos in enumerate(groups):
            n_lesions += 1
            for photo in range(n_photos):
                scene = np.random.default_rng([_STREAM_SCENE, seed, c, lesion])
                camera = np.random.default_rng([_STREAM_PHOTO, seed, c, lesion, photo])
                images.append(_photograph(name, scene, camera, x, y))
                labels.append(c)
                lesion_ids.append(f"DEMOL_{n_lesions:06d}")
    image_ids = [f"DEMO_{i + 1:07d}" for i in range(len(images))]
    return np.stack(images), np.asarray(labels, np.int64), image_ids, lesion_ids


# ----------------------------------------------------------------------------- structure


def _photos_per_lesion(n_images: int, rng: np.random.Generator) -> list[int]:
    """Split a class's `n_images` into lesions of 1-3 photos that sum exactly to `n_images`."""
    groups: list[int] = []
    remaining = n_images
    while remaining > 0:
        k = int(rng.choice(3, p=_PHOTOS_PER_LESION_P)) + 1
        groups.append(min(k, remaining))
        remaining -= groups[-1]
    return groups


def _pixel_grid(size: int) -> tuple[Field, Field]:
    """Pixel-centre coordinates in [-1, 1] (x to the right, y down): geometry is size-free."""
    c = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(2.0 / size) - np.float32(1.0)
    x, y = np.meshgrid(c, c)
    return x, y


def _photograph(
    name: str, scene: np.random.Generator, camera: np.random.Generator, x: Field, y: Field
) -> np.ndarray:
    """One photo of one lesion: pose the camera over the scene, paint it, add the optics.

    The scene generator is re-seeded for every photo of a lesion, so it replays the same skin,
    lesion and hairs; only the camera (pose, exposure, vignetting, sensor noise) is new.
    """
    px = 2.0 / x.shape[0]  # one pixel in scene units, for antialiasing and detail attenuation
    angle = camera.uniform(-0.35, 0.35)  # about +-20 degrees
    zoom = camera.uniform(0.9, 1.1)
    shift = camera.uniform(-0.08, 0.08, 2)
    cos, sin = np.float32(np.cos(angle) / zoom), np.float32(np.sin(angle) / zoom)
    u = cos * x - sin * y + np.float32(shift[0])
    v = sin * x + cos * y + np.float32(shift[1])

    img = _skin(scene, u, v)
    _PAINTERS[name](img, scene, u, v, px / zoom)
    _hairs(img, scene, u, v, px / zoom)

    # Optics: exposure and white balance, radial fall-off, sometimes the dark rim of the
    # dermoscope's round window in the corners, then sensor noise.
    gain = camera.uniform(0.9, 1.1) * (1 + 0.02 * camera.standard_normal(3))
    r2 = x * x + y * y
    fall_off = 1 - np.float32(camera.uniform(0.05, 0.2)) * r2
    img *= gain.astype(np.float32)[:, None, None] * fall_off
    if camera.random() < 0.25:
        rim = np.float32(camera.uniform(1.1, 1.35))
        img *= 1 - 0.9 * np.clip((np.sqrt(r2) - rim) / 0.1, 0, 1)
    sigma = np.float32(camera.uniform(1.0, 3.5) / 255)
    img += sigma * camera.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


# ----------------------------------------------------------------------------- primitives


def _colour(rng: np.random.Generator, rgb: tuple[int, int, int], spread: float) -> Field:
    """A per-lesion variant of a reference colour: lightness +-spread, slight hue jitter.

    Shaped 3 x 1 x 1: images are rendered channels-first, so that every per-pixel operation
    runs over whole contiguous planes (channels-last broadcasting is several times slower).
    """
    jitter = (1 + spread * rng.uniform(-1, 1)) * (1 + 0.04 * rng.standard_normal(3))
    return np.clip(np.asarray(rgb) / 255 * jitter, 0, 1).astype(np.float32)[:, None, None]


def _blend(img: Field, colour: Field, alpha: Field) -> None:
    """Paint `colour` (3 x 1 x 1 or 3 x H x W) over `img` in place with per-pixel `alpha`."""
    img += alpha * (colour - img)


def _detail_gain(wavelength: float, px: float) -> float:
    """How much a pattern of this wavelength survives averaging over a pixel of size `px`.

    A Gaussian of sigma px/2 stands in for the pixel footprint: it is what makes a texture at
    32 px look like the 64 px texture downscaled instead of like aliased noise.
    """
    return float(np.exp(-2.0 * (np.pi * 0.5 * px / wavelength) ** 2))


def _noise(rng: np.random.Generator, cells: int, channels: int, u: Field, v: Field) -> Field:
    """Smooth random fields: a `cells`-wide grid of N(0, 1) values, bilinearly interpolated.

    The grid is drawn in scene coordinates, so a re-photographed lesion keeps its texture and
    the same texture is sampled at any resolution. Returns channels x H x W.
    """
    grid = rng.standard_normal((channels, (cells + 1) ** 2), dtype=np.float32)
    scale = np.float32(cells / (2 * _EXTENT))
    fx = np.clip((u + np.float32(_EXTENT)) * scale, 0, cells - 1e-3)
    fy = np.clip((v + np.float32(_EXTENT)) * scale, 0, cells - 1e-3)
    ix, iy = fx.astype(np.intp), fy.astype(np.intp)
    wx, wy = fx - ix.astype(np.float32), fy - iy.astype(np.float32)
    corner = iy * (cells + 1) + ix  # flat index of the top-left grid point
    g00, g01 = grid.take(corner, axis=1), grid.take(corner + 1, axis=1)
    g10, g11 = grid.take(corner + cells + 1, axis=1), grid.take(corner + cells + 2, axis=1)
    top = g00 + wx * (g01 - g00)
    return top + wy * (g10 + wx * (g11 - g10) - top)


def _edge(signed: Field, width: float, px: float) -> Field:
    """Opacity from a signed distance (positive inside): a ramp `width` wide, never below 1 px."""
    return np.clip(signed / np.float32(max(width, px)) + np.float32(0.5), 0, 1)


def _stroke(dist: Field, half_width: float, px: float) -> Field:
    """Opacity of a line at distance `dist`, antialiased; sub-pixel lines fade, not vanish.

    A line thinner than a pixel keeps its total ink (width x opacity) rather than its
    opacity, which is what downscaling a photo of a hair does.
    """
    drawn = max(half_width, 0.5 * px)
    ink = np.float32(half_width / drawn)
    return np.clip((np.float32(drawn) - dist) / np.float32(px) + np.float32(0.5), 0, 1) * ink


def _segment_distance(u: Field, v: Field, p: NDArray, q: NDArray) -> Field:
    """Distance from every pixel to the segment p-q."""
    d = q - p
    t = np.clip(((u - p[0]) * d[0] + (v - p[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    du, dv = u - p[0] - t * d[0], v - p[1] - t * d[1]
    return np.sqrt(du * du + dv * dv)


@dataclass(frozen=True)
class _Outline:
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


_OUTLINES: dict[str, _Outline] = {
    "nv": _Outline((0.32, 0.5), (0.75, 1.0), (2, 4), 0.035, 0.08),
    "mel": _Outline((0.48, 0.68), (0.6, 0.9), (2, 9), 0.11, 0.04, offset=0.12),
    "bkl": _Outline((0.38, 0.58), (0.65, 0.95), (4, 9), 0.045, 0.02),
    "bcc": _Outline((0.36, 0.58), (0.7, 1.0), (2, 5), 0.06, 0.12),
    "akiec": _Outline((0.4, 0.62), (0.65, 1.0), (2, 6), 0.09, 0.22),
    "df": _Outline((0.24, 0.36), (0.75, 1.0), (2, 4), 0.04, 0.1),
}


def _lesion(
    rng: np.random.Generator, u: Field, v: Field, px: float, shape: _Outline
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
    return _edge(r - rho, shape.edge * radius, px), rho / r, centre, radius


# ----------------------------------------------------------------------------- scene


def _skin(rng: np.random.Generator, u: Field, v: Field) -> Field:
    """Light-to-medium skin with blotchy shading and redness; a new tone for every lesion."""
    tone = _LIGHT_SKIN + np.float32(rng.uniform(0, 1)) * (_MEDIUM_SKIN - _LIGHT_SKIN)
    tone = (tone * (1 + 0.015 * rng.standard_normal(3)))[:, None, None].astype(np.float32)
    n = _noise(rng, 7, 2, u, v)
    redness = np.array([0.0, -0.04, -0.03], np.float32)[:, None, None]  # blood: less G and B
    return tone * (1 + np.float32(0.03) * n[0]) + redness * np.clip(n[1], 0, None)


def _hairs(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
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
        colour = _colour(rng, (52, 38, 32), 0.3)
        _blend(img, colour, 0.85 * _stroke(dist, rng.uniform(0.006, 0.014), px))


# ----------------------------------------------------------------------------- classes


def _network(
    rng: np.random.Generator, u: Field, v: Field, px: float, wavelength: float, wobble: Field
) -> Field:
    """Pigment network: 1 on the dark lines of a honeycomb, 0 in its holes.

    Three plane waves 120 degrees apart make a hexagonal lattice; `wobble` (a smooth noise
    field, in radians) bends it into the irregular meshes of real dermoscopic networks.
    """
    f = np.float32(2 * np.pi / wavelength)
    turn = rng.uniform(0, 2 * np.pi / 3)
    waves = np.zeros_like(u)
    for k in range(3):
        angle = turn + 2 * np.pi * k / 3
        fx, fy = f * np.float32(np.cos(angle)), f * np.float32(np.sin(angle))
        waves += np.cos(fx * u + fy * v + wobble)
    lines = np.clip(0.8 - 0.6 * waves, 0, 1)  # waves in [-1.5, 3]: low between the maxima
    return lines * np.float32(_detail_gain(wavelength, px))


def _paint_nv(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Nevus: medium brown, round-oval, smooth border, fairly uniform, faint pigment network."""
    alpha, depth, _, radius = _lesion(rng, u, v, px, _OUTLINES["nv"])
    colour = _colour(rng, (150, 98, 68), 0.22)
    n = _noise(rng, 14, 2, u, v)
    network = _network(rng, u, v, px, radius * rng.uniform(0.18, 0.26), 1.5 * n[1])
    centre = np.float32(rng.uniform(-0.12, 0.25)) * np.clip(1 - depth, 0, 1)  # darker or paler
    fade = np.clip(1.2 - depth, 0, 1)  # the network thins out towards the rim
    shade = 1 - centre - np.float32(rng.uniform(0.08, 0.2)) * network * fade + 0.04 * n[0]
    _blend(img, colour * shade, np.float32(rng.uniform(0.8, 0.95)) * alpha)


def _paint_mel(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Melanoma: large, asymmetric, ragged border; dark brown/black patches, blue-grey veil."""
    alpha, depth, centre, radius = _lesion(rng, u, v, px, _OUTLINES["mel"])
    n = _noise(rng, 11, 3, u, v)
    tilt = rng.uniform(0, 2 * np.pi)  # the darker, thicker side: the asymmetry
    side = np.float32(np.cos(tilt)) * (u - centre[0]) + np.float32(np.sin(tilt)) * (v - centre[1])
    side /= np.float32(radius)
    lesion = _colour(rng, (118, 74, 52), 0.15) * np.ones_like(img)
    _blend(lesion, _colour(rng, (170, 120, 88), 0.1), np.clip(n[2] - 0.3, 0, 1))
    wobble = 3 * _noise(rng, 18, 1, u, v)[0]  # atypical: coarse, broken, irregular network
    wavelength = radius * rng.uniform(0.16, 0.26)
    lesion *= 1 - np.float32(0.3) * _network(rng, u, v, px, wavelength, wobble)
    _blend(lesion, _colour(rng, (44, 30, 28), 0.2), np.clip(1.6 * (n[0] + side), 0, 1))
    veil = np.clip(1.5 * (n[1] - side) - 0.4, 0, 0.85) * np.clip(1.4 - depth, 0, 1)
    _blend(lesion, _colour(rng, (104, 112, 138), 0.12), veil)
    _blend(img, lesion, np.float32(rng.uniform(0.9, 1.0)) * alpha)


def _paint_bkl(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Benign keratosis: light brown/tan, waxy mottled surface, sharp lobulated border."""
    alpha, depth, centre, radius = _lesion(rng, u, v, px, _OUTLINES["bkl"])
    colour = _colour(rng, (182, 140, 100), 0.14)
    cells = 22
    n = _noise(rng, cells, 2, u, v)
    gain = np.float32(_detail_gain(2 * _EXTENT / cells, px))
    fissures = np.clip(1 - 3 * np.abs(n[1]), 0, 1)  # cerebriform dark furrows
    shade = 1 + gain * (0.1 * n[0] - 0.22 * fissures) + 0.06 * np.clip(1 - depth, 0, 1)
    lesion = colour * shade
    # Milia-like cysts (ivory) and comedo-like openings (dark): a few small round dots.
    for rgb in ((238, 226, 196), (92, 66, 50)):
        dot = _colour(rng, rgb, 0.05)
        for _ in range(rng.integers(0, 5)):
            at = centre + 0.6 * radius * rng.uniform(-1, 1, 2).astype(np.float32)
            du, dv = u - at[0], v - at[1]
            size = rng.uniform(0.018, 0.035)
            _blend(lesion, dot, 0.8 * _stroke(np.sqrt(du * du + dv * dv), size, px))
    _blend(img, lesion, np.float32(rng.uniform(0.85, 0.95)) * alpha)


def _paint_bcc(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Basal cell carcinoma: pearly pink translucent patch, arborizing red vessels, blue nests."""
    alpha, depth, centre, radius = _lesion(rng, u, v, px, _OUTLINES["bcc"])
    n = _noise(rng, 10, 1, u, v)[0]
    _blend(img, _colour(rng, (226, 164, 166), 0.06), np.float32(rng.uniform(0.5, 0.7)) * alpha)
    shine = np.clip(0.4 * n + 0.3 * (1 - depth), 0, 1)  # pearly, translucent sheen
    _blend(img, np.array([1.0, 0.94, 0.94], np.float32)[:, None, None], 0.25 * shine * alpha)

    # Arborizing vessels: a few trunks enter from the rim and fork as they run inwards.
    vessels = np.zeros_like(u)
    stack = []
    for _ in range(rng.integers(2, 4)):
        a = rng.uniform(0, 2 * np.pi)
        start = centre + 0.8 * radius * np.array([np.cos(a), np.sin(a)], np.float32)
        stack.append((start, a + np.pi + rng.uniform(-0.6, 0.6), 0.028, 0))
    n_segments = 0
    while stack and n_segments < 16:
        start, heading, width, level = stack.pop()
        heading += rng.uniform(-0.5, 0.5)
        step = radius * rng.uniform(0.22, 0.38)
        end = start + step * np.array([np.cos(heading), np.sin(heading)], np.float32)
        vessels = np.maximum(vessels, _stroke(_segment_distance(u, v, start, end), width, px))
        n_segments += 1
        if level < 3:
            stack.append((end, heading, 0.8 * width, level + 1))
            if rng.random() < 0.6:
                fork = rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
                stack.append((end, heading + fork, 0.6 * width, level + 1))
    _blend(img, _colour(rng, (186, 36, 48), 0.12), 0.9 * vessels * np.clip(1.5 * alpha, 0, 1))

    if rng.random() < 0.55:  # ovoid blue-grey nests
        nest = _colour(rng, (78, 84, 112), 0.15)
        for _ in range(rng.integers(1, 4)):
            at = centre + radius * rng.uniform(-0.5, 0.5, 2).astype(np.float32)
            size = radius * rng.uniform(0.15, 0.3)
            stretch = np.float32(rng.uniform(1.2, 1.8))
            du, dv = (u - at[0]) / stretch, v - at[1]
            d = np.sqrt(du * du + dv * dv)
            _blend(img, nest, 0.85 * _edge(np.float32(size) - d, 0.3 * size, px))


def _paint_akiec(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Actinic keratosis / Bowen's: red-pink rough scaly patch, ill-defined, white scale flecks."""
    alpha, _, _, _ = _lesion(rng, u, v, px, _OUTLINES["akiec"])
    cells = 40
    rough = _noise(rng, cells, 2, u, v)
    patchy = _noise(rng, 8, 1, u, v)[0]
    gain = np.float32(_detail_gain(2 * _EXTENT / cells, px))
    colour = _colour(rng, (212, 112, 106), 0.1)
    shade = 1 + gain * 0.12 * rough[0] + 0.06 * patchy
    _blend(img, colour * shade, np.float32(rng.uniform(0.75, 0.9)) * alpha)
    scale = np.clip(1.5 * (rough[1] - 0.6) + 0.5 * patchy, 0, 1) * gain
    _blend(img, _colour(rng, (244, 236, 226), 0.03), 0.9 * scale * alpha)


def _paint_df(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Dermatofibroma: small, faint light-brown peripheral ring around a white scar-like centre."""
    alpha, depth, centre, radius = _lesion(rng, u, v, px, _OUTLINES["df"])
    n = _noise(rng, 12, 1, u, v)[0]
    ring = _colour(rng, (168, 116, 86), 0.12) * (1 + 0.08 * n)
    _blend(img, ring, np.float32(rng.uniform(0.55, 0.75)) * alpha * np.clip(depth + 0.2, 0, 1))
    scar = _Outline((0.35 * radius, 0.55 * radius), (0.6, 1.0), (2, 6), 0.15, 0.25, 0.2 * radius)
    centre_alpha, _, _, _ = _lesion(rng, u - centre[0], v - centre[1], px, scar)
    _blend(img, _colour(rng, (242, 232, 226), 0.03), 0.9 * centre_alpha)


def _paint_vasc(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Vascular lesion: a cluster of sharp red/purple/maroon lobules in a pinkish halo."""
    centre = rng.uniform(-0.08, 0.08, 2).astype(np.float32)
    spread = rng.uniform(0.18, 0.34)
    du, dv = u - centre[0], v - centre[1]
    halo = _edge(np.float32(spread + 0.2) - np.sqrt(du * du + dv * dv), 0.25, px)
    _blend(img, _colour(rng, (214, 150, 152), 0.06), 0.6 * halo)
    palette = ((176, 34, 50), (118, 42, 92), (100, 24, 42))
    for _ in range(rng.integers(4, 11)):
        a, r = rng.uniform(0, 2 * np.pi), spread * np.sqrt(rng.uniform(0, 1))
        at = centre + r * np.array([np.cos(a), np.sin(a)], np.float32)
        size = rng.uniform(0.1, 0.22)
        colour = _colour(rng, palette[rng.integers(3)], 0.15)
        du, dv = u - at[0], v - at[1]
        d = np.sqrt(du * du + dv * dv) / np.float32(size)
        lobule = colour * (0.75 + 0.25 * np.clip(d, 0, 1))  # darker core
        _blend(img, lobule, 0.95 * _edge(np.float32(size) * (1 - d), 0.08 * size, px))


_PAINTERS: dict[str, Callable[[Field, np.random.Generator, Field, Field, float], None]] = {
    "akiec": _paint_akiec,
    "bcc": _paint_bcc,
    "bkl": _paint_bkl,
    "df": _paint_df,
    "mel": _paint_mel,
    "nv": _paint_nv,
    "vasc": _paint_vasc,
}
