"""What the reporting seeds can tell apart: a task's winner set, how stable it is, and how
many seeds that takes.

A task (scenario x loss) has configurations measured on the same reporting seeds (the
same starts and data: a paired design). The best configuration has the lowest
interquartile mean of the measure (steps, lower is better; a miss counts as the budget
plus one, after every finite value). Every other configuration is tested against the
best with the one-sided Wilcoxon signed-rank test, paired by seed (H1: it needs more
steps), and the p-values of a task are adjusted by Holm's step-down method; the winner
set is the best and every configuration whose adjusted p-value is at least ALPHA: not
significantly worse. No tie is broken by name: configurations alike are in or out
together.

Seeds. Noether's (1987) sample size for the signed-rank test: n = (z_a + z_b)^2 /
(3 (p - 1/2)^2), where p = P(D + D' > 0) for two independent paired differences D, D'
is the effect to detect, z_a the one-sided quantile at the Holm-adjusted level of the
first rival (ALPHA / rivals), z_b the power's. `detectable` inverts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.study import stats

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
ALPHA = 0.05  # the level of the winner-set tests, after Holm's adjustment
POWER = 0.8  # the seeds' power analysis


def counted(steps: npt.ArrayLike, budget: int) -> Floats:
    """Steps with a miss (+inf) counted as budget + 1: after every finite value, so ranks
    and the signed-rank test see misses as the worst, and alike."""
    v = stats._steps(steps)  # refuses NaN and -inf
    return np.where(np.isinf(v), budget + 1.0, v)


def one_sided_p(best: Floats, other: Floats) -> float:
    """P-value of the Wilcoxon signed-rank test that `other` needs more steps than `best`,
    paired by seed; zero differences are dropped (Wilcoxon's convention); 1 when nothing
    is left. The normal approximation with scipy's tie correction: step counts tie often,
    where scipy's default turns to a permutation test (2 s a call at 12 seeds)."""
    from scipy.stats import wilcoxon

    d = other - best
    if not np.any(d != 0):
        return 1.0
    test = wilcoxon(d, zero_method="wilcox", alternative="greater", method="approx")
    return float(test.pvalue)


def holm(p: Sequence[float]) -> Floats:
    """Holm's step-down adjusted p-values, in the order given."""
    values = np.asarray(p, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    m = len(values)
    adjusted = np.minimum(1.0, (m - np.arange(m)) * values[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(adjusted)
    return out


def best_index(steps: Floats) -> int:
    """The row (configuration) with the lowest IQM of `steps` (configs, seeds); among rows
    with equal IQM, the lowest mean, then the lowest median: a choice among alike rows,
    which the winner set does not depend on (they are in it together)."""
    keys = np.stack([np.median(steps, axis=1), steps.mean(axis=1), stats.iqm(steps)])
    return int(np.lexsort(keys)[0])


def winner_set(steps: npt.ArrayLike, budget: int, alpha: float = ALPHA) -> tuple[Bools, Floats]:
    """(in the winner set, Holm-adjusted p-value against the best) for each configuration
    (row) of one task, steps (configs, seeds) with +inf for a miss."""
    v = counted(steps, budget)
    best = best_index(v)
    rivals = [i for i in range(len(v)) if i != best]
    adjusted = np.ones(len(v))
    adjusted[rivals] = holm([one_sided_p(v[best], v[i]) for i in rivals])
    return adjusted >= alpha, adjusted


def bests(steps: npt.ArrayLike, budget: int) -> Bools:
    """The configurations tied at the lowest IQM of a task (a miss counted as budget + 1)."""
    iqm = stats.iqm(counted(steps, budget))
    return iqm == iqm.min()


def half_splits(seeds: int, count: int, seed: int) -> list[npt.NDArray[np.intp]]:
    """Ways to split `seeds` seeds into two halves, as the column indices of one half: every
    way when there are at most `count`, else `count` distinct ways drawn with the
    generator `seed`. A half and its complement are one split (with an even count of
    seeds, the half named is the one holding seed 0)."""
    from itertools import combinations

    half, even = seeds // 2, seeds % 2 == 0

    def canonical(c: tuple[int, ...]) -> tuple[int, ...]:
        return c if not even or 0 in c else tuple(i for i in range(seeds) if i not in c)

    total = math.comb(seeds, half) // (2 if even else 1)
    if total <= count:
        return [np.array(c) for c in combinations(range(seeds), half) if canonical(c) == c]
    rng = np.random.default_rng(seed)
    found: dict[tuple[int, ...], None] = {}
    while len(found) < count:
        found.setdefault(canonical(tuple(sorted(rng.choice(seeds, half, replace=False).tolist()))))
    return [np.array(c) for c in found]


def half_split_agreement(
    tasks: Sequence[npt.ArrayLike], budget: int, splits: Sequence[npt.NDArray[np.intp]]
) -> float:
    """Over the splits of the seeds into two halves: the share of (split, task) pairs whose
    winner set, computed on all seeds, holds both halves' best configurations."""
    sets = [winner_set(t, budget)[0] for t in tasks]
    held = []
    for columns in splits:
        for t, members in zip(tasks, sets, strict=True):
            v = np.asarray(t, dtype=np.float64)
            other = np.setdiff1d(np.arange(v.shape[1]), columns)
            best = bests(v[:, columns], budget) | bests(v[:, other], budget)
            held.append(bool(members[best].all()))
    return float(np.mean(held))


def effect(best: npt.ArrayLike, other: npt.ArrayLike) -> float:
    """The estimated effect P(D + D' > 0) of `other` against `best`, paired by seed: the
    share of Walsh averages (d_i + d_j) / 2, i < j, of the differences d = other - best
    that are positive, a zero counting half (the signed-rank test's own effect)."""
    d = np.asarray(other, dtype=np.float64) - np.asarray(best, dtype=np.float64)
    i, j = np.triu_indices(len(d), 1)
    walsh = d[i] + d[j]
    return float(((walsh > 0) + 0.5 * (walsh == 0)).mean()) if len(walsh) else 0.5


def seeds_needed(effect: float, rivals: int, alpha: float = ALPHA, power: float = POWER) -> int:
    """Noether's number of seeds for the signed-rank test to detect P(D + D' > 0) = effect
    against the first of `rivals` Holm comparisons (level alpha / rivals), with `power`."""
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / max(rivals, 1)) + norm.ppf(power)
    return math.ceil(z**2 / (3 * (effect - 0.5) ** 2))


def detectable(seeds: int, rivals: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest effect P(D + D' > 0) that `seeds` seeds detect (Noether, inverted)."""
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / max(rivals, 1)) + norm.ppf(power)
    return 0.5 + z / math.sqrt(3 * seeds)
