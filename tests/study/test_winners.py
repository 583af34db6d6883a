"""Winner sets, fits and power per task (pipeline.study.winners) on a hand-made, shuffled
reporting table, against the tests applied by hand to each task's seeds in order."""

import itertools

import numpy as np
import pandas as pd
import pytest

from pipeline.study import inference, winners

BUDGET = 100
SEEDS = list(range(100, 112))
CONFIGS = [("adam", "none"), ("sgd", "none"), ("sgd", "norm")]


def report(seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Rows of 2 scenarios x 2 losses x 3 configs x 12 seeds (and a default-lr row each,
    which the winners ignore), shuffled; the steps by task, in config and seed order."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for scenario, loss in itertools.product(("noisy", "wide"), ("mse", "l1")):
        base = rng.integers(20, 60, len(SEEDS))
        steps = np.stack(
            [
                base + rng.integers(-2, 3, len(SEEDS)),
                base + 25,
                base + rng.integers(-1, 2, len(SEEDS)),
            ]
        )
        steps[2, :3] = -1  # sgd+norm misses three seeds
        truth[(scenario, loss)] = steps
        line_error = {"mse": 1.0, "l1": 0.1}[loss] + rng.random(len(SEEDS)) * 0.01
        for (optimizer, clip), row in zip(CONFIGS, steps, strict=True):
            for seed_, s, e in zip(SEEDS, row, line_error, strict=True):
                common = {
                    "scenario": scenario,
                    "loss": loss,
                    "optimizer": optimizer,
                    "clip": clip,
                    "seed": seed_,
                }
                errors = {"true_error": e, "target_error": e / 10, "minimiser_error": e / 2,
                          "tol": 0.01}  # fmt: skip
                rows.append({**common, "lr_kind": "tuned", "steps_sustained": s, **errors})
                wrong = dict.fromkeys(errors, 9.0)
                rows.append({**common, "lr_kind": "default", "steps_sustained": 1, **wrong})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed), truth


def test_sets_equal_the_test_on_each_tasks_seeds_in_order() -> None:
    frame, truth = report()
    got = winners.sets(frame, "steps_sustained", BUDGET)

    for (scenario, loss), steps in truth.items():
        v = np.where(steps == -1, np.inf, steps).astype(float)
        members, adjusted = inference.winner_set(v, BUDGET)
        part = got[(got["scenario"] == scenario) & (got["loss"] == loss)]
        assert part["config"].tolist() == [f"{scenario}-{loss}-{o}-{c}" for o, c in CONFIGS]
        assert part["in_set"].tolist() == members.tolist()
        np.testing.assert_allclose(part["p_holm"], adjusted)
        assert part["in_set"].tolist() == [True, False, True]  # sgd+none: 25 steps slower
        assert part["best"].sum() == 1


def test_fits_name_the_losses_whose_line_error_is_lowest() -> None:
    """l1's line error (0.1) beats mse's (1.0) on every seed: l1 alone fits best."""
    frame, _ = report()
    got = winners.fits(frame, "steps_sustained", BUDGET).set_index(["scenario", "loss"])
    assert got.loc[("noisy", "l1"), "best_fit"] and not got.loc[("noisy", "mse"), "best_fit"]
    assert got.loc[("wide", "l1"), "trained_error"] == pytest.approx(0.105, abs=0.006)
    tuned = frame[frame["lr_kind"] == "tuned"]
    assert got["median_target_error"].max() <= tuned["target_error"].max()


def test_fits_within_tol_of_the_line_tie() -> None:
    """Line errors within tol are fits alike: with tol above every error, every loss fits."""
    frame, _ = report()
    loose = frame.assign(tol=10.0)

    got = winners.fits(loose, "steps_sustained", BUDGET)

    assert got["best_fit"].all()


def test_agreement_is_one_when_the_winners_are_clear() -> None:
    frame, _ = report()
    assert winners.agreement(frame, "steps_sustained", BUDGET, seed=0) == 1.0


def test_power_lists_the_studys_seed_count() -> None:
    table = winners.power(12, rivals=2)
    assert 12 in table["seeds"].tolist() and table["this_study"].sum() == 1
    assert (np.diff(table["detectable_effect"]) < 0).all()  # more seeds: smaller effects
