"""The work params.yaml asks for, estimated before anything runs; absurd values bounded."""

import copy
from pathlib import Path

import numpy as np
import pytest

from pipeline import grid, params
from pipeline.run import budget
from pipeline.stages import env
from pipeline.study import classes, scenarios
from pipeline.study import design as st
from pipeline.study.configuration import config_name
from tests.conftest import write_params
from tests.helpers.study_fixtures import Study, data_for


def test_the_study_is_counted_as_the_design_builds_it(tiny_study: Study) -> None:
    """Each part's count equals the cells the study's design builds for it (tune and report
    as trained; edges, twins and classification as built): the estimate is the real work."""
    p, s = tiny_study.p, tiny_study.p.study
    x = np.array([1.0, 2.0, 3.0])
    class_data = scenarios.classes(s.classification, scenarios.study_seeds(s))
    names = [
        config_name(classes.CLASSES, loss, o, c)
        for loss in s.classification.losses
        for o in s.optimizers
        for c in s.clips
    ]

    counted = budget.study_cells(p)

    assert counted["tune"] == len(tiny_study.tune)
    assert counted["report"] == len(tiny_study.report)
    assert counted["edge"] == sum(len(part) for part in st.edge_parts(p, data_for(p)))
    assert (
        counted["twin"] == len(st.twin_part(p, grid.cells(p.train), x, 2 * x)) == 120
    )  # the grid: 5 x 8 x 3
    assert counted["class_tune"] == len(classes.tune_part(p, class_data))
    report = classes.report_part(p, class_data, dict.fromkeys(names, 0.1))
    assert counted["class_report"] == len(report)


def test_the_committed_params_fit_the_committed_budget(committed: params.Params) -> None:
    """The default grid and study are well within budget: nothing to refuse."""
    found = budget.estimate(committed)

    assert found.grid_cell_steps == 120 * 500 and found.study_cells < 400_000
    assert found.memory_gib < committed.env.budget.memory_gib
    assert budget.problems(found, committed.env.budget, committed.env.workers) == []


def _env(tmp_path: Path, raw: dict, capsys: pytest.CaptureFixture[str], **keys: object) -> str:
    """Stage env's stderr for the committed params with dotted `keys` set; it must exit 2
    and write nothing."""
    data = copy.deepcopy(raw)
    for dotted, value in keys.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    path = write_params(tmp_path / "params.yaml", data)
    out = tmp_path / "env.json"
    with pytest.raises(SystemExit) as exit_:
        env.main(["--params", str(path), "--out", str(out)])
    assert exit_.value.code == 2 and not out.exists()
    return capsys.readouterr().err


# (the dotted key, the value, words its one line must hold): each a case of issue 21
REFUSED = [
    ("train__steps", 100_000_000, ["train.steps = 100000000", "less than or equal to 1000000"]),
    ("train__steps", 1_000_000, ["env.budget.grid_cell_steps = 1e+07", "120 cells x 1,000,000"]),
    ("study__lr__per_decade", 10_000, ["env.budget.study_cell_steps", "env.budget.memory_gib"]),
    ("study__seeds__report", list(range(100, 10_100)), ["env.budget.memory_gib = 4"]),
    ("scenarios__wide__x_max", 1e200, ["scenarios.wide.x_max = 1e+200", "less than or equal"]),
    ("env__workers", 100_000, ["env.workers = 100000", "less than or equal to 1024"]),
]


@pytest.mark.parametrize(("key", "value", "words"), REFUSED, ids=[k for k, _, _ in REFUSED])
def test_work_past_the_budget_or_an_absurd_value_is_refused_in_one_line_each(
    tmp_path: Path,
    raw_params: dict,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: object,
    words: list[str],
) -> None:
    """Stage env refuses, before anything runs, a run of days, a study of tens of GiB and a
    finite but absurd value: one line per problem naming the key, what it asks and the fix."""
    err = _env(tmp_path, raw_params, capsys, **{key: value})

    lines = err.splitlines()
    assert all(line.startswith("error: ") and len(line) < 400 for line in lines), err
    for word in words:
        assert sum(word in line for line in lines) == 1, (word, err)


def test_a_budget_raised_on_purpose_lets_the_run_start(tmp_path: Path, raw_params: dict) -> None:
    """The grid of a million steps refused above starts once env.budget is raised to it."""
    data = copy.deepcopy(raw_params)
    data["train"]["steps"] = 1_000_000
    data["env"]["budget"].update(grid_cell_steps=2e8, memory_gib=8.0)
    path = write_params(tmp_path / "params.yaml", data)

    env.main(["--params", str(path), "--out", str(tmp_path / "env.json")])

    assert (tmp_path / "env.json").exists()
