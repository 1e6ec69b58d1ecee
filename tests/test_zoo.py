"""classifier.zoo: names, weights, heads and the one-batch contract of --classifier networks."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from classifier.networks import SmallResNet
from classifier.zoo import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NetworkUnavailable,
    build_network,
    check_network,
    parse_name,
)


def builtin(name, k):
    return SmallResNet(k, 8)


def build(family, name, k=3, **kw):
    return build_network(family, name, k, builtin=builtin, **kw)


def test_names_parse_into_their_family():
    assert parse_name("small-resnet") == ("builtin", "small-resnet")
    assert parse_name("compact") == ("builtin", "compact")
    assert parse_name("resnet50") == ("torchvision", "resnet50")
    assert parse_name("timm:convnext_tiny") == ("timm", "convnext_tiny")
    assert parse_name("mypkg.nets:make") == ("function", "mypkg.nets:make")


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_b0",
                                  "mobilenet_v3_small", "convnext_tiny"])  # fmt: skip
def test_torchvision_networks_get_a_head_for_the_runs_classes(name):
    net = build("torchvision", name, 5)
    check_network(net, 5, 32, name)
    assert net(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 5)


def test_a_local_state_dict_gives_the_networks_own_predictions(tmp_path):
    """Weights saved from a torchvision ResNet-18 load key by key; fed uint8 images, the
    wrapped network computes what the original computes on ImageNet-normalised input."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    original = resnet18().eval()
    path = tmp_path / "r18.pt"
    torch.save(original.state_dict(), path)
    net = build("torchvision", "resnet18", 4, weights_file=str(path)).eval()
    assert net.net.fc.out_features == 4
    net.net.fc = original.fc  # the same head: the same predictions, to the last bit
    x = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = original((x.float() / 255 - mean) / std)
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_a_weights_file_is_read_once_while_unchanged(tmp_path, monkeypatch):
    """Every arm's and seed's classifier starts from the same file: one read per process,
    and a rewritten file is read again."""
    import classifier.zoo as zoo

    path = tmp_path / "r18.pt"
    torch.save(resnet18_state(), path)
    reads = []
    load = torch.load
    monkeypatch.setattr(zoo.torch, "load", lambda *a, **k: reads.append(a[0]) or load(*a, **k))
    for _ in range(3):
        build("torchvision", "resnet18", 3, weights_file=str(path))
    assert len(reads) == 1
    before = path.stat().st_mtime_ns
    torch.save(resnet18_state(), path)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a coarse clock could keep the time
    build("torchvision", "resnet18", 3, weights_file=str(path))
    assert len(reads) == 2


def resnet18_state() -> dict:
    from torchvision.models import resnet18

    return {k: v.clone() for k, v in resnet18().state_dict().items()}


def test_weights_of_another_architecture_a_truncated_or_missing_file_are_refused(tmp_path):
    from torchvision.models import resnet34

    other = tmp_path / "r34.pt"
    torch.save(resnet34().state_dict(), other)
    with pytest.raises(NetworkUnavailable, match=r"r34.pt is not a state dict of torchvision "
                       r"resnet18 \(unexpected layer1.2"):  # fmt: skip
        build("torchvision", "resnet18", weights_file=str(other))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(other.read_bytes()[:5000])
    with pytest.raises(NetworkUnavailable, match="cut.pt: cannot be read as a state dict"):
        build("torchvision", "resnet34", weights_file=str(truncated))
    with pytest.raises(NetworkUnavailable, match="nothere.pt: no such file"):
        build("torchvision", "resnet18", weights_file=str(tmp_path / "nothere.pt"))


def test_hub_weights_offline_name_the_file_and_the_local_alternative(monkeypatch):
    import torchvision.models.resnet as tv_resnet

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(tv_resnet.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict",
                        offline)  # fmt: skip
    with pytest.raises(NetworkUnavailable, match="resnet18-f37072fd.pth.*--pretrained-weights"):
        build("torchvision", "resnet18", hub_weights=True)


def test_unknown_names_and_weights_for_networks_without_them_are_refused():
    with pytest.raises(NetworkUnavailable, match="resnet999: not a built-in network"):
        build("torchvision", "resnet999")
    with pytest.raises(NetworkUnavailable, match="small-resnet is a built-in network"):
        build("builtin", "small-resnet", hub_weights=True)
    with pytest.raises(NetworkUnavailable, match="cannot import it"):
        build("function", "no_such_module_xyz:make")
    with pytest.raises(NetworkUnavailable, match="returned str, not an nn.Module"):
        build("function", "user_networks:not_a_module")


def test_a_users_network_gets_unit_range_floats_and_must_return_logits():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            seen.append(x)
            return self.head(x.mean((2, 3)))

    net = build_network("function", "user_networks:tiny_net", 2, builtin=builtin)
    check_network(net, 2, 16, "user_networks:tiny_net")
    net.net = Spy()
    net(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert seen[0].dtype == torch.float32 and seen[0].min() == 0 and seen[0].max() == 1
    wrong = build_network("function", "user_networks:wrong_outputs", 2, builtin=builtin)
    with pytest.raises(NetworkUnavailable, match=r"returns \(2, 3\) for 2 images, not logits "
                       r"of shape \(2, 2\)"):  # fmt: skip
        check_network(wrong, 2, 16, "user_networks:wrong_outputs")


def test_a_network_that_returns_extra_outputs_in_training_is_refused():
    """Like inception_v3's aux logits: a tuple in training mode, refused in the contract's
    words (and a too-small input, as inception_v3 at 32 px, names what it must take)."""
    net = build("function", "user_networks:aux_in_training", 3)
    with pytest.raises(NetworkUnavailable, match="in training mode it returns tuple for 2"):
        check_network(net, 3, 16, "user_networks:aux_in_training")
    with pytest.raises(NetworkUnavailable, match=r"at 8 px fails \(RuntimeError.*must take "
                       r"\(N, 3, 8, 8\)"):  # fmt: skip
        check_network(build("torchvision", "alexnet", 3), 3, 8, "alexnet")


def test_timm_networks_by_name_with_their_head_and_a_local_state_dict(tmp_path):
    timm = pytest.importorskip("timm", reason="the timm extra is not installed")
    net = build("timm", "resnet10t", 4)
    check_network(net, 4, 32, "timm:resnet10t")
    original = timm.create_model("resnet10t")
    path = tmp_path / "r10t.pt"
    torch.save(original.state_dict(), path)
    loaded = build("timm", "resnet10t", 4, weights_file=str(path))
    assert loaded.net.get_classifier().out_features == 4
    for name, w in original.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded.net.state_dict()[name], w), name
    with pytest.raises(NetworkUnavailable, match="timm has no such model"):
        build("timm", "no_such_net_xyz")
    with pytest.raises(NetworkUnavailable, match="pass --pretrained-weights FILE"):
        build("timm", "resnet10t", hub_weights=True)
