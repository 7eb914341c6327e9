"""The sweep engine equals the single-run path, combo by combo, in every mode.

Reference for one combo (what ``run`` does for it)::

    compute_metrics(simulate(o, h, l, c, strategy.signals(o, h, l, c, params), cfg_for_combo,
                             start=start),
                    c[start:], start=0, periods_per_year=ppy, initial_cash=cfg.initial_cash)
"""

from __future__ import annotations

import dataclasses
import math
import os
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab import metric_registry
from quantlab.engine import EngineConfig, simulate, sweep
from quantlab.engine.sweep import ENGINE_OVERRIDES, evaluate_grid
from quantlab.errors import ConfigError, DataError
from quantlab.metrics import METRIC_KEYS, compute_metrics
from quantlab.strategies import REGISTRY, get_strategy

INT_KEYS = metric_registry.integer_names()


@contextmanager
def jit_mode(mode: str):
    old = os.environ.get("QUANTLAB_JIT")
    os.environ["QUANTLAB_JIT"] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("QUANTLAB_JIT", None)
        else:
            os.environ["QUANTLAB_JIT"] = old


def make_bars(n: int, seed: int, *, quantize: bool = False, flat: float = 0.0, vol: float = 0.01):
    """Seeded random-walk OHLC; ``quantize`` rounds to cents (ties between SMAs), ``flat`` is the
    share of bars repeating the previous close (windows of one repeated value)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    if flat:
        for t in np.flatnonzero(rng.random(n) < flat):
            if t:
                close[t] = close[t - 1]
    if quantize:
        close = np.maximum(np.round(close, 2), 0.01)
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, vol / 5, n - 1))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.004)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.004)
    return open_, high, low, close


def reference(bars, name, combo, cfg, start, ppy):
    over = {k: combo[k] for k in ENGINE_OVERRIDES if k in combo}
    params = {k: v for k, v in combo.items() if k not in over}
    c_cfg = dataclasses.replace(cfg, **over)
    strategy = get_strategy(name)
    result = simulate(*bars, strategy.signals(*bars, params), c_cfg, start=start)
    return compute_metrics(result, bars[3][start:], start=0, periods_per_year=ppy,
                           initial_cash=cfg.initial_cash)


def assert_matches_reference(got, bars, name, combos, cfg, start, ppy):
    assert list(got) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert got[key].shape == (len(combos),)
        assert got[key].dtype == (np.int64 if key in INT_KEYS else np.float64), key
    for i, combo in enumerate(combos):
        ref = reference(bars, name, combo, cfg, start, ppy)
        for key, want in ref.items():
            value = got[key][i]
            where = f"{name} combo {i} {combo} {key}: sweep {value!r} single-run {want!r}"
            if want is None:
                assert math.isnan(value), where
            elif key in INT_KEYS:
                assert value == want, where
            else:
                assert value == want or abs(value - want) <= 1e-9 * abs(want), where


def assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype
        assert np.array_equal(a[key], b[key], equal_nan=True), key


# ---------------------------------------------------------------------------- hypothesis
def combo_strategy(name: str):
    """Valid parameter dicts of ``name``, windows kept small (short random series)."""
    strategy = get_strategy(name)
    fields = {}
    for p in strategy.params:
        if p.type is int:
            lo = int(p.minimum if p.minimum is not None else 0)
            fields[p.name] = st.integers(lo, max(lo, min(int(p.maximum or 40), 40)))
        elif p.type is float:
            fields[p.name] = st.one_of(st.just(p.default), st.floats(p.minimum, p.maximum, allow_nan=False))
        else:
            fields[p.name] = st.booleans()

    def repair(params):  # the registered cross-parameter constraints, made to hold
        for lo, hi in (("fast", "slow"), ("exit_window", "entry_window")):
            if lo in params and hi in params and params[lo] > params[hi]:
                params[lo], params[hi] = params[hi], params[lo]
        if name == "sma_crossover" and params["fast"] == params["slow"]:
            params["slow"] += 1
        return params

    def valid(params):
        try:
            strategy.resolve_params(params)
        except ConfigError:
            return False
        return True

    return st.fixed_dictionaries(fields).map(repair).filter(valid)


@st.composite
def grid_case(draw):
    name = draw(st.sampled_from(sorted(REGISTRY)))
    n = draw(st.one_of(st.integers(1, 30), st.integers(150, 300)))
    bars = make_bars(n, draw(st.integers(0, 2**32 - 1)), quantize=draw(st.booleans()),
                     flat=draw(st.sampled_from([0.0, 0.0, 0.3, 0.9])),
                     vol=draw(st.sampled_from([0.002, 0.01, 0.05])))
    combos = draw(st.lists(combo_strategy(name), min_size=1, max_size=5))
    overrides = st.fixed_dictionaries({}, optional={
        "fee": st.floats(0.0, 0.02), "slippage_bps": st.floats(0.0, 100.0), "k_atr": st.floats(0.0, 2.0)})
    combos = [{**c, **draw(overrides)} if draw(st.booleans()) else c for c in combos]
    cfg = EngineConfig(
        fee=draw(st.floats(0.0, 0.01)),
        slippage_mode=draw(st.sampled_from(["fixed", "atr"])),
        slippage_bps=draw(st.floats(0.0, 50.0)),
        k_atr=draw(st.floats(0.0, 1.0)),
        fill=draw(st.sampled_from(["next_open", "close"])),
        allow_short=draw(st.booleans()),
        initial_cash=draw(st.sampled_from([10_000.0, 1.0, 123456.789])),
    )
    start = draw(st.one_of(st.just(0), st.integers(0, min(n - 1, 40)), st.integers(0, n - 1)))
    ppy = draw(st.sampled_from([252.0, 365.0, 52.0, 98280.0]))
    threads = draw(st.sampled_from([1, 2]))
    return bars, name, combos, cfg, start, ppy, threads


@pytest.mark.parametrize("mode", ["never", "always"])
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=grid_case())
def test_grid_equals_single_run_path(mode, case):
    bars, name, combos, cfg, start, ppy, threads = case
    with jit_mode(mode):
        got = evaluate_grid(*bars, name, combos, cfg, start=start, periods_per_year=ppy, threads=threads)
        assert_matches_reference(got, bars, name, combos, cfg, start, ppy)


# ---------------------------------------------------------------------------- fixed cases
SMA_GRID = [{"fast": f, "slow": s} for f in (1, 2, 5, 13) for s in (3, 20, 50, 120) if f < s]
RSI_GRID = [{"rsi_buy_max": b, "rsi_sell_min": s, "cooldown_days": cd, "ma_window": mw, "rsi_window": rw}
            for b, s in ((40.0, 70.0), (60.0, 75.0)) for cd in (0, 4) for mw in (5, 30) for rw in (2, 14)]
GRIDS = {
    "sma_crossover": SMA_GRID,
    "rsi_ma_cross_v2": RSI_GRID,
    "bollinger_reversion": [{"window": w, "num_std": k} for w in (5, 20) for k in (0.5, 2.0)],
    "donchian_breakout": [{"entry_window": e, "exit_window": x} for e in (10, 30) for x in (5, 10)],
    "buy_and_hold": [{}],
}
CFGS = [
    EngineConfig(),
    EngineConfig(fee=0.001, slippage_bps=0.0, fill="close"),
    EngineConfig(allow_short=True, slippage_mode="atr", k_atr=0.3, fill="close"),
]


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_longer_series_every_strategy_both_modes(name):
    bars = make_bars(3_000, 7, quantize=True)
    for cfg in CFGS:
        results = []
        for mode in ("never", "always"):
            with jit_mode(mode):
                for threads in (1, 2):
                    got = evaluate_grid(*bars, name, GRIDS[name], cfg, start=150, periods_per_year=252,
                                        threads=threads)
                    results.append(got)
        for other in results[1:]:
            assert_same(results[0], other)
        with jit_mode("always"):
            assert_matches_reference(results[0], bars, name, GRIDS[name], cfg, 150, 252.0)


def test_threads_do_not_change_results_on_a_bigger_grid():
    bars = make_bars(20_000, 11)
    combos = [{"fast": f, "slow": s} for f in range(2, 40, 3) for s in range(10, 200, 15) if f < s]
    with jit_mode("always"):
        one = evaluate_grid(*bars, "sma_crossover", combos, CFGS[1], start=200, periods_per_year=252)
        two = evaluate_grid(*bars, "sma_crossover", combos, CFGS[1], start=200, periods_per_year=252, threads=2)
        assert_same(one, two)
        picked = [0, len(combos) // 2, len(combos) - 1]
        sub = {k: v[picked] for k, v in one.items()}
        assert_matches_reference(sub, bars, "sma_crossover", [combos[i] for i in picked], CFGS[1], 200, 252.0)
    assert (one["trades"] > 0).all()


def test_auto_mode_picks_a_path_and_agrees(monkeypatch):
    bars = make_bars(400, 3)
    with jit_mode("never"):
        want = evaluate_grid(*bars, "sma_crossover", SMA_GRID, CFGS[0], start=0, periods_per_year=252)
    monkeypatch.delenv("QUANTLAB_JIT", raising=False)
    got = evaluate_grid(*bars, "sma_crossover", SMA_GRID, CFGS[0], start=0, periods_per_year=252)
    assert_same(want, got)


def test_per_combo_engine_overrides():
    bars = make_bars(1_500, 5)
    base = {"fast": 5, "slow": 30}
    combos = [base, {**base, "fee": 0.0}, {**base, "fee": 0.01, "slippage_bps": 40.0},
              {**base, "slippage_bps": 0.0}, {**base, "k_atr": 2.0}]
    for cfg in (EngineConfig(), EngineConfig(slippage_mode="atr", allow_short=True)):
        for mode in ("never", "always"):
            with jit_mode(mode):
                got = evaluate_grid(*bars, "sma_crossover", combos, cfg, start=30, periods_per_year=252)
                assert_matches_reference(got, bars, "sma_crossover", combos, cfg, 30, 252.0)
        tr = got["total_return"]
        assert tr[1] > tr[0] > tr[2]  # costs matter, per combo
        if cfg.slippage_mode == "fixed":
            assert tr[3] > tr[0] and tr[4] == tr[0]  # k_atr is unused in fixed mode
        else:
            assert tr[4] != tr[0] and tr[3] == tr[0]  # slippage_bps is unused in atr mode
    with pytest.raises(ConfigError, match="fee"):
        evaluate_grid(*bars, "sma_crossover", [{**base, "fee": 0.9}], EngineConfig(), start=0,
                      periods_per_year=252)


def test_empty_grid_gives_empty_arrays():
    bars = make_bars(50, 1)
    got = evaluate_grid(*bars, "sma_crossover", [], EngineConfig(), start=0, periods_per_year=252)
    assert list(got) == list(METRIC_KEYS)
    for key, value in got.items():
        assert value.shape == (0,)
        assert value.dtype == (np.int64 if key in INT_KEYS else np.float64)
    assert list(sweep.empty_result()) == list(METRIC_KEYS)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_none_metrics_become_nan(mode):
    n = 300
    t = np.arange(n)
    path = 100.0 * np.where(t < 50, 0.999 ** t, 0.999 ** 50 * 1.001 ** (t - 50))  # dip, then rise
    bars = (path, path * 1.001, path * 0.999, path)
    combos = [{"fast": 2, "slow": 5}, {"fast": 10, "slow": 500}]  # long to the end; never in
    cfg = EngineConfig(fee=0.0, slippage_bps=0.0, fill="close")
    with jit_mode(mode):
        got = evaluate_grid(*bars, "sma_crossover", combos, cfg, start=0, periods_per_year=252)
    assert_matches_reference(got, bars, "sma_crossover", combos, cfg, 0, 252.0)
    assert got["trades"].tolist() == [1, 0]  # a position open at the end counts as a trade
    for key in ("win_rate", "profit_factor", "avg_trade_return", "sortino", "calmar"):
        assert np.isnan(got[key][1]), key  # compute_metrics: None
    assert np.isnan(got["profit_factor"][0])  # no losing trade
    assert got["exposure"][0] > 0.7 and got["exposure"][1] == 0.0 and got["total_return"][0] > 0.1
    assert np.isnan(got["sharpe_simple"][1]) and got["max_drawdown"][1] == 0.0  # undefined: null
    assert got["bars"].tolist() == [n, n]


def test_rsi_indicator_tables_in_blocks(monkeypatch):
    bars = make_bars(2_000, 9)
    cfg = CFGS[0]
    with jit_mode("always"):
        whole = evaluate_grid(*bars, "rsi_ma_cross_v2", RSI_GRID, cfg, start=40, periods_per_year=252)
        monkeypatch.setattr(sweep, "TABLE_BUDGET_BYTES", 1)  # two indicator rows at a time
        blocks = evaluate_grid(*bars, "rsi_ma_cross_v2", RSI_GRID, cfg, start=40, periods_per_year=252,
                               threads=2)
    assert_same(whole, blocks)


def test_errors():
    bars = make_bars(100, 2)
    cfg = EngineConfig()
    call = lambda **kw: evaluate_grid(*bars, kw.pop("name", "sma_crossover"), kw.pop("combos", SMA_GRID),
                                      cfg, **{"start": 0, "periods_per_year": 252, **kw})
    with pytest.raises(ConfigError, match="start"):
        call(start=-1)
    with pytest.raises(DataError, match="no bar left"):
        call(start=100)
    with pytest.raises(ConfigError, match="threads"):
        call(threads=0)
    with pytest.raises(ConfigError, match="periods_per_year"):
        call(periods_per_year=0)
    with pytest.raises(ConfigError, match="unknown strategy"):
        call(name="nope")
    with pytest.raises(ConfigError, match="slow"):
        call(combos=[{"fast": 3, "slow": 0}])
    bad = list(bars)
    bad[3] = bad[3].copy()
    bad[3][5] = np.nan
    with pytest.raises(DataError, match="close"):
        evaluate_grid(*bad, "sma_crossover", SMA_GRID, cfg, start=0, periods_per_year=252)


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_kept_returns_are_the_single_run_returns(name, monkeypatch):
    """``keep_returns``: row c is combo c's per-bar net returns, as ``simulate`` gives them (float32),
    in both modes, over threads and over indicator-table blocks; the metrics do not change."""
    bars = make_bars(800, 3, quantize=True)
    cfg = CFGS[2]
    monkeypatch.setattr(sweep, "TABLE_BUDGET_BYTES", 1)  # rsi_ma_cross_v2: blocks of combos
    strategy = get_strategy(name)
    for mode in ("never", "always"):
        with jit_mode(mode):
            plain = evaluate_grid(*bars, name, GRIDS[name], cfg, start=120, periods_per_year=252, threads=2)
            got, returns = evaluate_grid(*bars, name, GRIDS[name], cfg, start=120, periods_per_year=252,
                                         threads=2, keep_returns=True)
        assert_same(plain, got)
        assert returns.dtype == np.float32 and returns.shape == (len(GRIDS[name]), 800 - 120)
        for c, combo in enumerate(GRIDS[name]):
            res = simulate(*bars, strategy.signals(*bars, combo), cfg, start=120)
            np.testing.assert_array_equal(returns[c], np.asarray(res.returns, dtype=np.float32))
