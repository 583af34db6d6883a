"""This machine's processes (pipeline.run.local): results in item order, whatever the
number of processes; a dead worker's items run again here; an item that raises is named."""

import os
import signal
import time
from functools import partial
from pathlib import Path

import pytest
import torch

from pipeline import grid, params
from pipeline.grid.reference import train_cell
from pipeline.run import local, numerics

X = torch.tensor([[1.0], [2.0], [3.0]])
Y = 2 * X


def _square(n: int) -> int:
    return n * n


def _nothing() -> None:
    pass


def _fail_on_seven(n: int) -> int:
    if n == 7:
        raise ValueError("seven")
    return n


def _die_late(n: int) -> int:
    """Slowly n * n; a worker process that takes an item past 10 leaves a mark and dies.
    This process waits (up to a minute) until both workers took an item: on a loaded
    machine it would otherwise take every item before they start."""
    time.sleep(0.05)
    marks = Path(os.environ["GRADLAB_TEST_MARKS"])
    if os.environ["GRADLAB_TEST_PARENT"] == str(os.getpid()):
        deadline = time.monotonic() + 60
        while len(list(marks.glob("up-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return n * n
    (marks / f"up-{os.getpid()}").touch()
    if n > 10:
        (marks / f"died-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return n * n


def test_every_item_comes_back_once_in_order_whatever_the_worker_count() -> None:
    """ordered() yields work(item) for each item once, in item order, with 1, 2 or 3
    processes."""
    items = list(range(25))

    assert [list(local.ordered(_square, items, k, _nothing)) for k in (1, 2, 3)] == [
        [n * n for n in items]
    ] * 3


def test_worker_processes_do_not_change_results(committed: params.Params) -> None:
    """Training cells in 2 processes gives the same traces as in 1."""
    cells = [grid.Cell(**{**c.__dict__, "steps": 20}) for c in grid.cells(committed.train)[:6]]
    work = partial(train_cell, x=X, y=Y)
    setup = partial(numerics.pin, 1, True)

    one = [t.rows for t in local.ordered(work, cells, 1, setup)]
    two = [t.rows for t in local.ordered(work, cells, 2, setup)]

    assert one == two


def test_an_item_that_raises_is_named() -> None:
    """An error in any process stops the map as ItemError naming the item."""
    with pytest.raises(local.ItemError, match="ValueError: seven") as caught:
        list(local.ordered(_fail_on_seven, list(range(20)), 2, _nothing))

    assert caught.value.index == 7


def test_the_items_of_a_worker_that_died_run_again_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Workers killed on an item: those items run in this process; every result comes
    back, in order."""
    monkeypatch.setenv("GRADLAB_TEST_PARENT", str(os.getpid()))
    monkeypatch.setenv("GRADLAB_TEST_MARKS", str(tmp_path))
    items = list(range(40))

    got = list(local.ordered(_die_late, items, 3, _nothing))

    assert got == [n * n for n in items]
    assert len(list(tmp_path.glob("died-*"))) == 2  # both workers died
