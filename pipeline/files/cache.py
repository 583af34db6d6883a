"""DVC's cache, as far as gradlab checks it: where it is, the entry of a digest, and
whether an entry still holds what its name says.

DVC names each cache file by the md5 of its content (files/md5/ab/cdef...; a folder's
listing: ...dir) and trusts that name: a file damaged in place with its size and mtime
kept (a bit flip on disk) is restored by `dvc repro` and `dvc checkout` as it is, and
`dvc repro --force` replaces a stage's fresh output with it (DVC 3.67, seen here). DVC's
own check removes an entry whose content does not match its name when it does notice
(dvc_data.hashfile.db.HashFileDB.check); gradlab does the same where DVC does not look.
"""

import re
from pathlib import Path

from pipeline.files.lock import md5_file

CONFIGS = (".dvc/config.local", ".dvc/config")  # a queued experiment's copy: config.local
_SECTION = re.compile(r"^\s*\[\s*['\"]?(?P<name>[^\]'\"]+)['\"]?\s*\]\s*$")
_DIR = re.compile(r"^\s*dir\s*=\s*(?P<dir>.+?)\s*$")


def folder(root: Path) -> Path:
    """The cache folder of the repository at `root`: `cache.dir` of its config files (a
    relative one is relative to .dvc/), else .dvc/cache."""
    for name in CONFIGS:
        path = root / name
        if not path.is_file():
            continue
        section = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if found := _SECTION.match(line):
                section = found["name"].strip()
            elif section == "cache" and (found := _DIR.match(line)):
                return (path.parent / found["dir"]).resolve()
    return root / ".dvc" / "cache"


def entry(cache: Path, md5: str) -> Path:
    """Where DVC keeps the content of digest `md5` (a file's, or a folder listing's)."""
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def damaged(path: Path, md5: str) -> str | None:
    """The md5 the cache entry at `path` really holds, when that is not `md5` (its name);
    None when it is, or when there is no entry."""
    try:
        found = md5_file(path)
    except FileNotFoundError:
        return None
    return None if found == md5.removesuffix(".dir") else found


def remove(path: Path) -> None:
    """Remove a cache entry (DVC makes them read-only; its folder is writable)."""
    path.unlink(missing_ok=True)
