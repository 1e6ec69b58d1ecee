"""The feature space a run measures FID/KID in: `domain` (default, offline) or `inception`.

The domain network is a CompactCNN trained on the real training split of all classes and cached
in <run>/features/domain_<size>px_<key>.pt with its validation balanced accuracy, the key a hash
of everything it is a function of (split, classes, size, training config), as stylegan2-ada
keys its metric caches. A network that learned nothing would make FID meaningless, so one whose
balanced accuracy is not clearly above chance is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from classifier.networks import CompactCNN
from classifier.training import ClassifierConfig, train_classifier
from gan.conventions import atomic_torch_save, to_nchw
from gan.metrics.features import (
    FeatureSpace,
    find_inception_weights,
    inception_space,
    inception_weights_help,
)
from pipelines.data.dataset import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError, note
from pipelines.store.layout import RunLayout

FEATURE_SPACES = ("domain", "inception")
FEATURE_DIMS = {"domain": 256, "inception": 2048}  # CompactCNN's default, Inception's pool3
DOMAIN_WIDTH = 32  # the domain network's first stage (CompactCNN's width; the smoke profile's 16)
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


@dataclass(frozen=True)
class FeatureRequest:
    """Which feature space a command measures in; for the domain network, how it trains."""

    name: str = "domain"
    precision: str = "fp32"
    inception_weights: str | None = None
    training: ClassifierConfig = field(default_factory=lambda: DOMAIN_CONFIG)
    width: int = DOMAIN_WIDTH


def load_feature_space(
    request: FeatureRequest,
    ds: Dataset,
    split: Split,
    run_dir: Path,
    device: torch.device,
    progress: bool = True,
    existing_only: bool = False,
) -> FeatureSpace | None:
    """The feature space asked for. existing_only: the domain network only if it is already
    trained (else None), for commands that would train it only to report numbers."""
    if request.name == "inception":
        weights = find_inception_weights(request.inception_weights)
        if weights is None:
            raise UserError(inception_weights_help())
        return inception_space(weights, device)
    if request.name != "domain":
        known = ", ".join(FEATURE_SPACES)
        raise UserError(f"unknown feature space {request.name!r}; use {known}")
    return domain_space(ds, split, run_dir, device, request, progress, existing_only)


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
        note(f"{path} is unreadable ({type(e).__name__}); training the feature network again")
        return None


def network_key(
    split: Split, num_classes: int, size: int, cfg: ClassifierConfig, width: int = DOMAIN_WIDTH
) -> str:
    """What the domain network is a function of: its cache file is named by this hash, so
    commands that train it differently (gan-train's 600 steps, a profile's budget) never
    share one. (The default width is left out: keys from before it could change stay.)"""
    payload = {"split": split_id(split), "classes": num_classes, "size": size, **cfg.as_dict()}
    payload |= {} if width == DOMAIN_WIDTH else {"width": width}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _cached_network(
    layout: RunLayout, size: int, key: str, sid: str, num_classes: int, cfg: ClassifierConfig
) -> dict | None:
    """The network trained for this key; one written before caches were keyed
    (domain_<S>px.pt) is read when its split, classes and training config are this one's."""
    saved = _read_saved(layout.feature_network(size, key))
    if saved is not None:
        return saved
    legacy = _read_saved(layout.legacy_feature_network(size))
    same = legacy is not None and legacy.get("config") == cfg.as_dict()
    if same and legacy["split_id"] == sid and legacy["num_classes"] == num_classes:
        return legacy
    return None


def domain_space(
    ds: Dataset,
    split: Split,
    run_dir: Path,
    device: torch.device,
    request: FeatureRequest = FeatureRequest(),
    progress: bool = True,
    existing_only: bool = False,
) -> FeatureSpace | None:
    size = ds.images.shape[1]
    layout = RunLayout(Path(run_dir))
    num_classes = len(ds.class_names)
    cfg = request.training
    run_cfg = ClassifierConfig(**{**cfg.as_dict(), "precision": request.precision})
    key = network_key(split, num_classes, size, run_cfg, request.width)
    path = layout.feature_network(size, key)
    with torch.random.fork_rng(devices=[]):
        # its initial weights come from the config's seed, not from whatever the global RNG
        # holds: every command that asks for this config (its key) gets the same network, and
        # with it the same FIDs, filter thresholds and kept samples
        torch.manual_seed(cfg.seed)
        net = CompactCNN(num_classes, request.width, input_size=size)
    sid = split_id(split)
    saved = _cached_network(layout, size, key, sid, num_classes, run_cfg)
    if saved is not None:
        net.load_state_dict(saved["state_dict"])
        bacc = saved["val_balanced_accuracy"]
    elif existing_only:
        return None
    else:
        net, bacc = _train_network(ds, split, net, run_cfg, device, progress, path)
    floor = min_useful_balanced_accuracy(num_classes)
    if bacc < floor:
        raise UserError(
            f"the domain feature network in {path} reached validation balanced accuracy "
            f"{bacc:.3f} (chance {1 / num_classes:.3f}, needed >= {floor:.3f}), so FID in its "
            "space would be meaningless; delete it to retrain, or use --feature-space inception"
        )
    return as_feature_space(net, device)


def as_feature_space(net: CompactCNN, device: torch.device | str) -> FeatureSpace:
    """A domain network as the feature space FID/KID and the filter measure in: its
    penultimate layer, in evaluation mode, on `device`."""
    return FeatureSpace("domain", net.num_features, _Penultimate(net.to(device)).eval())


def _train_network(
    ds: Dataset, split: Split, net: CompactCNN, cfg: ClassifierConfig, device, progress, path
) -> tuple[CompactCNN, float]:
    """Train on the training split (validation picks the step), and cache it at `path`."""
    size, num_classes = ds.images.shape[1], len(ds.class_names)
    tx, vx = (to_nchw(ds.images[idx], device) for idx in (split.train, split.val))
    ty, vy = (torch.from_numpy(ds.labels[idx]).to(device) for idx in (split.train, split.val))
    result = train_classifier(
        net, (tx, ty), (vx, vy), num_classes, cfg, progress, desc=f"domain features {size}px"
    )
    net, bacc = result.model.cpu(), result.best_val_balanced_accuracy
    record = {
        "state_dict": net.state_dict(),
        "num_classes": num_classes,
        "val_balanced_accuracy": bacc,
        "split_id": split_id(split),
        "size": size,
        "config": cfg.as_dict(),
        "history": json.dumps(result.history),
    }
    atomic_torch_save(record, path)
    return net, bacc
