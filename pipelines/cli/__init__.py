"""Command-line entry points, one module per command, each a thin shell over the library.

The only place that imports click: options (options.py, shared by the commands), device and
precision resolution, echoing notes, and turning a UserError into click's one line. It may
import every stage below; nothing imports it.
"""

from pipelines.cli.augment_and_compare import augment_and_compare
from pipelines.cli.common import resolve_device, resolve_precision
from pipelines.cli.gan_sample import gan_sample, load_run_data
from pipelines.cli.gan_train import gan_train

__all__ = [
    "augment_and_compare",
    "gan_sample",
    "gan_train",
    "load_run_data",
    "resolve_device",
    "resolve_precision",
]
