"""A pure function's result, kept in a file under the digest of every byte it depends on.

The env stage runs on every `dvc repro`. Validating params.yaml imports pydantic and builds
the schema (about 0.15 s of a no-op repro's 1.2 s), and the answer cannot change unless
params.yaml, gradlab's code or its pinned libraries do. So the stage keeps what it derived
from a valid params.yaml under the digest of params.yaml, every module of the package and
requirements.txt, and derives it again only when one of them changed. A memo that is
missing, unreadable or under another digest is simply recomputed: it never decides anything
the inputs would not.
"""

import json
from collections.abc import Callable
from pathlib import Path

from pipeline.files import atomic, digest

PACKAGE = Path(__file__).resolve().parents[1]  # pipeline/


def sources(package: Path = PACKAGE) -> list[Path]:
    """Every module of the package, in a fixed order, and the pinned requirements beside it
    (another pydantic may validate otherwise)."""
    pins = package.parent / "requirements.txt"
    return sorted(package.rglob("*.py")) + ([pins] if pins.exists() else [])


def key(paths: list[Path]) -> str:
    """The digest of the files' names and bytes (FileNotFoundError if one is missing)."""
    names = "\0".join(p.as_posix() for p in paths).encode()
    return digest.combine(digest.sha(names), digest.of_files(*paths) if paths else digest.sha(b""))


def recalled(path: Path | None, paths: list[Path], compute: Callable[[], dict]) -> dict:
    """compute()'s result, from the memo at `path` when it was made from the same bytes of
    `paths`; else computed and kept there (no memo when `path` is None). compute() may
    exit instead (bad params): then nothing is kept."""
    if path is None:
        return compute()
    wanted = key(paths)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(kept, dict) and kept.get("key") == wanted:
            return dict(kept["value"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or damaged: computed again below
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, {"key": wanted, "value": value})
    except OSError:
        pass  # a read-only or full disk costs the next run 0.15 s, nothing else
    return value
