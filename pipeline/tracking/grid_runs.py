"""The grid's MLflow runs, built from what train wrote: one run per trained cell (its
settings as params, its histories at log-spaced steps, its finals, its trace and plot)
under one parent per grid that holds the comparison's reports."""

import shutil
import subprocess
from functools import partial
from pathlib import Path

from pipeline.grid import trace
from pipeline.grid.manifest import Entry
from pipeline.tracking import store

FINAL = (  # final metrics of each cell run (names are an API)
    "final_loss",
    "final_weight",
    "final_bias",
    "dist_to_optimum",
    "max_grad_norm",
    "clip_fraction",
    "diverged",
    "diverged_step",
)


LINK = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{cell} in the gradlab explorer</title>
<meta http-equiv="refresh" content="0; url={target}"></head>
<body><p>Open <a href="{target}">the gradlab explorer on cell {cell}</a>: {address} in the
repository this run was published from. The grid's parent run carries the page itself
(its artifact explorer.html), which opens on this cell at the address #cell={cell}.</p>
</body></html>
"""


def explorer_tag(cell: str, page: Path) -> dict[str, str]:
    """The tag `explorer`: the explorer page's address on `cell`, as dvc.yaml names it."""
    return {"explorer": f"{page.as_posix()}#cell={cell}"}


def explorer_link(cell: str, page: Path, folder: Path) -> list[Path]:
    """The run's artifact explorer.html, which opens the page on `cell` (file:// on this
    machine: drawn when the run is created, as the checkout's path makes it no part of the
    run's payload)."""
    target = f"{page.resolve().as_uri()}#cell={cell}"
    path = folder / "explorer.html"
    address = explorer_tag(cell, page)["explorer"]
    path.write_text(LINK.format(cell=cell, target=target, address=address), encoding="utf-8")
    return [path]


def cell_content(
    entry: Entry,
    data: str,
    folder: Path,
    plots: Path,
    tags: dict[str, str],
    points: int,
    explorer: Path | None = None,
) -> store.RunContent:
    """One cell's MLflow run: settings as params, histories at history_steps, final metrics;
    with the `explorer` page, its tag and a link to the page on this cell."""
    cell, m = entry.cell, entry.measures
    csv = folder / f"{cell.name}.csv"
    frame = trace.read_frame(csv)
    keep = frame.iloc[trace.history_steps(len(frame), points)]
    history = [
        (name, float(value), int(step))
        for name in trace.HISTORY
        for step, value in zip(keep["step"], keep[name], strict=True)
    ]
    finals = [(name, float(m[name]), 0) for name in FINAL if m.get(name) is not None]  # type: ignore[arg-type]
    diverged = {"diverged_reason": str(m["diverged_reason"])} if m["diverged"] else {}
    plot = plots / "cells" / f"{cell.name}.png"
    link = explorer_tag(cell.name, explorer) if explorer else {}
    return store.RunContent(
        name=cell.name,
        key=entry.key(data),
        params={k: str(v) for k, v in cell.settings().items()},
        tags={**tags, "cell": cell.name, "diverged": str(bool(m["diverged"])).lower(), **diverged}
        | link,
        metrics=history + finals,
        artifacts=[csv],
        pictures=[plot] if plot.exists() else [],  # its view is the grid's: no payload
        drawn=partial(explorer_link, cell.name, explorer) if explorer else store.nothing,
    )


def graph_svg(dot: Path, folder: Path) -> list[Path]:
    """The walkthrough's graph drawn by Graphviz into `folder`, or nothing without it (the
    parent run's `drawn` artifact: Graphviz's version decides its bytes)."""
    if shutil.which("dot") is None or not dot.exists():
        return []
    svg = folder / "graph.svg"
    subprocess.run(["dot", "-Tsvg", str(dot), "-o", str(svg)], check=True)
    return [svg]
