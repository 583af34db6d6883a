"""The Vega bundle the explorer page inlines (no CDN): vega.js beside this module, Vega's
minified build as pinned by tools/vega/package-lock.json, and vega.json, its provenance
(package, version, the lockfile's integrity, the file's sha256). Both are committed, so a
fresh clone builds the page without npm; `node tools/vega/vendor.mjs` refreshes them after
the lockfile changes (tests/explorer/test_vega.py holds them to the lockfile)."""

import hashlib
import json
from pathlib import Path

from pipeline.files.inputs import InputError

HERE = Path(__file__).parent
BUNDLE, PROVENANCE = HERE / "vega.js", HERE / "vega.json"


class BundleError(InputError):
    """The committed bundle is missing or is not the one its provenance names."""


def provenance() -> dict[str, str]:
    """vega.json: package, version, file, integrity, sha256."""
    return dict(json.loads(PROVENANCE.read_text(encoding="utf-8")))


def bundle() -> tuple[str, str]:
    """(Vega's code, its version); BundleError naming the fix when the file is not the
    one vega.json pins (edited by hand, or vendored from another lockfile)."""
    pinned = provenance()
    try:
        code = BUNDLE.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{BUNDLE}: missing; run `node tools/vega/vendor.mjs`") from None
    if hashlib.sha256(code).hexdigest() != pinned["sha256"]:
        raise BundleError(
            f"{BUNDLE} is not vega {pinned['version']} as {PROVENANCE.name} pins it (sha256 "
            "differs): `npm ci --prefix tools/vega --ignore-scripts && node tools/vega/vendor.mjs`"
        )
    return code.decode("utf-8"), pinned["version"]
