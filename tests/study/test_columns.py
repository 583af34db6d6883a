"""The parquet tables' per-column summary: what the drift check compares of them."""

import math

import numpy as np
import pandas as pd

from pipeline.study import columns


def test_each_part_and_numeric_column_is_summarised_over_its_finite_values() -> None:
    """rows, finite, mean, min and max per (table, part, numeric column), as computed
    directly; a NaN and an inf lower `finite`; text columns are left out."""
    frame = pd.DataFrame(
        {
            "part": ["tune", "tune", "tune", "report"],
            "optimizer": ["sgd", "adam", "sgd", "adam"],
            "steps_sustained": [3.0, math.inf, 5.0, 7.0],
            "final_loss": np.array([0.5, np.nan, 0.25, 1.0], dtype=np.float32),
            "diverged": [False, True, False, False],
        }
    )

    found = columns.summary({"cells": frame}).set_index("column")

    assert list(found.index) == [
        "cells:report:steps_sustained", "cells:report:final_loss", "cells:report:diverged",
        "cells:tune:steps_sustained", "cells:tune:final_loss", "cells:tune:diverged",
    ]  # fmt: skip
    steps = found.loc["cells:tune:steps_sustained"]
    assert (steps["rows"], steps["finite"], steps["mean"]) == (3, 2, 4.0)
    assert (steps["min"], steps["max"]) == (3.0, 5.0)
    loss = found.loc["cells:tune:final_loss"]
    assert loss["finite"] == 2 and loss["mean"] == 0.375
    assert found.loc["cells:tune:diverged", "mean"] == 1 / 3
