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
  imitate, while skin tone, hairs, pose, lighting and noise vary within each class;
* rare classes that are hard where it matters: df and mel lesions are nevi with their own
  signs painted over at a partial strength, and one nevus in five (one in ten) carries faint
  mel (df) signs, so the two sides overlap, a baseline misses many df and mel, and more
  examples of them move the call: a positive control (fresh lesions, `oracle`) can show a gain.

Everything is a pure function of (size, seed): numpy only, in memory, no files. The geometry
lives in fractions of the image (coordinates in [-1, 1]), so a lesion rendered at 32 px looks
like the same lesion at 64 px downscaled; detail finer than a pixel is attenuated the way a
camera pixel would average it, instead of aliasing into noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.data import demo_paint as paint
from pipelines.data.demo_paint import Field

DEMO_VERSION = "v2"  # part of the demo's fingerprint: bump it whenever the images change

DEMO_CLASS_NAMES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

# HAM10000 has 327 / 514 / 1099 / 115 / 1113 / 6705 / 142 images; ~1/12 of that, with the
# rarest classes lifted to 24 and df and mel to 60 and 120, so that a per-class GAN and a
# lesion-grouped split still have data and the test split holds ~10 df and ~20 mel lesions.
# The scale is set by time: the default command must finish in minutes on a 2-core CPU.
DEMO_CLASS_COUNTS: dict[str, int] = {
    "akiec": 27,
    "bcc": 43,
    "bkl": 92,
    "df": 60,
    "mel": 120,
    "nv": 559,
    "vasc": 24,
}

# The rare classes overlap the nevi, as on real data (melanoma is confused with nevi): each
# df or mel lesion is a nevus with the class's own signs painted over it at a strength drawn
# from _CUE_STRENGTH, and some nevi (atypical ones) carry faint signs of df or mel
# (_NEVUS_MIMICS: class, share of nevi, strength range). Where the two meet, the call depends
# on how many examples of each side a classifier has seen.
_CUE_STRENGTH: dict[str, tuple[float, float]] = {"df": (0.1, 0.45), "mel": (0.05, 0.35)}
_NEVUS_MIMICS: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("mel", 0.2, (0.05, 0.3)),
    ("df", 0.1, (0.05, 0.3)),
)

# P(1, 2, 3 images of one lesion): mean 1.35, HAM10000's 10015 images / 7470 lesions.
_PHOTOS_PER_LESION_P = (0.72, 0.21, 0.07)

# Independent random streams: a SeedSequence pads short entropy with zeros, so [seed, c] and
# [seed, c, 0] would collide; a leading tag keeps the streams apart.
_STREAM_GROUPS, _STREAM_SCENE, _STREAM_PHOTO = 1, 2, 3


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

    img = paint.skin(scene, u, v)
    look, cue = _look(name, scene)
    if cue < 1:  # a nevus with another class's signs painted over it at strength `cue`
        nevus = img.copy()
        _paint_nv(nevus, scene, u, v, px / zoom)
        _PAINTERS[look](img, scene, u, v, px / zoom)
        img = nevus + np.float32(cue) * (img - nevus)
    else:
        _PAINTERS[look](img, scene, u, v, px / zoom)
    paint.hairs(img, scene, u, v, px / zoom)

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


def _look(name: str, scene: np.random.Generator) -> tuple[str, float]:
    """Whose signs a lesion of class `name` shows, and how strongly (1: a typical lesion)."""
    if name in _CUE_STRENGTH:
        return name, float(scene.uniform(*_CUE_STRENGTH[name]))
    if name == "nv":
        draw = scene.random()
        for look, share, strength in _NEVUS_MIMICS:
            if draw < share:
                return look, float(scene.uniform(*strength))
            draw -= share
    return name, 1.0


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
    return lines * np.float32(paint.detail_gain(wavelength, px))


def _paint_nv(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Nevus: medium brown, round-oval, smooth border, fairly uniform, faint pigment network."""
    alpha, depth, _, radius = paint.lesion(rng, u, v, px, paint.OUTLINES["nv"])
    colour = paint.colour(rng, (150, 98, 68), 0.22)
    n = paint.noise(rng, 14, 2, u, v)
    network = _network(rng, u, v, px, radius * rng.uniform(0.18, 0.26), 1.5 * n[1])
    centre = np.float32(rng.uniform(-0.12, 0.25)) * np.clip(1 - depth, 0, 1)  # darker or paler
    fade = np.clip(1.2 - depth, 0, 1)  # the network thins out towards the rim
    shade = 1 - centre - np.float32(rng.uniform(0.08, 0.2)) * network * fade + 0.04 * n[0]
    paint.blend(img, colour * shade, np.float32(rng.uniform(0.8, 0.95)) * alpha)


def _paint_mel(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Melanoma: large, asymmetric, ragged border; dark brown/black patches, blue-grey veil."""
    alpha, depth, centre, radius = paint.lesion(rng, u, v, px, paint.OUTLINES["mel"])
    n = paint.noise(rng, 11, 3, u, v)
    tilt = rng.uniform(0, 2 * np.pi)  # the darker, thicker side: the asymmetry
    side = np.float32(np.cos(tilt)) * (u - centre[0]) + np.float32(np.sin(tilt)) * (v - centre[1])
    side /= np.float32(radius)
    lesion = paint.colour(rng, (118, 74, 52), 0.15) * np.ones_like(img)
    paint.blend(lesion, paint.colour(rng, (170, 120, 88), 0.1), np.clip(n[2] - 0.3, 0, 1))
    wobble = 3 * paint.noise(rng, 18, 1, u, v)[0]  # atypical: coarse, broken, irregular network
    wavelength = radius * rng.uniform(0.16, 0.26)
    lesion *= 1 - np.float32(0.3) * _network(rng, u, v, px, wavelength, wobble)
    paint.blend(lesion, paint.colour(rng, (44, 30, 28), 0.2), np.clip(1.6 * (n[0] + side), 0, 1))
    veil = np.clip(1.5 * (n[1] - side) - 0.4, 0, 0.85) * np.clip(1.4 - depth, 0, 1)
    paint.blend(lesion, paint.colour(rng, (104, 112, 138), 0.12), veil)
    paint.blend(img, lesion, np.float32(rng.uniform(0.9, 1.0)) * alpha)


def _paint_bkl(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Benign keratosis: light brown/tan, waxy mottled surface, sharp lobulated border."""
    alpha, depth, centre, radius = paint.lesion(rng, u, v, px, paint.OUTLINES["bkl"])
    colour = paint.colour(rng, (182, 140, 100), 0.14)
    cells = 22
    n = paint.noise(rng, cells, 2, u, v)
    gain = np.float32(paint.detail_gain(2 * paint.EXTENT / cells, px))
    fissures = np.clip(1 - 3 * np.abs(n[1]), 0, 1)  # cerebriform dark furrows
    shade = 1 + gain * (0.1 * n[0] - 0.22 * fissures) + 0.06 * np.clip(1 - depth, 0, 1)
    lesion = colour * shade
    # Milia-like cysts (ivory) and comedo-like openings (dark): a few small round dots.
    for rgb in ((238, 226, 196), (92, 66, 50)):
        dot = paint.colour(rng, rgb, 0.05)
        for _ in range(rng.integers(0, 5)):
            at = centre + 0.6 * radius * rng.uniform(-1, 1, 2).astype(np.float32)
            du, dv = u - at[0], v - at[1]
            size = rng.uniform(0.018, 0.035)
            paint.blend(lesion, dot, 0.8 * paint.stroke(np.sqrt(du * du + dv * dv), size, px))
    paint.blend(img, lesion, np.float32(rng.uniform(0.85, 0.95)) * alpha)


def _paint_bcc(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Basal cell carcinoma: pearly pink translucent patch, arborizing red vessels, blue nests."""
    alpha, depth, centre, radius = paint.lesion(rng, u, v, px, paint.OUTLINES["bcc"])
    n = paint.noise(rng, 10, 1, u, v)[0]
    paint.blend(
        img, paint.colour(rng, (226, 164, 166), 0.06), np.float32(rng.uniform(0.5, 0.7)) * alpha
    )
    shine = np.clip(0.4 * n + 0.3 * (1 - depth), 0, 1)  # pearly, translucent sheen
    paint.blend(img, np.array([1.0, 0.94, 0.94], np.float32)[:, None, None], 0.25 * shine * alpha)

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
        vessels = np.maximum(
            vessels, paint.stroke(paint.segment_distance(u, v, start, end), width, px)
        )
        n_segments += 1
        if level < 3:
            stack.append((end, heading, 0.8 * width, level + 1))
            if rng.random() < 0.6:
                fork = rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
                stack.append((end, heading + fork, 0.6 * width, level + 1))
    paint.blend(
        img, paint.colour(rng, (186, 36, 48), 0.12), 0.9 * vessels * np.clip(1.5 * alpha, 0, 1)
    )

    if rng.random() < 0.55:  # ovoid blue-grey nests
        nest = paint.colour(rng, (78, 84, 112), 0.15)
        for _ in range(rng.integers(1, 4)):
            at = centre + radius * rng.uniform(-0.5, 0.5, 2).astype(np.float32)
            size = radius * rng.uniform(0.15, 0.3)
            stretch = np.float32(rng.uniform(1.2, 1.8))
            du, dv = (u - at[0]) / stretch, v - at[1]
            d = np.sqrt(du * du + dv * dv)
            paint.blend(img, nest, 0.85 * paint.edge(np.float32(size) - d, 0.3 * size, px))


def _paint_akiec(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Actinic keratosis / Bowen's: red-pink rough scaly patch, ill-defined, white scale flecks."""
    alpha, _, _, _ = paint.lesion(rng, u, v, px, paint.OUTLINES["akiec"])
    cells = 40
    rough = paint.noise(rng, cells, 2, u, v)
    patchy = paint.noise(rng, 8, 1, u, v)[0]
    gain = np.float32(paint.detail_gain(2 * paint.EXTENT / cells, px))
    colour = paint.colour(rng, (212, 112, 106), 0.1)
    shade = 1 + gain * 0.12 * rough[0] + 0.06 * patchy
    paint.blend(img, colour * shade, np.float32(rng.uniform(0.75, 0.9)) * alpha)
    scale = np.clip(1.5 * (rough[1] - 0.6) + 0.5 * patchy, 0, 1) * gain
    paint.blend(img, paint.colour(rng, (244, 236, 226), 0.03), 0.9 * scale * alpha)


def _paint_df(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Dermatofibroma: small, faint light-brown peripheral ring around a white scar-like centre."""
    alpha, depth, centre, radius = paint.lesion(rng, u, v, px, paint.OUTLINES["df"])
    n = paint.noise(rng, 12, 1, u, v)[0]
    ring = paint.colour(rng, (168, 116, 86), 0.12) * (1 + 0.08 * n)
    paint.blend(img, ring, np.float32(rng.uniform(0.55, 0.75)) * alpha * np.clip(depth + 0.2, 0, 1))
    scar = paint.Outline(
        (0.35 * radius, 0.55 * radius), (0.6, 1.0), (2, 6), 0.15, 0.25, 0.2 * radius
    )
    centre_alpha, _, _, _ = paint.lesion(rng, u - centre[0], v - centre[1], px, scar)
    paint.blend(img, paint.colour(rng, (242, 232, 226), 0.03), 0.9 * centre_alpha)


def _paint_vasc(img: Field, rng: np.random.Generator, u: Field, v: Field, px: float) -> None:
    """Vascular lesion: a cluster of sharp red/purple/maroon lobules in a pinkish halo."""
    centre = rng.uniform(-0.08, 0.08, 2).astype(np.float32)
    spread = rng.uniform(0.18, 0.34)
    du, dv = u - centre[0], v - centre[1]
    halo = paint.edge(np.float32(spread + 0.2) - np.sqrt(du * du + dv * dv), 0.25, px)
    paint.blend(img, paint.colour(rng, (214, 150, 152), 0.06), 0.6 * halo)
    palette = ((176, 34, 50), (118, 42, 92), (100, 24, 42))
    for _ in range(rng.integers(4, 11)):
        a, r = rng.uniform(0, 2 * np.pi), spread * np.sqrt(rng.uniform(0, 1))
        at = centre + r * np.array([np.cos(a), np.sin(a)], np.float32)
        size = rng.uniform(0.1, 0.22)
        colour = paint.colour(rng, palette[rng.integers(3)], 0.15)
        du, dv = u - at[0], v - at[1]
        d = np.sqrt(du * du + dv * dv) / np.float32(size)
        lobule = colour * (0.75 + 0.25 * np.clip(d, 0, 1))  # darker core
        paint.blend(img, lobule, 0.95 * paint.edge(np.float32(size) * (1 - d), 0.08 * size, px))


_PAINTERS: dict[str, Callable[[Field, np.random.Generator, Field, Field, float], None]] = {
    "akiec": _paint_akiec,
    "bcc": _paint_bcc,
    "bkl": _paint_bkl,
    "df": _paint_df,
    "mel": _paint_mel,
    "nv": _paint_nv,
    "vasc": _paint_vasc,
}
