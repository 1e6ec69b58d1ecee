"""Each quality measure on cases whose answer is known: a perfect generator, graded damage, and
a perfect class-balanced source.

    python benchmarks/quality_measures.py [--data ../shared/data/HAM10000]
        [--run-dir runs/quality_measures] [--size 32] [--steps 300]

A perfect generator's samples are new lesions of the class: here, real training images of
lesions the "generator" never saw. Per rare class (df, mel), its training lesions are dealt at
random (seed 0) into halves A and B; A stands for the reals a generator learns from, B for its
output, and B is dealt again, by lesion, into B1 ("kept" samples) and B2 ("fresh" ones):

* held-out KID: B against the class's validation images; the floor is A against them (both
  real-vs-real, so a perfect generator sits at the floor);
* detectability (classifier.two_sample): a CompactCNN trained on A against B1, scored on the
  validation images against B2 (balanced accuracy; 0.5 = indistinguishable);
* the same with B damaged at graded strengths — Gaussian blur, Gaussian noise, a colour cast
  (red up, blue down) — where both measures should rise with the strength.

The source GAN's case (gan.metrics.kid.mixture_kid): a perfect class-balanced generator is a
class-balanced draw of training reals. Against the natural-mix validation set plain KID scores
it far above the real floor (it measures the mix); against the validation set weighted to the
balanced mix it sits at that metric's floor, and a draw with the natural mix is what it flags.

Given a finished augment-and-compare run as --run-dir, its split (with any lesions it held
back) and its source GAN's best.pt and last.pt are used: both checkpoints are scored by both
metrics, in this benchmark's feature network (trained on that split, cached beside the run's).

Features: the project's domain network (pipelines.steps.feature_space), trained once on the
split's training images and cached in --run-dir with split.json. Detectability is one seed's
point estimate per row, with its test sizes: no interval is quoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F
from _ham import DEFAULT_DATA, ham_missing, ham_space  # benchmarks/ is on sys.path when run

from classifier.two_sample import detectability
from gan.conventions import to_nchw
from gan.metrics.features import extract_features
from gan.metrics.kid import kid_full, mixture_kid
from gan.training import sample
from pipelines.steps.sampling import load_generator
from pipelines.store.records import cpu_name

SOURCE_N = 2000


def deal(lesions: list[str], seed: int) -> np.ndarray:
    """True for the rows whose lesion falls in the first half of a random deal of lesions."""
    unique = sorted(set(lesions))
    first = set(
        np.asarray(unique)[np.random.default_rng(seed).permutation(len(unique))][: len(unique) // 2]
    )
    return np.array([le in first for le in lesions])


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of uint8 N×S×S×3 images, sigma in pixels."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k, groups=3)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.transpose(2, 3), groups=3)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def noise(images: np.ndarray, sd: float) -> np.ndarray:
    """Gaussian pixel noise of `sd` grey levels (fixed seed)."""
    rng = np.random.default_rng(0)
    return np.clip(images + rng.normal(0, sd, images.shape), 0, 255).round().astype(np.uint8)


def colour_cast(images: np.ndarray, strength: float) -> np.ndarray:
    """Red channel up, blue down by `strength` (a share of the value)."""
    gains = np.array([1 + strength, 1.0, 1 - strength])
    return np.clip(images * gains, 0, 255).round().astype(np.uint8)


DAMAGE: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], tuple[float, ...]]] = {
    "blur, sigma px": (blur, (0.5, 1.0, 2.0)),
    "noise, sd grey levels": (noise, (4.0, 8.0, 16.0)),
    "colour cast, share": (colour_cast, (0.05, 0.1, 0.2)),
}


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True)
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs/quality_measures"))
@click.option("--size", type=int, default=32, show_default=True)
@click.option("--steps", type=int, default=300, show_default=True, help="detectability steps")
@click.option("--classes", default="df,mel", show_default=True)
def main(data: Path, run_dir: Path, size: int, steps: int, classes: str) -> None:
    if ham_missing(data):
        return
    t0 = time.perf_counter()
    cpu = torch.device("cpu")
    ds, split, space, _ = ham_space(data, run_dir, size)
    print(
        f"{cpu_name()}, {torch.get_num_threads()} thread(s); HAM10000 at {size} px, "
        f"{space.name}-{space.dim}d features (network cached in {run_dir}); "
        f"data + features {time.perf_counter() - t0:.0f} s\n"
    )

    def feats(images: np.ndarray) -> torch.Tensor:
        return extract_features(space, to_nchw(images))

    print(
        "Rare-class generators: B (other training lesions of the class) as a perfect "
        "generator, then damaged; KID ×1e3 against the class's validation images (floor: A "
        "against them); detectability = balanced accuracy of a CompactCNN (A vs B1 -> "
        f"validation vs B2, {steps} steps)\n"
    )
    print(
        "| class | case | strength | held-out KID ×1e3 | floor ×1e3 | detectability | "
        "test n (real, generated) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name in classes.split(","):
        label = ds.class_index(name)
        train = split.train[ds.labels[split.train] == label]
        val = split.val[ds.labels[split.val] == label]
        lesions = [ds.lesion_ids[i] for i in train]
        in_a = deal(lesions, 0)
        a, b = ds.images[train[in_a]], ds.images[train[~in_a]]
        in_b1 = deal([le for le, x in zip(lesions, in_a) if not x], 1)
        held = ds.images[val]
        held_f = feats(held)
        floor = kid_full(held_f, feats(a))
        cases = [("perfect (other lesions)", "", b)]
        for case, (damage, strengths) in DAMAGE.items():
            cases += [(case, f"{s:g}", damage(b, s)) for s in strengths]
        for case, strength, generated in cases:
            kid = kid_full(held_f, feats(generated))
            det = detectability(a, generated[in_b1], held, generated[~in_b1], steps=steps)
            print(
                f"| {name} | {case} | {strength} | {1e3 * kid:.2f} | {1e3 * floor:.2f} | "
                f"{det['accuracy']:.3f} | {det['n_test'][0]}, {det['n_test'][1]} |",
                flush=True,
            )

    print(
        "\nThe source (all classes, trained on class-balanced draws): a perfect balanced "
        "generator is a balanced draw of training reals (the smallest class's count from each, "
        "without replacement, seed 0); KID ×1e3 "
        "against the validation images, plain (natural mix) and weighted to the balanced mix "
        "(mixture KID); floors: the training reals (natural mix) scored the same way\n"
    )
    labels = ds.labels[split.train]
    counts = np.bincount(labels, minlength=len(ds.class_names))
    present = np.flatnonzero(counts)
    mix = {int(c): 1 / len(present) for c in present}
    rng = np.random.default_rng(0)
    per_class = int(counts[present].min())
    balanced = np.concatenate(
        [rng.choice(split.train[labels == c], per_class, replace=False) for c in present]
    )
    draws = {
        "balanced draw (perfect balanced generator)": balanced,
        "natural-mix draw": rng.choice(split.train, len(balanced), replace=False),
    }
    val_f = feats(ds.images[split.val])
    val_l = torch.from_numpy(ds.labels[split.val])
    train_f = feats(ds.images[split.train])
    train_l = torch.from_numpy(labels)
    plain_floor = kid_full(val_f, train_f)
    mix_floor = mixture_kid(val_f, val_l, train_f, mix, train_l)
    print("| generated set | plain KID ×1e3 | plain floor | mixture KID ×1e3 | mixture floor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for case, rows in draws.items():
        f = feats(ds.images[rows])
        print(
            f"| {case} | {1e3 * kid_full(val_f, f):.2f} | {1e3 * plain_floor:.2f} | "
            f"{1e3 * mixture_kid(val_f, val_l, f, mix):.2f} | {1e3 * mix_floor:.2f} |"
        )
    source = run_dir / "gan" / "all"
    if (source / "last.pt").is_file():
        print(
            f"\nThe run's own source GAN ({source}): {SOURCE_N} samples (latent seed 0) of each "
            "checkpoint scored both ways; best.pt was chosen by whichever metric the run used "
            "(its run.json says which)\n"
        )
        print("| checkpoint | kimg | plain KID ×1e3 | mixture KID ×1e3 |")
        print("| --- | ---: | ---: | ---: |")
        for name in ("best.pt", "last.pt"):
            G, ckpt = load_generator(source / name, size, cpu)
            z = torch.randn(SOURCE_N, G.nz, generator=torch.Generator().manual_seed(0))
            f = extract_features(space, sample(G, z, precision="fp32"))
            print(
                f"| {name} | {ckpt['nimg'] / 1000:.1f} | {1e3 * kid_full(val_f, f):.2f} | "
                f"{1e3 * mixture_kid(val_f, val_l, f, mix):.2f} |"
            )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
