"""The options the commands share, one decorator each, so that a flag reads, defaults and
validates the same in gan-train, gan-sample and augment-and-compare."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipelines.data.dataset import FORMATS
from pipelines.steps.feature_space import FEATURE_SPACES


def stacked(*decorators: Callable) -> Callable:
    """The decorators applied as if written one above the other, first on top (click lists
    options in the order they are written)."""

    def apply(f: Callable) -> Callable:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan, which compares false with every bound."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


device_options = stacked(  # every command resolves them the same way (cli.common)
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default="auto",
        show_default=True,
        help="Autocast dtype; auto picks bf16 where the hardware runs it natively, else fp32 "
        "(fp16 on CUDA without bf16).",
    ),
)


data_options = stacked(
    click.option("--data", default=None, help="Dataset path, or 'demo' (default)."),
    click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="Force a layout instead of detecting it.",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Decode cache (default: ~/.cache/raregan or $RAREGAN_CACHE).",
    ),
    click.option(
        "--skip-bad-images",
        is_flag=True,
        help="Go on without missing or unreadable images (counted, and listed in the "
        "run's records).",
    ),
    click.option(
        "--allow-new-classes",
        is_flag=True,
        help="Keep HAM10000 dx values outside akiec,bcc,bkl,df,mel,nv,vasc as classes "
        "of their own (default: refuse them as typos).",
    ),
    click.option(
        "--split-seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed of the lesion-level split (used when it is first made).",
    ),
)


feature_options = stacked(
    click.option(
        "--feature-space",
        type=click.Choice(FEATURE_SPACES),
        default="domain",
        show_default=True,
        help="Features for FID/KID: a CNN trained on this "
        "run's real training split, or Inception-v3 (needs local weights).",
    ),
    click.option(
        "--inception-weights",
        type=click.Path(path_type=Path),
        default=None,
        help="torch-fidelity's Inception weights file (no download here).",
    ),
)


tensorboard_option = click.option(  # unset: on where the extra is installed
    "--tensorboard/--no-tensorboard",
    default=None,
    help="TensorBoard event files of every GAN and classifier in <run-dir>/tb [default: on "
    "where installed: pip install 'raregan[tensorboard]'].",
)


run_dir_option = click.option(  # the commands agree on where a run is
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory (default: runs/<data name>).",
)


quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
