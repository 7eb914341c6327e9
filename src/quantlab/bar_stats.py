"""One run's per-bar statistics for :meth:`quantlab.metric_registry.RunStats.from_result`: the
numpy-order sums of the per-bar returns, the drawdown statistics, the benchmark's terms and the
series statistics, from the engine's per-bar returns and equity and the benchmark's closes.

Two paths, the same numbers to the last bit (tests/unit/test_bar_stats.py):

* :func:`by_numpy`: numpy on whole arrays (small runs: a few hundred microseconds at 5,000
  bars, no numba import);
* :func:`by_kernel`: ``kernels.run_stats``, a few passes and no temporary array beside the
  benchmark's returns (a 1M-bar run: ~8 ms of CPU instead of ~40 ms and ~6k page faults of
  8 MB temporaries), taken when :func:`quantlab.engine.jit.use_jit` says numba pays for the
  series' length (numba loaded and >= 10,000 bars, or the kernel already warm: a big run's
  worker loads it in its warm-up).

Both give ``(columns, (bench_mean, bench_sxx))``: the ``RunStats`` columns ``sum_returns``,
``sum_sq_dev``, ``negative_bars``, ``sum_sq_down``, ``max_drawdown``, ``max_dd_bars`` and the
series statistics (``var_95``, ``tail_sum``, ``tail_bars``, ``sum_xy``, ``max_dd_top``), and the
benchmark returns' mean and sum of squared deviations.
"""

from __future__ import annotations

import math

import numpy as np

from quantlab.metric_registry import EXIT_STATS

# the RunStats columns both paths give, as the kernel's ST_* slots name them
COLUMNS = ("sum_returns", "sum_sq_dev", "negative_bars", "sum_sq_down", "max_drawdown", "max_dd_bars",
           "var_95", "tail_sum", "tail_bars", "sum_xy", "max_dd_top")


def bar_stats(returns, equity, initial_cash: float, bench) -> tuple[dict, tuple[float, float]]:
    """:func:`by_kernel` under numba when :func:`jit.use_jit` picks it for ``len(returns)`` bars
    (and numba imports), else :func:`by_numpy`. ``returns``, ``equity``, ``bench``: float64
    arrays of the same length >= 1."""
    from quantlab.engine import jit, kernels

    if jit.numba_for(kernels.run_stats, len(returns)) is not None:
        return by_kernel(returns, equity, initial_cash, bench, jit=True)
    return by_numpy(returns, equity, initial_cash, bench)


def by_kernel(returns, equity, initial_cash: float, bench, *, jit: bool) -> tuple[dict, tuple[float, float]]:
    """``kernels.run_stats`` under numba (``jit``) or in pure Python."""
    from quantlab.engine import jit as jit_, kernels

    m = len(returns)
    s = kernels.PAIRWISE_STACK
    # np.empty: a buffer's pages are touched only as far as the kernel writes (cand, scratch: the tail)
    _, (stats, bench_out) = jit_.call(
        kernels.run_stats, m, returns, equity, float(initial_cash), bench, np.empty(m), np.empty(m + 1),
        np.empty(m), np.empty(s, dtype=np.int64), np.empty(s // 3 + 1), jit_.Out(kernels.SWEEP_STATS),
        jit_.Out(kernels.RUN_BENCH), jit=jit)
    cols = {name: stats[getattr(kernels, "ST_" + name.upper())] for name in COLUMNS}
    return cols, (float(bench_out[kernels.RS_BENCH_MEAN]), float(bench_out[kernels.RS_BENCH_SXX]))


def by_numpy(returns, equity, initial_cash: float, bench) -> tuple[dict, tuple[float, float]]:
    """The same statistics with numpy on whole arrays; the series statistics through
    ``kernels.series_stats`` (:func:`quantlab.series_metrics.run_series_stats`)."""
    from quantlab.series_metrics import bench_terms, bench_terms_of_returns, run_series_stats, stretches

    bars = len(equity)
    total = returns.sum()
    dev = returns - total / bars
    downside = np.minimum(returns, 0.0)
    peaks = np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    drawdowns = np.where(peaks > 0, equity / peaks - 1.0, 0.0)
    starts, stops = stretches(~(equity >= peaks))  # as the kernel counts: below the running peak
    top = -1.0
    longest = 0
    if len(starts):  # the first longest stretch under water (as the kernel keeps it): its peak is the bar before
        first = int(np.argmax(stops - starts))
        top, longest = float(starts[first] - 1), int(stops[first] - starts[first])
    cols = {
        "sum_returns": total, "sum_sq_dev": (dev * dev).sum() if bars >= 2 else 0.0,
        "negative_bars": np.count_nonzero(downside < 0), "sum_sq_down": (downside * downside).sum(),
        "max_drawdown": min(float(drawdowns.min()), 0.0), "max_dd_bars": longest,
    }
    bench_r, bench_dx = bench_terms(bench)
    cols.update(run_series_stats(returns, total, bench_dx, top))
    return cols, bench_terms_of_returns(bench_r)


def trade_stats(trades) -> dict:
    """The ``RunStats`` columns of a trade log (numpy's order, as ``sweep_kernel`` keeps them)."""
    pnl = np.asarray(trades.pnl, dtype=np.float64)
    trade_ret = np.asarray(trades.ret, dtype=np.float64)
    held = np.asarray(trades.exit_idx, dtype=np.int64) - np.asarray(trades.entry_idx, dtype=np.int64)
    trade_dev = trade_ret - trade_ret.sum() / max(len(trade_ret), 1)
    return {
        "trades": len(pnl), "wins": np.count_nonzero(pnl > 0), "losses": np.count_nonzero(pnl < 0),
        "gross_profit": pnl[pnl > 0].sum(), "loss_sum": pnl[pnl < 0].sum(), "sum_trade_returns": trade_ret.sum(),
        **_exit_counts(trades),
        "best_trade": trade_ret.max() if len(trade_ret) else math.nan,
        "worst_trade": trade_ret.min() if len(trade_ret) else math.nan,
        "holding_bars": held.sum(),
        "sum_sq_trade_dev": (trade_dev * trade_dev).sum() if len(trade_ret) >= 2 else 0.0,
    }


def _exit_counts(trades) -> dict:
    """Trades per exit reason and ambiguous exit bars of a trade log (``exit_reason`` codes;
    a log without them counts every trade as a signal exit)."""
    n = len(trades.pnl)
    reasons = getattr(trades, "exit_reason", None)
    if reasons is None:
        reasons = np.zeros(n, dtype=np.int64)
    counts = np.bincount(np.asarray(reasons, dtype=np.int64), minlength=len(EXIT_STATS))
    ambiguous = getattr(trades, "ambiguous", None)
    out = {name: float(counts[i]) for i, name in enumerate(EXIT_STATS)}
    out["ambiguous_bars"] = 0.0 if ambiguous is None else float(np.count_nonzero(ambiguous))
    return out
