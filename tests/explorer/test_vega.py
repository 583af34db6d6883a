"""The Vega bundle the explorer inlines (pipeline/explorer/vega.js) is the build of the
version tools/vega/package-lock.json pins, as its provenance (vega.json) says."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pipeline.explorer import vega
from tests.conftest import ROOT, missing

LOCK = ROOT / "tools/vega/package-lock.json"
BUILD = ROOT / "tools/vega/node_modules/vega/build/vega.min.js"


def test_the_provenance_names_the_locked_version_and_the_files_digest() -> None:
    """vega.json's version and integrity are the lockfile's; its sha256 is vega.js's."""
    pinned = json.loads(LOCK.read_text())["packages"]["node_modules/vega"]
    said = vega.provenance()

    assert (said["version"], said["integrity"]) == (pinned["version"], pinned["integrity"])
    assert said["sha256"] == hashlib.sha256(vega.BUNDLE.read_bytes()).hexdigest()
    assert vega.bundle()[1] == pinned["version"]


def test_the_bundle_is_the_locked_build_from_node_modules() -> None:
    """vega.js is node_modules' build/vega.min.js (npm ci from the lockfile) byte for byte,
    less its source-map comment: nothing edited by hand."""
    if not BUILD.is_file():
        missing("needs `npm ci --prefix tools/vega --ignore-scripts` (make test runs it)")
    built = BUILD.read_bytes()
    comment = built.rfind(b"\n//# sourceMappingURL=")
    want = built[: comment + 1] if comment >= 0 else built

    assert vega.BUNDLE.read_bytes() == want


def test_the_bundle_can_be_inlined() -> None:
    """No `</script` or `<!--` in it: it cannot end or change its <script> element."""
    code, _ = vega.bundle()

    assert "</script" not in code.lower() and "<!--" not in code


def test_an_edited_bundle_is_refused_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle whose bytes are not the pinned ones: BundleError naming vendor.mjs."""
    edited = tmp_path / "vega.js"
    shutil.copy(vega.BUNDLE, edited)
    edited.write_bytes(edited.read_bytes() + b"\n// edited\n")
    monkeypatch.setattr(vega, "BUNDLE", edited)

    with pytest.raises(vega.BundleError, match=r"vendor\.mjs"):
        vega.bundle()
