"""Which network the downstream classifier is (--classifier), built the one way every arm uses.

A practitioner's question is whether synthetic images help *their* network, so besides the
built-in ones (`small-resnet`, `compact`) the classifier can be any torchvision classification
model by its builder name, a timm model, or a user's own `package.module:function`. Every one is
wrapped to take what the built-ins take (uint8 NCHW images at the classifier's size) and to
return logits, so that training, TTA and evaluation stay one code path:

- torchvision and timm networks get ImageNet-normalised float input (the normalisation their
  weights expect, applied inside the wrapper, pretrained or not);
- a user's function `f(num_classes) -> nn.Module` gets float32 RGB in [0, 1] and must return
  logits of shape (N, num_classes); `check_network` runs one batch to hold it to that.

Weights come from a local state dict (`weights_file`, checked key by key) or, for torchvision,
from the torch hub cache; nothing is fetched from a hub at run time where it cannot be.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gan.conventions import to_model_range

BUILTIN = ("small-resnet", "compact")
FAMILIES = ("builtin", "torchvision", "timm", "function")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class NetworkUnavailable(Exception):
    """The named network cannot be built, loaded or used as a classifier; the message is the
    user's one line (name, what is wrong, what to do)."""


def parse_name(text: str) -> tuple[str, str]:
    """(family, name) of a --classifier value: a built-in name, `timm:NAME`,
    `package.module:function`, or else a torchvision builder name."""
    if text in BUILTIN:
        return "builtin", text
    if text.startswith("timm:"):
        return "timm", text.removeprefix("timm:")
    if ":" in text:
        return "function", text
    return "torchvision", text


def display_name(family: str, name: str) -> str:
    """The name as --classifier takes it (the inverse of parse_name)."""
    return f"timm:{name}" if family == "timm" else name


class ImageNetInput(nn.Module):
    """A network trained on ImageNet-normalised input, fed uint8 images like the built-ins."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (to_model_range(x) + 1) / 2
        return self.net((x - self.mean) / self.std)


class UnitInput(nn.Module):
    """A user's network, fed float32 RGB in [0, 1] (the contract the README states)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((to_model_range(x) + 1) / 2)


def build_network(
    family: str,
    name: str,
    num_classes: int,
    *,
    builtin: Callable[[str, int], nn.Module],
    weights_file: str | None = None,
    hub_weights: bool = False,
) -> nn.Module:
    """The classifier, freshly initialised (or from `weights_file` / the hub cache, its head
    new), taking uint8 images. `builtin(name, num_classes)` makes a built-in network (its
    widths are the profile's)."""
    if family == "builtin":
        if weights_file or hub_weights:
            raise NetworkUnavailable(
                f"--classifier {name} is a built-in network trained from scratch: it has no "
                "pretrained weights; drop --pretrained/--pretrained-weights or name a "
                "torchvision or timm network"
            )
        return builtin(name, num_classes)
    if family == "torchvision":
        return ImageNetInput(_torchvision(name, num_classes, weights_file, hub_weights))
    if family == "timm":
        net = _timm(name, num_classes, weights_file, hub_weights)
        cfg = getattr(net, "pretrained_cfg", None) or {}
        return ImageNetInput(net, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))
    if family != "function":
        raise NetworkUnavailable(f"classifier family {family!r}: not one of {', '.join(FAMILIES)}")
    if weights_file or hub_weights:
        raise NetworkUnavailable(
            f"--classifier {name}: a network of your own loads its own weights (in the "
            "function); drop --pretrained/--pretrained-weights"
        )
    return UnitInput(_user_function(name, num_classes))


def _torchvision(name: str, k: int, weights_file: str | None, hub: bool) -> nn.Module:
    from torchvision import models

    known = models.list_models(module=models)  # classification models only
    if name not in known:
        close = [m for m in known if m.startswith(name[:4])][:4] or known[:4]
        raise NetworkUnavailable(
            f"--classifier {name}: not a built-in network ({', '.join(BUILTIN)}), nor a "
            f"torchvision classification model (e.g. {', '.join(close)}), nor timm:NAME or "
            "package.module:function"
        )
    if weights_file:
        net = models.get_model(name, weights=None)
        load_state(net, weights_file, f"torchvision {name}")
        return replace_head(net, k)
    if hub:
        weights = models.get_model_weights(name).DEFAULT
        try:
            net = models.get_model(name, weights=weights)
        except Exception as e:  # noqa: BLE001 - URLError, OSError, ... all mean "not available"
            file = weights.url.rsplit("/", 1)[-1]
            raise NetworkUnavailable(
                f"ImageNet weights of {name} could not be loaded ({type(e).__name__}); put "
                f"{file} ({weights.url}) in {torch.hub.get_dir()}/checkpoints/, or pass "
                "--pretrained-weights FILE"
            ) from e
        return replace_head(net, k)
    return models.get_model(name, weights=None, num_classes=k)


def _timm(name: str, k: int, weights_file: str | None, hub: bool) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise NetworkUnavailable(
            f"--classifier timm:{name} needs timm: pip install 'raregan[timm]'"
        ) from None
    if not timm.is_model(name):
        raise NetworkUnavailable(
            f"--classifier timm:{name}: timm has no such model (timm.list_models('{name[:4]}*') "
            "lists close names)"
        )
    if hub:
        raise NetworkUnavailable(
            f"--classifier timm:{name} --pretrained: timm's weights come from the Hugging Face "
            "hub, which raregan does not reach at run time; pass --pretrained-weights FILE"
        )
    if weights_file:
        net = timm.create_model(name, pretrained=False)
        load_state(net, weights_file, f"timm {name}")
        net.reset_classifier(k)
        return net
    return timm.create_model(name, pretrained=False, num_classes=k)


def _user_function(spec: str, k: int) -> nn.Module:
    module_name, _, function = spec.partition(":")
    try:
        make = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as e:
        raise NetworkUnavailable(
            f"--classifier {spec}: cannot import it ({type(e).__name__}: {e}); put its module "
            "on PYTHONPATH (or install it) and name it package.module:function"
        ) from None
    try:
        net = make(k)
    except Exception as e:  # noqa: BLE001 - the user's code: say which call failed
        raise NetworkUnavailable(
            f"--classifier {spec}: {function}({k}) raised {type(e).__name__}: {e}; it must "
            "take num_classes and return an nn.Module"
        ) from None
    if not isinstance(net, nn.Module):
        raise NetworkUnavailable(
            f"--classifier {spec}: {function}({k}) returned {type(net).__name__}, not an nn.Module"
        )
    return net


def replace_head(net: nn.Module, k: int) -> nn.Module:
    """`net` with its last Linear layer (the ImageNet head) replaced by a new one of k outputs:
    resnets' fc, densenets', efficientnets', mobilenets' and convnexts' classifier, vits' head."""
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise NetworkUnavailable(f"{type(net).__name__} has no Linear head to replace")
    path, head = linears[-1]
    parent_path, _, attr = path.rpartition(".")
    parent = net.get_submodule(parent_path) if parent_path else net
    setattr(parent, attr, nn.Linear(head.in_features, k))
    return net


def load_state(net: nn.Module, weights_file: str, what: str) -> None:
    """Load a state dict file into `net`, every key and shape matching, or a one-line error
    naming the file and the first differing keys."""
    path = Path(weights_file)
    if not path.is_file():
        raise NetworkUnavailable(f"--pretrained-weights {path}: no such file")
    try:
        stat = path.stat()
        state = _read_state(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except Exception as e:  # noqa: BLE001 - truncated, not a torch file, pickled code
        raise NetworkUnavailable(
            f"--pretrained-weights {path}: cannot be read as a state dict ({type(e).__name__}); "
            "pass a file written by torch.save(model.state_dict(), PATH)"
        ) from None
    for wrapper in ("state_dict", "model"):  # common checkpoint layouts
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NetworkUnavailable(
            f"--pretrained-weights {path}: not a state dict of tensors; pass a file written by "
            "torch.save(model.state_dict(), PATH)"
        )
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shapes", shapes),
            )  # fmt: skip
            if keys
        ]
        raise NetworkUnavailable(
            f"--pretrained-weights {path} is not a state dict of {what} ({'; '.join(parts)}); "
            "pass weights of the architecture --classifier names"
        )
    net.load_state_dict(state)


@functools.lru_cache(maxsize=1)
def _read_state(path: str, mtime_ns: int, size: int) -> object:
    """The file's contents, read once per process while it is unchanged: every classifier of
    a run (each arm and seed, the report's reloads) starts from the same weights file.
    load_state_dict copies from it, so nothing mutates the cached tensors."""
    return torch.load(path, map_location="cpu", weights_only=True)


def check_network(net: nn.Module, num_classes: int, size: int, label: str) -> None:
    """One batch of two images, in training and evaluation mode: logits of shape
    (2, num_classes), finite, and trainable weights; else a one-line NetworkUnavailable."""
    x = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    if not any(p.requires_grad for p in net.parameters()):
        raise NetworkUnavailable(f"--classifier {label}: the network has no trainable weights")
    for training in (True, False):
        net.train(training)
        try:
            with torch.no_grad():
                out = net(x)
        except Exception as e:  # noqa: BLE001 - the network's own code: say what broke
            raise NetworkUnavailable(
                f"--classifier {label}: a batch of 2 images at {size} px fails "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); it must "
                f"take (N, 3, {size}, {size}) and return logits (N, {num_classes})"
            ) from None
        mode = "training" if training else "evaluation"
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise NetworkUnavailable(
                f"--classifier {label}: in {mode} mode it returns {got} for 2 images, not "
                f"logits of shape (2, {num_classes})"
            )
        if not torch.isfinite(out).all():
            raise NetworkUnavailable(f"--classifier {label}: its logits are not finite")
    net.train(True)
