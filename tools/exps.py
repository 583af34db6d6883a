"""`make exps`: the experiments side by side within the terminal's width: the params each
one changed, then the headline figures (DVC's own `dvc exp show`, two views of it).

Plain `dvc exp show` holds every param and metric (~270 columns): in a 120-column terminal
it shows `…`. Its params, once narrowed to those that changed, still hold lists as wide as
`['sgd', 'momentum', 'nesterov', 'adam', 'adamw', 'rmsprop', 'adagrad']`, and DVC collapses
every params column after the first to `…` rather than wrap a cell; here its table class
wraps them instead (dvc.utils.table.Table: collapse off, overflow folded). Every metric
that differs between two experiments, one per line: `dvc metrics diff A B`.

Usage: python tools/exps.py [options of dvc exp show, e.g. -A or --rev]
"""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dvc.cli import main
from dvc.utils import table
from ruamel.yaml import YAML

# the grid's and the study's headline figures that are one number each (wins and profile
# scores are one per optimizer: too wide for a row, `dvc metrics diff` lists them)
HEADLINE = ("cells", "diverged", "edges_agreeing", "twins_largest_rel_diff")


def views(params: Path) -> list[tuple[str, list[str]]]:
    """(title, `dvc exp show` arguments) of each table: params changed, headline figures."""
    sections = "|".join(YAML(typ="safe").load(params.read_text(encoding="utf-8")))
    return [
        (
            "Params that differ between the experiments:",
            ["--only-changed", "--drop", rf"^(?!Experiment$|({sections})\.)"],
        ),
        (
            "Headline figures (every metric that differs: dvc metrics diff A B):",
            ["--drop", ".*", "--keep", f"^(Experiment|{'|'.join(HEADLINE)})$"],
        ),
    ]


def wrapping(add: Callable[..., None]) -> Callable[..., None]:
    """`add_column` with every column wrapping its cells, none collapsed to `…`."""

    def add_column(self: table.Table, *args: Any, **kwargs: Any) -> None:
        add(self, *args, **{**kwargs, "collapse": False, "overflow": "fold"})

    return add_column


if __name__ == "__main__":
    table.Table.add_column = wrapping(table.Table.add_column)  # type: ignore[method-assign]
    for title, arguments in views(Path("params.yaml")):
        print(title, flush=True)
        if code := main(["exp", "show", "--no-pager", *arguments, *sys.argv[1:]]):
            raise SystemExit(code)
