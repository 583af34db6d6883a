"""What DVC recorded of each stage's outputs (dvc.lock), the same digest of a file or
folder in the workspace, computed the way DVC computes it, and DVC's cache as far as
gradlab checks it: where it is, the entry of a digest, whether it holds what its name says.

DVC hashes a file with md5; a folder with the md5 of the JSON list of its files' md5 and
relative paths, sorted, plus ".dir" (dvc-data's Tree.as_bytes), skipping what .dvcignore
ignores (here: atomic's temp files). dvc.lock is read with PyYAML's C loader (15 ms; ruamel
takes 300 ms): it holds only strings and numbers.

DVC names each cache file by the md5 of its content (files/md5/ab/cdef...; a folder's
listing: ...dir) and trusts that name: a file damaged in place with its size and mtime
kept (a bit flip on disk) is restored by `dvc repro` and `dvc checkout` as it is, and
`dvc repro --force` replaces a stage's fresh output with it (DVC 3.67, seen here). DVC's
own check removes an entry whose content does not match its name when it does notice
(dvc_data.hashfile.db.HashFileDB.check); gradlab does the same where DVC does not look.
"""

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.files.atomic import TMP_SUFFIX

PIPELINES = ("dvc.yaml", "env/dvc.yaml")  # each with its lock file beside it
CHUNK = 1 << 20


@dataclass(frozen=True)
class Out:
    """An output as dvc.lock records it."""

    path: str  # relative to the repository root
    stage: str  # the stage that wrote it
    md5: str  # a folder's ends in ".dir"
    size: int  # bytes (a folder: all its files)
    cached: bool  # in DVC's cache (dvc.yaml: not `cache: false`)


def _load(path: Path) -> dict:
    """The YAML document at `path` ({} if missing), parsed once per version of the file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, size: int) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}


def _uncached(stage: dict) -> set[str]:
    """The outputs a dvc.yaml stage declares `cache: false`."""
    found = set()
    for kind in ("outs", "metrics", "plots"):
        for out in stage.get(kind) or []:
            if isinstance(out, dict):
                (path, options), *_ = out.items()
                if isinstance(options, dict) and options.get("cache") is False:
                    found.add(path)
    return found


def stages(root: Path) -> dict[str, dict]:
    """Every stage of the project's dvc.yaml files, by name."""
    return {name: s for f in PIPELINES for name, s in _load(root / f).get("stages", {}).items()}


def recorded(root: Path) -> dict[str, Out]:
    """Every output of every stage as the lock files record it, by path."""
    declared = stages(root)
    found = {}
    for pipeline in PIPELINES:
        lock = _load((root / pipeline).with_suffix(".lock"))
        for name, stage in lock.get("stages", {}).items():
            uncached = _uncached(declared.get(name, {}))
            for out in stage.get("outs") or []:
                path = str(out["path"])
                found[path] = Out(
                    path, name, str(out["md5"]), int(out["size"]), path not in uncached
                )
    return found


def deps(root: Path, stage: str) -> list[str]:
    """The paths stage `stage` depends on, as dvc.yaml declares them."""
    return [str(d) for d in stages(root).get(stage, {}).get("deps") or []]


def outs(root: Path, stage: str) -> list[str]:
    """The paths stage `stage` writes, as dvc.yaml declares them."""
    declared = stages(root).get(stage, {})
    return [
        str(next(iter(o)) if isinstance(o, dict) else o)
        for kind in ("outs", "metrics", "plots")
        for o in declared.get(kind) or []
    ]


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def listing(folder: Path) -> list[dict[str, str]]:
    """A folder's files as DVC lists them: {"md5", "relpath"}, sorted by relpath."""
    entries = [
        {
            "md5": md5_file(Path(top) / name),
            "relpath": (Path(top) / name).relative_to(folder).as_posix(),
        }
        for top, _, names in os.walk(folder)
        for name in names
        if not name.endswith(TMP_SUFFIX)
    ]
    return sorted(entries, key=lambda e: e["relpath"])


def dir_md5(entries: list[dict[str, str]]) -> str:
    """DVC's digest of a folder listing: md5 of its JSON, then ".dir"."""
    text = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(text, usedforsecurity=False).hexdigest() + ".dir"


def size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (stat only)."""
    if path.is_dir():
        return sum(
            (Path(top) / n).stat().st_size
            for top, _, names in os.walk(path)
            for n in names
            if not n.endswith(TMP_SUFFIX)
        )
    return path.stat().st_size


def md5(path: Path) -> str:
    """DVC's digest of a file or folder."""
    return dir_md5(listing(path)) if path.is_dir() else md5_file(path)


# --- DVC's cache ------------------------------------------------------------------------
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
