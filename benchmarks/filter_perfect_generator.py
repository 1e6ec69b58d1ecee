"""The filter against a perfect generator: is `matching` ever worse than random selection?

    python benchmarks/filter_perfect_generator.py [--data ../shared/data/HAM10000]
        [--run-dir runs/filter_perfect] [--size 32] [--partitions 10]

A perfect generator's samples are new lesions of the class: here, real images. Per class (df,
mel) and partition, the class's training lesions are dealt at random, half to a "pool" (the
perfect generator's output) and half to the "reals" the filter selects with; the class's
validation images stay held out (lesion-level split of pipelines.data.splits). gan-sample's
default filter (`matching`, near-copy threshold from the reals' between-lesion distances)
keeps half the pool, n = pool // 2. Then the held-out verdict of gan-sample's summary.json
(gan.metrics.filter_verdict: KID(kept) − KID(random subset of the pool), 95 % paired bootstrap
over held-out lesions and random subsets) says beats / no difference / worse. Kept and random
are equal by construction, so a sound filter and verdict say "no difference" in nearly every
partition and never "worse".

Second table: can near-copy detection catch *another photo of a training lesion*? For every
training image whose lesion has >= 2 training images: is it closer to its lesion's other photos
than the copy threshold (plain, and from between-lesion distances)? And how far is its nearest
same-lesion photo compared with the nearest image of another lesion?

Features: the project's domain network (pipelines.steps.feature_space), trained once on the
split's training images and cached in --run-dir with split.json. Run with one thread for the timings
quoted in the README (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import click
import numpy as np
import torch
from _ham import DEFAULT_DATA, ham_missing, ham_space  # benchmarks/ is on sys.path when run

from gan.conventions import to_nchw
from gan.filtering import COPY, DUPLICATE, copy_threshold, select
from gan.metrics.features import extract_features
from gan.metrics.filter_verdict import BEATS, NO_DIFFERENCE, WORSE, filter_vs_random
from pipelines.store.records import cpu_name


def partition(lesions: list[str], seed: int) -> tuple[set[str], set[str]]:
    """The class's training lesions dealt at random: (pool lesions, real lesions)."""
    unique = sorted(set(lesions))
    order = np.random.default_rng(seed).permutation(len(unique))
    half = len(unique) // 2
    return {unique[i] for i in order[:half]}, {unique[i] for i in order[half:]}


def run_partition(
    feats: torch.Tensor, lesions: list[str], held: torch.Tensor, held_lesions: list[str], seed: int
) -> dict:
    """The filter on one partition, and two selections of known quality as controls of what
    the verdict can resolve: `truncation` (the n pool images nearest the reals' mean: too
    narrow a set, worse than random) and `oracle` (the filter matching against the held-out
    images themselves: it peeks, so it should beat random)."""
    pool_les, real_les = partition(lesions, seed)
    in_pool = torch.tensor([le in pool_les for le in lesions])
    pool, real = feats[in_pool], feats[~in_pool]
    real_groups = [le for le in lesions if le in real_les]
    n = len(pool) // 2
    sel = select(pool, real, n, seed=seed, real_groups=real_groups)
    controls = {
        "truncation": (pool - real.mean(0)).norm(dim=1).argsort()[:n],
        "oracle": select(pool, held, n, seed=seed, real_groups=held_lesions).kept,
    }
    return {
        "pool": len(pool),
        "real": len(real),
        "kept": len(sel.kept),
        "copies": sel.verdict.count(COPY),
        "duplicates": sel.verdict.count(DUPLICATE),
        "verdict": filter_vs_random(pool[sel.kept], pool, held, held_lesions, seed=seed),
        "controls": {
            k: filter_vs_random(pool[idx], pool, held, held_lesions, seed=seed)
            for k, idx in controls.items()
        },
    }


def same_lesion_copies(feats: torch.Tensor, lesions: list[str], held: torch.Tensor) -> dict:
    """How near-copy detection sees other photos of a training lesion (see module docstring)."""
    d = torch.cdist(feats, feats)
    d.fill_diagonal_(float("inf"))
    codes = {le: i for i, le in enumerate(dict.fromkeys(lesions))}
    c = torch.tensor([codes[le] for le in lesions])
    same = c.unsqueeze(0) == c.unsqueeze(1)
    within = d.masked_fill(~same, float("inf")).min(1).values
    between = d.masked_fill(same, float("inf")).min(1).values
    multi = torch.isfinite(within)
    plain, by_lesion = copy_threshold(feats), copy_threshold(feats, groups=lesions)
    held_nn = torch.cdist(held, feats).min(1).values
    return {
        "photos": int(multi.sum()),
        "within_median": float(within[multi].median()),
        "between_median": float(between.median()),
        "nearer_own_lesion": float((within[multi] < between[multi]).float().mean()),
        "caught_plain": int((within[multi] < plain).sum()),
        "caught_by_lesion": int((within[multi] < by_lesion).sum()),
        "thr_plain": plain,
        "thr_by_lesion": by_lesion,
        "held_flagged_plain": float((held_nn < plain).float().mean()),
        "held_flagged_by_lesion": float((held_nn < by_lesion).float().mean()),
    }


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True)
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("runs/filter_perfect"))
@click.option("--size", type=int, default=32, show_default=True)
@click.option("--partitions", type=int, default=10, show_default=True)
@click.option("--classes", default="df,mel", show_default=True)
def main(data: Path, run_dir: Path, size: int, partitions: int, classes: str) -> None:
    if ham_missing(data):
        return
    t0 = time.perf_counter()
    ds, split, space, t_space = ham_space(data, run_dir, size)
    print(
        f"{cpu_name()}, {torch.get_num_threads()} thread(s); HAM10000 at {size} px, "
        f"{space.name}-{space.dim}d features (network cached in {run_dir}); "
        f"data + features {t_space:.0f} s"
    )

    def class_feats(part: str, label: int) -> tuple[torch.Tensor, list[str]]:
        idx = split[part][ds.labels[split[part]] == label]
        x = to_nchw(ds.images[idx])
        return extract_features(space, x), [ds.lesion_ids[i] for i in idx]

    print(
        "\nmatching filter, keep n = pool // 2; KID ×1e3 on the held-out (validation) images; "
        "random = expected KID of a random n of the pool; Δ = kept − random, 95 % paired "
        "bootstrap over held-out lesions and random subsets\n"
    )
    print(
        "| class | partition | reals | pool | kept | near-copy / near-dup rejected | "
        "kept KID | random KID | Δ [95 % CI] | verdict |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    verdicts: dict[tuple[str, str], list] = collections.defaultdict(list)
    copies, n_held = {}, {}
    for name in classes.split(","):
        label = ds.class_index(name)
        feats, lesions = class_feats("train", label)
        held, held_lesions = class_feats("val", label)
        n_held[name] = f"{len(held)} ({len(set(held_lesions))})"
        for p in range(partitions):
            r = run_partition(feats, lesions, held, held_lesions, p)
            v = r["verdict"]
            verdicts[name, "matching (the filter)"].append(v)
            for k, c in r["controls"].items():
                verdicts[name, k].append(c)
            print(
                f"| {name} | {p} | {r['real']} | {r['pool']} | {r['kept']} | "
                f"{r['copies']} / {r['duplicates']} | {1e3 * v.kid_kept:.2f} | "
                f"{1e3 * v.kid_random:.2f} | {1e3 * v.kid_diff:+.2f} "
                f"[{1e3 * v.ci95[0]:+.2f}, {1e3 * v.ci95[1]:+.2f}] | {v.verdict} |"
            )
        copies[name] = same_lesion_copies(feats, lesions, held)

    print(
        "\nverdicts over the partitions; truncation and oracle are controls of known quality "
        "(worse / better than random), to show what the interval can resolve\n"
    )
    print(
        "| class | held-out images (lesions) | selection | mean Δ KID ×1e3 | "
        "median CI width ×1e3 | beats | no difference | worse |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, kind), vs in verdicts.items():
        t = collections.Counter(v.verdict for v in vs)
        mean = 1e3 * sum(v.kid_diff for v in vs) / len(vs)
        width = 1e3 * float(np.median([v.ci95[1] - v.ci95[0] for v in vs]))
        print(
            f"| {name} | {n_held[name]} | {kind} | {mean:+.2f} | {width:.1f} | {t[BEATS]} | "
            f"{t[NO_DIFFERENCE]} | {t[WORSE]} |"
        )

    print(
        "\nother photos of a training lesion, as near-copy detection sees them (all training "
        "images of the class; thresholds at the 5 % quantile)\n"
    )
    print(
        "| class | photos of multi-photo lesions | nearest own-lesion photo, median | "
        "nearest other-lesion image, median | own lesion nearer | caught: plain threshold | "
        "caught: between-lesion threshold | held-out flagged: plain / between-lesion |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, c in copies.items():
        print(
            f"| {name} | {c['photos']} | {c['within_median']:.2f} | {c['between_median']:.2f} | "
            f"{100 * c['nearer_own_lesion']:.0f} % | {c['caught_plain']} "
            f"(thr {c['thr_plain']:.2f}) | {c['caught_by_lesion']} "
            f"(thr {c['thr_by_lesion']:.2f}) | {100 * c['held_flagged_plain']:.1f} % / "
            f"{100 * c['held_flagged_by_lesion']:.1f} % |"
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
