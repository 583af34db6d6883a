"""The project's DVC pipeline files, read as the tests need them."""

from pathlib import Path

from ruamel.yaml import YAML

# dvc.yaml holds the pipeline; env/dvc.yaml its always-changed first stage (see that file)
DVC_FILES = ("dvc.yaml", "env/dvc.yaml")


def stages(root: Path) -> dict[str, dict]:
    """Every stage of the project's pipeline files, by name (names are unique across them)."""
    found: dict[str, dict] = {}
    for name in DVC_FILES:
        more = YAML(typ="safe").load((root / name).read_text())["stages"]
        assert not found.keys() & more.keys(), f"{name} repeats a stage name"
        found |= more
    return found
