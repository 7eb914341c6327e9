"""A run's per-bar statistics: the kernel path (``kernels.run_stats``, numba or pure Python) and
the numpy path (``bar_stats.by_numpy``) give the same bits, and so do the metrics of a run scored
under QUANTLAB_JIT=always and =never (the score step of a 1M-bar run takes the kernel)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab import bar_stats
from quantlab.engine import EngineConfig, Signals, jit, kernels, simulate
from quantlab.metric_registry import STATS, RunStats
from quantlab.metrics import compute_metrics

# lengths around numpy's pairwise block (128, unrolled by 8), run_stats' sample stride and jit's threshold
LENGTHS = st.one_of(st.integers(1, 20), st.integers(120, 140), st.integers(250, 270),
                    st.sampled_from([1023, 1024, 1025, kernels.TAIL_SAMPLE - 1, kernels.TAIL_SAMPLE + 1,
                                     jit.LOADED_THRESHOLD - 1, jit.LOADED_THRESHOLD + 1]))


def same_bits(a, b) -> bool:
    a, b = np.float64(a), np.float64(b)
    return (math.isnan(a) and math.isnan(b)) or a.tobytes() == b.tobytes()


def assert_same(plain, fast):
    (cols_a, bench_a), (cols_b, bench_b) = plain, fast
    assert set(cols_a) == set(cols_b) == set(bar_stats.COLUMNS)
    bad = {k: (cols_a[k], cols_b[k]) for k in cols_a if not same_bits(cols_a[k], cols_b[k])}
    assert not bad
    assert all(same_bits(x, y) for x, y in zip(bench_a, bench_b)), (bench_a, bench_b)


@st.composite
def series(draw):
    """Per-bar returns (random walks, with flat stretches and all-flat runs), the equity they
    compound to from the initial cash (or a flat equity), and a benchmark's closes."""
    n = draw(LENGTHS)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["walk", "mostly_flat", "all_flat", "ties"]))
    returns = rng.normal(draw(st.sampled_from([0.0, 1e-4, -1e-3])), draw(st.sampled_from([1e-3, 0.02])), n)
    if kind == "mostly_flat":
        returns[rng.random(n) < 0.6] = 0.0
    elif kind == "all_flat":
        returns[:] = 0.0
    elif kind == "ties":  # many equal returns around the quantile
        returns = np.round(returns, 3)
    cash = 1e5
    equity = cash * np.cumprod(1.0 + returns)
    bench = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, n))
    if draw(st.booleans()):
        bench[:] = 50.0  # a flat benchmark (no variance)
    return returns, equity, cash, bench


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series())
def test_the_kernel_gives_numpys_bits(case):
    returns, equity, cash, bench = case
    plain = bar_stats.by_numpy(returns, equity, cash, bench)
    assert_same(plain, bar_stats.by_kernel(returns, equity, cash, bench, jit=True))
    if len(returns) <= 2000:  # the pure-Python twin (tests/unit/test_engine_jit.py's rule: same source)
        assert_same(plain, bar_stats.by_kernel(returns, equity, cash, bench, jit=False))


def test_negative_zero_returns_sum_as_numpy_sums_them():
    """numpy's sum is +0.0 plus the pairwise sum: returns of -0.0 only sum to +0.0 (the kernel's
    pairwise_sum alone gives -0.0)."""
    for n in (1, 7, 8, 200):
        returns = np.full(n, -0.0)
        equity = np.full(n, 10.0)
        plain = bar_stats.by_numpy(returns, equity, 10.0, equity)
        assert math.copysign(1.0, plain[0]["sum_returns"]) == 1.0
        assert_same(plain, bar_stats.by_kernel(returns, equity, 10.0, equity, jit=True))
        assert_same(plain, bar_stats.by_kernel(returns, equity, 10.0, equity, jit=False))


def test_undefined_equity_follows_numpy():
    """A NaN equity makes the running peak NaN from there on (every later bar under water) and
    the drawdown NaN; an infinite one too (inf / inf): as numpy has it."""
    returns = np.array([0.01, -0.02, 0.0, 0.03, -0.01, 0.02, 0.0, -0.05])
    for bad in (np.nan, np.inf):
        equity = 100.0 * np.cumprod(1.0 + returns)
        equity[3] = bad
        bench = np.linspace(10.0, 11.0, len(returns))
        with np.errstate(all="ignore"):  # as compute_metrics runs it
            plain = bar_stats.by_numpy(returns, equity, 100.0, bench)
        assert_same(plain, bar_stats.by_kernel(returns, equity, 100.0, bench, jit=True))
        assert_same(plain, bar_stats.by_kernel(returns, equity, 100.0, bench, jit=False))


def test_a_big_series_through_the_sample_hints():
    """200,003 bars (the threshold and pivot come from a strided sample): the same bits, and the
    first longest stretch under water where the numpy path finds it."""
    rng = np.random.default_rng(11)
    returns = rng.standard_t(3, 200_003) * 1e-3
    returns[rng.random(len(returns)) < 0.5] = 0.0
    equity = 1e5 * np.cumprod(1.0 + returns)
    bench = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 1e-3, len(returns)))
    plain = bar_stats.by_numpy(returns, equity, 1e5, bench)
    assert plain[0]["max_dd_bars"] > 1000
    assert_same(plain, bar_stats.by_kernel(returns, equity, 1e5, bench, jit=True))


def scored(monkeypatch, mode: str, n: int, trade: bool):
    monkeypatch.setenv("QUANTLAB_JIT", mode)
    rng = np.random.default_rng(n)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    sig = Signals(rng.random(n) < (0.1 if trade else 0.0), rng.random(n) < 0.1)
    result = simulate(close, close * 1.01, close * 0.99, close, sig, EngineConfig(fee=0.001), start=30)
    stamps = np.datetime64("2020-01-01T00:00", "ns") + np.arange(n - 30) * np.timedelta64(60, "s")
    return compute_metrics(result, close, start=30, periods_per_year=525_600, initial_cash=100_000.0,
                           risk_free_rate=0.02, timestamps=stamps)


@pytest.mark.parametrize("n,trade", [(300, True), (300, False), (12_000, True)])
def test_a_runs_metrics_are_the_same_under_either_path(monkeypatch, n, trade):
    monkeypatch.setattr(jit, "_warm", set())
    plain = scored(monkeypatch, "never", n, trade)
    assert kernels.run_stats not in jit._warm
    fast = scored(monkeypatch, "always", n, trade)
    assert kernels.run_stats in jit._warm  # the kernel did score it
    assert list(plain) == list(fast)
    assert all(plain[k] == fast[k] or (plain[k] is None and fast[k] is None) for k in plain), \
        {k: (plain[k], fast[k]) for k in plain if plain[k] != fast[k]}
    assert (plain["trades"] > 0) == trade


def test_auto_takes_the_kernel_once_numba_is_loaded_and_the_run_is_long(monkeypatch):
    monkeypatch.delenv("QUANTLAB_JIT", raising=False)
    monkeypatch.setattr(jit, "_warm", set())
    x = np.linspace(1.0, 2.0, 500)
    bar_stats.bar_stats(x * 0.0, x, 1.0, x)
    assert not jit._warm  # a small run in a cold process: numpy, no numba
    monkeypatch.setattr(jit, "_warm", {kernels.pairwise_sum})  # numba loaded (a big run's worker)
    y = np.linspace(1.0, 2.0, jit.LOADED_THRESHOLD)
    bar_stats.bar_stats(y * 0.0, y, 1.0, y)
    assert kernels.run_stats in jit._warm


def test_timestamps_are_converted_where_they_are_read():
    stamps = np.datetime64("2021-03-01", "ns") + np.arange(5) * np.timedelta64(1, "D")
    stats = RunStats({name: [0.0] for name in STATS}, bars=5, periods_per_year=252, initial_cash=1.0, benchmark=0.0, timestamps=stamps)
    assert stats.timestamps.tolist() == stamps.astype("datetime64[s]").astype(np.int64).tolist()
    assert stats.seconds_at(np.array([4])).tolist() == [stats.timestamps[4]]
    short = RunStats({name: [0.0] for name in STATS}, bars=6, periods_per_year=252, initial_cash=1.0, benchmark=0.0, timestamps=stamps)
    assert short.seconds_at(np.array([0])) is None  # not one timestamp per bar: no durations in days
