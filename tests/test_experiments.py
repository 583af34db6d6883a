"""The README's experiments section run as written, in a committed copy of the project with
two real experiments (the README's own): what they write into params.yaml, how they
compare within 120 columns, and the reset back to the committed state."""

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.make import make_project, readme_line, shell

pytestmark = pytest.mark.slow
WIDTH = "120"  # the terminal the README promises to fit
# The committed params.yaml made small (one loss, 30 steps, a tiny study) by DVC's own
# edit, so that its style stays the committed one; the grid keeps every optimizer and
# clipping mode: the widest lists a table must show.
SMALL = [
    "env.workers=1", "train.steps=30", "train.grid.losses=[mse]", "study.steps=30",
    "study.scenarios=[noisy]", "study.losses=[mse]", "study.optimizers=[sgd,adam]",
    "study.clips=[none,norm]", "study.lr.low=0.01", "study.lr.high=1.0",
    "study.lr.per_decade=1", "study.lr.near_edge=[0.9]", "study.stability.steps=100",
    "study.stability.step=0.05", "study.stability.tol=1e-4", "study.classification.losses=[ce]",
]  # fmt: skip


def experiments() -> list[str]:
    """The README's `dvc exp run -S ...` lines of its experiments section."""
    block = (ROOT / "README.md").read_text().split("## Experiments", 1)[1].split("```")[1]
    return [line.strip() for line in block.splitlines() if line.startswith("dvc exp run -S")]


def git(root: Path, *args: str) -> str:
    done = shell(root, " ".join(["git", *args]))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def experimented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A committed, built copy of the project after the README's two experiments, and the
    experiments' names."""
    from dvc.utils.hydra import apply_overrides

    root = make_project(tmp_path_factory.mktemp("experimented") / "project")
    apply_overrides(root / "params.yaml", SMALL)
    for command in ("dvc repro", "git add -A", "git commit -qm built"):
        done = shell(root, command)
        assert done.returncode == 0, done.stdout + done.stderr
    runs = experiments()
    assert len(runs) == 2
    for command in runs:
        done = shell(root, command)
        assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(shell(root, "dvc exp show --json").stdout)
    names = [e["name"] for rev in shown for e in (rev.get("experiments") or [])]
    return root, [str(n) for n in names]


def fits(text: str) -> None:
    """Every line within 120 characters, no cell cut to `…`."""
    lines = text.splitlines()
    assert lines and max(map(len, lines)) <= int(WIDTH), text
    assert "…" not in text, text


def test_make_exps_shows_what_each_experiment_changed_within_120_columns(
    experimented: tuple[Path, list[str]],
) -> None:
    """The README's `make exps`: both experiments, every param they set, the headline
    figures, all within 120 columns (plain `dvc exp show` showed `…`)."""
    root, names = experimented
    done = shell(root, readme_line("params changed, headline figures"), COLUMNS=WIDTH)

    assert done.returncode == 0, done.stderr
    fits(done.stdout)
    for name in names:
        assert f"[{name}]" in done.stdout
    flat = " ".join(done.stdout.split())
    for value in ("['sgd', 'adam']", "'handnorm']", "1000", "0.2"):
        assert value in flat, value
    assert "diverged" in done.stdout and "twins_largest_rel_diff" in done.stdout


def test_metrics_diff_of_two_experiments_fits_120_columns(
    experimented: tuple[Path, list[str]],
) -> None:
    """The README's `dvc metrics diff <exp-a> <exp-b>`: every metric that differs, one per
    line, within 120 columns."""
    root, names = experimented
    command = readme_line("every metric that differs between two")
    command = command.replace("<exp-a>", names[0]).replace("<exp-b>", names[1])
    done = shell(root, command, COLUMNS=WIDTH)

    assert done.returncode == 0, done.stderr
    fits(done.stdout)
    assert "wins" in done.stdout or "median_dist" in done.stdout


def test_the_experiments_change_only_the_lines_of_the_keys_they_set(
    experimented: tuple[Path, list[str]],
) -> None:
    """`git diff params.yaml` after both: the lines of the four keys set, nothing else
    (DVC rewrote 74 lines of the flow-style file)."""
    root, _ = experimented
    changed = [
        line
        for line in git(root, "diff", "--unified=0", "params.yaml").splitlines()
        if re.match(r"^[-+](?![-+])", line)
    ]
    removed = [line[1:].strip() for line in changed if line.startswith("-")]
    added = [line[1:].strip() for line in changed if line.startswith("+")]

    assert sorted(added) == sorted(["steps: 1000", "lr: 0.2", "- handnorm"])
    dropped = ["norm", "value", "momentum", "nesterov", "adamw", "nadam", "rmsprop", "adagrad"]
    assert sorted(removed) == sorted(["steps: 30", "lr: 0.05", *(f"- {n}" for n in dropped)])


def test_the_readmes_reset_gives_a_clean_git_status(
    experimented: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The README's reset, as written: git status clean (the uncached outputs were left
    modified), every output back at its committed version; only env (always) and publish
    (its receipt, rewritten by the next repro without a new run) left for DVC to run."""
    root = tmp_path / "project"
    shutil.copytree(experimented[0], root, symlinks=True)

    done = shell(root, readme_line("# back to the committed state"))

    assert done.returncode == 0, done.stdout + done.stderr
    assert git(root, "status", "--porcelain") == ""
    status = json.loads(shell(root, "dvc status --json").stdout)
    assert set(status) <= {"env/dvc.yaml:env", "publish"}, status
    assert status.get("publish", [{}])[0].get("changed outs", {}).keys() <= {
        "reports/published.json"
    }
    done = shell(root, "dvc repro")
    assert "0 new cell runs" in done.stdout and "Running stage 'train'" not in done.stdout
