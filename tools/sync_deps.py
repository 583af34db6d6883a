"""Rewrite each DVC stage's `pipeline/` deps as the project files its command imports,
transitively (the derivation tests/test_layout.py checks). Other deps stay as they are.

Usage: python tools/sync_deps.py   (then review `git diff dvc.yaml env/dvc.yaml`)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import params  # noqa: E402
from tests.dvc_files import DVC_FILES  # noqa: E402  # after the path
from tests.test_layout import PACKAGE, closure, entry_point  # noqa: E402


def main() -> None:
    for name in DVC_FILES:
        sync(ROOT / name)


def sync(path: Path) -> None:
    text = path.read_text()
    stages = params.read_yaml(path)["stages"]  # type: ignore[index]
    for name, stage in stages.items():
        files = closure(entry_point(stage["cmd"])) | closure(PACKAGE / "__main__.py")
        derived = [f"      - {p.relative_to(ROOT)}" for p in sorted(files)]
        deps = rf"(?ms)^  {re.escape(name)}:.*?^    deps:\n((?:      - [^\n]*\n)+)"
        block = re.search(deps, text)
        if block is None:
            raise SystemExit(f"stage {name}: no deps list found")
        lines = block.group(1).splitlines()
        others = [line for line in lines if not line.startswith("      - pipeline/")]
        text = text[: block.start(1)] + "\n".join([*others, *derived]) + "\n" + text[block.end(1) :]
    path.write_text(text)


if __name__ == "__main__":
    main()
