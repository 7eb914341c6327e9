"""The series metrics: VaR/CVaR, the benchmark-relative ones and the drawdown duration in days.

They read statistics of a run's per-bar returns beyond plain sums (the 5 % quantile and its
tail, a sum against the benchmark's returns, where the longest drawdown starts), which the grid
kernel keeps per combo (``kernels.series_stats`` and ``ST_MAX_DD_TOP``); :func:`run_series_stats`
gives a single run's by calling that same ``series_stats``, so a sweep's leaderboard row and a
single run agree to the last bit. The formulas take a :class:`quantlab.metric_registry.RunStats`
(arrays over runs) like every other metric. The active returns' deviations come from sums kept
anyway: ``sum((a - mean a)**2) = sum_sq_dev + bench_sxx - 2 sum_xy`` for ``a = r - b``.

The benchmark: buy and hold of the run's own closes over the simulated bars, or (single runs)
a named benchmark's closes (``params.benchmark``); its per-bar returns are 0 on the first bar.
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86_400.0


def bench_terms(bench_close) -> tuple[np.ndarray, np.ndarray]:
    """``(returns, returns - returns.sum() / m)`` of a benchmark's closes on the simulated bars."""
    bench = np.asarray(bench_close, dtype=np.float64)
    r = np.zeros(len(bench))
    if len(bench) > 1:
        r[1:] = bench[1:] / bench[:-1] - 1.0
    return r, r - r.sum() / max(len(r), 1)


def run_series_stats(returns: np.ndarray, total: float, bench_dx: np.ndarray, top: float) -> dict:
    """One run's series statistics (``kernels.ST_VAR_95`` ... ``ST_MAX_DD_TOP``): the grid
    kernel's ``series_stats`` itself (pure Python or numba by size, same numbers), given the
    numpy-order ``total`` of ``returns`` as the kernel has it and ``top``, the peak bar of the
    first longest stretch under water (-1: the initial cash)."""
    from quantlab.engine import jit, kernels

    m = len(returns)
    cand = np.empty(m + 1)  # only the candidates and the threshold cand[m] are ever read
    cand[m] = np.quantile(returns, 2.0 * (1.0 - kernels.VAR_LEVEL))  # a threshold; any value is correct
    scratch = np.empty(m)
    scratch[m - 1] = np.nan  # no pivot from a previous combo
    _, (stats,) = jit.call(kernels.series_stats, m, returns, m, float(total), bench_dx, cand, scratch,
                           jit.Out(kernels.SWEEP_STATS), 0)
    return {"var_95": stats[kernels.ST_VAR_95], "tail_sum": stats[kernels.ST_TAIL_SUM],
            "tail_bars": stats[kernels.ST_TAIL_BARS], "sum_xy": stats[kernels.ST_SUM_XY], "max_dd_top": top}


def _where(cond, value):
    return np.where(cond, value, np.nan)


def drawdown_days(s):
    """Calendar days of the longest stretch under water (in bars; the first of equal ones), from
    its peak bar (the first bar if the peak is the initial cash) to its recovery bar or the last bar."""
    top = s.max_dd_top
    length = s.max_dd_bars
    peak = np.maximum(top, 0).astype(np.int64)
    end = np.minimum(top + length + 1, s.bars - 1).astype(np.int64)
    at_end, at_peak = s.seconds_at(end), s.seconds_at(peak)
    if at_end is None:
        return np.full(s.k, np.nan)
    return np.where(length > 0, (at_end - at_peak) / SECONDS_PER_DAY, 0.0)


def var_95(s):
    return s.var_95.copy()


def cvar_95(s):
    return _where(s.tail_bars > 0, s.tail_sum / s.tail_bars)


def beta(s):
    return _where((s.bars >= 2) & (s.bench_sxx > 0), s.sum_xy / s.bench_sxx)


def alpha(s):
    """OLS intercept of the excess returns on the benchmark's, annualised: the slope is the
    same for excess or plain returns, the intercept is mean(r - rf) - beta * mean(b - rf)."""
    return ((s.mean - s.rf) - beta(s) * (s.bench_mean - s.rf)) * s.periods_per_year


def _active(s):
    """Mean and std (ddof 1) of the active returns ``r - b``; a sum of squared deviations within
    rounding of 0 (the run is its benchmark) is 0."""
    mean = s.mean - s.bench_mean
    sq = s.sum_sq_dev + s.bench_sxx - 2.0 * s.sum_xy
    sq = np.where(sq <= 1e-12 * (s.sum_sq_dev + s.bench_sxx), 0.0, sq)
    return mean, _where(np.full(s.k, s.bars >= 2), np.sqrt(sq / max(s.bars - 1, 1)))


def tracking_error(s):
    return _active(s)[1] * s.ann


def information_ratio(s):
    mean, std = _active(s)
    return _where(std > 1e-12 * np.abs(mean), mean / std * s.ann)


def bench_terms_of_returns(bench_r) -> tuple[float, float]:
    """``(mean, sum of squared deviations)`` of a benchmark's per-bar returns (numpy's order,
    as ``bench_terms`` centres them)."""
    r = np.asarray(bench_r, dtype=np.float64)
    dx = r - r.sum() / len(r)
    return float(r.sum() / len(r)), float((dx * dx).sum())


def stretches(flags) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` of the runs of True in ``flags`` (stop: the first index after one)."""
    edges = np.diff(np.concatenate(([0], np.asarray(flags, dtype=bool).astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
