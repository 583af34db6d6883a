"""Grid cells: names, settings and keys."""

import copy

from pipeline import grid, params


def test_default_grid_is_the_full_product(committed: params.Params) -> None:
    """Cells are losses x optimizers x clips x seeds, named <loss>-<optimizer>-<clip>."""
    g = committed.train.grid
    cells = grid.cells(committed.train)
    assert len(cells) == len(g.losses) * len(g.optimizers) * len(g.clips) * len(g.seeds)
    assert cells[0].name == f"{g.losses[0]}-{g.optimizers[0]}-{g.clips[0]}"
    assert len({c.name for c in cells}) == len(cells)


def test_several_seeds_add_a_seed_suffix(raw_params: dict) -> None:
    """With two seeds every name ends in -s<seed>."""
    data = copy.deepcopy(raw_params)
    data["train"]["grid"]["seeds"] = [1, 2]
    names = [c.name for c in grid.cells(params.parse(data).train)]
    assert all(n.endswith(("-s1", "-s2")) for n in names)


def test_settings_hold_every_hyperparameter(committed: params.Params) -> None:
    """A cell's settings name its loss, optimizer, clip, seed, steps and all hyperparameters."""
    cell = next(c for c in grid.cells(committed.train) if c.name == "huber-adam-norm")
    s = cell.settings()
    assert {
        "loss",
        "optimizer",
        "clip",
        "seed",
        "steps",
        "lr",
        "betas",
        "eps",
        "max_norm",
        "norm_type",
        "delta",
    } <= set(s)
    assert s["lr"] == committed.train.optimizers.adam.lr
