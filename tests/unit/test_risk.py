"""Risk controls of the engine (stops, targets, trailing stops, time exits, sizing): their
conventions on hand-made bars, their guarantees as properties, single-run/grid agreement, and
bit-identical results with every control off (against digests taken before they existed)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine_golden
from quantlab.engine import EngineConfig, Signals, risk, simulate
from quantlab.engine.sweep import evaluate_grid
from quantlab.errors import ConfigError
from quantlab.metrics import compute_metrics
from quantlab.strategies import get_strategy
from test_sweep_engine import jit_mode

NO_COSTS = dict(fee=0.0, slippage_bps=0.0)


def bars_of(rows):
    """(open, high, low, close) arrays from rows of (o, h, l, c)."""
    a = np.array(rows, dtype=np.float64)
    return a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy()


def sig(n, entries=(), exits=()):
    e = np.zeros(n, dtype=bool)
    x = np.zeros(n, dtype=bool)
    e[list(entries)] = True
    x[list(exits)] = True
    return Signals(e, x)


def reasons(res):
    return [risk.EXIT_REASONS[r] for r in res.trades.exit_reason]


# ------------------------------------------------------------------------- off = today's engine
@pytest.mark.parametrize("mode", ["never", "always"])
def test_everything_off_is_bit_identical_to_the_engine_before_risk_controls(mode):
    golden = json.loads(engine_golden.GOLDEN.read_text())
    with jit_mode(mode):
        now = engine_golden.digests()
    assert now.keys() == golden.keys()
    for key in golden:
        assert now[key] == golden[key], key


# ------------------------------------------------------------------------- conventions
def test_stop_loss_fills_at_its_level_or_at_a_gapped_open():
    # entry at close 100 (fill close); bar 2 reaches the 95 stop intrabar, so fills at 95
    o, h, l, c = bars_of([(100, 101, 99, 100), (100, 101, 99, 100), (99, 100, 94, 96), (96, 97, 95, 96)])
    res = simulate(o, h, l, c, sig(4, [0]), EngineConfig(fill="close", stop_loss=0.05, **NO_COSTS))
    assert reasons(res) == ["stop_loss"] and res.trades.exit_price[0] == 100 * (1 - 0.05)
    assert res.trades.exit_idx[0] == 2 and res.position.tolist() == [1, 1, 0, 0]
    # bar 2 opens at 90, below the stop: fills at the open
    o, h, l, c = bars_of([(100, 101, 99, 100), (100, 101, 99, 100), (90, 92, 88, 91), (91, 92, 90, 91)])
    res = simulate(o, h, l, c, sig(4, [0]), EngineConfig(fill="close", stop_loss=0.05, **NO_COSTS))
    assert reasons(res) == ["stop_loss"] and res.trades.exit_price[0] == 90.0


def test_fill_close_stops_start_next_bar_next_open_stops_cover_the_entry_bar():
    # the entry bar's own low (80) is below the stop: ignored with fill close (filled at its close)
    o, h, l, c = bars_of([(100, 101, 80, 100), (100, 101, 99, 100), (100, 101, 99, 100)])
    res = simulate(o, h, l, c, sig(3, [0]), EngineConfig(fill="close", stop_loss=0.05, **NO_COSTS))
    assert reasons(res) == ["end_of_data"]
    # next_open: signal at bar 0, fill at open[1] = 100; bar 1 falls to 90 after the open: stopped
    o, h, l, c = bars_of([(100, 101, 99, 100), (100, 101, 90, 100), (100, 101, 99, 100)])
    res = simulate(o, h, l, c, sig(3, [0]), EngineConfig(fill="next_open", stop_loss=0.05, **NO_COSTS))
    assert reasons(res) == ["stop_loss"] and res.trades.entry_idx[0] == res.trades.exit_idx[0] == 1
    assert res.trades.exit_price[0] == 95.0 and res.position.tolist() == [0, 0, 0]


def test_both_touched_assumes_the_stop_and_counts_the_bar():
    o, h, l, c = bars_of([(100, 101, 99, 100), (100, 120, 80, 100), (100, 101, 99, 100)])
    res = simulate(o, h, l, c, sig(3, [0]), EngineConfig(fill="close", stop_loss=0.05, take_profit=0.1,
                                                         **NO_COSTS))
    assert reasons(res) == ["stop_loss"] and res.trades.ambiguous.tolist() == [1]
    m = compute_metrics(res, c, start=0, periods_per_year=252, initial_cash=10_000.0)
    assert m["ambiguous_bars"] == 1 and m["exits_stop_loss"] == 1 and m["exits_take_profit"] == 0


def test_take_profit_trailing_stop_and_time_exit():
    o, h, l, c = bars_of([(100, 100, 100, 100), (100, 103, 99, 102), (102, 112, 101, 111), (111, 112, 110, 111)])
    res = simulate(o, h, l, c, sig(4, [0]), EngineConfig(fill="close", take_profit=0.1, **NO_COSTS))
    assert reasons(res) == ["take_profit"] and res.trades.exit_price[0] == 100 * 1.1
    # trailing 5%: highest high before bar 3 is 120 -> stop 114; bar 3 falls to 110
    o, h, l, c = bars_of([(100, 100, 100, 100), (100, 110, 99, 109), (109, 120, 108, 118), (118, 119, 110, 112)])
    res = simulate(o, h, l, c, sig(4, [0]), EngineConfig(fill="close", trailing_stop=0.05, **NO_COSTS))
    assert reasons(res) == ["trailing_stop"] and res.trades.exit_price[0] == 120 * (1 - 0.05)
    flat = [(100, 101, 99, 100)] * 6
    res = simulate(*bars_of(flat), sig(6, [0]), EngineConfig(fill="close", max_bars_held=2, **NO_COSTS))
    assert reasons(res)[0] == "max_bars" and res.trades.bars_held[0] == 2


def test_a_stopped_out_trade_needs_a_fresh_entry_signal():
    # the entry condition stays true through the stop (bars 0-3): no re-entry until it turns
    # off (bar 4) and on again (bar 5)
    rows = [(100, 101, 99, 100), (100, 101, 90, 96), (96, 97, 95, 96), (96, 97, 95, 96), (96, 97, 95, 96),
            (96, 97, 95, 96), (96, 97, 95, 96)]
    entries = [0, 1, 2, 3, 5]
    res = simulate(*bars_of(rows), sig(7, entries), EngineConfig(fill="close", stop_loss=0.05, **NO_COSTS))
    assert reasons(res) == ["stop_loss", "end_of_data"]
    assert res.trades.entry_idx.tolist() == [0, 5]


def test_atr_stops_and_sizing_modes():
    o, h, l, c = engine_golden.bars(400)
    s = get_strategy("sma_crossover").signals(o, h, l, c, {"fast": 5, "slow": 20})
    res = simulate(o, h, l, c, s, EngineConfig(fill="close", stop_loss_atr=1.0, take_profit_atr=2.0, **NO_COSTS))
    assert {"stop_loss", "take_profit"} <= set(reasons(res))
    fixed = simulate(o, h, l, c, s, EngineConfig(fill="close", size_mode="fixed_cash", position_size=0.25, **NO_COSTS))
    assert np.allclose(fixed.trades.qty * fixed.trades.entry_price, 2_500.0, rtol=1e-12)
    vt = simulate(o, h, l, c, s, EngineConfig(fill="close", size_mode="volatility_target", target_volatility=0.05,
                                              **NO_COSTS), periods_per_year=252.0)
    vol = risk.trailing_volatility(c, 252.0)
    for i in range(len(vt.trades)):
        t = vt.trades.entry_idx[i]
        cash = vt.equity[t - 1] if t > 0 else 10_000.0
        want = min(1.0, 0.05 / vol[t]) * cash
        assert math.isclose(vt.trades.qty[i] * vt.trades.entry_price[i], want, rel_tol=1e-12)
    with pytest.raises(ConfigError, match="periods_per_year"):
        simulate(o, h, l, c, s, EngineConfig(size_mode="volatility_target", target_volatility=0.1))


@pytest.mark.parametrize("bad, message", [
    ({"stop_loss": 0.05, "stop_loss_atr": 2.0}, "not both"),
    ({"stop_loss": 1.5}, "out of range"),
    ({"max_bars_held": 2.5}, "whole number"),
    ({"position_size": 0.0}, "out of range"),
    ({"size_mode": "kelly"}, "size_mode"),
    ({"size_mode": "volatility_target"}, "target_volatility"),
])
def test_bad_risk_parameters_are_one_line_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message) as exc:
        EngineConfig(**bad)
    assert "\n" not in str(exc.value)


# ------------------------------------------------------------------------- properties
@st.composite
def risky_case(draw):
    n = draw(st.integers(5, 80))
    moves = np.asarray(draw(st.lists(st.floats(0.9, 1.1), min_size=n, max_size=n)))
    close = 100.0 * np.cumprod(moves)
    gaps = np.asarray(draw(st.lists(st.floats(0.93, 1.07), min_size=n, max_size=n)))
    open_ = np.concatenate(([close[0]], close[:-1] * gaps[1:]))
    wick = draw(st.sampled_from([0.0, 0.01, 0.05]))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    entries = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    exits = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    stop = st.sampled_from([0.0, 0.01, 0.03, 0.1])
    cfg = EngineConfig(
        fee=draw(st.sampled_from([0.0, 0.001])), slippage_bps=0.0, fill=draw(st.sampled_from(["next_open", "close"])),
        allow_short=draw(st.booleans()), stop_loss=draw(stop), take_profit=draw(stop), trailing_stop=draw(stop),
        max_bars_held=draw(st.sampled_from([0, 1, 3])), position_size=draw(st.sampled_from([1.0, 0.5, 0.1])))
    return (open_, high, low, close), Signals(entries, exits, draw(st.integers(0, 2))), cfg


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=risky_case())
def test_stop_time_and_size_guarantees(case):
    bars, signals, cfg = case
    o = bars[0]
    res = simulate(*bars, signals, cfg)
    tr = res.trades
    s = cfg.stop_loss
    for i in range(len(tr)):
        if tr.side[i] == 1 and s > 0:  # no long exit below entry x (1 - s), unless the bar opened there
            level = tr.entry_price[i] * (1.0 - s)
            x = tr.exit_idx[i]
            assert tr.exit_price[i] >= level or (o[x] < level and tr.exit_price[i] == o[x]), i
        if cfg.max_bars_held:
            assert tr.bars_held[i] <= cfg.max_bars_held
        if tr.side[i] == 1 and not cfg.allow_short:  # at entry: notional + fee <= f x equity
            t = tr.entry_idx[i] - 1
            equity = res.equity[t] if t >= 0 else cfg.initial_cash
            assert tr.qty[i] * tr.entry_price[i] <= cfg.position_size * equity * (1 + 1e-12)
    assert set(tr.exit_reason.tolist()) <= set(range(len(risk.EXIT_REASONS)))
    if not s and not cfg.take_profit and not cfg.trailing_stop:
        assert not tr.ambiguous.any()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=risky_case(), fast=st.integers(1, 4), slow=st.integers(5, 9), mode=st.sampled_from(["never", "always"]))
def test_single_runs_equal_the_grid_with_risk_controls(case, fast, slow, mode):
    """The grid's fused path over stop/size combos gives each combo's single-run metrics."""
    bars, _, cfg = case
    base = dataclasses.replace(cfg, stop_loss=0.0, take_profit=0.0, trailing_stop=0.0, max_bars_held=0)
    combos = [{"fast": fast, "slow": slow, "stop_loss": sl, "take_profit": tp, "trailing_stop": cfg.trailing_stop,
               "max_bars_held": cfg.max_bars_held} for sl in (0.0, 0.02) for tp in (0.0, 0.05)]
    strategy = get_strategy("sma_crossover")
    with jit_mode(mode):
        grid = evaluate_grid(*bars, "sma_crossover", combos, base, start=0, periods_per_year=252.0)
        for i, combo in enumerate(combos):
            params = {"fast": fast, "slow": slow}
            over = {k: v for k, v in combo.items() if k not in params}
            res = simulate(*bars, strategy.signals(*bars, params), dataclasses.replace(base, **over))
            want = compute_metrics(res, bars[3], start=0, periods_per_year=252.0, initial_cash=base.initial_cash)
            for key, value in want.items():
                got = grid[key][i]
                if value is None:
                    assert np.isnan(got), key
                else:
                    assert abs(got - value) <= 1e-12 * max(1.0, abs(value)), (key, got, value)


def test_a_stop_grid_stays_on_the_fused_path(monkeypatch):
    from quantlab.engine import sweep

    monkeypatch.setattr(sweep, "_generic", lambda *a, **k: pytest.fail("generic path used"))
    o, h, l, c = engine_golden.bars(300)
    combos = [{"fast": f, "slow": 20, "stop_loss": sl, "take_profit": tp}
              for f in (3, 5) for sl in (0.0, 0.02) for tp in (0.0, 0.04)]
    got = evaluate_grid(o, h, l, c, "sma_crossover", combos, EngineConfig(), start=20, periods_per_year=252.0)
    assert got["exits_stop_loss"].sum() > 0 and got["exits_take_profit"].sum() > 0
