"""Metrics on hand-checked equity curves, degenerate inputs, and periods_per_year."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.engine import EngineConfig, Signals, SimResult, TradeLog, simulate
from quantlab.errors import ConfigError, DataError
from quantlab.metrics import INTERVALS, METRIC_KEYS, bar_calendar, compute_metrics, looks_like_crypto, periods_per_year

SRC = Path(__file__).resolve().parents[2] / "src"


def trade_log(pnl=(), ret=()):
    k = len(pnl)
    ints = np.zeros(k, dtype=np.int64)
    floats = np.ones(k)
    return TradeLog(entry_idx=ints, exit_idx=ints + 1, side=np.ones(k, dtype=np.int8), entry_price=floats,
                    exit_price=floats, qty=floats, entry_fee=floats * 0, exit_fee=floats * 0,
                    pnl=np.asarray(pnl, dtype=float), ret=np.asarray(ret, dtype=float), bars_held=ints + 1)


def make_result(equity, position, initial_cash, trades=None):
    equity = np.asarray(equity, dtype=float)
    prev = np.concatenate(([initial_cash], equity[:-1]))
    return SimResult(equity=equity, position=np.asarray(position, dtype=np.int8), returns=equity / prev - 1,
                     trades=trades or trade_log(), open_position=int(position[-1]))


def test_hand_checked_curve():
    equity = [100.0, 110.0, 99.0, 120.0]
    r = make_result(equity, [0, 1, 1, 0], 100.0, trade_log(pnl=[10.0, -5.0, 3.0], ret=[0.1, -0.05, 0.03]))
    close = np.array([7.0, 8.0, 10.0, 9.0, 12.0])  # start = 1: four bars scored
    ppy = 252.0
    m = compute_metrics(r, close, start=1, periods_per_year=ppy, initial_cash=100.0)
    assert list(m) == list(METRIC_KEYS)
    rets = [0.0, 0.1, -0.1, 120 / 99 - 1]
    mean, sd = statistics.fmean(rets), statistics.stdev(rets)
    assert m["total_return"] == pytest.approx(0.2, rel=1e-12)
    assert m["cagr"] == pytest.approx(1.2 ** (252 / 4) - 1, rel=1e-9)
    assert m["sharpe_simple"] == pytest.approx(mean / sd * math.sqrt(252), rel=1e-12)
    assert m["volatility_ann"] == pytest.approx(sd * math.sqrt(252), rel=1e-12)
    downside = math.sqrt((0.1 ** 2) / 4)  # RMS of min(r, 0) over all four bars
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252), rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1, rel=1e-12)
    assert m["calmar"] == pytest.approx(m["cagr"] / (1 - 99 / 110), rel=1e-12)
    assert m["trades"] == 3 and type(m["trades"]) is int
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(13 / 5)
    assert m["avg_trade_return"] == pytest.approx(0.08 / 3)
    assert m["exposure"] == 0.5
    assert m["bars"] == 4 and type(m["bars"]) is int
    assert m["benchmark_return"] == pytest.approx(12 / 8 - 1)


def test_drawdown_counts_from_initial_cash():
    # the very first bar already loses: the peak is the initial cash, not equity[0]
    r = make_result([90.0, 95.0, 80.0], [1, 1, 1], 100.0)
    m = compute_metrics(r, np.ones(3), start=0, periods_per_year=365, initial_cash=100.0)
    assert m["max_drawdown"] == pytest.approx(-0.2)
    assert m["win_rate"] is None and m["profit_factor"] is None and m["avg_trade_return"] is None
    assert m["trades"] == 0 and m["exposure"] == 1.0


def test_profit_factor_edge_cases():
    only_wins = make_result([100.0, 110.0], [0, 0], 100.0, trade_log(pnl=[5.0, 5.0], ret=[0.05, 0.05]))
    m = compute_metrics(only_wins, np.ones(2), start=0, periods_per_year=252, initial_cash=100.0)
    assert m["profit_factor"] is None and m["win_rate"] == 1.0
    only_losses = make_result([100.0, 90.0], [0, 0], 100.0, trade_log(pnl=[-5.0, 0.0], ret=[-0.05, 0.0]))
    m = compute_metrics(only_losses, np.ones(2), start=0, periods_per_year=252, initial_cash=100.0)
    assert m["profit_factor"] == 0.0 and m["win_rate"] == 0.0  # pnl == 0 is not a win


def test_degenerate_inputs_are_json_safe():
    # flat prices, no trades
    flat = make_result([100.0] * 5, [0] * 5, 100.0)
    m = compute_metrics(flat, np.full(5, 3.0), start=0, periods_per_year=252, initial_cash=100.0)
    json.dumps(m, allow_nan=False)
    assert m["sharpe_simple"] is None and m["volatility_ann"] == 0.0 and m["sortino"] is None
    assert m["max_drawdown"] == 0.0 and m["calmar"] is None and m["cagr"] == 0.0
    assert m["total_return"] == 0.0 and m["benchmark_return"] == 0.0 and m["exposure"] == 0.0
    # one bar
    one = make_result([99.0], [1], 100.0)
    m = compute_metrics(one, np.array([5.0]), start=0, periods_per_year=252, initial_cash=100.0)
    json.dumps(m, allow_nan=False)
    assert m["bars"] == 1 and m["sharpe_simple"] is None and m["volatility_ann"] == 0.0
    assert m["max_drawdown"] == pytest.approx(-0.01)
    # huge growth over few bars: CAGR overflows -> None, never Infinity
    boom = make_result([1e6, 1e12], [1, 1], 100.0)
    m = compute_metrics(boom, np.ones(2), start=0, periods_per_year=8760, initial_cash=100.0)
    json.dumps(m, allow_nan=False)
    assert m["cagr"] is None and m["calmar"] is None
    # constant non-zero returns: zero variance to rounding -> Sharpe undefined (null), not 1e15
    steady = make_result(100.0 * 1.01 ** np.arange(1, 30), [1] * 29, 100.0)
    m = compute_metrics(steady, np.ones(29), start=0, periods_per_year=252, initial_cash=100.0)
    assert m["sharpe_simple"] is None and m["sortino"] is None
    # equity wiped out (a short gone wrong)
    bust = make_result([50.0, -20.0, -30.0], [-1, -1, -1], 100.0)
    m = compute_metrics(bust, np.ones(3), start=0, periods_per_year=252, initial_cash=100.0)
    json.dumps(m, allow_nan=False)
    assert m["cagr"] == -1.0 and m["max_drawdown"] == pytest.approx(-1.3)


def test_input_checks():
    r = make_result([100.0, 101.0], [0, 0], 100.0)
    with pytest.raises(ConfigError, match="covers"):
        compute_metrics(r, np.ones(5), start=0, periods_per_year=252, initial_cash=100.0)
    with pytest.raises(ConfigError, match="periods_per_year"):
        compute_metrics(r, np.ones(2), start=0, periods_per_year=0, initial_cash=100.0)


@pytest.mark.parametrize("crypto, interval, expected", [
    (True, "1d", 365.0), (False, "1d", 252.0),
    (True, "1h", 365 * 24.0), (False, "1h", 252 * 6.5), (False, "60m", 252 * 6.5),
    (True, "1m", 365 * 1440.0), (False, "1m", 252 * 390.0), (False, "90m", 252 * 6.5 * 60 / 90),
    (True, "15m", 365 * 96.0), (False, "5m", 252 * 78.0), (True, "2m", 365 * 720.0), (False, "30m", 252 * 13.0),
    (True, "1wk", 365 / 7), (False, "1wk", 50.4), (True, "5d", 73.0), (False, "5d", 50.4),
    (True, "1mo", 12.0), (False, "3mo", 4.0),
])
def test_periods_per_year(crypto, interval, expected):
    assert periods_per_year(crypto, interval) == pytest.approx(expected, rel=1e-12)


def test_periods_per_year_unknown_interval():
    with pytest.raises(ConfigError, match="unknown interval '4h'"):
        periods_per_year(True, "4h")
    assert round(periods_per_year(True, "1wk"), 2) == 52.14


def test_looks_like_crypto():
    assert looks_like_crypto("ETH-USD") and looks_like_crypto("btc-usdt")
    assert not looks_like_crypto("^GSPC") and not looks_like_crypto("AAPL") and not looks_like_crypto("EURUSD=X")
    assert not looks_like_crypto("BRK-B")


def test_metrics_from_a_real_simulation_are_consistent():
    rng = np.random.default_rng(2)
    n = 600
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    entries, exits = rng.random(n) < 0.05, rng.random(n) < 0.05
    r = simulate(close, close, close, close, Signals(entries, exits), EngineConfig(), start=30)
    m = compute_metrics(r, close, start=30, periods_per_year=252, initial_cash=10_000.0)
    assert m["total_return"] == pytest.approx(r.equity[-1] / 10_000 - 1)
    assert m["trades"] == len(r.trades) > 0
    assert m["exposure"] == pytest.approx(np.mean(r.position != 0))
    assert m["sharpe_simple"] == pytest.approx(r.returns.mean() / r.returns.std(ddof=1) * math.sqrt(252))
    assert m["benchmark_return"] == pytest.approx(close[-1] / close[30] - 1)


@settings(max_examples=200, deadline=None)
@given(
    equity=st.lists(st.floats(min_value=-1e6, max_value=1e9, allow_nan=False), min_size=1, max_size=50),
    pnl=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=10),
    ppy=st.sampled_from([4.0, 12.0, 252.0, 365.0, 98280.0, 525600.0]),
)
def test_metrics_always_json_safe(equity, pnl, ppy):
    n = len(equity)
    eq = np.asarray(equity)
    prev = np.concatenate(([1000.0], eq[:-1]))
    with np.errstate(all="ignore"):
        rets = np.where(prev > 0, eq / prev - 1, 0.0)
    rng = np.random.default_rng(n)
    r = SimResult(equity=eq, position=rng.integers(-1, 2, n).astype(np.int8), returns=rets,
                  trades=trade_log(pnl=pnl, ret=np.asarray(pnl) / 1e6), open_position=0)
    m = compute_metrics(r, np.linspace(1, 2, n + 3), start=3, periods_per_year=ppy, initial_cash=1000.0)
    json.dumps(m, allow_nan=False)
    assert list(m) == list(METRIC_KEYS)
    assert all(v is None or type(v) in (int, float) for v in m.values())
    assert m["max_drawdown"] is not None and m["max_drawdown"] <= 0
    assert 0 <= m["exposure"] <= 1


def test_metrics_module_imports_no_heavy_module():
    code = ("import sys, quantlab.metrics; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'pandas', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(SRC)}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_flat_prices_through_the_engine(fill):
    n = 40
    close = np.full(n, 25.0)
    entries = np.zeros(n, bool)
    entries[[3, 20]] = True
    exits = np.zeros(n, bool)
    exits[[10, 30]] = True
    r = simulate(close, close, close, close, Signals(entries, exits), EngineConfig(fill=fill), start=2)
    m = compute_metrics(r, close, start=2, periods_per_year=252, initial_cash=10_000.0)
    json.dumps(m, allow_nan=False)
    assert m["trades"] == 2 and m["win_rate"] == 0.0 and m["profit_factor"] == 0.0  # fees and slippage only
    assert m["total_return"] < 0 and m["max_drawdown"] < 0 and m["benchmark_return"] == 0.0
    assert 0 < m["exposure"] < 1
    # no signal at all on one bar
    one = simulate(close[:1], close[:1], close[:1], close[:1], Signals(np.zeros(1, bool), np.zeros(1, bool)))
    m = compute_metrics(one, close[:1], start=0, periods_per_year=365, initial_cash=10_000.0)
    json.dumps(m, allow_nan=False)
    assert m["bars"] == 1 and m["total_return"] == 0.0 and m["sharpe_simple"] is None
    assert m["sortino"] is None and m["calmar"] is None and m["trades"] == 0


# ------------------------------------------------------------------ calendar from the timestamps
_STEP_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "90m": 5400, "1d": 86400,
                 "1wk": 7 * 86400}


@settings(max_examples=200, deadline=None)
@given(interval=st.sampled_from(sorted(_STEP_SECONDS)), n=st.integers(2, 400), weekdays_only=st.booleans(),
       first_day=st.integers(0, 20_000), drop=st.floats(0.0, 0.3))
def test_bar_calendar_infers_from_spacing_and_weekends(interval, n, weekdays_only, first_day, drop):
    step = _STEP_SECONDS[interval]
    t = first_day * 86400 + np.arange(n * 3, dtype=np.int64) * step
    if weekdays_only:
        t = t[(t // 86400 + 3) % 7 < 5]
    rng = np.random.default_rng(n)
    keep = rng.random(len(t)) >= drop  # some missing bars do not change the median spacing much
    keep[:2] = True
    t = t[keep][:n]
    if len(t) < 2 or np.median(np.diff(t)) > 1.5 * step and interval != "1d":
        return
    index = t.astype("datetime64[s]").astype("datetime64[ns]")
    weekday = (t // 86400 + 3) % 7
    all_week = bool((weekday == 5).any() and (weekday == 6).any())
    spacing = float(np.median(np.diff(t)))
    if interval == "1d" and spacing > 4 * 86400:
        return
    cal = bar_calendar(index, interval)
    assert cal["periods_per_year"] == periods_per_year(all_week, interval)
    assert cal["calendar"] == ("24/7" if all_week else "exchange")
    if weekdays_only:
        assert cal["calendar"] == "exchange"
    # the same bars declared with an interval far from their spacing are refused
    wrong = "1d" if step < 86400 / 2 else "1m"
    with pytest.raises(DataError, match=f"interval {wrong}"):
        bar_calendar(index, wrong)


def test_bar_calendar_edge_cases():
    one = np.array(["2020-01-04T00:00"], dtype="datetime64[ns]")  # a Saturday alone: not 24/7
    assert bar_calendar(one, "1d") == {"interval": "1d", "periods_per_year": 252.0, "calendar": "exchange",
                                       "median_spacing_seconds": None}
    hourly = np.arange(np.datetime64("2020-01-06T00:00"), np.datetime64("2020-01-09T00:00"),
                       np.timedelta64(1, "h")).astype("datetime64[ns]")
    with pytest.raises(DataError, match=r"1h apart .* interval 1h, but the request says interval 1d"):
        bar_calendar(hourly, "1d")
    with pytest.raises(ConfigError):
        bar_calendar(hourly, "7h")


def _calendar_by_every_bar(index, interval: str) -> dict:
    """bar_calendar as it was before its grid path: every bar's weekday, the median of every spacing."""
    from quantlab.metrics import calendar_of, is_all_week

    seconds = np.asarray(index).astype("datetime64[s]").astype(np.int64)
    spacing = float(np.median(np.diff(seconds))) if len(seconds) >= 2 else None
    return calendar_of(interval, is_all_week(seconds), spacing)


_GRID_STEPS_NS = [10**9, 60 * 10**9, 300 * 10**9, 3600 * 10**9, 4 * 3600 * 10**9, 86_400 * 10**9,
                  7 * 86_400 * 10**9, 30 * 86_400 * 10**9]
_I64 = np.iinfo(np.int64)


def _same_outcome(index, interval: str) -> None:
    def outcome(fn):
        try:
            return fn(index, interval)
        except DataError as exc:
            return str(exc)

    assert outcome(bar_calendar) == outcome(_calendar_by_every_bar)


@settings(max_examples=500, deadline=None)
@given(step=st.sampled_from(_GRID_STEPS_NS + [1, 999_999_999, 1_500_000_000]), n=st.integers(1, 400),
       interval=st.sampled_from(list(INTERVALS)), day=st.integers(-40_000, 40_000),
       offset=st.integers(0, 86_400 * 10**9 - 1),
       damage=st.sampled_from(["none"] * 4 + ["drop", "repeat", "swap", "nat", "nudge", "wider", "narrower"]),
       at=st.floats(0, 1), block=st.sampled_from([1, 7, 1 << 16]))
def test_bar_calendar_on_a_grid_is_the_every_bar_answer(step, n, interval, day, offset, damage, at, block):
    """bar_calendar's grid path (stamps first + k * step, a whole-second step: the step is the
    median, one search per Saturday and Sunday) answers exactly what every bar's weekday and the
    median of every spacing give, error messages included; stamps off such a grid (a bar missing,
    repeated, out of order, NaT, off by 1 ns, a tail spaced wider or narrower, a step of a
    fraction of a second) take the every-bar path. The spacings are checked a block at a time
    (metrics._BLOCK, here also 1 and 7 bars)."""
    import quantlab.metrics as metrics

    ns = day * 86_400 * 10**9 + offset + np.arange(n, dtype=np.int64) * step
    k = min(int(at * n), n - 1)
    if damage == "drop" and n > 2:
        ns = np.delete(ns, k)
    elif damage == "repeat":
        ns = np.insert(ns, k, ns[k])
    elif damage == "swap" and n > 1:
        ns[[k, k - 1]] = ns[[k - 1, k]]
    elif damage == "nat":
        ns[k] = _I64.min
    elif damage == "nudge":
        ns[k] += 1
    elif damage in ("wider", "narrower"):
        ns[k:] = ns[k] + np.arange(n - k) * (step * 2 if damage == "wider" else max(step // 2, 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_BLOCK", block)
        _same_outcome(ns.view("datetime64[ns]"), interval)


def test_bar_calendar_on_grids_around_each_weekend_hour():
    """Every start hour of a week, spans from one bar to a little over a week, hourly and daily."""
    monday = 4 * 86_400 * 10**9  # 1970-01-05
    for step in (3600 * 10**9, 86_400 * 10**9):
        for hour in range(0, 7 * 24, 5):
            for n in (1, 2, 3, 5, 13, 30, 47, 170, 200):
                stamps = (monday + hour * 3600 * 10**9 + np.arange(n, dtype=np.int64) * step).view("datetime64[ns]")
                _same_outcome(stamps, "1h")
                _same_outcome(stamps, "1d")


def test_bar_calendar_near_the_ends_of_datetime64():
    """Grids within days of int64's ends (a Tuesday and a Friday, so no weekend day's bounds overflow);
    a grid that is not strictly increasing is not one for the grid path."""
    from quantlab.metrics import _grid_step

    day = 86_400 * 10**9
    for ns in ([3 * day, 2 * day, day], [day, day, day], [0, day, 2 * day + 1], [_I64.min, _I64.min + 10**9]):
        assert _grid_step(np.array(ns, dtype=np.int64).view("datetime64[ns]")) is None
    assert _grid_step(np.array([1, day + 1, 2 * day + 1], dtype=np.int64).view("datetime64[ns]")) == 86_400
    for first in (_I64.max - 3 * day, _I64.max - day, _I64.min, _I64.min + 1, _I64.min + day):
        for step in (10**9, 3600 * 10**9):
            n = min(100, (_I64.max - first) // step + 1)
            _same_outcome((first + np.arange(n, dtype=np.int64) * step).view("datetime64[ns]"), "1h")


def test_a_1m_grid_over_two_years_takes_the_grid_path(monkeypatch):
    """A big run's bars (1m for ~2 years) never compute every bar's weekday."""
    import quantlab.metrics as metrics

    index = (np.datetime64("2020-01-01", "ns") + np.arange(1_000_820) * np.timedelta64(60, "s"))
    expected = _calendar_by_every_bar(index, "1m")
    monkeypatch.setattr(metrics, "is_all_week", lambda *a: pytest.fail("every bar's weekday computed"))
    assert bar_calendar(index, "1m") == expected == {"interval": "1m", "calendar": "24/7",
                                                     "periods_per_year": periods_per_year(True, "1m"),
                                                     "median_spacing_seconds": 60.0}


def test_run_stats_of_a_single_run_are_the_grid_kernels_sums():
    """RunStats.from_result keeps the sums sweep_kernel emits (margin calls included)."""
    from quantlab.engine import EngineConfig, Signals, simulate
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.metric_registry import RunStats, evaluate

    close = np.array([10.0, 10.0, 30.0, 40.0, 41.0, 42.0])
    exits = np.array([False, True, False, False, False, False])
    cfg = EngineConfig(allow_short=True, fee=0.0, fill="close")
    res = simulate(close, close, close, close, Signals(np.zeros(6, dtype=bool), exits), cfg)  # short at bar 1
    stats = RunStats.from_result(res, close, start=0, periods_per_year=252, initial_cash=cfg.initial_cash)
    assert res.margin_call is not None and stats.margin_calls.tolist() == [1.0]
    single = evaluate(stats)
    grid = evaluate_grid(close, close, close, close, "buy_and_hold", [{}], cfg, start=0, periods_per_year=252)
    assert list(single) == list(grid)
