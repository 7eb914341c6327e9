"""Safety properties of both simulation kernels on adversarial bars, over every allowed setting.

Bars gap up to +-90% a bar (or stay constant), engine settings span ``EngineConfig``'s whole
ranges (fee up to 0.5, fixed slippage up to 2500 bps, ``k_atr`` up to 100, shorts, both fills).
For ``simulate_kernel`` (via ``simulate``) and ``sweep_kernel`` (the grid engine), in pure Python
and under numba:

* every fill price is > 0, every fee >= 0, every quantity > 0;
* equity never goes below 0, and reaches 0 only through a margin call (reported);
* no per-bar return, total return, drawdown or CAGR is below -1;
* the trade count is an integer, the same in both kernels, and both kernels agree bit for bit.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab.engine import EngineConfig, Signals, jit, kernels, risk, simulate
from quantlab.engine.indicators import atr as atr_indicator
from quantlab.engine.simulator import ATR_WINDOW, trade_capacity
from quantlab.metrics import compute_metrics
from quantlab.series_metrics import bench_terms

MOVES = st.one_of(st.sampled_from([0.1, 1.9, 1.0, 1.0, 0.5, 1.5]), st.floats(0.1, 1.9))


@st.composite
def adversarial_case(draw):
    n = draw(st.integers(1, 60))
    if draw(st.booleans()) and n > 1:
        moves = [1.0] * n  # constant prices
    else:
        moves = draw(st.lists(MOVES, min_size=n, max_size=n))
    close = 100.0 * np.cumprod(np.asarray(moves, dtype=np.float64))
    gaps = np.asarray(draw(st.lists(MOVES, min_size=n, max_size=n)), dtype=np.float64)
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1] * gaps[1:]
    wick = draw(st.sampled_from([0.0, 0.01, 0.5, 0.9]))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    entries = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    exits = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    cfg = EngineConfig(
        fee=draw(st.one_of(st.sampled_from([0.0, 0.5]), st.floats(0.0, 0.5))),
        slippage_mode=draw(st.sampled_from(["fixed", "atr"])),
        slippage_bps=draw(st.one_of(st.sampled_from([0.0, 2500.0]), st.floats(0.0, 2500.0))),
        k_atr=draw(st.one_of(st.sampled_from([0.0, 3.0, 10.0, 100.0]), st.floats(0.0, 100.0))),
        fill=draw(st.sampled_from(["next_open", "close"])),
        allow_short=draw(st.booleans()),
        initial_cash=draw(st.sampled_from([10_000.0, 1.0])),
    )
    start = draw(st.integers(0, n - 1))
    cooldown = draw(st.integers(0, 3))
    return (open_, high, low, close), Signals(entries, exits, cooldown), cfg, start


def grid_kernel(bars, signals, cfg, start, numba):
    """``sweep_kernel`` on one combo of precomputed signals (mode 0), as the grid engine calls it."""
    open_, high, low, close = bars
    n, m = len(close), len(close) - start
    cap = trade_capacity(n, cfg.allow_short)
    atr = atr_indicator(high, low, close, ATR_WINDOW, fill_warmup=True) if cfg.slippage_mode == "atr" \
        else np.empty(0)
    slip = cfg.slippage_bps / 10_000.0 if cfg.slippage_mode == "fixed" else 0.0
    s = kernels.PAIRWISE_STACK
    arrays = dict(
        open_=open_, close=close, atr=atr, entries=signals.entries, exits=signals.exits,
        csum=np.zeros(0), runlen=np.zeros(0, dtype=np.int64), rsi_tab=np.full((1, 1), np.nan),
        ma_tab=np.full((1, 1), np.nan), p_int1=np.zeros(1, dtype=np.int64), p_int2=np.zeros(1, dtype=np.int64),
        p_f1=np.zeros(1), p_f2=np.zeros(1), cooldowns=np.array([signals.cooldown], dtype=np.int64),
        fees=np.array([cfg.fee]), slips=np.array([slip]), k_atrs=np.array([cfg.k_atr]),
        risks=np.array(risk.row(cfg)), high=high, low=low,
        stats=np.zeros(kernels.SWEEP_STATS), ret_buf=np.zeros(m), scratch=np.zeros(m), tr_ret=np.zeros(cap),
        tr_win=np.zeros(cap), tr_loss=np.zeros(cap), stack_i=np.zeros(s, dtype=np.int64),
        stack_f=np.zeros(s // 3 + 1), sig_enter=np.zeros(n, dtype=bool), sig_exit=np.zeros(n, dtype=bool),
        bench_dx=bench_terms(close[start:])[1], cand=np.full(m + 1, np.nan))  # the series statistics too
    if numba:
        fn = jit.jitted_calling(kernels.sweep_kernel, kernels.pairwise_sum)
        a = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    else:
        fn = kernels.sweep_kernel
        a = {k: v.tolist() for k, v in arrays.items()}
    fn(0, 0, 1, a["open_"], a["high"], a["low"], a["close"], a["atr"], a["atr"], a["high"][:0], start, cfg.fill == "close", cfg.allow_short,
       float(cfg.initial_cash), a["bench_dx"], a["entries"], a["exits"], a["csum"], a["runlen"], a["rsi_tab"], a["ma_tab"],
       a["p_int1"], a["p_int2"], a["p_f1"], a["p_f2"], a["cooldowns"], a["fees"], a["slips"], a["k_atrs"],
       a["risks"], a["stats"], np.zeros((0, 0), dtype=np.float32), a["ret_buf"], a["scratch"], a["tr_ret"], a["tr_win"], a["tr_loss"], a["stack_i"],
       a["stack_f"], a["sig_enter"], a["sig_exit"], a["cand"])
    return np.asarray(a["stats"], dtype=np.float64), np.asarray(a["ret_buf"], dtype=np.float64)[:m]


def check_case(case, numba: bool):
    bars, signals, cfg, start = case
    os.environ["QUANTLAB_JIT"] = "always" if numba else "never"
    try:
        res = simulate(*bars, signals, cfg, start=start)
    finally:
        del os.environ["QUANTLAB_JIT"]
    tr = res.trades
    assert np.all(tr.entry_price > 0) and np.all(tr.exit_price > 0)
    assert np.all(tr.entry_fee >= 0) and np.all(tr.exit_fee >= 0) and np.all(tr.qty > 0)
    assert np.all(np.isfinite(res.equity))
    assert res.equity.min() >= 0.0
    if res.equity.min() == 0.0:
        assert res.margin_call is not None
    if res.margin_call is not None:
        assert cfg.allow_short and res.equity[-1] == 0.0 and res.open_position == 0
    assert res.returns.min() >= -1.0
    metrics = compute_metrics(res, bars[3], start=start, periods_per_year=252.0, initial_cash=cfg.initial_cash)
    assert metrics["total_return"] >= -1.0 and metrics["max_drawdown"] >= -1.0
    assert metrics["cagr"] is None or metrics["cagr"] >= -1.0
    assert isinstance(metrics["trades"], int) and metrics["trades"] == len(tr)

    stats, returns = grid_kernel(bars, signals, cfg, start, numba)
    trades = stats[kernels.ST_TRADES]
    assert trades == int(trades) == len(tr)
    assert stats[kernels.ST_FINAL_EQUITY] == res.equity[-1]  # bit for bit
    assert np.array_equal(returns, res.returns)
    assert (stats[kernels.ST_MARGIN_CALLS] > 0) == (res.margin_call is not None)
    assert stats[kernels.ST_FINAL_EQUITY] >= 0.0 and returns.min() >= -1.0
    assert -1.0 <= stats[kernels.ST_MAX_DRAWDOWN] <= 0.0
    assert stats[kernels.ST_MAX_DRAWDOWN] == metrics["max_drawdown"] or math.isclose(
        stats[kernels.ST_MAX_DRAWDOWN], metrics["max_drawdown"], rel_tol=1e-12)
    assert stats[kernels.ST_VAR_95] == np.quantile(res.returns, 1.0 - kernels.VAR_LEVEL) == metrics["var_95"]
    assert stats[kernels.ST_TAIL_BARS] == np.count_nonzero(res.returns <= metrics["var_95"])


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=adversarial_case())
def test_kernels_are_safe_and_agree_python(case):
    check_case(case, numba=False)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=adversarial_case())
def test_kernels_are_safe_and_agree_numba(case):
    pytest.importorskip("numba")
    check_case(case, numba=True)


def test_atr_slippage_is_capped_at_a_quarter_of_the_price():
    n = 30
    close = 100.0 * np.cumprod(np.where(np.arange(n) % 2 == 0, 1.9, 0.1))
    bars = (close.copy(), close * 1.9, close * 0.1, close)
    entries = np.arange(n) % 4 == 0
    exits = np.arange(n) % 4 == 2
    cfg = EngineConfig(slippage_mode="atr", k_atr=100.0, fee=0.0, fill="close")
    res = simulate(*bars, Signals(entries, exits), cfg)
    assert len(res.trades)
    assert np.allclose(res.trades.entry_price, close[res.trades.entry_idx] * (1 + kernels.MAX_SLIPPAGE))
    assert np.allclose(res.trades.exit_price, close[res.trades.exit_idx] * (1 - kernels.MAX_SLIPPAGE))


def test_margin_call_liquidates_the_short_and_writes_off_the_shortfall():
    close = np.array([100.0, 100.0, 100.0, 500.0, 510.0, 520.0])
    bars = (close.copy(), close.copy(), close.copy(), close)
    exits = np.array([False, True, False, False, False, False])
    entries = np.array([False, False, False, False, True, False])  # too late: nothing left to trade
    cfg = EngineConfig(fee=0.0, slippage_bps=0.0, allow_short=True, fill="close")
    res = simulate(*bars, Signals(entries, exits), cfg)
    assert res.margin_call == 3
    assert res.equity.tolist() == [10_000.0, 10_000.0, 10_000.0, 0.0, 0.0, 0.0]
    assert res.returns.tolist() == [0.0, 0.0, 0.0, -1.0, 0.0, 0.0]
    assert res.position.tolist() == [0, -1, -1, 0, 0, 0]
    assert len(res.trades) == 1 and res.trades.side[0] == -1 and res.trades.exit_idx[0] == 3
    assert res.trades.exit_price[0] == 500.0
    assert res.trades.pnl[0] == -10_000.0  # the account's loss, not the market's -40,000
