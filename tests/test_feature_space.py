"""The domain feature network: which images it learns from, and its cache file."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

import pipelines.steps.feature_space as feature_space
from classifier.training import ClassifierConfig
from pipelines.data.dataset import Dataset
from pipelines.data.splits import Split
from pipelines.errors import UserError


def numbered_dataset(n: int = 36, size: int = 32) -> Dataset:
    """Image i is a flat square of grey level i: any tensor of images says which ones it holds."""
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, size, size, 3))
    return Dataset(
        images=np.ascontiguousarray(images),
        labels=np.arange(n) % 3,
        class_names=["df", "mel", "nv"],
        image_ids=[f"img{i}" for i in range(n)],
        lesion_ids=[f"lesion{i}" for i in range(n)],
        format="test",
        source="numbered images",
        fingerprint="numbered",
    )


def image_numbers(x: torch.Tensor) -> list[int]:
    """The index of each image in an N×3×S×S batch of numbered_dataset images."""
    flat = x.flatten(1)
    assert torch.equal(flat.amin(1), flat.amax(1)), "not numbered_dataset images"
    return flat[:, 0].tolist()


def test_domain_network_is_fitted_on_training_images_only(tmp_path: Path, monkeypatch):
    """The feature network defines the space that FID/KID and the filter measure against the
    class's validation images; fitted on them (or on test images), it would have seen the very
    reals it judges generated samples against. Validation is for choosing its best step only:
    the tensors handed to the trainer are exactly the split's train and val images."""
    ds = numbered_dataset()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.labels))
    split = Split(train=np.sort(order[:24]), val=np.sort(order[24:30]), test=np.sort(order[30:]))
    seen = {}
    real_train = feature_space.train_classifier

    def spy(model, train, val, *args, **kwargs):
        (train_x, train_y), (val_x, val_y) = train, val
        seen.update(train=image_numbers(train_x), val=image_numbers(val_x))
        seen.update(train_y=train_y.tolist(), val_y=val_y.tolist())
        return real_train(model, train, val, *args, **kwargs)

    monkeypatch.setattr(feature_space, "train_classifier", spy)
    cfg = ClassifierConfig(steps=2, batch_size=8, eval_every=2, sampling="balanced")
    _train_briefly(ds, split, tmp_path, cfg)  # which data it saw is what matters
    assert seen, "the feature network was not trained through train_classifier"
    assert sorted(seen["train"]) == split.train.tolist()
    assert not set(seen["train"]) & (set(split.val.tolist()) | set(split.test.tolist()))
    assert sorted(seen["val"]) == split.val.tolist()
    assert seen["train_y"] == ds.labels[seen["train"]].tolist()  # labels travel with images
    assert seen["val_y"] == ds.labels[seen["val"]].tolist()


def _train_briefly(ds, split, run_dir: Path, cfg: ClassifierConfig) -> None:
    """The domain network trained for cfg's few steps (which learn nothing: its refusal as
    meaningless is expected and ignored)."""
    with contextlib.suppress(UserError):
        request = feature_space.FeatureRequest(training=cfg)
        feature_space.domain_space(ds, split, run_dir, torch.device("cpu"), request, False)


TWO_STEPS = ClassifierConfig(steps=2, batch_size=16, eval_every=2, sampling="balanced")


def _train_on_demo(run_dir: Path) -> Path:
    """Two steps of the domain network on the demo data; the file they write."""
    from pipelines.data.load import load_dataset
    from pipelines.data.splits import load_or_make_split

    ds = load_dataset("demo", 32, progress=False)
    split = load_or_make_split(ds, run_dir)
    _train_briefly(ds, split, run_dir, TWO_STEPS)  # what matters is the file
    [path] = (run_dir / "features").glob("domain_32px_*.pt")
    return path


def test_domain_feature_network_does_not_depend_on_the_global_rng(tmp_path: Path):
    weights = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # what earlier work in the process left behind
        weights.append(torch.load(_train_on_demo(tmp_path / f"run{seed}"), weights_only=True))
    a, b = (w["state_dict"] for w in weights)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_truncated_domain_feature_file_is_trained_again(tmp_path: Path, capsys):
    path = _train_on_demo(tmp_path)
    path.write_bytes(b"PK\x03\x04 torn")
    capsys.readouterr()
    assert _train_on_demo(tmp_path) == path
    assert f"note: {path} is unreadable" in capsys.readouterr().err
    assert torch.load(path, weights_only=True)["split_id"]  # written again, readable
