"""The worker pool: results do not depend on how many processes computed them."""

from functools import partial

import torch

from pipeline import grid, params
from pipeline.grid.reference import train_cell
from pipeline.run import numerics, pool

X = torch.tensor([[1.0], [2.0], [3.0]])
Y = 2 * X


def _square(n: int) -> int:
    return n * n


def _nothing() -> None:
    pass


def test_every_item_comes_back_once_whatever_the_worker_count() -> None:
    """unordered() yields function(item) for each item exactly once, with 1 or 2 processes."""
    items = list(range(25))

    one = sorted(pool.unordered(_square, items, 1, _nothing))
    two = sorted(pool.unordered(_square, items, 2, _nothing))

    assert one == two == [n * n for n in items]


def test_worker_processes_do_not_change_results(committed: params.Params) -> None:
    """Training cells in 2 processes gives the same traces as in 1."""
    cells = [grid.Cell(**{**c.__dict__, "steps": 20}) for c in grid.cells(committed.train)[:6]]
    work = partial(train_cell, x=X, y=Y)
    setup = partial(numerics.pin, 1, True)

    one = {t.cell.name: t.rows for t in pool.unordered(work, cells, 1, setup)}
    two = {t.cell.name: t.rows for t in pool.unordered(work, cells, 2, setup)}

    assert one == two and len(one) == 6
