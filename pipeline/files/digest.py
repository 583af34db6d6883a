"""Digests of what the pipeline wrote: content keys, stamps and receipts are made of these."""

import hashlib
from pathlib import Path


def sha(data: bytes) -> str:
    """The sha256 of `data`, hex."""
    return hashlib.sha256(data).hexdigest()


def combine(*shas: str) -> str:
    """A short digest of several sha256 digests (a hash of hashes: length-safe)."""
    return hashlib.sha256(b"".join(bytes.fromhex(s) for s in shas)).hexdigest()[:16]


def digest(*parts: bytes) -> str:
    """A short digest of several byte strings: combine() of their sha256."""
    return combine(*(sha(part) for part in parts))


def of_files(*paths: Path) -> str:
    """The digest of the files' bytes (FileNotFoundError if one is missing)."""
    return combine(*(sha(p.read_bytes()) for p in paths))
