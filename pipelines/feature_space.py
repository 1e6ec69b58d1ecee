"""The feature space a run measures FID/KID in: `domain` (default, offline) or `inception`.

The domain network is a CompactCNN trained once per (run directory, size, split) on the real
training split of all classes and cached in <run>/features/domain_<size>px.pt with its validation
balanced accuracy. A network that learned nothing would make FID meaningless, so one whose
balanced accuracy is not clearly above chance is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import click
import torch
from torch import nn

from classifier.networks import CompactCNN
from classifier.training import ClassifierConfig, train_classifier
from gan.metrics.features import (
    FeatureSpace,
    find_inception_weights,
    inception_space,
    inception_weights_help,
)
from pipelines.data.datasets import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError
from pipelines.rundir import atomic_write_bytes

FEATURE_SPACES = ("domain", "inception")
FEATURE_DIMS = {"domain": 256, "inception": 2048}  # CompactCNN's default, Inception's pool3
DOMAIN_CONFIG = ClassifierConfig(
    steps=600, batch_size=64, lr=3e-3, sampling="balanced", eval_every=100
)


def min_useful_balanced_accuracy(num_classes: int) -> float:
    """'Clearly above chance': 1.5x chance and at least 10 points above it."""
    chance = 1.0 / num_classes
    return max(1.5 * chance, chance + 0.10)


class _Penultimate(nn.Module):
    def __init__(self, net: CompactCNN):
        super().__init__()
        self.net = net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.contiguous(memory_format=torch.channels_last)).float()


def split_id(split: Split) -> str:
    h = hashlib.sha256()
    for part in (split.train, split.val):
        h.update(part.tobytes())
    return h.hexdigest()[:16]


def load_feature_space(
    name: str,
    ds: Dataset,
    split: Split,
    run_dir: Path,
    device: torch.device,
    precision: str = "fp32",
    inception_weights: str | None = None,
    progress: bool = True,
    cfg: ClassifierConfig = DOMAIN_CONFIG,
    existing_only: bool = False,
) -> FeatureSpace | None:
    """The feature space `name`. existing_only: the domain network only if it is already
    trained (else None), for commands that would train it only to report numbers."""
    if name == "inception":
        weights = find_inception_weights(inception_weights)
        if weights is None:
            raise UserError(inception_weights_help())
        return inception_space(weights, device)
    if name != "domain":
        raise UserError(f"unknown feature space {name!r}; use {', '.join(FEATURE_SPACES)}")
    return domain_space(ds, split, run_dir, device, precision, progress, cfg, existing_only)


def _read_saved(path: Path) -> dict | None:
    """The cached network, or None. One that cannot be read (a disk error, a copy cut short)
    is trained again: its seeded training gives the same network."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "split_id", "num_classes", "val_balanced_accuracy"):
            saved[key]  # noqa: B018 - all there
        return saved
    except Exception as e:  # noqa: BLE001 - any failure means "not usable"
        click.echo(
            f"note: {path} is unreadable ({type(e).__name__}); training the feature network again",
            err=True,
        )
        return None


def domain_space(
    ds: Dataset,
    split: Split,
    run_dir: Path,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = True,
    cfg: ClassifierConfig = DOMAIN_CONFIG,
    existing_only: bool = False,
) -> FeatureSpace | None:
    size = ds.images.shape[1]
    path = Path(run_dir) / "features" / f"domain_{size}px.pt"
    num_classes = len(ds.class_names)
    with torch.random.fork_rng(devices=[]):
        # its initial weights come from the config's seed, not from whatever the global RNG
        # holds: every command (gan-train, gan-sample, each job) gets the same network, and
        # with it the same FIDs, filter thresholds and kept samples
        torch.manual_seed(cfg.seed)
        net = CompactCNN(num_classes, input_size=size)
    sid = split_id(split)
    saved = _read_saved(path)
    if saved is not None and saved["split_id"] == sid and saved["num_classes"] == num_classes:
        net.load_state_dict(saved["state_dict"])
        bacc = saved["val_balanced_accuracy"]
    elif existing_only:
        return None
    else:

        def to_device(idx):
            x = torch.from_numpy(ds.images[idx]).permute(0, 3, 1, 2).to(device)
            return x, torch.from_numpy(ds.labels[idx]).to(device)

        (tx, ty), (vx, vy) = to_device(split.train), to_device(split.val)
        run_cfg = ClassifierConfig(**{**cfg.as_dict(), "precision": precision})
        result = train_classifier(
            net, tx, ty, vx, vy, num_classes, run_cfg, progress, desc=f"domain features {size}px"
        )
        net, bacc = result.model.cpu(), result.best_val_balanced_accuracy
        buf = io.BytesIO()
        torch.save(
            {
                "state_dict": net.state_dict(),
                "num_classes": num_classes,
                "val_balanced_accuracy": bacc,
                "split_id": sid,
                "size": size,
                "config": run_cfg.as_dict(),
                "history": json.dumps(result.history),
            },
            buf,
        )
        atomic_write_bytes(path, buf.getvalue())
    floor = min_useful_balanced_accuracy(num_classes)
    if bacc < floor:
        raise UserError(
            f"the domain feature network in {path} reached validation balanced accuracy "
            f"{bacc:.3f} (chance {1 / num_classes:.3f}, needed >= {floor:.3f}), so FID in its "
            "space would be meaningless; delete it to retrain, or use --feature-space inception"
        )
    return FeatureSpace("domain", net.num_features, _Penultimate(net.to(device)).eval())
