"""What a full disk during publish names: where it is full, and about how much space the
runs need (pipeline.tracking.store raises DiskFull with both)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pipeline.files.atomic import full
from pipeline.tracking import lock


class Held(Protocol):
    """What a run holds (store.RunContent)."""

    @property
    def artifacts(self) -> list[Path]: ...
    @property
    def metrics(self) -> list[tuple[str, float, int]]: ...


def full_at(error: BaseException | None, uri: str, root: Path) -> Path | None:
    """Where a full disk is behind `error`: the file it names, the SQLite database (which
    says so in words), else the artifacts' folder; None when it is not a full disk."""
    while error is not None:
        if full(error):
            name = error.filename if isinstance(error, OSError) else None
            return Path(name) if name else root / "mlartifacts"
        if "database or disk is full" in str(error):
            return lock.sqlite_path(uri) or Path(uri)
        error = error.__cause__ or error.__context__
    return None


def size(contents: Sequence[Held], point_bytes: int) -> int:
    """About the bytes `contents` (store.RunContent) take in a store: their artifacts, and
    `point_bytes` per metric point (store.POINT_BYTES)."""
    artifacts = sum(path.stat().st_size for c in contents for path in c.artifacts)
    return artifacts + point_bytes * sum(len(c.metrics) for c in contents)
