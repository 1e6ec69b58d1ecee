"""What the commands share: device and precision resolution, the data and feature options."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch

from pipelines.data.datasets import FORMATS, Dataset, default_cache_dir
from pipelines.errors import UserError
from pipelines.feature_space import FEATURE_SPACES
from pipelines.rundir import check_output_dir, check_path_names, os_error_message


def one_line_os_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose full disk, too-long name or unwritable place ends in one line naming
    the path (and the free space), not an OSError traceback, wherever in the work it happens
    (in a worker process too: its OSError comes back whole). Other OSErrors stay tracebacks."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OSError as e:
            message = os_error_message(e)
            if message is None:
                raise
            raise UserError(message) from None

    return run


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan, which compares false with every bound."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


def check_cache_dir(data: str | None, cache_dir: Path | None) -> None:
    """The decode cache checked before any decoding: a file or an unwritable folder in its
    place failed only after every image was decoded, with a traceback. The default cache is
    checked only where images will be decoded (a data folder: not the demo or an .npz)."""
    if cache_dir is not None:
        check_output_dir(cache_dir, "--cache-dir")
    elif data not in (None, "demo") and Path(data).is_dir():
        check_output_dir(default_cache_dir(), "the decode cache (--cache-dir, $RAREGAN_CACHE)")


def check_data_path(data: str | None, option: str = "--data") -> None:
    """A data path whose names the filesystem cannot hold is refused in one line."""
    if data not in (None, "demo"):
        check_path_names(data, option)


def given_options(ctx: click.Context) -> frozenset[str]:
    """The options typed on the command line (not defaults): what a rerun must not change."""
    source = click.core.ParameterSource.COMMANDLINE
    return frozenset(k for k in ctx.params if ctx.get_parameter_source(k) == source)


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N (mps where present), checked before any work."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA device is visible; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UserError(
                f"--device {name}: {count} CUDA device(s) are visible; use cuda:0..cuda:{count - 1}"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"--device {name}: no Apple GPU is visible; use --device cpu")
    elif dev.type != "cpu":
        raise UserError(f"--device {name}: not supported; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_precision(name: str, device: torch.device) -> str:
    """auto: bf16 where the hardware runs it natively (CUDA bf16, AVX512-BF16/AMX CPUs)."""
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return name


def device_options(f):
    """--device and --precision, which every command resolves the same way (above)."""
    f = click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default="auto",
        show_default=True,
        help="Autocast dtype; auto picks bf16 where the hardware runs it natively, else fp32 "
        "(fp16 on CUDA without bf16).",
    )(f)
    return click.option(
        "--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."
    )(f)


def data_options(f):
    for option in reversed(
        [
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
        ]
    ):
        f = option(f)
    return f


def feature_options(f):
    for option in reversed(
        [
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
        ]
    ):
        f = option(f)
    return f


def tensorboard_option(f):
    """--tensorboard/--no-tensorboard: unset, on where the extra is installed (see
    pipelines.tensorboard.resolve)."""
    return click.option(
        "--tensorboard/--no-tensorboard",
        default=None,
        help="TensorBoard event files of every GAN and classifier in <run-dir>/tb [default: on "
        "where installed: pip install 'raregan[tensorboard]'].",
    )(f)


def note_skipped(ds: Dataset, record: str) -> None:
    """--skip-bad-images never drops images silently: say how many, and where they are listed."""
    if ds.skipped:
        first = ", ".join(f"{i} ({why})" for i, why in list(ds.skipped.items())[:3])
        more = ", ..." if len(ds.skipped) > 3 else ""
        click.echo(
            f"note: --skip-bad-images left out {len(ds.skipped)} of "
            f"{len(ds.skipped) + len(ds.labels)} images ({first}{more}); all are listed in "
            f"{record}",
            err=True,
        )


def default_run_dir(data: str | None) -> Path:
    name = Path(data).stem if data not in (None, "demo") else "demo"
    return Path("runs") / name
