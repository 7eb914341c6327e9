"""Hand-computed cases for every rule of the simulator, in both execution modes."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab.engine import EngineConfig, Signals, simulate
from quantlab.engine import indicators as ind
from quantlab.errors import ConfigError, DataError, StrategyError
from quantlab.strategies import get_strategy

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
CLOSE = np.array([10.5, 11.5, 12.5, 13.5, 14.5, 15.5])
HIGH = CLOSE + 1.0
LOW = OPEN - 1.0
CASH = 1000.0


@pytest.fixture(params=["never", "always"], autouse=True)
def jit_mode(request, monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", request.param)
    return request.param


def flags(n, *idx):
    out = np.zeros(n, dtype=bool)
    out[list(idx)] = True
    return out


def sig(entries=(), exits=(), n=6, cooldown=0):
    return Signals(flags(n, *entries), flags(n, *exits), cooldown)


def cfg(**kw):
    base = dict(fee=0.0, slippage_bps=0.0, initial_cash=CASH)
    base.update(kw)
    return EngineConfig(**base)


def run(signals, config, start=0, o=OPEN, h=HIGH, lo=LOW, c=CLOSE):
    return simulate(o, h, lo, c, signals, config, start=start)


def test_next_open_fill():
    r = run(sig(entries=[1], exits=[3]), cfg())
    qty = CASH / 12.0  # bought at open[2]
    np.testing.assert_allclose(r.equity, [CASH, CASH, qty * 12.5, qty * 13.5, qty * 14.0, qty * 14.0],
                               rtol=1e-14)
    assert r.position.tolist() == [0, 0, 1, 1, 0, 0]
    assert r.position.dtype == np.int8
    t = r.trades
    assert len(t) == 1
    assert (t.entry_idx[0], t.exit_idx[0], t.side[0], t.bars_held[0]) == (2, 4, 1, 2)
    assert (t.entry_price[0], t.exit_price[0]) == (12.0, 14.0)
    assert t.pnl[0] == pytest.approx(qty * 2.0, rel=1e-14)
    assert t.ret[0] == pytest.approx(2.0 / 12.0, rel=1e-14)
    assert r.open_position == 0
    np.testing.assert_allclose(r.returns[1:], r.equity[1:] / r.equity[:-1] - 1, rtol=1e-14)


def test_close_fill():
    r = run(sig(entries=[1], exits=[3]), cfg(fill="close"))
    qty = CASH / 11.5
    np.testing.assert_allclose(r.equity, [CASH, CASH, qty * 12.5, qty * 13.5, qty * 13.5, qty * 13.5],
                               rtol=1e-14)
    assert r.position.tolist() == [0, 1, 1, 0, 0, 0]
    assert (r.trades.entry_idx[0], r.trades.exit_idx[0]) == (1, 3)
    assert (r.trades.entry_price[0], r.trades.exit_price[0]) == (11.5, 13.5)


def test_fee_is_charged_on_notional_each_side():
    fee = 0.01
    r = run(sig(entries=[1], exits=[3]), cfg(fee=fee))
    qty = CASH / (12.0 * (1 + fee))  # notional + fee = all the cash
    entry_fee = qty * 12.0 * fee
    exit_fee = qty * 14.0 * fee
    t = r.trades
    assert t.qty[0] == pytest.approx(qty, rel=1e-14)
    assert t.entry_fee[0] == pytest.approx(entry_fee, rel=1e-14)
    assert t.exit_fee[0] == pytest.approx(exit_fee, rel=1e-14)
    assert qty * 12.0 + entry_fee == pytest.approx(CASH, rel=1e-14)
    final_cash = qty * 14.0 - exit_fee
    assert r.equity[-1] == pytest.approx(final_cash, rel=1e-14)
    assert t.pnl[0] == pytest.approx(final_cash - CASH, rel=1e-12)
    assert t.pnl[0] == pytest.approx(qty * 2.0 - entry_fee - exit_fee, rel=1e-12)
    assert t.ret[0] == pytest.approx(t.pnl[0] / (qty * 12.0), rel=1e-12)
    # the bar where the order is pending is marked before the fill: no fee yet
    assert r.equity[1] == CASH
    assert r.equity[2] == pytest.approx(qty * 12.5, rel=1e-14)


def test_fixed_slippage_moves_fills_against_us():
    r = run(sig(entries=[1], exits=[3]), cfg(slippage_bps=100.0))
    buy, sell = 12.0 * 1.01, 14.0 * 0.99
    assert r.trades.entry_price[0] == pytest.approx(buy, rel=1e-14)
    assert r.trades.exit_price[0] == pytest.approx(sell, rel=1e-14)
    assert r.equity[-1] == pytest.approx(CASH / buy * sell, rel=1e-14)


def test_atr_slippage_uses_signal_bar_atr_over_close():
    n = 30
    close = 100.0 + 0.5 * np.arange(n)
    open_ = close - 0.25
    high, low = close + 1.0, close - 1.0  # true range = 2 on every bar, so ATR = 2 throughout
    np.testing.assert_allclose(ind.atr(high, low, close, 14)[13:], 2.0, rtol=1e-14)
    k = 0.5
    r = simulate(open_, high, low, close, sig(entries=[5], exits=[20], n=n),
                 cfg(slippage_mode="atr", k_atr=k))
    s_entry = k * 2.0 / close[5]  # bar 5: before ATR(14) exists, the running mean TR (= 2) stands in
    s_exit = k * 2.0 / close[20]
    assert r.trades.entry_price[0] == pytest.approx(open_[6] * (1 + s_entry), rel=1e-14)
    assert r.trades.exit_price[0] == pytest.approx(open_[21] * (1 - s_exit), rel=1e-14)


def test_cooldown_ignores_signals_after_a_filled_trade():
    exits = [2, 3, 4]
    r0 = run(sig(entries=[1], exits=exits), cfg())
    assert (r0.trades.entry_idx[0], r0.trades.exit_idx[0]) == (2, 3)
    r2 = run(sig(entries=[1], exits=exits, cooldown=2), cfg())
    assert (r2.trades.entry_idx[0], r2.trades.exit_idx[0]) == (2, 5)  # exits at 2, 3 ignored
    r3 = run(sig(entries=[1], exits=exits, cooldown=3), cfg())
    # exit at 5 would fill past the end: the position stays open, logged as the last trade
    assert r3.open_position == 1 and (r3.trades.entry_idx.tolist(), r3.trades.exit_idx.tolist()) == ([2], [5])


def test_cooldown_applies_after_exits_too_and_only_to_filled_trades():
    n = 10
    o = np.arange(10.0, 20.0)
    c = o + 0.5
    # the exit at 0 while flat is no trade, so it starts no cooldown: the entry at 1 is taken;
    # that entry blocks bars 2-3, so the exit at 3 is ignored and the position stays open
    s = sig(entries=[1], exits=[0, 3], n=n, cooldown=2)
    r = simulate(o, c + 1, o - 1, c, s, cfg(fill="close"))
    assert r.position.tolist() == [0] + [1] * 9
    assert r.trades.exit_idx.tolist() == [n - 1] and r.open_position == 1  # open, marked at the end
    # the exit at 4 is taken and blocks 5-6: the entries at 5 and 6 are ignored, 7 is taken
    s = sig(entries=[1, 5, 6, 7], exits=[4], n=n, cooldown=2)
    r = simulate(o, c + 1, o - 1, c, s, cfg(fill="close"))
    # (the long entered at 7 is still open at the end: the last, open trade 7..9)
    assert (r.trades.entry_idx.tolist(), r.trades.exit_idx.tolist()) == ([1, 7], [4, 9])
    assert r.position.tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 1, 1]


def test_short_reversal_closes_and_reopens_with_two_fees():
    fee = 0.01
    r = run(sig(entries=[1, 5], exits=[3]), cfg(fee=fee, fill="close", allow_short=True))
    assert r.position.tolist() == [0, 1, 1, -1, -1, 1]
    assert r.trades.side.tolist() == [1, -1, 1]  # the last long is still open at the end
    assert r.open_position == 1
    q_long = CASH / (11.5 * 1.01)
    cash1 = q_long * 13.5 * (1 - fee)
    q_short = cash1 / (13.5 * 1.01)
    cash2 = cash1 + q_short * 13.5 * (1 - fee)  # short proceeds minus the second fee
    t = r.trades
    assert t.qty.tolist()[:2] == pytest.approx([q_long, q_short], rel=1e-13)
    assert (t.entry_idx.tolist(), t.exit_idx.tolist()) == ([1, 3, 5], [3, 5, 5])
    assert t.entry_fee[1] == pytest.approx(q_short * 13.5 * fee, rel=1e-13)
    # equity while short: cash - qty * close
    assert r.equity[3] == pytest.approx(cash2 - q_short * 13.5, rel=1e-13)
    assert r.equity[4] == pytest.approx(cash2 - q_short * 14.5, rel=1e-13)
    cover = q_short * 15.5
    cash3 = cash2 - cover * (1 + fee)
    assert t.pnl[1] == pytest.approx(q_short * (13.5 - 15.5) - q_short * 13.5 * fee - cover * fee, rel=1e-12)
    assert t.pnl[1] < 0
    q_long2 = cash3 / (15.5 * 1.01)
    assert r.equity[5] == pytest.approx(q_long2 * 15.5, rel=1e-12)
    # long-only ignores the same exit-then-entry stream as a short
    r_long = run(sig(entries=[1, 5], exits=[3]), cfg(fee=fee, fill="close"))
    assert r_long.position.tolist() == [0, 1, 1, 0, 0, 1]


def test_simultaneous_entry_and_exit():
    # long-only: flat -> the entry counts, long -> the exit counts
    r = run(sig(entries=[1, 3], exits=[1, 3]), cfg(fill="close"))
    assert r.position.tolist() == [0, 1, 1, 0, 0, 0]
    # with shorts both at once cancel out
    r = run(sig(entries=[1, 3], exits=[1, 3]), cfg(fill="close", allow_short=True))
    assert r.position.tolist() == [0] * 6


def test_warmup_start_ignores_earlier_signals():
    # entry at 1 (before start) is ignored even though its fill bar (2) is after start
    r = run(sig(entries=[1, 3]), cfg(), start=2)
    assert len(r.equity) == 4 and r.start == 2
    assert r.equity[0] == CASH and r.returns[0] == 0.0
    assert r.position.tolist() == [0, 0, 1, 1]
    assert r.trades.entry_idx.tolist() == [4] and r.open_position == 1  # open, marked at the end
    qty = CASH / OPEN[4]
    assert r.equity[-1] == pytest.approx(qty * CLOSE[5], rel=1e-14)
    # first return is equity[0] / initial_cash - 1 (here a close fill with a fee on bar `start`)
    r = run(sig(entries=[2]), cfg(fill="close", fee=0.01), start=2)
    assert r.returns[0] == r.equity[0] / CASH - 1
    assert r.returns[0] == pytest.approx(-0.01 / 1.01, rel=1e-12)


def test_last_bar_signal():
    r = run(sig(entries=[5]), cfg())  # next_open: nothing left to fill at
    assert r.position.tolist() == [0] * 6 and r.open_position == 0
    assert np.all(r.equity == CASH)
    r = run(sig(entries=[5]), cfg(fill="close"))
    assert r.position.tolist() == [0] * 5 + [1] and r.open_position == 1
    # an exit on the last bar under next_open leaves the position open, uncharged
    r = run(sig(entries=[1], exits=[5]), cfg(fee=0.01))
    assert r.open_position == 1 and r.trades.exit_fee.tolist() == [0.0]  # open: logged, not charged


def test_open_position_is_marked_not_closed():
    fee = 0.01
    r = run(sig(entries=[0]), cfg(fee=fee, slippage_bps=50.0))
    px = 11.0 * 1.005
    qty = CASH / (px * (1 + fee))
    assert r.open_position == 1 and len(r.trades) == 1  # the open trade, marked to the last close
    assert r.equity[-1] == pytest.approx(qty * CLOSE[-1], rel=1e-14)  # no exit fee, no slippage
    assert r.trades.exit_price[0] == CLOSE[-1] and r.trades.exit_fee[0] == 0.0
    assert r.trades.pnl[0] == pytest.approx(r.equity[-1] - CASH, rel=1e-12)


def test_buy_and_hold_equals_price_ratio():
    rng = np.random.default_rng(11)
    n = 500
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    bh = get_strategy("buy_and_hold")
    s = bh.signals(open_, close * 1.01, close * 0.99, close, {})
    for start in (0, 37):
        r = simulate(open_, close * 1.01, close * 0.99, close, s,
                     EngineConfig(fee=0.0, slippage_bps=0.0, fill="close", initial_cash=CASH), start=start)
        expected = CASH * close[start:] / close[start]
        np.testing.assert_allclose(r.equity, expected, rtol=1e-12, atol=0)
        assert r.position.tolist() == [1] * (n - start)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_accounting_identity_long_only(fill):
    rng = np.random.default_rng(5)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    entries, exits = rng.random(n) < 0.1, rng.random(n) < 0.1
    entries[-20:], exits[-20:] = False, True  # end flat
    r = simulate(open_, close * 1.02, close * 0.98, close, Signals(entries, exits, 1),
                 EngineConfig(fill=fill, slippage_bps=5.0), start=10)
    assert len(r.trades) > 5 and r.open_position == 0
    # every unit of cash gained or lost is in a closed trade's net pnl
    assert r.equity[-1] == pytest.approx(10_000 + r.trades.pnl.sum(), rel=1e-10)
    assert np.all(r.trades.bars_held == r.trades.exit_idx - r.trades.entry_idx)
    assert np.all(r.trades.bars_held >= 1)
    assert np.all(r.trades.entry_idx[1:] >= r.trades.exit_idx[:-1])
    # exposure bookkeeping: a position is held from each entry fill until the exit fill
    held = np.zeros(n, dtype=bool)
    for a, b in zip(r.trades.entry_idx, r.trades.exit_idx):
        held[a:b] = True
    assert np.array_equal(r.position != 0, held[10:])


def test_config_validation():
    with pytest.raises(ConfigError, match="slippage_mode"):
        EngineConfig(slippage_mode="pct")
    with pytest.raises(ConfigError, match="fill"):
        EngineConfig(fill="open")
    with pytest.raises(ConfigError, match="fee"):
        EngineConfig(fee=-0.1)
    with pytest.raises(ConfigError, match="initial_cash"):
        EngineConfig(initial_cash=0)
    with pytest.raises(ConfigError, match="fee"):
        EngineConfig(fee=float("nan"))
    assert EngineConfig(fee=0).fee == 0.0


def test_input_validation():
    with pytest.raises(DataError, match="warm-up"):
        run(sig(), cfg(), start=6)
    with pytest.raises(DataError, match="finite"):
        run(sig(), cfg(), c=np.array([1.0, 2, np.nan, 4, 5, 6]))
    with pytest.raises(DataError, match="bars"):
        run(sig(), cfg(), o=OPEN[:5])
    with pytest.raises(StrategyError, match="entries"):
        run(Signals(np.zeros(5, bool), np.zeros(6, bool)), cfg())
    with pytest.raises(StrategyError, match="boolean"):
        run(Signals(np.zeros(6), np.zeros(6, bool)), cfg())
    with pytest.raises(StrategyError, match="cooldown"):
        run(Signals(np.zeros(6, bool), np.zeros(6, bool), -1), cfg())
    with pytest.raises(ConfigError, match="start"):
        run(sig(), cfg(), start=-1)
