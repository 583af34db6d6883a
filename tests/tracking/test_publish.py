"""What the publish stage prints of the grid's ranking (pipeline.tracking.publish.top)."""

from pathlib import Path

import pandas as pd

from pipeline.grid import ranking
from pipeline.tracking import publish


def test_top_fits_100_columns_and_names_its_measures() -> None:
    """Long cell names and the legend still fit a 100-column terminal; the rows are the
    ranking's first, with rank, distance, the secondary measure and the ranking's size."""
    measures = {"final_loss": 1.5e-12, "final_weight": 2.0, "final_bias": -2.5e-7}
    measures |= {"max_grad_norm": 8.843, "clip_fraction": 0.125, "diverged": "no"}
    settings = {"loss": "smoothl1", "optimizer": "nesterov", "clip": "handnorm"}
    rows = [
        {"rank": 1, "cell": f"smoothl1-nesterov-handnorm-s{i:04d}", "dist_to_optimum": 1e-7 * i}
        | measures
        | {"first_below": 60 + i, **settings, "seed": i}
        for i in range(12)
    ]
    text = ranking.report(pd.DataFrame(rows), {"torch": "2.13.0"}, "abc", 1e-4, 1e-6)

    out = publish.top(text, Path("reports/compare.md"))

    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[1].split() == list(publish.TOP_COLUMNS)
    assert [line.split()[1] for line in lines[2:7]] == [r["cell"] for r in rows[:5]]
    words = " ".join(out.split())  # as read, across the wrapped lines
    assert "within 1e-06" in words and "by `first_below`" in words and "All 12 cells" in words
