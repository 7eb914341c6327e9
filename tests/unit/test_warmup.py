"""The step worker's run warm-up (commands/warmup.py): which runs warm numba, and that a warmed
process computes exactly what the pure-Python path computes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantlab.commands import warmup
from quantlab.commands.run.plan import ENGINE_KEYS
from quantlab.engine import EngineConfig, jit, kernels, simulate
from quantlab.strategies import get_strategy

ENGINE = {**{k: getattr(EngineConfig(), k) for k in ENGINE_KEYS}, "fee": 0.001, "slippage_bps": 5.0}
PARAMS = {"rsi_buy_max": 60.0, "rsi_sell_min": 75.0, "cooldown_days": 0, "ma_window": 20, "rsi_window": 14}


@pytest.mark.parametrize("interval,start,end,big", [
    ("1d", "1990-01-01", "2020-01-01", False),
    ("1m", "2020-01-01", "2020-02-01", False),      # ~45k minutes
    ("1m", "2020-01-01", "2021-11-26", True),       # ~1M minutes
    ("1h", "1990-01-01", "2050-01-01", True),
])
def test_big_run_follows_the_numba_threshold(interval, start, end, big):
    spec = {"interval": interval, "start": start, "end": end}
    assert warmup.big_run(spec) is big
    assert (warmup.estimate_bars(interval, start, end) >= jit.COLD_THRESHOLD) is big


def test_bad_dates_are_not_the_warm_ups_to_report():
    assert warmup.big_run({"interval": "1m", "start": "nope", "end": "2020-01-01"}) is False


def test_prefetch_warms_the_kernels_and_results_stay_exact(monkeypatch):
    monkeypatch.delenv("QUANTLAB_JIT", raising=False)
    monkeypatch.setattr(jit, "_warm", set())
    spec = {"source": "synthetic", "ticker": "X"}  # not bundled data: nothing to parse
    warmup.prefetch_run(spec, {"strategy": "rsi_ma_cross_v2", "strategy_params": PARAMS}, ENGINE, True)
    assert kernels.simulate_kernel in jit._warm
    assert kernels.run_stats in jit._warm  # the score step's kernel too (read-only arrays, as it reads them)
    assert any(not sig[0].mutable for sig in jit.jitted(kernels.run_stats).signatures)
    assert jit.use_jit(1000, kernels.simulate_kernel)  # any size now runs under numba
    assert "QUANTLAB_JIT" not in os.environ  # the forced mode was only for the warm-up
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000)))
    s = get_strategy("rsi_ma_cross_v2")
    cfg = EngineConfig(**ENGINE)
    warm = simulate(close, close * 1.01, close * 0.99, close, s.signals(close, close * 1.01, close * 0.99, close,
                                                                        dict(PARAMS)), cfg, start=30)
    monkeypatch.setenv("QUANTLAB_JIT", "never")
    plain = simulate(close, close * 1.01, close * 0.99, close, s.signals(close, close * 1.01, close * 0.99, close,
                                                                         dict(PARAMS)), cfg, start=30)
    assert np.array_equal(warm.equity, plain.equity) and np.array_equal(warm.position, plain.position)
    assert np.array_equal(warm.trades.pnl, plain.trades.pnl)


def test_small_runs_do_not_warm(monkeypatch):
    monkeypatch.setattr(jit, "_warm", set())
    warmup.prefetch_run({"source": "synthetic"}, {"strategy": "rsi_ma_cross_v2", "strategy_params": PARAMS},
                        ENGINE, False)
    assert not jit._warm


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2 * 10**18, 4 * 10**18), max_size=20))
def test_bar_times_iso_is_bar_time_iso_of_each(stamps):
    """trades.csv formats its timestamps in one numpy call (dates.bar_times_iso)."""
    from quantlab.dates import bar_time_iso, bar_times_iso

    arr = np.array(stamps, dtype="datetime64[ns]")
    assert bar_times_iso(arr) == [bar_time_iso(t) for t in arr]
    assert bar_times_iso(np.array(stamps, dtype=np.int64)) == [bar_time_iso(t) for t in arr]


@pytest.mark.parametrize("robust", [False, True])
def test_sweep_prefetch_loads_the_robustness_kernels_only_when_robustness_is_on(monkeypatch, robust):
    """With robustness on, the merge step's numba passes are loaded while the parent starts
    Snakemake (commands/sweep/steps.prefetch_sweep), not on the merge's critical path."""
    from quantlab.commands.sweep.steps import prefetch_sweep
    from quantlab.robustness import cscv, rows

    monkeypatch.setattr(jit, "_compiled", {})
    prefetch_sweep([], "sma_crossover", {"fast": 5, "slow": 20}, True, robust)
    loaded = set(jit._compiled)
    for kernel in (rows.row_stats_kernel, cscv.cscv_kernel):  # (pass 2 is fused into pass 1)
        assert (kernel in loaded) is robust
