"""What the commands share: device and precision resolution, the data and feature options."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch

from pipelines.config.experiment import is_demo
from pipelines.data.dataset import Dataset, default_cache_dir
from pipelines.errors import UserError
from pipelines.store.records import check_output_dir, check_path_names, os_error_message


class Command(click.Command):
    """A command whose UserError, raised anywhere below it (in a worker process too), ends in
    click's one line with exit status 1, not a traceback: the library never imports click."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            raise click.ClickException(e.message) from None


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


def check_cache_dir(data: str | None, cache_dir: Path | None) -> None:
    """The decode cache checked before any decoding: a file or an unwritable folder in its
    place failed only after every image was decoded, with a traceback. The default cache is
    checked only where images will be decoded (a data folder: not the demo or an .npz)."""
    if cache_dir is not None:
        check_output_dir(cache_dir, "--cache-dir")
    elif not is_demo(data) and Path(data).is_dir():
        check_output_dir(default_cache_dir(), "the decode cache (--cache-dir, $RAREGAN_CACHE)")


def check_data_path(data: str | None, option: str = "--data") -> None:
    """A data path whose names the filesystem cannot hold is refused in one line."""
    if not is_demo(data):
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


def note_skipped(ds: Dataset, record: str) -> None:
    """--skip-bad-images never drops images silently (Dataset.skipped_note)."""
    echo_notes([ds.skipped_note(record)])


def echo_notes(notes: list[str | None]) -> None:
    for message in notes:
        if message:
            click.echo(f"note: {message}", err=True)


def default_run_dir(data: str | None) -> Path:
    name = "demo" if is_demo(data) else Path(data).stem
    return Path("runs") / name


def command_line(ctx: click.Context) -> str:
    """The command as it was typed (its command-line options): sys.argv names the test
    runner or a wrapper where the command is called in-process."""
    source = click.core.ParameterSource.COMMANDLINE
    words = [ctx.command_path]
    for param in ctx.command.params:
        if param.name is None or ctx.get_parameter_source(param.name) != source:
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            words.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
            continue
        words += [param.opts[0], *map(str, value if isinstance(value, tuple) else (value,))]
    return shlex.join(words)
