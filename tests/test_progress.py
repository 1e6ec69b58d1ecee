"""gan.progress: a tqdm bar on a terminal, throttled plain log lines when stderr is a file."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from conftest import TINY, subprocess_env
from tqdm import tqdm

from gan.progress import EVERY_SECONDS, LogProgress, for_job, progress_bar

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (.+?) +(\d+)% ")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def log(total=None, iterable=None, **kw) -> tuple[LogProgress, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    bar = LogProgress(iterable, total=total, stream=stream, clock=clock, **kw)
    return bar, stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_line_per_tenth_of_the_total_however_fast():
    bar, stream, _ = log(total=100, desc="jobs", unit="job")
    for _ in range(9):
        bar.update()
    assert len(lines(stream)) == 1 and lines(stream)[0].endswith("(start)")
    bar.update()
    assert len(lines(stream)) == 2 and " 10% 10/100 job" in lines(stream)[-1]
    for _ in range(90):
        bar.update()
    bar.close()
    bar.close()  # once
    out = lines(stream)
    assert len(out) == 11 and out[-1].endswith("(done)") and "100% 100/100 job" in out[-1]
    assert " 90% 90/100" in out[-2]  # the 100 % line is the end line
    assert all(LINE.match(x) and LINE.match(x).group(1) == "jobs" for x in out)


def test_a_line_every_30_s_when_something_changed():
    bar, stream, clock = log(total=1000)
    bar.update(1)
    clock.now += EVERY_SECONDS - 1
    bar.update(1)
    assert len(lines(stream)) == 1  # 2 of 1000 within 30 s: nothing yet
    clock.now += 1
    bar.update(1)
    assert len(lines(stream)) == 2 and "3/1000" in lines(stream)[-1]
    clock.now += 2 * EVERY_SECONDS
    bar.set_postfix({"loss": "0.5"}, refresh=True)
    assert lines(stream)[-1].endswith(": loss=0.5")  # new figures, same count
    clock.now += 2 * EVERY_SECONDS
    bar.set_postfix(loss="0.5")
    bar.update(0)
    assert len(lines(stream)) == 3  # nothing new: no line however long it has been


def test_without_a_total_only_time_and_the_end_write_lines():
    bar, stream, clock = log(desc="decode")
    for _ in range(500):
        bar.update()
    assert len(lines(stream)) == 1
    clock.now += EVERY_SECONDS
    bar.update()
    bar.close()
    out = lines(stream)
    assert len(out) == 3 and "501 it" in out[1] and "%" not in out[1] and out[2].endswith("(done)")


def test_iteration_counts_and_closes_and_an_early_stop_is_said():
    bar, stream, _ = log(iterable=list(range(50)), desc="classes")
    assert list(bar) == list(range(50)) and bar.n == 50
    assert len(lines(stream)) == 11 and lines(stream)[-1].endswith("(done)")
    bar, stream, _ = log(total=0.4, unit="kimg", initial=0.1)
    with bar:
        bar.set_postfix({"loss_D": "0.693", "img/s": "85"})
        bar.update(0.1)
    out = lines(stream)
    assert "50% 0.2/0.4 kimg" in out[-1] and out[-1].endswith("loss_D=0.693, img/s=85 (stopped)")


def test_lines_inside_a_job_name_it():
    with for_job("gan/df"):
        bar, stream, _ = log(total=2, desc="GAN", unit="kimg")
        unnamed, other, _ = log(total=2)
    bar.close()
    assert LINE.match(lines(stream)[0]).group(1) == "gan/df: GAN"
    assert "] gan/df   0% 0/2 it" in lines(other)[0]
    assert LINE.match(log(total=2, desc="GAN")[1].getvalue()).group(1) == "GAN"  # outside


def test_the_factory_keeps_the_bar_on_a_terminal_and_when_disabled(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert isinstance(progress_bar(range(3), desc="x"), tqdm)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(range(3), desc="x", disable=True), tqdm)
    bar = progress_bar(total=4, desc="x", unit="job", initial=1, leave=False)
    assert isinstance(bar, LogProgress) and bar.n == 1
    bar.close()
    assert sys.stderr.getvalue().count("\n") == 2


def test_gan_train_with_stderr_in_a_file_writes_lines_not_frames(tmp_path: Path):
    args = ["--class", "df", "--run-dir", str(tmp_path / "run"), "--kimg", "0.3"]
    args += [a for a in TINY if a != "--quiet"] + ["--snapshot-kimg", "0.02"]
    err = tmp_path / "stderr.log"
    with open(err, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from pipelines import cli; "
             "cli.gan_train.main(sys.argv[1:])", *args],
            env=subprocess_env(), stdout=subprocess.PIPE, stderr=f, text=True, timeout=300,
        )  # fmt: skip
    text = err.read_text()
    assert proc.returncode == 0, proc.stdout + text
    assert "\r" not in text
    progress = [x for x in text.splitlines() if LINE.match(x)]
    assert 3 <= len(progress) <= 13, text  # start, at most one per tenth, the end (a 30 s one)
    assert progress[0].endswith("(start)") and progress[-1].endswith("(done)")
    assert "100% 0.304/0.304 kimg" in progress[-1] and "loss_D=" in progress[-1]
    assert "img/s=" in progress[-1]
