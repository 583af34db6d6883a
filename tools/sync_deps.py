"""Rewrite each DVC stage's `pipeline/` deps as the project files its command imports,
transitively, packed into package folders (tools/deps.py; tests/test_layout.py checks
them). Other deps stay as they are.

Usage: python tools/sync_deps.py   (then review `git diff dvc.yaml env/dvc.yaml`)
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import deps  # after the path


def main() -> None:
    for name in deps.DVC_FILES:
        sync(deps.ROOT / name)


def sync(path: Path) -> None:
    text = path.read_text()
    for name, stage in deps.stages(deps.ROOT).items():
        pattern = rf"(?ms)^  {re.escape(name)}:.*?^    deps:\n((?:      - [^\n]*\n)+)"
        block = re.search(pattern, text)
        if block is None:
            continue  # a stage of the other file
        files = sorted(p.relative_to(deps.ROOT).as_posix() for p in deps.listed(stage["cmd"]))
        lines = block.group(1).splitlines()
        others = [line for line in lines if not line.startswith("      - pipeline/")]
        listed = [*others, *(f"      - {f}" for f in files)]
        text = text[: block.start(1)] + "\n".join(listed) + "\n" + text[block.end(1) :]
    path.write_text(text)


if __name__ == "__main__":
    main()
