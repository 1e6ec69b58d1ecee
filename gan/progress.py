"""Progress that reads well where it ends up: a tqdm bar on a terminal, plain log lines else.

Under nohup, Slurm or Ray stderr is a file, and a tqdm bar there is written frame by frame
(carriage returns, ~100 KB per 40-minute run, nested bars interleaved with job lines). Every
progress display in raregan goes through `progress_bar()`, which keeps the bar on a terminal and
otherwise returns a `LogProgress`: one line at the start, one whenever another 10 % of the
total is done or 30 s have passed since the last line with something new, and one at the end,
each with a timestamp, the description, the percentage and the figures the bar would show.
It lives in gan/ because the training loops use it, and gan/ does not import pipelines/.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from tqdm import tqdm

EVERY_SECONDS = 30.0  # a line at least this long after the last one, if anything changed
EVERY_FRACTION = 0.1  # ... or once another tenth of the total is done
_JOB: ContextVar[str | None] = ContextVar("raregan_progress_job", default=None)


@contextlib.contextmanager
def for_job(name: str) -> Iterator[None]:
    """Prefix the progress lines written inside with the job's name: jobs that run side by side
    (worker processes, Ray) write into one log, and each line must say whose it is."""
    token = _JOB.set(name)
    try:
        yield
    finally:
        _JOB.reset(token)


def is_terminal(stream: Any = None) -> bool:
    """Whether `stream` (default: the current sys.stderr) is a terminal, where a bar redraws
    in place; a closed or replaced stream without isatty counts as a file."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    disable: bool = False,
    **bar_options: Any,
) -> tqdm | LogProgress:
    """A tqdm bar over `iterable` (or counting to `total`) on a terminal or when disabled (a
    disabled tqdm does nothing, as before); log lines on stderr otherwise. `bar_options` are
    tqdm's (unit, initial, leave, bar_format, ...); the log lines use unit and initial."""
    if disable or is_terminal():
        return tqdm(iterable, total=total, desc=desc, disable=disable, **bar_options)
    return LogProgress(
        iterable,
        total=total,
        desc=desc,
        unit=bar_options.get("unit", "it"),
        initial=bar_options.get("initial", 0),
    )


class LogProgress:
    """The part of tqdm's interface raregan uses (iteration, update, set_postfix, close, n,
    total, context manager), written as throttled plain lines to stderr."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: float | None = None,
        desc: str | None = None,
        unit: str = "it",
        initial: float = 0,
        stream: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.n = iterable, total, initial
        job = _JOB.get()
        self.desc = f"{job}: {desc}" if job and desc else job or desc or "progress"
        self.unit, self.postfix = unit, ""
        self._stream, self._clock = stream, clock
        self._t0 = self._last_time = clock()
        self._last_n, self._last_postfix, self._closed = initial, "", False
        self._write("start")

    # ------------------------------------------------------------ tqdm's interface

    def __iter__(self) -> Iterator:
        try:
            for item in () if self.iterable is None else self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Count `n` more done; a line if the throttle lets one through."""
        self.n += n
        self._maybe_write()

    def set_postfix(
        self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """The figures shown after the count, as tqdm formats them (k=v, comma-separated)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={_figure(v)}" for k, v in items.items())
        if refresh:
            self._maybe_write()

    def close(self) -> None:
        """The final line (once): done, or where it stopped."""
        if self._closed:
            return
        self._closed = True
        done = self.total is not None and self.n >= self.total
        self._write("done" if done or self.total is None else "stopped")

    # ------------------------------------------------------------ the lines

    def due(self) -> bool:
        """Whether a line is due now: another EVERY_FRACTION of the total done since the last
        line, or EVERY_SECONDS since it with a new count or new figures; at the total none, as
        the end line follows (with the figures of whatever runs before the close)."""
        if self._closed or (self.total is not None and self.n >= self.total):
            return False
        if self.total and (self.n - self._last_n) >= EVERY_FRACTION * self.total:
            return True
        changed = self.n != self._last_n or self.postfix != self._last_postfix
        return changed and self._clock() - self._last_time >= EVERY_SECONDS

    def _maybe_write(self) -> None:
        if self.due():
            self._write()

    def _write(self, event: str = "") -> None:
        now = self._clock()
        self._last_time, self._last_n, self._last_postfix = now, self.n, self.postfix
        print(self.line(event, now - self._t0), file=self._stream or sys.stderr, flush=True)

    def line(self, event: str, elapsed: float) -> str:
        """`[HH:MM:SS] desc 40% 4/10 job, 12 s[: figures][ (event)]`, like the job lines."""
        count = f"{_figure(self.n)}{'' if self.total is None else '/' + _figure(self.total)}"
        pct = f"{100 * self.n / self.total:3.0f}% " if self.total else ""
        figures = f": {self.postfix}" if self.postfix else ""
        tail = f" ({event})" if event else ""
        return (
            f"[{time.strftime('%H:%M:%S')}] {self.desc} {pct}{count} {self.unit}, "
            f"{elapsed:.0f} s{figures}{tail}"
        )


def _figure(v: Any) -> str:
    """Counts as integers where they are, other floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.0f}" if v.is_integer() else f"{v:.4g}"
    return str(v)
