"""The study's report: one self-contained HTML page that opens offline.

CSS is inline and every figure an inline SVG (pipeline.figures); nothing on the page names
a URL. Every number comes from the tables of pipeline.study.analysis. Equal inputs give
equal bytes: the SVGs carry no date, and their ids are hashed with a fixed salt, one per
figure, so no two figures on the page share an id. The page is assembled here from its
sections (sections.py; sensitivity.py and clipping.py, each a section with its figure),
which draw their figures (figures.py) and tables (markup.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline import params
from pipeline.study.configuration import CONFIG
from pipeline.study.report import answer, clipping, markup, sections, sensitivity

if TYPE_CHECKING:
    import pandas as pd

CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;
color:#222}h2{border-bottom:1px solid #ccc;margin-top:2em}nav a{margin-right:.8em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}th,td{border:1px solid #ddd;
padding:2px 6px;text-align:right}td{white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.scroll{overflow-x:auto}figure{margin:.8em 0}
svg{max-width:100%;height:auto}summary{cursor:pointer}"""


def html(
    tables: dict[str, pd.DataFrame],
    cells: pd.DataFrame,
    traces: pd.DataFrame,
    p: params.StudyRecord,
    bootstrap: params.Bootstrap,
) -> str:
    """The report page: tables as pipeline.study.analysis.tables names them (and
    optionally "classes"), the study's cells and traces, what the study ran (its
    manifest) and the bootstrap the intervals used."""
    summary, stability, s = tables["summary"], tables["stability"], p.study
    order = {  # the params' order, then anything the tables hold beyond it
        "scenario": markup.order_of(summary["scenario"], s.scenarios),
        "loss": markup.order_of(summary["loss"], s.losses),
        "optimizer": markup.order_of(summary["optimizer"], s.optimizers),
        "clip": markup.order_of(summary["clip"], s.clips),
    }
    agreement = float(tables["agreement"]["agreement"].iloc[0])
    tols = cells.groupby("scenario")["tol"].first().to_dict()  # tol in w and b, as trained
    parts = [
        answer.answer(tables["answer"], agreement, cells, traces, p, order),
        sections.protocol(p, bootstrap, summary, stability, tols),
        answer.seeds(tables["power"], agreement, p),
        sections.tuned(summary, order, s.steps),
        sensitivity.section(tables["sensitivity"], stability, order, s.steps),
        sections.stability(stability),
        clipping.section(tables["clip_ratios"], tables["clip_idle"], order),
        sections.robustness(tables["robustness"], p, order),
        sections.improvement(tables["improvement"], order),
        sections.profiles(tables["curves"], tables["profiles"], tables["wins"], order),
        sections.twins(tables["twins"]),
        sections.classification(tables),
    ]
    body = "".join(parts)
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in re.findall(r'id="(\w+)"><h2>([^<]*)', body))
    title = "gradlab: optimizers, losses and gradient clipping on a linear model"
    lead = (
        f"{len(summary)} configurations ({' &times; '.join(str(len(order[k])) for k in CONFIG)} "
        f"{', '.join(CONFIG)}) and {len(cells)} trained cells, summarised from the study's "
        "tables; every figure and table below is computed from them."
    )
    head = f'<meta charset="utf-8"><title>{title}</title><style>{CSS}</style>'
    return (
        f'<!DOCTYPE html><html lang="en"><head>{head}</head><body><h1>{title}</h1>'
        f"<p>{lead}</p><nav>{nav}</nav>{body}</body></html>\n"
    )
