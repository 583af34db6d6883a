"""Winner sets, half splits and the seeds' power (pipeline.study.inference), against direct
computations: scipy's Wilcoxon test, Holm's procedure by hand, brute force."""

import math

import numpy as np
import pytest
from scipy.stats import norm, wilcoxon

from pipeline.study import inference

BUDGET = 500


def test_holm_by_hand() -> None:
    """p = (0.01, 0.04, 0.03) with m = 3: 0.03, 0.06, 0.06 (step-down, monotone)."""
    assert inference.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])


def test_a_miss_counts_after_every_finite_value() -> None:
    """+inf becomes budget + 1: larger than any step count, and misses tie."""
    assert inference.counted([3.0, np.inf, 500.0], BUDGET).tolist() == [3.0, 501.0, 500.0]
    with pytest.raises(ValueError):
        inference.counted([np.nan], BUDGET)


def test_the_p_value_is_scipys_one_sided_signed_rank() -> None:
    """A rival slower on most seeds gets scipy's p-value; identical rows get 1."""
    rng = np.random.default_rng(0)
    best = rng.integers(10, 50, 30).astype(float)
    other = best + rng.integers(-3, 10, 30)
    want = wilcoxon(other - best, zero_method="wilcox", alternative="greater", method="approx")
    want = want.pvalue
    assert inference.one_sided_p(best, other) == pytest.approx(want)
    assert inference.one_sided_p(best, best.copy()) == 1.0


def test_the_winner_set_holds_the_alike_and_drops_the_clearly_worse() -> None:
    """Two configurations alike up to noise share the set, whichever is nominally best; one
    slower on every seed is out; one that misses on most seeds is out; names play no part
    (the rows' order does not change the set)."""
    rng = np.random.default_rng(1)
    base = rng.integers(20, 40, 40).astype(float)
    steps = np.stack([
        base,
        base + rng.choice([-1.0, 0.0, 1.0], 40),  # alike
        base + 15,  # slower everywhere
        np.where(rng.random(40) < 0.8, np.inf, base),  # misses mostly
    ])  # fmt: skip
    members, adjusted = inference.winner_set(steps, BUDGET)
    assert members.tolist() == [True, True, False, False]
    order = np.array([3, 1, 2, 0])
    assert inference.winner_set(steps[order], BUDGET)[0].tolist() == members[order].tolist()
    assert adjusted[2] < inference.ALPHA and adjusted[1] >= inference.ALPHA


def test_half_splits_are_every_split_once_or_a_sample() -> None:
    """10 seeds: C(10, 5) / 2 = 126 splits, each once (half and complement are one); 40
    seeds: the asked number of distinct ones; halves of half the seeds."""
    every = inference.half_splits(10, 1000, 0)
    assert len(every) == 126 and len({tuple(c) for c in every}) == 126
    assert all(0 in c and len(c) == 5 for c in every)
    some = inference.half_splits(40, 50, 0)
    assert len({tuple(c) for c in some}) == 50 and all(len(c) == 20 for c in some)


def test_half_split_agreement_by_brute_force() -> None:
    """The share of (split, task) pairs whose all-seed winner set holds both halves' bests,
    computed directly over every split of 6 seeds."""
    rng = np.random.default_rng(2)
    tasks = [rng.integers(5, 30, (4, 6)).astype(float) for _ in range(3)]
    splits = inference.half_splits(6, 100, 0)
    held = []
    for columns in splits:
        for t in tasks:
            members = inference.winner_set(t, BUDGET)[0]
            rest = [i for i in range(6) if i not in columns]
            for half in (list(columns), rest):
                iqm = np.array(
                    [
                        np.sort(row[half])[1:-1].mean()
                        if len(half) >= 4
                        else np.sort(row[half]).mean()
                        for row in t
                    ]
                )
                held_half = members[iqm == iqm.min()].all()
                if not held_half:
                    break
            else:
                held.append(True)
                continue
            held.append(False)
    assert len(splits) == math.comb(6, 3) // 2
    assert inference.half_split_agreement(tasks, BUDGET, splits) == pytest.approx(np.mean(held))


def test_noethers_sample_size_and_its_inverse() -> None:
    """n = (z_a + z_b)^2 / (3 (p - 1/2)^2) with z_a at alpha / rivals; detectable inverts
    it; more rivals or a smaller effect need more seeds."""
    z = norm.ppf(1 - 0.05 / 10) + norm.ppf(0.8)
    assert inference.seeds_needed(0.8, 10) == math.ceil(z**2 / (3 * 0.3**2))
    n = inference.seeds_needed(0.8, 10)
    assert inference.detectable(n, 10) <= 0.8 < inference.detectable(n - 1, 10)
    assert inference.seeds_needed(0.7, 10) > n < inference.seeds_needed(0.8, 30)


def test_effect_is_the_share_of_positive_walsh_averages() -> None:
    """By brute force over pairs i < j: d_i + d_j > 0 counts 1, = 0 counts a half."""
    rng = np.random.default_rng(3)
    best = rng.integers(10, 20, 15).astype(float)
    other = best + rng.integers(-2, 4, 15)
    d = other - best
    pairs = [(i, j) for i in range(15) for j in range(i + 1, 15)]
    want = np.mean([1.0 if d[i] + d[j] > 0 else 0.5 if d[i] + d[j] == 0 else 0.0 for i, j in pairs])
    assert inference.effect(best, other) == pytest.approx(want)
    assert inference.effect(best, best) == 0.5
