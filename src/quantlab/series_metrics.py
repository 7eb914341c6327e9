"""The run-only metrics: formulas over one run's per-bar series (not sums a grid kernel keeps).

Each function takes a :class:`quantlab.metric_registry.RunStats` of ONE run whose ``series`` is a
:class:`RunSeries` and returns a float (NaN = undefined, ``null`` in JSON). The registry entries
(``run_only=True``) are in :mod:`quantlab.metric_registry`; a sweep's leaderboard does not carry
them (the grid kernel keeps sums, not series: docs/engine.md, "Metrics").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VAR_LEVEL = 0.95  # var_95 / cvar_95: the 5 % left tail of the per-bar returns


@dataclass(frozen=True)
class RunSeries:
    returns: np.ndarray          # per-bar net returns of the run (float64)
    underwater: np.ndarray       # bool per bar: equity below its running peak
    timestamps: np.ndarray | None  # datetime64 of each simulated bar, or None (no durations in days)
    bench_returns: np.ndarray    # per-bar simple returns of the benchmark (0 on the first bar)

    @classmethod
    def of(cls, returns, underwater, timestamps, bench_close) -> "RunSeries":
        bench = np.asarray(bench_close, dtype=np.float64)
        bench_returns = np.zeros(len(bench))
        if len(bench) > 1:
            bench_returns[1:] = bench[1:] / bench[:-1] - 1.0
        ts = None if timestamps is None else np.asarray(timestamps).astype("datetime64[s]")
        return cls(np.asarray(returns, dtype=np.float64), np.asarray(underwater, dtype=bool), ts, bench_returns)

    @staticmethod
    def longest_run(flags) -> int:
        """Length of the longest run of True in ``flags``."""
        flags = np.asarray(flags, dtype=bool)
        if not flags.any():
            return 0
        edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
        return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def drawdown_days(s) -> float:
    """Calendar days of the longest underwater stretch, peak bar to recovery bar (or last bar)."""
    ser = s.series
    if ser.timestamps is None or len(ser.timestamps) == 0:
        return math.nan
    flags = ser.underwater
    if not flags.any():
        return 0.0
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # stop: first bar back up
    last = len(flags) - 1
    ts = ser.timestamps.astype(np.int64)
    peak_bar = np.maximum(starts - 1, 0)
    end_bar = np.minimum(stops, last)
    return float((ts[end_bar] - ts[peak_bar]).max()) / 86_400.0


def var_95(s) -> float:
    r = s.series.returns
    return float(np.quantile(r, 1.0 - VAR_LEVEL)) if len(r) else math.nan


def cvar_95(s) -> float:
    r = s.series.returns
    var = var_95(s)
    return float(r[r <= var].mean()) if math.isfinite(var) else math.nan


def _ols(s) -> tuple[float, float]:
    """(intercept, slope) of the per-bar excess returns on the benchmark's; NaN when undefined."""
    x = s.series.bench_returns - s.rf
    y = s.series.returns - s.rf
    if len(x) < 2:
        return math.nan, math.nan
    dx = x - x.mean()
    var = float(dx @ dx)
    if not var > 0:
        return math.nan, math.nan
    slope = float(dx @ (y - y.mean())) / var
    return float(y.mean() - slope * x.mean()), slope


def beta(s) -> float:
    return _ols(s)[1]


def alpha(s) -> float:
    return _ols(s)[0] * s.periods_per_year


def _active(s) -> tuple[float, float]:
    active = s.series.returns - s.series.bench_returns
    if len(active) < 2:
        return math.nan, math.nan
    return float(active.mean()), float(active.std(ddof=1))


def tracking_error(s) -> float:
    return _active(s)[1] * s.ann


def information_ratio(s) -> float:
    mean, std = _active(s)
    return mean / std * s.ann if std > 1e-12 * abs(mean) else math.nan
