"""The series metrics: VaR/CVaR, the benchmark-relative ones and the drawdown duration in days.

They read statistics of a run's per-bar returns beyond plain sums (a quantile and its tail, sums
against the benchmark's returns, where the longest drawdown starts), which the grid kernel keeps
per combo (``kernels.series_stats`` and ``ST_MAX_DD_TOP``) and :func:`run_series_stats` computes
for one run with numpy, operation for operation the same (numpy's summation order, numpy's
quantile), so a sweep's leaderboard row and a single run agree to the last bit. The formulas
take a :class:`quantlab.metric_registry.RunStats` (arrays over runs) like every other metric.

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


def run_series_stats(returns: np.ndarray, bench_r: np.ndarray, bench_dx: np.ndarray, underwater) -> dict:
    """One run's series statistics (``kernels.ST_VAR_95`` ... ``ST_MAX_DD_TOP``), computed as
    ``kernels.series_stats`` does for a combo."""
    from quantlab.engine.kernels import VAR_LEVEL

    m = len(returns)
    total = returns.sum()
    active = returns - bench_r
    sum_active = active.sum()
    dev = active - sum_active / m
    var = float(np.quantile(returns, 1.0 - VAR_LEVEL))
    tail = returns[returns <= var]
    starts, stops = stretches(underwater)
    top = -1.0
    if len(starts):  # the first longest stretch under water: its peak is the bar before it
        top = float(starts[int(np.argmax(stops - starts))] - 1)
    return {"var_95": var, "tail_sum": tail.sum() if len(tail) else np.nan, "tail_bars": len(tail),
            "sum_xy": (bench_dx * (returns - total / m)).sum(), "sum_active": sum_active,
            "sum_sq_active_dev": (dev * dev).sum() if m >= 2 else 0.0, "max_dd_top": top}


def _where(cond, value):
    return np.where(cond, value, np.nan)


def drawdown_days(s):
    """Calendar days of the longest stretch under water (in bars; the first of equal ones), from
    its peak bar (the first bar if the peak is the initial cash) to its recovery bar or the last bar."""
    if s.timestamps is None or len(s.timestamps) != s.bars:
        return np.full(s.k, np.nan)
    ts = s.timestamps
    top = s.max_dd_top
    length = s.max_dd_bars
    peak = np.maximum(top, 0).astype(np.int64)
    end = np.minimum(top + length + 1, s.bars - 1).astype(np.int64)
    return np.where(length > 0, (ts[end] - ts[peak]) / SECONDS_PER_DAY, 0.0)


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
    mean = s.sum_active / s.bars
    std = np.sqrt(s.sum_sq_active_dev / max(s.bars - 1, 1))
    return mean, _where(np.full(s.k, s.bars >= 2), std)


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


def longest_run(flags) -> int:
    """Length of the longest run of True in ``flags``."""
    starts, stops = stretches(flags)
    return int((stops - starts).max()) if len(starts) else 0
