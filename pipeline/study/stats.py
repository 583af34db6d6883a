"""The statistics a study reports about steps-to-target, lower is better.

A cell's measure is its steps to target: a step count, or +inf where the target was
never reached (the engine writes -1 there; `steps_or_inf` converts). NaN and -inf are
not steps values and are refused. Every function is vectorised over configurations;
the conventions follow rliable (Agarwal et al. 2021: interquartile mean, stratified
bootstrap, probability of improvement) and AlgoPerf (Dahl et al. 2023: performance
profiles up to tau = 4 and their normalised integral), turned to lower-is-better.
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]
Statistic = Callable[[Floats], Floats]  # reduces the last axis (runs): (..., runs) -> (...)
CHUNK_ELEMENTS = 2**22  # bootstrap resamples held at once (32 MB of float64), any study size


def steps_or_inf(steps_to_target: npt.ArrayLike) -> Floats:
    """The engine's steps_to_target as this module's measure: -1 (never reached) -> +inf."""
    steps = np.asarray(steps_to_target, dtype=np.float64)
    return np.where(steps == -1, np.inf, steps)


def _steps(values: npt.ArrayLike) -> Floats:
    """values as float64; ValueError on NaN or -inf, which no step count can be."""
    v = np.asarray(values, dtype=np.float64)
    if not (v > -np.inf).all():  # one pass: False for NaN and for -inf
        raise ValueError("steps values must be numbers or +inf (never reached), not NaN/-inf")
    return v


def iqm(values: npt.ArrayLike, axis: int = -1) -> Floats:
    """The interquartile mean along `axis`: the mean of the sorted values left after
    dropping floor(n / 4) from each end, exactly scipy.stats.trim_mean(x, 0.25) as rliable
    computes it (n = 10 keeps 6 values; n < 4 keeps all). It is +inf only when a +inf
    survives the trim, i.e. when more than floor(n / 4) runs never reached the target."""
    v = np.sort(np.moveaxis(_steps(values), axis, -1), axis=-1)  # +inf sorts last
    n = v.shape[-1]
    if n == 0:
        raise ValueError("iqm of no values")
    cut = n // 4  # == int(0.25 * n), scipy's rounding down of a fractional trim
    return np.asarray(v[..., cut : n - cut].mean(axis=-1))


def resample_indices(runs: int, reps: int, seed: int, strata: npt.ArrayLike | None) -> Indices:
    """(reps, runs) column indices, one bootstrap resample per row: column j is replaced
    by a column drawn uniformly with replacement from j's stratum (all columns when
    strata is None), so each stratum keeps its number of runs. The draws, in order:
    rng = np.random.default_rng(seed); for each stratum label in sorted order,
    rng.integers(0, size, (reps, size)) picks among that stratum's columns."""
    labels = np.zeros(runs, dtype=np.intp) if strata is None else np.asarray(strata)
    if labels.shape != (runs,):
        raise ValueError(f"strata must label each of the {runs} runs, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    indices = np.empty((reps, runs), dtype=np.intp)
    for label in np.unique(labels):
        cols = np.flatnonzero(labels == label)
        indices[:, cols] = cols[rng.integers(0, cols.size, size=(reps, cols.size))]
    return indices


def _percentile(ordered: Floats, q: float) -> Floats:
    """np.percentile(q) (linear, numpy's default) of rows already sorted along the last
    axis, in numpy's own arithmetic, made inf-aware: np.percentile gives NaN for inf - inf
    or inf * 0 (even the median of [inf, inf]); here an interpolation between a value and
    +inf is +inf unless the value's weight is 1, and between +inf and +inf it is +inf."""
    h = (ordered.shape[-1] - 1) * (q / 100)
    i = int(np.floor(h))
    frac = h - i
    below, above = ordered[..., i], ordered[..., min(i + 1, ordered.shape[-1] - 1)]
    if frac == 0:
        return below
    with np.errstate(invalid="ignore"):  # inf - inf where both are +inf: replaced below
        diff = above - below
        # numpy interpolates from the nearer end, so frac near 1 rounds as it does
        lerp = below + diff * frac if frac < 0.5 else above - diff * (1 - frac)
    return np.where(below == above, below, np.where(np.isinf(above), np.inf, lerp))


def bootstrap_ci(
    values: npt.ArrayLike,
    statistic: Statistic = iqm,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    strata: npt.ArrayLike | None = None,
) -> tuple[Floats, Floats]:
    """(lo, hi), each (configs,): the percentile bootstrap interval of statistic over each
    row of values (configs, runs), resampling runs within strata (rliable's stratified
    bootstrap: strata label the runs, e.g. by scenario, when a row pools several).
    lo, hi are the (1 - level) / 2 and (1 + level) / 2 percentiles of the reps bootstrap
    statistics (numpy's linear interpolation, inf-aware), so hi = +inf (and then lo may be
    finite) says the missed runs make an infinite statistic plausible.
    Every row uses the same resampled run indices (`resample_indices`), so a row's
    interval does not depend on the other rows or the chunking, and where column j is
    the same seed in every row (one initial point everywhere) the rows are resampled as
    pairs; each row's interval alone is the one an independent resample would give."""
    v = _steps(values)
    if v.ndim != 2 or v.shape[1] == 0:
        raise ValueError(f"values must be (configs, runs) with runs >= 1, got {v.shape}")
    if reps < 1 or not 0 < level < 1:
        raise ValueError(f"need reps >= 1 and 0 < level < 1, got {reps}, {level}")
    indices = resample_indices(v.shape[1], reps, seed, strata)
    lo, hi = np.empty(v.shape[0]), np.empty(v.shape[0])
    chunk = max(1, CHUNK_ELEMENTS // indices.size)
    for start in range(0, v.shape[0], chunk):
        rows = slice(start, start + chunk)
        boot = np.sort(statistic(v[rows][:, indices]), axis=-1)  # (chunk, reps)
        lo[rows] = _percentile(boot, 100 * (1 - level) / 2)
        hi[rows] = _percentile(boot, 100 * (1 + level) / 2)
    return lo, hi


def _average_ranks(z: Floats) -> Floats:
    """1-based ranks along the last axis, ties (+inf with +inf too) sharing their mean rank."""
    order = np.argsort(z, axis=-1, kind="stable")
    ordered = np.take_along_axis(z, order, axis=-1)
    pos = np.broadcast_to(np.arange(z.shape[-1]), z.shape)
    starts = np.ones(z.shape, dtype=bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.ones(z.shape, dtype=bool)
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.minimum.accumulate(np.where(ends, pos, z.shape[-1])[..., ::-1], axis=-1)[..., ::-1]
    ranks = np.empty(z.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=-1)
    return ranks


def probability_of_improvement(x: npt.ArrayLike, y: npt.ArrayLike) -> Floats:
    """P(X < Y) + P(X = Y) / 2 for X drawn from x's last axis (n runs) and Y from y's (m
    runs), broadcast over the leading axes: the chance that X needs fewer steps. It is
    rliable's Mann-Whitney P(X > Y) turned lower-is-better; two +inf tie. Computed from
    ranks, O((n + m) log(n + m)); the matrix over optimizers of scores (optimizers, runs)
    is probability_of_improvement(scores[:, None], scores[None])."""
    a, b = _steps(x), _steps(y)
    lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    n, m = a.shape[-1], b.shape[-1]
    z = np.concatenate([np.broadcast_to(a, (*lead, n)), np.broadcast_to(b, (*lead, m))], -1)
    # Mann-Whitney: x's rank sum - n(n+1)/2 = #(X > Y) + #(X = Y) / 2; all halves, exact
    u = _average_ranks(z)[..., :n].sum(axis=-1) - n * (n + 1) / 2
    return np.asarray((n * m - u) / (n * m))


def improvement_matrix(scores: npt.ArrayLike) -> Floats:
    """(optimizers, optimizers): entry i, j is optimizer i's probability of improvement
    over j per task, averaged over tasks as rliable does; scores (optimizers, tasks, runs).
    The diagonal is 0.5 and entry i, j + entry j, i = 1."""
    s = _steps(scores)
    return probability_of_improvement(s[:, None], s[None]).mean(axis=-1)


def performance_ratios(scores: npt.ArrayLike) -> Floats:
    """(submissions, workloads): each submission's steps over the workload's fewest
    (AlgoPerf's r). +inf where it missed the target, so +inf for every submission on a
    workload nobody solved: that workload still counts in the profile's denominator, as
    in AlgoPerf. A tie with the best is 1, also at 0 steps; t > 0 against a best of 0 is inf."""
    t = _steps(scores)
    if (t < 0).any():
        raise ValueError("steps to target cannot be negative")
    best = t.min(axis=-2, keepdims=True)  # leading axes: independent batches
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 and inf / inf: set below
        ratio = t / best
    return np.where(np.isinf(t), np.inf, np.where(t == best, 1.0, ratio))


def performance_profile(scores: npt.ArrayLike, taus: npt.ArrayLike) -> Floats:
    """(submissions, len(taus)): rho_s(tau), the fraction of all workloads on which
    submission s is within tau times the fastest; scores (submissions, workloads)."""
    ratios = performance_ratios(scores)
    return (ratios[:, :, None] <= np.asarray(taus, dtype=np.float64)).mean(axis=1)


def profile_score(scores: npt.ArrayLike, tau_max: float = 4.0) -> Floats:
    """(..., submissions): AlgoPerf's benchmark score, the area under rho_s over [1, tau_max]
    divided by tau_max - 1, so 1 is fastest everywhere and 0 never within tau_max. Exact
    for the step function (AlgoPerf uses the trapezoid rule on a tau grid): a workload
    with ratio r adds max(0, tau_max - r) to the area."""
    if not tau_max > 1:
        raise ValueError(f"tau_max must exceed 1, got {tau_max}")
    ratios = performance_ratios(scores)
    return np.maximum(0.0, tau_max - ratios).mean(axis=-1) / (tau_max - 1)


def _grid(lrs: npt.ArrayLike, medians: npt.ArrayLike) -> tuple[Floats, Floats]:
    """lrs broadcast to the shape of medians (configs, lrs); ValueError unless every
    row's lrs are positive, finite and strictly increasing."""
    m = _steps(medians)
    lr = np.broadcast_to(np.asarray(lrs, dtype=np.float64), m.shape)
    if m.shape[-1] == 0 or not (np.isfinite(lr).all() and (lr > 0).all()):
        raise ValueError("lrs must be a non-empty grid of positive, finite learning rates")
    if (np.diff(lr, axis=-1) <= 0).any():
        raise ValueError("lrs must be strictly increasing along the last axis")
    return lr, m


def tuned(lrs: npt.ArrayLike, medians: npt.ArrayLike, default_lr: float | None = None) -> Indices:
    """(configs,): the index of each row's best lr, the lowest median steps to target;
    ties go to the smaller lr. A row that never reached the target (all +inf) gets the
    grid lr nearest default_lr in log10 (the library default), or else the smallest lr,
    the one least likely to diverge."""
    lr, m = _grid(lrs, medians)
    best = np.argmin(m, axis=-1)  # the first minimum: the smaller lr, lrs increasing
    if default_lr is None:
        return best
    if not default_lr > 0:
        raise ValueError(f"default_lr must be positive, got {default_lr}")
    nearest = np.argmin(np.abs(np.log10(lr) - np.log10(default_lr)), axis=-1)
    return np.where(np.isinf(m.min(axis=-1)), nearest, best)


def tunability(lrs: npt.ArrayLike, medians: npt.ArrayLike, factor: float = 2.0) -> Floats:
    """(configs,): in decades, log10(largest lr) - log10(smallest lr) of the contiguous
    run of grid lrs around the best whose median steps are <= factor x the best's. 0 when
    only the best qualifies, and 0 when nothing reached the target: an empty window (the
    tuned median, +inf, tells the two apart). Resolution: the grid's spacing."""
    if not factor >= 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    lr, m = _grid(lrs, medians)
    b = tuned(lr, m)[..., None]
    best = np.take_along_axis(m, b, axis=-1)
    pos = np.arange(m.shape[-1])
    outside = m > factor * best
    lo = np.where(outside & (pos < b), pos, -1).max(axis=-1) + 1
    hi = np.where(outside & (pos > b), pos, m.shape[-1]).min(axis=-1) - 1
    log_lr = np.log10(lr)
    width = np.take_along_axis(log_lr, hi[..., None], -1) - np.take_along_axis(
        log_lr, lo[..., None], -1
    )
    return np.where(np.isinf(best), 0.0, width)[..., 0]
