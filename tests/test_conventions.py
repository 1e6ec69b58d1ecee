"""gan.conventions' atomic writes: a full disk leaves the old file, no temporary file, and an
error that names the file it was writing."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gan.conventions import atomic_write, atomic_write_text


def test_a_full_disk_keeps_the_old_file_removes_the_temporary_and_names_the_path(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text(path, "old")

    def full_disk(f) -> None:
        f.write(b"half of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic_write(path, full_disk)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_dev_full_is_a_full_disk_too(tmp_path: Path, monkeypatch):
    """Where the bytes really hit a full device (the flush at close), not a raised write."""
    full_disk_temp_files(monkeypatch)
    with pytest.raises(OSError) as caught:
        atomic_write_text(tmp_path / "a.json", "x" * 100_000)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "a.json")
    assert list(tmp_path.iterdir()) == []


def full_disk_temp_files(monkeypatch, under: Path | None = None) -> None:
    """Make the temporary files of gan.conventions (those in folders under `under`, or all)
    write to /dev/full (ENOSPC): a full disk without a tmpfs. The file itself is created, so
    a leftover would show."""
    import os

    import gan.conventions as conventions

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    new_temp_file = conventions.new_temp_file

    def on_a_full_disk(folder, prefix):
        fd, path = new_temp_file(folder, prefix)
        if under is not None and not Path(folder).resolve().is_relative_to(under.resolve()):
            return fd, path
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, path

    monkeypatch.setattr(conventions, "new_temp_file", on_a_full_disk)
