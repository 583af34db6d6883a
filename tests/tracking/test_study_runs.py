"""The study's MLflow runs, built from a real tiny study: one run per configuration, its
params named as params.yaml names them, finite metrics, histories by step; and content
keys that follow every byte of the files they are made from."""

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.study import analysis
from pipeline.study.configuration import CONFIG, config_name
from pipeline.tracking import store, study_runs
from tests.helpers import study_fixtures

BASE = {"scenario", "loss", "optimizer", "clip", "lr", "steps", "dtype", "batch_size", "tol"}
SEEDS = {"tune_seeds", "report_seeds"}
ENGINE_NAMES = {"beta1", "beta2", "loss_param"}  # the engine's columns, never a run's params
TAGS = {"source": "test"}
FLOAT32_REL = 1e-6  # a median of float32 trace values
REGRESSION = (  # summary.csv's measures of a regression configuration: its run's metrics
    "tuned_lr", "tune_median", "tunability", "iqm_steps", "iqm_lo", "iqm_hi",
    "median_steps", "median_lo", "median_hi", "success_rate", "median_error",
    "median_true_error", "diverged_rate", "clip_fraction", "default_median_steps",
)  # fmt: skip


# --- configs and keys ---------------------------------------------------------------
def test_configs_reads_the_names_in_the_file_order(tmp_path: Path) -> None:
    """configs() gives summary.csv's config column in its order, not sorted."""
    path = tmp_path / "summary.csv"
    path.write_text("config,tuned_lr\nz-mse-sgd-none,0.1\na-l1-adam-norm,0.2\nm-mse-sgd-value,1\n")

    names = study_runs.configs(path)

    assert names == ["z-mse-sgd-none", "a-l1-adam-norm", "m-mse-sgd-value"]


def study_files(folder: Path) -> list[Path]:
    """Four files standing for cells, traces, summary and the report."""
    folder.mkdir()
    contents = {"cells.parquet": b"\x00cells", "traces.parquet": b"tr", "summary.csv": b"config\n"}
    contents["report.md"] = b"# the study\n"
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in contents]


NAMES = ["noisy-mse-sgd-none", "noisy-mse-adam-none", "tutorial-huber-sgd-norm"]


def test_equal_files_give_equal_keys(tmp_path: Path) -> None:
    """The same bytes in other paths give the same parent and run keys."""
    a, b = study_files(tmp_path / "a"), study_files(tmp_path / "b")

    assert study_runs.keys(a, NAMES) == study_runs.keys(b, NAMES)


def test_every_run_has_its_own_key(tmp_path: Path) -> None:
    """Run keys differ between configurations, and from the parent's."""
    parent, runs = study_runs.keys(study_files(tmp_path / "a"), NAMES)

    assert len({parent, *runs.values()}) == len(NAMES) + 1
    assert list(runs) == NAMES


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("at", [0, -1])
def test_any_byte_changed_in_any_file_changes_every_key(
    tmp_path: Path, which: int, at: int
) -> None:
    """Flipping a byte of any one file changes the parent key and every run key."""
    files = study_files(tmp_path / "a")
    parent, runs = study_runs.keys(files, NAMES)
    content = bytearray(files[which].read_bytes())
    content[at] ^= 0x01
    files[which].write_bytes(bytes(content))

    parent2, runs2 = study_runs.keys(files, NAMES)

    assert parent2 != parent
    assert all(runs2[n] != runs[n] for n in NAMES)


# --- contents, from a real tiny study ----------------------------------------------------
@pytest.fixture(scope="module")
def tiny(raw_params: dict) -> study_fixtures.Study:
    """Every loss with keyword arguments and every clip, sgd and adam: 36 configurations."""
    return study_fixtures.build(
        raw_params,
        losses=["mse", "smoothl1", "huber"],
        clips=["none", "norm", "value"],
    )


@pytest.fixture(scope="module")
def summary(tiny: study_fixtures.Study) -> pd.DataFrame:
    b = tiny.p.analysis.bootstrap
    return analysis.summary(tiny.cells, tiny.tuned, b.reps, b.seed)


@pytest.fixture(scope="module")
def contents(tiny: study_fixtures.Study, summary: pd.DataFrame) -> list[store.RunContent]:
    run_keys = {name: f"key-{name}" for name in summary["config"]}
    return study_runs.contents(
        summary,
        tiny.cells,
        tiny.traces,
        run_keys,
        TAGS,
        tune_seeds=tiny.p.study.seeds.tune,
    )


def test_one_run_per_configuration_in_summary_order(
    summary: pd.DataFrame, contents: list[store.RunContent]
) -> None:
    """A run per row of summary, named by its configuration, with its key and tags."""
    assert [c.name for c in contents] == summary["config"].tolist()
    assert len(contents) == 2 * 3 * 2 * 3
    for c in contents:
        assert c.key == f"key-{c.name}"
        assert c.tags["config"] == c.name and c.tags["source"] == "test"


def test_run_params_are_named_as_params_yaml_names_them(
    raw_params: dict, contents: list[store.RunContent]
) -> None:
    """Run params are named as params.yaml names them, never as the engine's columns."""
    train = raw_params["train"]
    for c in contents:
        loss, optimizer, clip = c.params["loss"], c.params["optimizer"], c.params["clip"]
        expected = BASE | SEEDS | (set(train["optimizers"][optimizer]) - {"lr"})
        expected |= set(train["losses"][loss]) | set(train["clips"].get(clip, {}))

        assert set(c.params) == expected, c.name
        assert not set(c.params) & ENGINE_NAMES, c.name
        assert c.name == config_name(*(c.params[k] for k in CONFIG))


def as_number(text: str) -> object:
    """A param's value as a number (or a list of numbers)."""
    value = ast.literal_eval(text)
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def test_run_params_hold_the_params_yaml_values(
    raw_params: dict, summary: pd.DataFrame, contents: list[store.RunContent]
) -> None:
    """Run params hold params.yaml's values, the tuned lr and the study's seeds."""
    train, s = raw_params["train"], raw_params["study"] | study_fixtures.TINY_STUDY
    tuned = summary.set_index("config")["tuned_lr"]
    for c in contents:
        given = {
            **train["optimizers"][c.params["optimizer"]],
            **train["losses"][c.params["loss"]],
            **train["clips"].get(c.params["clip"], {}),
        }
        for key, value in given.items():
            if key != "lr":
                want = [float(v) for v in value] if isinstance(value, list) else float(value)
                assert as_number(c.params[key]) == want, (c.name, key)
        assert float(c.params["lr"]) == tuned[c.name]
        assert (c.params["steps"], c.params["dtype"]) == (str(s["steps"]), s["dtype"])
        assert ast.literal_eval(c.params["tune_seeds"]) == s["seeds"]["tune"]
        assert ast.literal_eval(c.params["report_seeds"]) == s["seeds"]["report"]


def finals(c: store.RunContent) -> dict[str, float]:
    return {k: v for k, v, _ in c.metrics if k in study_runs.MEASURES}


def test_run_metrics_are_finite_and_the_infinite_measures_are_listed_in_never(
    summary: pd.DataFrame, contents: list[store.RunContent]
) -> None:
    """Metrics are the finite measures; the infinite ones are listed in the never tag."""
    rows = summary.set_index("config")
    measures = [m for m in study_runs.MEASURES if m in summary.columns]  # regression's
    assert set(REGRESSION) <= set(measures)
    seen_never = False
    for c in contents:
        assert all(math.isfinite(v) for _, v, _ in c.metrics), c.name
        row = rows.loc[c.name]
        infinite = [m for m in measures if not math.isfinite(float(row[m]))]
        got = finals(c)

        assert got == {m: float(row[m]) for m in measures if m not in infinite}
        assert c.tags.get("never", "") == ",".join(infinite), c.name
        seen_never |= bool(infinite)
    assert seen_never  # the default lr misses the target in 300 steps: some never


def test_run_histories_are_the_traced_medians_at_increasing_steps(
    tiny: study_fixtures.Study, contents: list[store.RunContent]
) -> None:
    """Histories are the traced medians over reporting seeds, at increasing steps."""
    traces = tiny.traces[tiny.traces["lr_kind"] == "tuned"]
    groups = traces.groupby([*CONFIG, "step"])
    for c in contents:
        key = tuple(c.params[k] for k in CONFIG)
        for metric, column in (("error", "error"), ("loss", "loss_value")):
            history = [(step, v) for k, v, step in c.metrics if k == metric]
            steps = [step for step, _ in history]

            assert len(steps) > 1 and steps == sorted(set(steps)), (c.name, metric)
            for step, v in history:
                values = groups.get_group((*key, step))[column].to_numpy(np.float64)
                assert len(values) == len(tiny.p.study.seeds.report)
                assert v == pytest.approx(np.median(values), rel=FLOAT32_REL), (c.name, step)


def test_a_non_finite_median_is_left_out_of_the_history(
    tiny: study_fixtures.Study, summary: pd.DataFrame
) -> None:
    """A step whose median error is inf has no error point; its loss point stays."""
    name = summary["config"].iloc[0]
    key = dict(zip(CONFIG, summary[list(CONFIG)].iloc[0], strict=True))
    traces = tiny.traces.copy()
    at = np.logical_and.reduce([traces[k] == v for k, v in key.items()])
    step = int(traces.loc[at, "step"].iloc[3])
    traces.loc[at & (traces["step"] == step), "error"] = np.inf
    run_keys = {n: "k" for n in summary["config"]}

    got = study_runs.contents(
        summary,
        tiny.cells,
        traces,
        run_keys,
        TAGS,
        tune_seeds=tiny.p.study.seeds.tune,
    )

    run = next(c for c in got if c.name == name)
    error_steps = [s for k, _, s in run.metrics if k == "error"]
    loss_steps = [s for k, _, s in run.metrics if k == "loss"]
    assert step not in error_steps and step in loss_steps
    assert len(error_steps) == len(loss_steps) - 1
    assert all(math.isfinite(v) for _, v, _ in run.metrics)
