"""The study's report page, from a tiny synthetic study run through the real analysis:
every section, no URL, equal bytes for equal inputs, the winners' numbers as the summary
has them; and, in a real browser offline, every figure drawn."""

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pipeline import params
from pipeline.study import analysis, protocol, report
from pipeline.study import clipping as study_clipping
from pipeline.study.analysis import FINALS
from pipeline.study.configuration import CONFIG
from pipeline.study.report import clipping, figures, sensitivity
from tests.conftest import ROOT
from tests.helpers.browser import offline_tab

SECTIONS = ("answer", "protocol", "seeds", "tuned", "sensitivity", "stability", "clipping",
            "robustness", "improvement", "profiles", "twins", "classification")  # fmt: skip
FIGURES = ("answer", "tuned", "sensitivity", "clipping", "robustness", "improvement", "profiles")
SCENARIOS, LOSSES = ("tutorial", "noisy"), ("mse", "l1")
OPTIMIZERS, CLIPS = ("sgd", "adam"), ("none", "norm")
TUNE_LRS, TUNE_SEEDS, REPORT_SEEDS = (1e-3, 1e-2, 1e-1), (0, 1), (100, 101, 102, 103)
TRACE_STEPS = (0, 1, 2, 5, 10, 20, 50, 100)


def _cell(part: str, config: tuple[str, ...], lr: float, seed: int, steps: int) -> dict:
    """One row of the study's cells with what the analysis reads; steps -1: never."""
    scenario, loss, optimizer, clip = config
    error = 0.005 if steps >= 0 else 0.5
    return {
        "part": part, "scenario": scenario, "loss": loss, "optimizer": optimizer,
        "clip": clip, "name": "", "lr_kind": "", "seed": seed, "lr": lr, "theory_lr": np.nan,
        "steps_sustained": steps, "steps_first_touch": steps // 2 if steps >= 0 else -1,
        "touch_share": 1.0 if steps >= 0 else np.nan, "excursion": 0.004 if steps >= 0 else np.nan,
        "target_error": error, "true_error": error + 0.01, "minimiser_error": 0.01,
        "tol": 0.01, "diverged": 0, "clip_fraction": 0.0 if clip == "none" else 0.2,
        "init_weight": 0.5, "init_bias": 0.5, "target_weight": 2.0, "target_bias": 0.01,
        "line_weight": 2.0, "line_bias": 0.0, **dict.fromkeys(FINALS, 0.0),
    }  # fmt: skip


def synthetic_study() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """cells (tune, report, edge and twin parts), traces and the grid's cells.csv of a
    2 x 2 x 2 x 2 study: seeded steps, some never reached."""
    rng = np.random.default_rng(0)
    configs = [(s, lo, o, c) for s in SCENARIOS for lo in LOSSES for o in OPTIMIZERS for c in CLIPS]
    rows = []
    for config in configs:
        for i, lr in enumerate(TUNE_LRS):
            for seed in TUNE_SEEDS:
                steps = -1 if i == 0 else int(rng.integers(5, 200))
                rows.append(_cell("tune", config, lr, seed, steps))
        for kind in ("tuned", "default"):
            for seed in REPORT_SEEDS:
                never = rng.random() < (0.1 if kind == "tuned" else 0.5)
                row = _cell("report", config, 0.1, seed, -1 if never else int(rng.integers(5, 200)))
                rows.append(row | {"lr_kind": kind})
    theory = 0.3  # sgd on mse around its edge: stable up to it, beyond it diverged unclipped
    for clip in CLIPS:
        for k in range(-2, 3):
            row = _cell("edge", ("tutorial", "mse", "sgd", clip), theory * (1 + 0.05 * k), 0, 10)
            if k > 0:
                row |= {"steps_sustained": -1, "diverged": int(clip == "none")}
            rows.append(row | {"theory_lr": theory, "init_weight": 2.0001, "init_bias": 0.0099})
    names = [f"mse-sgd-{c}" for c in CLIPS]
    for name, clip in zip(names, CLIPS, strict=True):
        finals = {"final_loss": 1e-6, "final_weight": 1.99, "final_bias": 0.003}
        rows.append(_cell("twin", ("grid", "mse", "sgd", clip), 0.05, 42, 30) | finals)
        rows[-1]["name"] = name
    cells = pd.DataFrame(rows)
    grid = cells[cells["part"] == "twin"].rename(columns={"name": "cell"})
    grid = grid.assign(final_loss=[1e-6, 1.5e-6])  # the second cell differs by a half
    report_rows = cells[(cells["part"] == "report") & (cells["lr_kind"] == "tuned")]
    traces = pd.DataFrame(
        [
            {**{k: r[k] for k in ("part", "scenario", "loss", "optimizer", "clip", "lr_kind")},
             "seed": r["seed"], "step": step, "error": float(np.exp(-step / 10) + 1e-3)}
            for _, r in report_rows.iterrows()
            for step in TRACE_STEPS
        ]
    )  # fmt: skip
    return cells, traces, grid


Inputs = tuple[
    dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame, params.StudyRecord, params.Bootstrap
]


@pytest.fixture(scope="module")
def study() -> Inputs:
    """The report's inputs: the tables, the cells and traces, what the study ran (the
    committed params' study and scenarios) and the bootstrap."""
    p = params.load(ROOT / "params.yaml")
    cells, traces, grid = synthetic_study()
    ran = params.StudyRecord(
        study=p.study, scenarios={name: p.scenarios[name] for name in p.study.scenarios}
    )
    b = p.analysis.bootstrap
    tuned = protocol.tune(cells[cells["part"] == "tune"])
    found = analysis.tables(cells, tuned, grid, b.reps, b.seed, p.study.steps)
    return found, cells, traces, ran, b


@pytest.fixture(scope="module")
def page(study: Inputs) -> str:
    return report.html(*study)


class Tables(HTMLParser):
    """Every <table> of a page, under the id of its <section>: rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[list[list[str]]]] = {}
        self.section, self.cell = "", None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("id") or ""
        elif tag == "table":
            self.found.setdefault(self.section, []).append([])
        elif tag == "tr":
            self.found[self.section][-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.found[self.section][-1][-1].append(self.cell)
            self.cell = None


def tables_of(page: str) -> dict[str, list[list[list[str]]]]:
    parser = Tables()
    parser.feed(page)
    return parser.found


def number(text: str) -> float:
    return float("inf") if text == "∞" else float(text.rstrip("%"))


def test_the_page_has_every_section_in_order(page: str) -> None:
    """One <section id=...> per part of the report, in the report's order, each with a
    paragraph saying what it shows."""
    ids = re.findall(r'<section id="(\w+)"><h2>[^<]+</h2><p>[^<]', page)
    assert tuple(ids) == SECTIONS


def test_the_page_names_no_url_and_fetches_nothing(page: str) -> None:
    """Offline: no http(s) URL anywhere, and every href or src points inside the page."""
    assert "http://" not in page and "https://" not in page
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert links and all(link.startswith("#") for link in links)
    assert "<script" not in page and "<link" not in page and "<img" not in page


def test_every_figure_is_inline_svg(page: str) -> None:
    """Each figure section holds an inline <svg> with a viewBox, and no two elements on
    the page share an id (the figures' ids are salted per figure)."""
    for name in FIGURES:
        section = page.split(f'<section id="{name}">')[1].split("</section>")[0]
        assert re.search(r"<svg [^>]*viewBox=", section), name
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_equal_inputs_give_equal_bytes(study: Inputs, page: str) -> None:
    """A second page from the same inputs is byte for byte the first."""
    assert report.html(*study) == page


def test_the_answer_table_shows_the_answer_numbers(study: Inputs, page: str) -> None:
    """Each row of the first table: answer.csv's best, tuned lr, IQM and interval, success,
    winner set and fit, to the 4 significant digits shown."""
    header, *rows = tables_of(page)["answer"][0]
    assert header == [
        "scenario", "loss", "best (optimizer+clip)", "tuned lr", "IQM sustained steps [95% CI]",
        "success", "first touch (median)", "winner set", "trained to line", "minimisers to line",
        "loss fits best",
    ]  # fmt: skip
    found = study[0]["answer"].set_index(["scenario", "loss"])
    assert len(rows) == len(found) == len(SCENARIOS) * len(LOSSES)
    for scenario, loss, best, lr, iqm, success, touch, size, trained, _, fits in rows:
        want = found.loc[(scenario, loss)]
        assert best == want["best"] and size == f"{want['set_size']} of {want['rivals']}"
        value, lo, hi = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", iqm).groups()  # type: ignore[union-attr]
        got = [number(lr), number(value), number(lo), number(hi), number(touch), number(trained)]
        shown = ["tuned_lr", "iqm_steps", "iqm_lo", "iqm_hi", "first_touch_median",
                 "trained_error"]  # fmt: skip
        assert got == pytest.approx([float(want[c]) for c in shown], rel=5e-4)
        assert number(success) == pytest.approx(100 * want["success_rate"], abs=0.5)
        assert fits == ("yes" if want["best_fit"] else "no")


def test_the_sentences_count_what_the_tables_hold(page: str) -> None:
    """The stability sentence counts the edges that agree; the twins sentence finds the
    cell whose finals differ (final_loss by a half)."""
    assert "2 of 2 measured edges agree with the closed form" in page
    assert "unclipped MSE runs diverged in 100% of the lrs" in page
    assert "the largest relative difference is 0.333 (mse-sgd-norm); 1 of 2 cells" in page


def test_classification_is_shown_when_present_and_said_absent_otherwise(
    study: Inputs, page: str
) -> None:
    """No "classes" table, or an empty one: a line says so. With one: its main columns in
    a table, every column in a second one (folded)."""
    tables, cells, traces, ran, bootstrap = study
    absent = "Classification results are not in this study."
    assert absent in page
    assert absent in report.html(
        {**tables, "classes": pd.DataFrame()}, cells, traces, ran, bootstrap
    )
    classes = pd.DataFrame(
        {"config": ["points-ce-sgd-none"], "tuned_lr": [0.1], "tunability": [0.4],
         "iqm_steps": [12.5], "iqm_lo": [10.0], "iqm_hi": [np.inf], "success_rate": [0.9],
         "median_accuracy": [0.975], "median_angle_deg": [1.25]}
    )  # fmt: skip

    found = tables_of(report.html({**tables, "classes": classes}, cells, traces, ran, bootstrap))

    (header, row), (every, _) = found["classification"]
    assert header == [c for c in classes.columns if c != "tunability"]
    assert row == ["points-ce-sgd-none", "0.1", "12.5", "10", "∞", "0.9", "0.975", "1.25"]
    assert every == list(classes.columns)


# --- the figures, read at 1,400 px --------------------------------------------------------
@pytest.fixture(scope="module")
def drawn(study: Inputs) -> dict[str, Any]:
    """Each figure of the page as matplotlib drew it (the sensitivity: one scenario's)."""
    found, _, traces, ran, _ = study
    summary, order = found["summary"], {k: list(v) for k, v in ORDER.items()}
    sets = found["winners"]
    best = sets[sets["best"]].merge(summary[["config", *CONFIG]], on=["config", "scenario", "loss"])
    tol = {name: ran.scenarios[name].tol for name in ran.scenarios}
    return {
        "answer": figures.winners(best, traces, tol, ran.study.steps),
        "tuned": figures.tuned(summary, order, ran.study.steps),
        "sensitivity": sensitivity.figure(
            *sensitivity.split(found["sensitivity"], found["stability"]),
            order,
            ran.study.steps,
            "tutorial",
        ),
        "clipping": clipping.heatmaps(found["clip_ratios"], found["clip_idle"], order),
        "robustness": figures.robustness(found["robustness"], list(SCENARIOS), list(LOSSES)),
        "improvement": figures.improvement(found["improvement"], list(CLIPS), list(OPTIMIZERS)),
        "profiles": figures.profiles(
            found["curves"], found["profiles"], list(CLIPS), list(OPTIMIZERS)
        ),
    }


ORDER = {"scenario": SCENARIOS, "loss": LOSSES, "optimizer": OPTIMIZERS, "clip": CLIPS}


def panels_of(fig: Any) -> list[Any]:
    """The axes that hold data (not a colour bar)."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


@pytest.mark.parametrize("name", FIGURES)
def test_every_legend_sits_outside_the_data(drawn: dict[str, Any], name: str) -> None:
    """No legend box overlaps a panel: in the profiles one covered the curves at tau 2.8-4."""
    fig = drawn[name]
    renderer = FigureCanvasAgg(fig).get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in panels_of(fig):
            assert not box.overlaps(ax.get_window_extent(renderer)), (name, ax.get_title())


@pytest.mark.parametrize("name", FIGURES)
def test_every_panel_labels_its_own_axes(drawn: dict[str, Any], name: str) -> None:
    """Each panel shows tick labels on both axes, not only the bottom row and left column."""
    fig = drawn[name]
    FigureCanvasAgg(fig).draw()
    for ax in panels_of(fig):
        for axis in (ax.xaxis, ax.yaxis):
            shown = [t.get_text() for t in axis.get_ticklabels() if t.get_visible()]
            assert any(shown), (name, ax.get_title(), axis.axis_name)


def test_each_lr_sensitivity_panel_holds_at_most_two_lines(drawn: dict[str, Any]) -> None:
    """The lr sensitivity as small multiples: per loss and optimizer panel, no clipping and
    norm clipping, where a panel held 14 lines (7 optimizers x 2 clip modes)."""
    for ax in panels_of(drawn["sensitivity"]):
        titles = [t for t in [ax.title, *ax.texts] if " · " in t.get_text()]
        curves = [line for line in ax.lines if len(line.get_xdata()) > 2]  # not the rules
        segments = [c.get_segments() for c in ax.collections if hasattr(c, "get_segments")]
        curves += [s for group in segments for s in group]  # a LineCollection: one a line
        assert titles and len(curves) <= 2 * len(titles), ax.get_title()


def test_a_note_says_where_clipping_never_acted(study: Inputs) -> None:
    """Clipped runs that never clipped are said to be the unclipped runs, in the clipping
    section (and marked idle) and in the classification section."""
    tables, cells, traces, ran, bootstrap = study
    quiet = cells.assign(clip_fraction=0.0)
    idle = study_clipping.idle(quiet)
    classes = pd.DataFrame({"config": ["points-ce-sgd-norm"], "clip_fraction": [0.0]})
    given = {**tables, "clip_idle": idle, "classes": classes, "class_idle": idle}

    page = report.html(given, cells, traces, ran, bootstrap)

    clipping_text = page.split('<section id="clipping">')[1].split("</section>")[0]
    classes_text = page.split('<section id="classification">')[1].split("</section>")[0]
    said = f"Clipping never acted in {idle.size} of the {idle.size} clipped configurations"
    assert said in clipping_text and ">idle<" in clipping_text
    assert said in classes_text and "their rows repeat the unclipped ones" in classes_text


# --- in a real browser ------------------------------------------------------------------
# Per section: each <svg>'s rendered size, its paths with a non-empty box, and whether
# every <use> finds the marker it points at.
READ_FIGURES = """() => [...document.querySelectorAll('section')].map(s => ({
  id: s.id,
  svgs: [...s.querySelectorAll('svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    const drawn = [...svg.querySelectorAll('path')].filter(p => {
      const b = p.getBBox(); return (p.getAttribute('d') || '').trim() && (b.width || b.height);
    });
    const uses = [...svg.querySelectorAll('use')];
    return {width: box.width, height: box.height, paths: drawn.length, uses: uses.length,
            resolved: uses.every(u => document.getElementById(
              (u.getAttribute('xlink:href') || u.getAttribute('href')).slice(1)))};
  }),
}))"""


def open_offline(chromium: Any, page_file: Path, screenshot: Path) -> tuple[list[dict], list[str]]:
    """`page_file` in Chromium with every non-file:// request aborted; what READ_FIGURES
    reads, and the requests that were tried (none, for an offline page)."""
    with offline_tab(chromium, page_file) as (tab, log):
        tab.screenshot(path=str(screenshot), full_page=True)
        sections = tab.evaluate(READ_FIGURES)
    assert log.errors == []
    return sections, log.requested


@pytest.mark.slow
def test_the_page_draws_every_figure_offline_in_chromium(
    browser: Any,
    page: str,
    tmp_path: Path,
) -> None:
    """Opened from disk with the network blocked: nothing requested, no console error,
    every figure section's SVG laid out at a real size, with drawn paths and resolved
    markers."""
    (tmp_path / "index.html").write_text(page)

    sections, requested = open_offline(browser, tmp_path / "index.html", tmp_path / "report.png")

    assert requested == []
    assert [s["id"] for s in sections] == list(SECTIONS)
    for section in sections:
        svgs = section["svgs"]
        assert (len(svgs) >= 1) == (section["id"] in FIGURES), section
        for svg in svgs:
            assert svg["width"] > 200 and svg["height"] > 100, section["id"]
            assert svg["paths"] > 10 and svg["resolved"], section["id"]


# Per figure: the smallest type on it as shown, in px (SVG user units are points).
SMALLEST_TYPE = """() => [...document.querySelectorAll('section')].map(s => ({
  id: s.id,
  px: Math.min(...[...s.querySelectorAll('svg')].flatMap(svg => {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')].map(
      t => parseFloat(getComputedStyle(t).fontSize) * scale);
  })),
}))"""


@pytest.mark.slow
def test_every_figure_is_readable_at_1400_px(browser: Any, page: str, tmp_path: Path) -> None:
    """In a 1,400 px window no figure's type is under 8 px (the clipping heatmap's numbers
    were about 6 px: its figure was 26 inches wide, shrunk to the page)."""
    (tmp_path / "index.html").write_text(page)
    with offline_tab(browser, tmp_path / "index.html") as (tab, _):
        tab.set_viewport_size({"width": 1400, "height": 900})
        sizes = {s["id"]: s["px"] for s in tab.evaluate(SMALLEST_TYPE) if s["id"] in FIGURES}

    assert set(sizes) == set(FIGURES)
    assert {name: px for name, px in sizes.items() if px < 8} == {}
