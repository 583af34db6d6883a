"""The study's data: each scenario draws what its params say (oracles on large samples),
the same seed gives the same data, and the CSV files read back exactly."""

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from pipeline import params
from pipeline.files.inputs import InputError
from pipeline.study import scenarios

SEEDS = [0, 1, 7, 42, 100]
LARGE = 20_000  # points: a sample std is within ~0.5% (1 sigma) of the true one
HUGE = 200_000  # points: a sample quartile of t(1.5) is within ~0.6% (1 sigma) of the true one


def line(**kw: object) -> params.LineScenario:
    return params.LineScenario.model_validate({"kind": "line", **kw})


def outliers(**kw: object) -> params.OutlierScenario:
    return params.OutlierScenario.model_validate({"kind": "outliers", **kw})


def heavy(**kw: object) -> params.HeavyScenario:
    return params.HeavyScenario.model_validate({"kind": "heavy", **kw})


def residuals(found: scenarios.Points) -> np.ndarray:
    slope, intercept = found.line
    return found.y - (slope * found.x + intercept)


def test_tutorial_data_are_exactly_x_1_2_3_and_y_2x_for_every_seed() -> None:
    """Every seed's tutorial data set is x = 1, 2, 3 and y = 2, 4, 6, bit for bit."""
    s = params.TutorialScenario(kind="tutorial")

    found = scenarios.points("tutorial", s, SEEDS)

    assert found.seeds == SEEDS
    assert np.array_equal(found.x, np.tile([1.0, 2.0, 3.0], (len(SEEDS), 1)))
    assert np.array_equal(found.y, np.tile([2.0, 4.0, 6.0], (len(SEEDS), 1)))
    assert found.line == (2.0, 0.0)


def test_line_x_are_evenly_spaced_from_x_min_to_x_max() -> None:
    """A line scenario's x are n points evenly spaced on [x_min, x_max], the ends exact."""
    s = line(n=11, x_min=-3.0, x_max=2.0)

    found = scenarios.points("noisy", s, [0, 1])

    assert found.x.shape == (2, 11)
    assert found.x[:, 0].tolist() == [-3.0, -3.0] and found.x[:, -1].tolist() == [2.0, 2.0]
    np.testing.assert_allclose(np.diff(found.x, axis=1), 0.5, rtol=1e-12)


def test_line_noise_is_gaussian_with_the_noise_as_std_around_the_line() -> None:
    """Residuals from the line are Gaussian: mean ~0, std ~noise, kurtosis ~3."""
    # n = 20,000: std within 3%, mean within 0.03, kurtosis within 0.3, each > 5 sigma
    s = line(n=LARGE, noise=0.7, slope=-1.5, intercept=3.0)

    r = residuals(scenarios.points("big", s, [3]))[0]

    assert r.std() == pytest.approx(0.7, rel=0.03)
    assert r.mean() == pytest.approx(0.0, abs=0.03)
    assert scipy.stats.kurtosis(r, fisher=False) == pytest.approx(3.0, abs=0.3)


@pytest.mark.parametrize(("n", "fraction"), [(20, 0.1), (20, 0.33), (200, 0.1), (7, 0.3)])
def test_outliers_shift_exactly_round_fraction_n_targets_by_offset(n: int, fraction: float) -> None:
    """Exactly round(fraction * n) targets lie ~offset above the line, the rest ~on it."""
    s = outliers(n=n, noise=0.01, fraction=fraction, offset=10.0)

    r = residuals(scenarios.points("outliers", s, SEEDS))

    shifted = np.abs(r - 10.0) < 0.1
    on_line = np.abs(r) < 0.1
    assert (shifted | on_line).all()
    assert shifted.sum(axis=1).tolist() == [round(fraction * n)] * len(SEEDS)


def test_outliers_are_chosen_by_the_seed() -> None:
    """Different seeds shift different targets (20 of 200: the same set twice is ~1e-27)."""
    s = outliers(n=200, noise=0.01, fraction=0.1, offset=10.0)

    r = residuals(scenarios.points("outliers", s, [0, 1]))

    assert not np.array_equal(r[0] > 5, r[1] > 5)


def test_heavy_noise_is_student_t_scaled_by_noise() -> None:
    """Heavy noise is noise x Student-t(df): t's quartiles, kurtosis far above Gaussian's 3."""
    # n = 200,000: the quartiles within 3% (5 sigma); df = 1.5 has infinite variance
    s = heavy(n=HUGE, noise=0.3, df=1.5)

    r = residuals(scenarios.points("heavy", s, [5]))[0]

    q75 = 0.3 * scipy.stats.t(1.5).ppf(0.75)
    assert np.quantile(r, 0.75) == pytest.approx(q75, rel=0.03)
    assert np.quantile(np.abs(r), 0.5) == pytest.approx(q75, rel=0.03)
    assert scipy.stats.kurtosis(r, fisher=False) > 30.0


def test_the_same_seed_gives_the_same_data() -> None:
    """Two draws of one scenario and seed are bit-identical."""
    s = outliers(noise=0.5)

    first, second = (scenarios.points("outliers10", s, SEEDS) for _ in range(2))

    assert np.array_equal(first.x, second.x) and np.array_equal(first.y, second.y)


def test_another_seed_gives_other_data() -> None:
    """Each seed's noise is its own: no two seeds' targets are equal."""
    s = line(noise=0.5)

    y = scenarios.points("noisy", s, SEEDS).y

    for i in range(len(SEEDS)):
        for j in range(i):
            assert not np.any(y[i] == y[j]), (SEEDS[i], SEEDS[j])


def test_two_scenarios_with_one_seed_differ_even_with_the_same_settings() -> None:
    """The generator is keyed by the scenario's name: same settings, other name, other noise."""
    s = line(noise=0.5)

    a, b = scenarios.points("noisy", s, [0]), scenarios.points("noisy2", s, [0])

    assert np.array_equal(a.x, b.x)
    assert not np.any(a.y == b.y)


def test_a_seed_data_do_not_depend_on_the_other_seeds_asked_for() -> None:
    """Seed 7's data set is the same drawn alone or beside other seeds, in any order."""
    s = heavy(noise=0.3)

    alone = scenarios.points("heavy", s, [7])
    among = scenarios.points("heavy", s, [3, 7, 0])

    assert np.array_equal(alone.y[0], among.y[1])


def test_the_generator_is_keyed_by_seed_and_scenario_name() -> None:
    """The documented key: a line's noise is default_rng([seed, crc32(name)]).normal(0, noise)."""
    s = line(n=20, noise=0.5)

    found = scenarios.points("noisy", s, [11])

    rng = np.random.default_rng([11, zlib.crc32(b"noisy")])
    clean = 2.0 * np.linspace(-2.0, 2.0, 20) + 0.0
    np.testing.assert_array_equal(found.y[0], clean + rng.normal(0.0, 0.5, 20))


def test_scenarios_csv_reads_back_exactly(committed: params.Params, tmp_path: Path) -> None:
    """Every committed scenario and seed reads back from scenarios_csv bit for bit."""
    seeds = scenarios.study_seeds(committed.study)
    found = {
        n: scenarios.points(n, committed.scenarios[n], seeds) for n in committed.study.scenarios
    }
    path = tmp_path / "scenarios.csv"
    path.write_text(scenarios.scenarios_csv(found))

    back = scenarios.read_points(path, committed)

    assert list(back) == list(found)
    for name, p in found.items():
        assert back[name].seeds == p.seeds
        assert np.array_equal(back[name].x, p.x) and np.array_equal(back[name].y, p.y), name
        assert back[name].line == p.line, name


def test_classes_csv_reads_back_exactly(committed: params.Params, tmp_path: Path) -> None:
    """Every seed's classification points and labels read back from classes_csv bit for bit."""
    seeds = scenarios.study_seeds(committed.study)
    c = scenarios.classes(committed.study.classification, seeds)
    path = tmp_path / "classes.csv"
    path.write_text(scenarios.classes_csv(c))

    back = scenarios.read_classes(path, committed)

    assert back.seeds == seeds
    assert np.array_equal(back.x, c.x) and np.array_equal(back.labels, c.labels)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["seed", "point", "x1", "x2", "label"]
    assert len(frame) == len(seeds) * committed.study.classification.n


def test_read_points_names_the_missing_seed_and_the_stale_stage(
    committed: params.Params, tmp_path: Path
) -> None:
    """A file without a study seed: InputError naming it and "stage generate is stale"."""
    seeds = scenarios.study_seeds(committed.study)
    kept = [s for s in seeds if s != 104]
    found = {
        n: scenarios.points(n, committed.scenarios[n], kept) for n in committed.study.scenarios
    }
    path = tmp_path / "scenarios.csv"
    path.write_text(scenarios.scenarios_csv(found))

    with pytest.raises(InputError) as caught:
        scenarios.read_points(path, committed)

    message = str(caught.value)
    assert "stage generate is stale" in message
    assert "[104]" in message and committed.study.scenarios[0] in message


def test_read_points_says_to_run_generate_when_the_file_is_missing(
    committed: params.Params, tmp_path: Path
) -> None:
    """No data file: InputError naming the path and `dvc repro generate`."""
    path = tmp_path / "absent.csv"

    with pytest.raises(InputError, match="dvc repro generate") as caught:
        scenarios.read_points(path, committed)

    assert str(path) in str(caught.value)


def test_classification_labels_are_exactly_x2_above_2_x1(committed: params.Params) -> None:
    """Label 1 exactly where x2 > 2 x1; the points are uniform in [-1, 1]^2 (both labels)."""
    c = scenarios.classes(committed.study.classification, SEEDS)

    assert c.x.shape == (len(SEEDS), committed.study.classification.n, 2)
    assert ((c.x >= -1.0) & (c.x <= 1.0)).all()
    assert np.array_equal(c.labels, (c.x[..., 1] > 2.0 * c.x[..., 0]).astype(np.int64))
    assert set(np.unique(c.labels).tolist()) == {0, 1}


def test_classification_points_depend_on_the_seed(committed: params.Params) -> None:
    """Each seed draws its own points; the same seed the same ones."""
    c = committed.study.classification

    a, b = scenarios.classes(c, [0, 1]), scenarios.classes(c, [0])

    assert not np.any(a.x[0] == a.x[1])
    assert np.array_equal(a.x[0], b.x[0])


def test_a_data_set_with_a_point_missing_or_twice_is_named(
    committed: params.Params, tmp_path: Path
) -> None:
    """A seed whose data set lost a point, or has one twice, is named with "stage
    generate is stale" (the engine trains data sets of one size together: it raised a
    numpy error naming neither)."""
    seeds = scenarios.study_seeds(committed.study)
    found = {n: scenarios.points(n, committed.scenarios[n], seeds) for n in ["noisy"]}
    path = tmp_path / "scenarios.csv"
    lines = scenarios.scenarios_csv(found).splitlines()
    one = {
        **committed.model_dump(),
        "study": {**committed.study.model_dump(), "scenarios": ["noisy"]},
    }
    p = params.parse(one)

    path.write_text("\n".join(lines[:5] + lines[6:]) + "\n")  # seed 0 loses point 4
    with pytest.raises(InputError, match=r"scenario noisy seed 0 has points \[0, 1, 2, 3, 5") as a:
        scenarios.read_points(path, p)
    path.write_text("\n".join([*lines, lines[1]]) + "\n")  # seed 0's point 0 again
    with pytest.raises(InputError, match="scenario noisy seed 0 has point 0 twice") as b:
        scenarios.read_points(path, p)

    assert all("stage generate is stale" in str(e.value) for e in (a, b))
