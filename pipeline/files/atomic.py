"""Outputs that appear whole or not at all: write beside the target, then rename.

DVC deletes a stage's outputs before running it and a killed process leaves whatever it
had written; a rename is atomic on POSIX, so readers never see half a file.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".gradlab-tmp"  # git- and dvc-ignored; leftovers of a SIGKILL are harmless


@contextmanager
def replacing(path: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a fresh temp path beside `path`; on success it replaces `path`, else vanishes."""
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if directory else tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj: object) -> None:
    """Stable JSON: sorted keys, so equal content gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")
