"""--classifier, --classifier-size, --pretrained and --pretrained-weights: which network every
arm trains (classifier.zoo builds it), as the run records it."""

from __future__ import annotations

from pathlib import Path

import click

from classifier.zoo import parse_name
from pipelines.cli.options import stacked
from pipelines.config.experiment import ClassifierChoice
from pipelines.errors import UserError
from pipelines.store.records import file_sha256

DEFAULT_CLASSIFIER = ClassifierChoice().name

classifier_options = stacked(
    click.option(
        "--classifier",
        "classifier_name",
        default=DEFAULT_CLASSIFIER,
        show_default=True,
        help="The network every arm trains: small-resnet or compact (built in), a torchvision "
        "classification model by its builder name (resnet50, densenet169, efficientnet_b0, ...), "
        "timm:NAME (the timm extra), or package.module:function (your own: see "
        "docs/your_classifier.md).",
    ),
    click.option(
        "--classifier-size",
        type=click.IntRange(8, 1024),
        default=None,
        help="The classifier's input px, independent of the GANs' --size (real and synthetic "
        "images alike are resized to it by one filter); default: the profile's.",
    ),
    click.option(
        "--pretrained",
        is_flag=True,
        help="ImageNet weights of a torchvision --classifier from the torch hub cache, its head "
        "new (alone: --classifier resnet18).",
    ),
    click.option(
        "--pretrained-weights",
        type=click.Path(dir_okay=False),
        default=None,
        help="A local state dict of the --classifier architecture (torchvision or timm) to "
        "start from, its head new; its sha256 goes into the run's keys.",
    ),
)


def classifier_choice(opts: dict) -> ClassifierChoice:
    """--classifier, --classifier-size and --pretrained-weights as the run records them: the
    name's family parsed once, the weights' path absolute and their content hashed."""
    name = opts["classifier_name"]
    if opts["pretrained"] and opts["pretrained_weights"]:
        raise UserError(
            "--pretrained takes weights from the torch hub cache, --pretrained-weights from a "
            "file: pass one of them"
        )
    if opts["pretrained"] and name == DEFAULT_CLASSIFIER:
        name = "resnet18"  # --pretrained alone: what it always meant
    family, name = parse_name(name)
    weights = opts["pretrained_weights"]
    if weights is None:
        return ClassifierChoice(family, name, opts["classifier_size"])
    path = Path(weights).resolve()
    sha = file_sha256(path) if path.is_file() else None
    return ClassifierChoice(family, name, opts["classifier_size"], str(path), sha)
