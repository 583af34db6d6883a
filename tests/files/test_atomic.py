"""Outputs written whole or not at all; a full disk named in one line."""

import errno
from pathlib import Path

import pytest

from pipeline.files import atomic


def _full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_output_and_the_space_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that meets ENOSPC raises DiskFull naming the output and its size; the old
    file is untouched and no temp file is left."""
    path = tmp_path / "summary.csv"
    path.write_text("old\n")
    monkeypatch.setattr(Path, "write_bytes", _full)

    with pytest.raises(atomic.DiskFull) as caught:
        atomic.write_text(path, "x" * 3 * atomic.MIB)

    line = caught.value.line()
    assert line.startswith(f"no space left on the device of {path} (it needs about 3.0 MiB, ")
    assert line.endswith("nothing partial was kept") and " free there" in line
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "summary.csv"
    ]


def test_a_full_disk_in_a_folder_or_stream_takes_the_size_it_is_given(tmp_path: Path) -> None:
    """A folder written in pieces does not know its size: DiskFull.line takes it (the
    stage gives the output's size in dvc.lock); with none, "it needs more"."""
    with pytest.raises(atomic.DiskFull) as caught, atomic.replacing(tmp_path / "t", directory=True):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    assert "(it needs about 2.0 MiB, " in caught.value.line(2 * atomic.MIB)
    assert "(it needs more, " in caught.value.line()
    assert list(tmp_path.iterdir()) == []
