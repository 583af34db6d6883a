"""Outputs that appear whole or not at all: write beside the target, then rename.

DVC deletes a stage's outputs before running it and a killed process leaves whatever it
had written; a rename is atomic on POSIX, so readers never see half a file. A full disk
is a DiskFull naming the output and the space it needs, its temp file removed.
"""

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".gradlab-tmp"  # git- and dvc-ignored; leftovers of a SIGKILL are harmless
FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device, disk quota exceeded
MIB = 1 << 20


KEPT = "nothing partial was kept"


class DiskFull(Exception):
    """No space left where `path` is written; `needed`: the bytes it takes, if known;
    `kept`: what is left of the work."""

    def __init__(self, path: Path, needed: int | None = None, kept: str = KEPT) -> None:
        super().__init__(str(path))
        self.path, self.needed, self.kept = path, needed, kept

    def line(self, needed: int | None = None) -> str:
        """One line: the path, the space it needs (`needed` when not known here, e.g. its
        size in dvc.lock) and the space free on its device, and what to do."""
        size = self.needed if self.needed is not None else needed
        folder = next(p for p in (self.path, *self.path.parents) if p.exists())
        free = shutil.disk_usage(folder).free
        need = f"it needs about {_amount(size)}" if size else "it needs more"
        return (
            f"no space left on the device of {self.path} ({need}, {_amount(free)} free "
            f"there): free some space and run it again; {self.kept}"
        )


def _amount(size: int) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{max(1, round(size / 1024))} KiB"


def full(error: BaseException) -> bool:
    """Whether `error` is a full disk (or an exceeded quota)."""
    return isinstance(error, OSError) and error.errno in FULL


@contextmanager
def replacing(path: Path, *, directory: bool = False, size: int | None = None) -> Iterator[Path]:
    """Yield a fresh temp path beside `path`; on success it replaces `path`, else vanishes
    (a full disk: DiskFull(path, size), `size` the bytes written, if known)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX))
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o755 if directory else 0o644)  # mkdtemp/mkstemp make them private
        if directory:
            # a directory cannot be swapped in one rename: remove the old one just before
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True) if directory else tmp.unlink(missing_ok=True)
        if isinstance(e, DiskFull) and e.path.is_relative_to(tmp):  # a file of this folder
            raise DiskFull(path / e.path.relative_to(tmp), e.needed, e.kept) from None
        if full(e):
            raise DiskFull(path, size) from None
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path, size=len(data)) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj: object) -> None:
    """Stable JSON: sorted keys, so equal content gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")
