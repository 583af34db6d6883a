"""rliable 1.2.0's estimates for tests/study/test_rliable.py, run in tools/rliable/.venv.

Reads JSON from stdin: {"scores": {name: [[runs] per task]...}, "reps": int, "seed": int}
with scores higher-is-better as rliable expects, shaped (runs, tasks); writes JSON: per
name, the IQM (point, lower, upper) of rliable's stratified bootstrap, and the
probability of improvement of each ordered pair (point estimate). rliable's median is a
median over tasks of each task's mean: another statistic than gradlab's, not compared.
"""

import json
import sys
import warnings

import numpy as np
from rliable import library as rly
from rliable import metrics


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # arch: random_state's future
    given = json.load(sys.stdin)
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in given["scores"].items()}

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x)])

    point, interval = rly.get_interval_estimates(
        scores, aggregates, reps=given["reps"], random_state=np.random.RandomState(given["seed"])
    )
    out = {name: {"iqm": [point[name][0], *interval[name][:, 0]]} for name in scores}
    out["improvement"] = {
        f"{a}>{b}": metrics.probability_of_improvement(scores[a], scores[b])
        for a in scores
        for b in scores
    }
    json.dump(out, sys.stdout, default=float)


if __name__ == "__main__":
    main()
