"""The explorer page in a real Chromium, offline (every non-file:// request aborted), made
by the real stages from a small pipeline (tests/helpers/explorer_outputs.py): the values it
shows are the trace files', the tutorial's step is the closed form's, the rate map's
colours are the pipeline's closed form and clicking a measured run opens it."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.explorer import rates
from pipeline.grid import closed_form, trace
from pipeline.grid.data import TUTORIAL_X
from pipeline.losses import LOSSES
from pipeline.tracking import grid_runs
from tests.grid.test_closed_form import KWARGS
from tests.helpers.browser import offline_tab
from tests.helpers.explorer_outputs import Outputs

pytestmark = pytest.mark.slow

SHOWN = """() => Object.fromEntries([...document.querySelectorAll('#numbers [data-field]')]
  .map(e => [e.dataset.field, e.dataset.value]))"""
SETTING = ("scenario", "loss", "optimizer", "clip", "lr", "seed")


@pytest.fixture
def tab(browser: Any, explorer_outputs: Outputs) -> Iterator[tuple[Any, Any]]:
    """The page open in an offline tab, drawn; (tab, its log), no error or request after."""
    with offline_tab(browser, explorer_outputs.page) as (tab, log):
        tab.wait_for_function("document.body.dataset.maps || document.body.dataset.error")
        yield tab, log
        assert tab.evaluate("document.body.dataset.error") is None
        assert (log.requested, log.errors) == ([], [])


def goto(tab: Any, setting: dict[str, object], step: int = 0) -> dict[str, str]:
    """Open `setting` by the page's address (its fragment), then what it shows."""
    tab.evaluate("document.body.dataset.ready = ''")
    tab.evaluate(f"location.hash = {urlencode({**setting, 'step': step})!r}")
    tab.wait_for_function("document.body.dataset.ready")
    return tab.evaluate(SHOWN)


def slide(tab: Any, steps: int) -> dict[str, str]:
    """Move the step slider `steps` to the right with the keyboard; what the page shows."""
    before = tab.evaluate("explorer.state.step")
    tab.focus("#step")
    for _ in range(steps):
        tab.keyboard.press("ArrowRight")
    tab.wait_for_function(f"document.body.dataset.ready.endsWith(':{before + steps}')")
    return tab.evaluate(SHOWN)


def f32(text: str) -> np.float32:
    return np.float32(float(text))


def test_the_slider_shows_each_value_of_the_grid_cells_trace_file(
    tab: tuple[Any, Any], explorer_outputs: Outputs
) -> None:
    """Huber, Adam, norm clipping: after moving the slider to step 4 every value shown (the
    parameters before and after, loss, gradients before and after clipping, the clipped
    flag, Adam's exp_avg and exp_avg_sq) is the trace file's, exactly; √v and the update
    are computed from them."""
    page, _ = tab
    frame = trace.read_frame(explorer_outputs.root / "traces/huber-adam-norm.csv")
    setting = {"scenario": "tutorial", "loss": "huber", "optimizer": "adam", "clip": "norm"}
    goto(page, {**setting, "lr": 0.05, "seed": 42})  # the grid's (params.yaml: train)

    shown = slide(page, 4)

    row, before = frame.iloc[4], frame.iloc[3]
    assert int(shown["step"]) == 4 and int(shown["clipped"]) == int(row["clipped"]) == 1
    for field in ("loss", "grad_norm", "grad_weight", "grad_bias", "clipped_grad_weight",
                  "clipped_grad_bias"):  # fmt: skip
        assert f32(shown[field]) == row[field], field
    for p in trace.PARAMETERS:
        assert f32(shown[f"before_{p}"]) == before[p] and f32(shown[f"after_{p}"]) == row[p]
        for key in ("exp_avg", "exp_avg_sq"):
            assert f32(shown[f"state:{key}_{p}"]) == row[f"{key}_{p}"], key
        assert float(shown[f"sqrt_v_{p}"]) == pytest.approx(np.sqrt(row[f"exp_avg_sq_{p}"]))
        assert float(shown[f"update_{p}"]) == pytest.approx(float(row[p]) - float(before[p]))


def test_a_study_run_shows_the_parameters_the_study_traced(
    tab: tuple[Any, Any], explorer_outputs: Outputs
) -> None:
    """A reporting seed at its tuned lr: each recorded step shows traces.parquet's weight
    and bias at that step, exactly."""
    page, _ = tab
    traces = pd.read_parquet(explorer_outputs.root / "reports/study/traces.parquet")
    one = traces[(traces["scenario"] == "noisy") & (traces["loss"] == "mse")]
    one = one[(one["optimizer"] == "momentum") & (one["clip"] == "none")]
    seed, lr = int(one["seed"].iloc[0]), float(one["lr"].iloc[0])
    setting = {"scenario": "noisy", "loss": "mse", "optimizer": "momentum", "clip": "none"}
    goto(page, {**setting, "lr": lr, "seed": seed})

    shown = slide(page, 3)

    row = one[(one["seed"] == seed) & (one["step"] == int(shown["step"]))].iloc[0]
    assert (f32(shown["after_weight"]), f32(shown["after_bias"])) == (row["weight"], row["bias"])
    # every step the page recorded is one the study traced for this cell, with its values
    # (found by hand: steps spaced over the twins' 500 left the reporting cells' NaN)
    run = page.evaluate(
        "({steps: Array.from(explorer.run.steps), w: Array.from(explorer.run.table.weight),"
        " b: Array.from(explorer.run.table.bias)})"
    )
    mine = one[one["seed"] == seed].set_index("step")
    assert len(run["steps"]) > 3 and set(run["steps"]) <= set(mine.index)
    for step, w, b in zip(run["steps"], run["w"], run["b"], strict=True):
        assert (np.float32(w), np.float32(b)) == tuple(mine.loc[step, ["weight", "bias"]]), step


def test_the_page_opens_on_the_tutorials_step_as_the_closed_form_gives_it(
    tab: tuple[Any, Any], explorer_outputs: Outputs
) -> None:
    """Opened without an address: seed 42, MSE, SGD lr 0.01 at step 0; the seeded weight and
    bias are torch.manual_seed(42)'s nn.Linear(1, 1), their .grad the closed form's (float32
    rounding: rel 1e-6), and the tutorial box says so with the walkthrough's numbers."""
    page, _ = tab
    shown = page.evaluate(SHOWN)
    torch.manual_seed(42)
    linear = torch.nn.Linear(1, 1)
    w, b = linear.weight.item(), linear.bias.item()
    x = list(TUTORIAL_X)
    want = closed_form.gradients("mse", {}, w, b, x, [2 * v for v in x])

    state = page.evaluate("explorer.setting(explorer.state.run)")
    assert {k: state[k] for k in SETTING} == {
        "scenario": "tutorial", "loss": "mse", "optimizer": "sgd", "clip": "none", "lr": 0.01,
        "seed": 42,
    }  # fmt: skip
    assert int(shown["step"]) == 0 and page.is_visible("#tutorial")
    assert (f32(shown["before_weight"]), f32(shown["before_bias"])) == (w, b)
    assert float(shown["grad_weight"]) == pytest.approx(want.weight, rel=1e-6)
    assert float(shown["grad_bias"]) == pytest.approx(want.bias, rel=1e-6)
    walk = page.evaluate("explorer.x.walkthrough")
    closed = [float(page.text_content(f"#closed-{p}")) for p in trace.PARAMETERS]
    assert closed == [
        walk["closed_form"]["linear.weight"][0],
        walk["closed_form"]["linear.bias"][0],
    ]
    assert closed == pytest.approx([want.weight, want.bias], rel=1e-12)
    assert float(page.text_content("#walk-grad-weight")) == float(shown["grad_weight"])


def test_the_contours_formula_gives_each_losss_recorded_value(
    tab: tuple[Any, Any], explorer_outputs: Outputs
) -> None:
    """The loss the page draws contours of, at a step's parameters, is the trace's recorded
    loss there (float32: rel 1e-5), for every loss of the grid."""
    page, _ = tab
    for loss in ("mse", "huber", "l1"):
        frame = trace.read_frame(explorer_outputs.root / f"traces/{loss}-sgd-none.csv")
        goto(page, {"scenario": "tutorial", "loss": loss, "optimizer": "sgd", "clip": "none",
                    "lr": 0.05, "seed": 42})  # fmt: skip
        drawn = page.evaluate(
            """([w, b]) => lossAt(explorer.surface, explorer.data, w, b)""",
            [float(frame["weight"].iloc[9]), float(frame["bias"].iloc[9])],
        )
        assert drawn == pytest.approx(float(frame["loss"].iloc[10]), rel=1e-5), loss


def test_the_page_has_every_losss_term_as_its_closed_form(tab: tuple[Any, Any]) -> None:
    """TERMS[loss] (the contours' formula) equals each registered loss's closed-form term
    at errors from -20 to 20, with the settings of its oracle test (1e-13 relative)."""
    page, _ = tab
    d = [float(v) for v in np.linspace(-20, 20, 81)]
    for name, loss in LOSSES.items():
        kwargs = KWARGS[name]
        got = page.evaluate("([n, ds, p]) => ds.map(d => TERMS[n](d, p))",
                            [name, d, kwargs[loss.param] if loss.param else None])  # fmt: skip
        assert got == pytest.approx(loss.value(np.array(d), kwargs), rel=1e-13, abs=1e-300), name


def test_the_rate_maps_colours_are_the_pipelines_closed_form(tab: tuple[Any, Any]) -> None:
    """closedRate() (the page's) equals pipeline.explorer.rates.rate at many settings, with
    heavy ball, Nesterov and gradient descent, dampening and weight decay (1e-12)."""
    page, _ = tab
    rng = np.random.default_rng(0)
    cases = [
        (float(10 ** rng.uniform(-3, 0.5)), float(m), [0.24, 11.1], bool(n), float(d), float(wd))
        for m, n, d, wd in zip(
            rng.choice([0.0, 0.5, 0.9], 40), rng.integers(0, 2, 40), rng.choice([0.0, 0.3], 40),
            rng.choice([0.0, 0.1], 40), strict=True,
        )
    ]  # fmt: skip
    cases = [(lr, mu, lam, nest, 0.0 if nest else d, wd) for lr, mu, lam, nest, d, wd in cases]

    got = page.evaluate("cases => cases.map(c => closedRate(...c))", cases)

    want = [float(rates.rate(lr, mu, lam, nest, d, wd)) for lr, mu, lam, nest, d, wd in cases]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_clicking_a_measured_run_on_the_rate_map_opens_its_path(tab: tuple[Any, Any]) -> None:
    """On the tutorial's data with MSE, a click on a heavy-ball point of the map selects that
    run: its optimizer, lr and seed; its path is drawn and the map marks it."""
    page, _ = tab
    goto(page, {"scenario": "tutorial", "loss": "mse", "optimizer": "sgd", "clip": "none",
                "lr": 0.01, "seed": 0})  # fmt: skip
    point = page.evaluate(
        """() => {
          const v = explorer.heavyView;
          v.container().scrollIntoView();
          const box = v.container().querySelector('canvas').getBoundingClientRect();
          const mark = v.scenegraph().root.items[0].items
            .filter(m => m.marktype === 'symbol' && m.interactive !== false)[0];
          const item = mark.items.find(i => i.datum.shape === 'circle' && i.datum.lr > 0.02);
          const pad = v.padding();
          return {x: box.left + pad.left + item.x, y: box.top + pad.top + item.y,
                  run: item.datum.run, lr: item.datum.lr};
        }"""
    )
    page.evaluate("document.body.dataset.ready = ''")

    page.mouse.click(point["x"], point["y"])

    page.wait_for_function("document.body.dataset.ready")
    state = page.evaluate("explorer.setting(explorer.state.run)")
    assert page.evaluate("explorer.state.run") == point["run"]
    assert (state["optimizer"], state["lr"], state["seed"]) == ("momentum", point["lr"], 0)
    assert page.evaluate("explorer.surfaceView.data('path').length") > 2
    selected = page.evaluate("explorer.heavyView.data('points').filter(p => p.selected)")
    assert [p["run"] for p in selected] == [point["run"]]


def test_a_grid_runs_link_artifact_opens_the_page_on_its_cell(
    browser: Any, explorer_outputs: Outputs, tmp_path: Path
) -> None:
    """The explorer.html publish attaches to each grid run redirects to the page's address
    #cell=<name>, which opens on that cell's setting at step 0."""
    (link,) = grid_runs.explorer_link("huber-momentum-norm", explorer_outputs.page, tmp_path)

    with offline_tab(browser, link) as (tab, log):
        tab.wait_for_url("**/explorer.html#*")
        tab.wait_for_function("document.body.dataset.ready")
        state = tab.evaluate("explorer.setting(explorer.state.run)")
        kind = tab.evaluate("explorer.run.kind")

    assert (state["loss"], state["optimizer"], state["clip"], kind) == (
        "huber", "momentum", "norm", "grid"
    )  # fmt: skip
    assert (log.requested, log.errors) == ([], [])
