"""The study's parquet tables in a few numbers per column: what the drift check compares of
them (the tables live in the DVC cache, this summary in git: reports/study/tables.csv).

One row per table, part and numeric column (`cells:report:final_loss`): how many rows, how
many finite values, and their mean, minimum and maximum. A NaN in the data, a cell that now
diverges, a changed tuned lr all move some of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MEASURES = ("rows", "finite", "mean", "min", "max")


def summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A row per table (by name), part and numeric column; the first column, `column`,
    names it `<table>:<part>:<column>`; statistics of the finite values, blank if none."""
    import numpy as np
    import pandas as pd

    rows = []
    for table, frame in tables.items():
        numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
        for part, cells in frame.groupby("part", sort=True):
            for column in numeric:
                values = cells[column].to_numpy(dtype=np.float64)
                finite = values[np.isfinite(values)]
                stats = (finite.mean(), finite.min(), finite.max()) if finite.size else (None,) * 3
                rows.append(
                    {"column": f"{table}:{part}:{column}", "rows": len(values)}
                    | {"finite": finite.size, **dict(zip(MEASURES[2:], stats, strict=True))}
                )
    return pd.DataFrame(rows, columns=["column", *MEASURES])
