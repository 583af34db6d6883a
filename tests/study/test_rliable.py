"""The study's statistics against rliable 1.2.0 itself, where they compute the same thing:
the interquartile mean of runs pooled over tasks, its stratified-bootstrap interval, and
the probability of improvement. rliable runs in its own venv (tools/rliable: it needs
pandas < 3); `make test` builds it. Not compared: rliable's median (a median over tasks
of means), and intervals of a resample holding a miss (rliable gives NaN, gradlab +inf)."""

import json
import subprocess

import numpy as np
import pytest

from pipeline.study import stats
from tests.conftest import ROOT, missing

PYTHON = ROOT / "tools/rliable/.venv/bin/python"
REPS = 4000


@pytest.fixture(scope="module")
def steps() -> dict[str, np.ndarray]:
    """Three optimizers' steps (tasks, runs): 6 tasks of 30 runs, ties and a long tail."""
    rng = np.random.default_rng(0)
    base = rng.integers(20, 200, (6, 1))
    return {
        name: (base + rng.integers(0, 40, (6, 30)) + shift * rng.pareto(2.0, (6, 30))).round()
        for name, shift in (("sgd", 0.0), ("adam", 20.0), ("nadam", 60.0))
    }


@pytest.fixture(scope="module")
def reference(steps: dict[str, np.ndarray]) -> dict:
    """rliable's estimates of the negated steps (higher is better), (runs, tasks) each."""
    if not PYTHON.exists():
        missing("tools/rliable/.venv is not built (make tools/rliable/.venv)")
    given = {"scores": {k: (-v).T.tolist() for k, v in steps.items()}, "reps": REPS, "seed": 0}
    run = subprocess.run(
        [str(PYTHON), str(ROOT / "tools/rliable/reference.py")],
        input=json.dumps(given), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(run.stdout)


def test_iqm_and_its_stratified_interval_equal_rliables(
    steps: dict[str, np.ndarray], reference: dict
) -> None:
    """The pooled IQM exactly; the interval's ends within 10% of its width (two bootstraps'
    Monte Carlo noise at 4,000 resamples, different random streams)."""
    for name, v in steps.items():
        pooled = v.reshape(1, -1)
        strata = np.repeat(np.arange(v.shape[0]), v.shape[1])
        lo, hi = stats.bootstrap_ci(pooled, stats.iqm, REPS, 0.95, seed=0, strata=strata)
        theirs = reference[name]["iqm"]  # of -steps: point, lower, upper
        assert stats.iqm(pooled)[0] == pytest.approx(-theirs[0], rel=1e-12)
        width = hi[0] - lo[0]
        assert abs(lo[0] - -theirs[2]) <= 0.1 * width, (name, lo, theirs)
        assert abs(hi[0] - -theirs[1]) <= 0.1 * width, (name, hi, theirs)


def test_probability_of_improvement_equals_rliables(
    steps: dict[str, np.ndarray], reference: dict
) -> None:
    """P(a needs fewer steps than b) = rliable's P(-a > -b), averaged over tasks alike."""
    names = list(steps)
    matrix = stats.improvement_matrix(np.stack([steps[n] for n in names]))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert matrix[i, j] == pytest.approx(reference["improvement"][f"{a}>{b}"], abs=1e-12)
