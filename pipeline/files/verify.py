"""Every stage DVC runs checks what it reads against dvc.lock, and what DVC would put in
place of what it writes (pipeline/__main__.py calls these when DVC_STAGE is set).

- Before a stage: an output missing from the workspace, which DVC may restore from its
  cache, must not come from a damaged cache entry (it is removed, so DVC rebuilds the
  output); an output whose size differs from dvc.lock and whose cache entry is damaged
  stops the stage (the env stage, first in every `dvc repro`, before any other stage
  deletes outputs). Then each input another stage wrote must have the size and digest
  dvc.lock records; else one line per file names it, what differs and the fix (`make
  heal`), and the stage stops before reading anything.
- After a stage: a damaged cache entry named like a fresh output is removed, so DVC
  caches the fresh output instead of putting the damaged copy in its place.
- `make heal`: removes every damaged cache entry dvc.lock refers to, restores or
  rebuilds every output that differs from dvc.lock, then `dvc repro` finishes.
"""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.files import lock
from pipeline.files.inputs import InputError

HEAL = "`make heal` restores or rebuilds it, then runs `dvc repro`"


def _entries(store: Path, out: lock.Out) -> Iterator[tuple[str, Path]]:
    """(md5, cache entry) of an output: a file's; a folder's listing and each of its files
    (as far as the listing can be read)."""
    yield out.md5, lock.entry(store, out.md5)
    if out.md5.endswith(".dir"):
        import json

        try:
            listing = json.loads(lock.entry(store, out.md5).read_text(encoding="utf-8"))
            yield from ((str(e["md5"]), lock.entry(store, str(e["md5"]))) for e in listing)
        except (OSError, ValueError, TypeError, KeyError):
            return  # missing or damaged: the listing's own entry says so


def _damaged(store: Path, out: lock.Out) -> list[Path]:
    return [path for md5, path in _entries(store, out) if lock.damaged(path, md5)]


def _shown(root: Path, path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _differs(root: Path, out: lock.Out) -> str | None:
    """How the workspace copy of `out` differs from dvc.lock, or None."""
    path = root / out.path
    size = lock.size(path)
    if size != out.size:
        return f"{size:,} bytes where dvc.lock records {out.size:,}"
    if (found := lock.md5(path)) != out.md5:
        return f"md5 {found[:12]} where dvc.lock records {out.md5[:12]}"
    return None


def inputs(root: Path, stage: str) -> None:
    """InputError, one line per input of `stage` (written by another stage) that is not
    what dvc.lock records."""
    declared = {out for name in lock.stages(root) for out in lock.outs(root, name)}
    wanted = [dep for dep in lock.deps(root, stage) if dep in declared]
    if not wanted:  # the env stage: no output of another stage (dvc.lock left unread)
        return
    written = lock.recorded(root)
    store = lock.folder(root)
    problems = []
    for dep in wanted:
        out = written.get(dep)
        if out is None or out.stage == stage or not (root / dep).exists():
            continue  # a source file, or missing: the stage's reader names it
        if (how := _differs(root, out)) is None:
            continue
        damaged = _damaged(store, out) if out.cached else []
        cause = (
            f"DVC's cache holds a damaged copy ({_shown(root, damaged[0])}) and restored it"
            if damaged
            else f"changed since stage {out.stage} wrote it"
        )
        problems.append(f"{dep}: {how}: {cause}; {HEAL}")
    if problems:
        raise InputError("\n".join(problems))


def _suspects(root: Path) -> set[str]:
    """The outputs dvc.yaml declares that are missing, or newer than the lock files: DVC
    writes dvc.lock after each stage, so in a repository it has brought up to date none
    is, and dvc.lock (50 ms to read) is left unread."""
    locks = [
        p.stat().st_mtime_ns
        for f in lock.PIPELINES
        if (p := (root / f).with_suffix(".lock")).exists()
    ]
    since = max(locks, default=0)
    found = set()
    for name in lock.stages(root):
        for out in lock.outs(root, name):
            path = root / out
            if not path.exists() or path.stat().st_mtime_ns > since:
                found.add(out)
    return found


def restorable(root: Path) -> list[str]:
    """Before any stage: remove each damaged cache entry DVC would restore a missing output
    from (DVC then rebuilds it); the lines saying so. InputError naming each output whose
    size differs from dvc.lock and whose cache entry is damaged (DVC restored it)."""
    if not (suspects := _suspects(root)):
        return []
    store = lock.folder(root)
    notes, problems = [], []
    for out in lock.recorded(root).values():
        path = root / out.path
        if not out.cached or out.path not in suspects:
            continue
        if not path.exists():
            for entry in _damaged(store, out):
                lock.remove(entry)
                notes.append(
                    f"note: removed {_shown(root, entry)}, a damaged DVC cache entry of {out.path}"
                )
        elif lock.size(path) != out.size and (damaged := _damaged(store, out)):
            problems.append(
                f"{out.path}: {lock.size(path):,} bytes where dvc.lock records {out.size:,}, "
                f"and DVC's cache holds a damaged copy ({_shown(root, damaged[0])}); {HEAL}"
            )
    if problems:
        raise InputError("\n".join(problems))
    return notes


def before(root: Path, stage: str) -> list[str]:
    """The checks before `stage` runs (restorable, then inputs); the notes to print."""
    notes = restorable(root)
    inputs(root, stage)
    return notes


def outputs(root: Path, stage: str) -> list[str]:
    """After `stage` wrote its outputs: remove each damaged cache entry named like one of
    them (DVC would put it in their place); the lines saying so."""
    store = lock.folder(root)
    notes = []
    for name in lock.outs(root, stage):
        path = root / name
        if not path.exists():
            continue
        md5s = [lock.md5_file(path)] if path.is_file() else []
        if path.is_dir():
            listing = lock.listing(path)
            md5s = [lock.dir_md5(listing), *(e["md5"] for e in listing)]
        for md5 in md5s:
            entry = lock.entry(store, md5)
            if found := lock.damaged(entry, md5):
                lock.remove(entry)
                notes.append(
                    f"note: removed {_shown(root, entry)}, a damaged DVC cache entry (md5 "
                    f"{found[:12]}) that DVC would have put in place of the fresh {name}"
                )
    return notes


Run = Callable[[list[str]], None]


def heal(root: Path, run: Run) -> Iterator[str]:
    """Remove every damaged cache entry dvc.lock refers to, restore (`dvc checkout`) each
    output that differs from dvc.lock and whose cache holds it, rebuild (`dvc repro
    --force --single-item`) the stages of the others; `run` runs a dvc command. Yields
    what it does, as it does it. A missing output is left to `dvc repro`."""
    store = lock.folder(root)
    written = lock.recorded(root)
    for out in written.values():
        for entry in _damaged(store, out) if out.cached else []:
            lock.remove(entry)
            yield f"removed {_shown(root, entry)}, a damaged DVC cache entry of {out.path}"
    rebuild: dict[str, None] = {}
    for out in written.values():
        path = root / out.path
        if not path.exists() or (how := _differs(root, out)) is None:
            continue  # a missing output is `dvc repro`'s to restore or rebuild
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        yield f"removed {out.path} ({how})"
        if out.cached and all(p.exists() for _, p in _entries(store, out)):
            run(["checkout", out.path])
            yield f"restored {out.path} from DVC's cache"
        else:
            rebuild[out.stage] = None
    order = list(lock.stages(root))
    for stage in sorted(rebuild, key=order.index):
        run(["repro", "--force", "--single-item", stage])
        yield f"rebuilt stage {stage}"
