"""Strategy registry, parameter resolution, indicators and signals on crafted prices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quantlab.engine import Signals
from quantlab.engine import indicators as ind
from quantlab.errors import ConfigError, StrategyError
from quantlab.strategies import (
    DEFAULT_STRATEGY,
    REGISTRY,
    Strategy,
    describe_strategies,
    get_strategy,
)


@pytest.fixture(params=["never", "always"])
def jit_mode(request, monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", request.param)
    return request.param


def random_walk(n, seed=0, vol=0.02):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = close * np.exp(rng.normal(0, vol / 4, n))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.01)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.01)
    return open_, high, low, close


def where(mask):
    return np.flatnonzero(mask).tolist()


# ------------------------------------------------------------------------------------ registry
def test_registry_and_lookup():
    assert set(REGISTRY) == {"rsi_ma_cross_v2", "sma_crossover", "bollinger_reversion",
                             "donchian_breakout", "buy_and_hold", "expr"}
    assert DEFAULT_STRATEGY == "rsi_ma_cross_v2"
    assert get_strategy("sma_crossover").name == "sma_crossover"
    with pytest.raises(ConfigError) as err:
        get_strategy("sma_cross")
    msg = str(err.value)
    assert "did you mean 'sma_crossover'?" in msg and "buy_and_hold" in msg and "\n" not in msg
    assert err.value.exit_code == 2


def test_describe_strategies_is_json_safe_schema_material():
    described = describe_strategies()
    json.dumps(described, allow_nan=False)
    by_name = {d["name"]: d for d in described}
    rsi = {p["name"]: p for p in by_name["rsi_ma_cross_v2"]["params"]}
    assert list(rsi) == ["rsi_buy_max", "rsi_sell_min", "cooldown_days", "ma_window", "rsi_window"]
    assert rsi["rsi_buy_max"] == {"name": "rsi_buy_max", "type": "number", "default": 60.0, "minimum": 0.0,
                                  "maximum": 100.0, "description": rsi["rsi_buy_max"]["description"]}
    assert rsi["cooldown_days"]["type"] == "integer" and rsi["cooldown_days"]["default"] == 0
    assert (rsi["ma_window"]["default"], rsi["rsi_window"]["default"], rsi["rsi_sell_min"]["default"]) == (20, 14, 75.0)
    assert by_name["buy_and_hold"]["params"] == []
    assert "fast < slow" in by_name["sma_crossover"]["constraints"]
    assert [p["name"] for p in by_name["expr"]["params"]] == ["entry", "exit", "short_entry", "short_exit"]
    assert by_name["expr"]["additional_params"]["type"] == "number" and by_name["expr"]["language"]["grammar"]
    for d in described:
        assert d["description"]
        for p in d["params"]:
            if d["name"] == "expr":  # expressions (strings, required, no default) plus free numeric names
                assert p["type"] == "string" and p["default"] is None and p["description"]
                continue
            assert p["type"] in ("integer", "number", "boolean") and p["description"]
            assert p["minimum"] is None or p["minimum"] <= p["default"] <= p["maximum"]


# --------------------------------------------------------------------------- resolve_params
def test_resolve_defaults_and_none():
    s = get_strategy("rsi_ma_cross_v2")
    defaults = {"rsi_buy_max": 60.0, "rsi_sell_min": 75.0, "cooldown_days": 0, "ma_window": 20, "rsi_window": 14}
    assert s.resolve_params({}) == defaults
    assert s.resolve_params(None) == defaults
    assert s.resolve_params({"rsi_buy_max": None, "cooldown_days": None}) == defaults


def test_resolve_coercions():
    s = get_strategy("rsi_ma_cross_v2")
    p = s.resolve_params({"cooldown_days": 5.0, "rsi_buy_max": 55, "ma_window": np.int64(30)})
    assert p["cooldown_days"] == 5 and type(p["cooldown_days"]) is int
    assert p["rsi_buy_max"] == 55.0 and type(p["rsi_buy_max"]) is float
    assert p["ma_window"] == 30 and type(p["ma_window"]) is int
    assert s.resolve_params(p) == p  # idempotent


def test_resolve_unknown_key_suggests_closest():
    s = get_strategy("rsi_ma_cross_v2")
    with pytest.raises(ConfigError) as err:
        s.resolve_params({"rsi_buy_mx": 50})
    msg = str(err.value)
    assert "'rsi_buy_mx'" in msg and "did you mean 'rsi_buy_max'?" in msg
    assert "rsi_sell_min" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="valid parameters: none"):
        get_strategy("buy_and_hold").resolve_params({"window": 3})


@pytest.mark.parametrize("given, pattern", [
    ({"cooldown_days": 5.5}, r"cooldown_days.*whole number.*5\.5"),
    ({"cooldown_days": True}, r"cooldown_days.*integer"),
    ({"rsi_buy_max": False}, r"rsi_buy_max.*number"),
    ({"rsi_buy_max": "60"}, r"rsi_buy_max.*number"),
    ({"rsi_buy_max": float("nan")}, r"rsi_buy_max.*finite"),
    ({"rsi_buy_max": 150}, r"rsi_buy_max.*150.*out of range \[0, 100\]"),
    ({"rsi_sell_min": -1.5}, r"rsi_sell_min.*-1\.5.*out of range \[0, 100\]"),
    ({"ma_window": 1}, r"ma_window.*1.*out of range \[2, 1000\]"),
    ({"cooldown_days": -1.0}, r"cooldown_days.*out of range"),
])
def test_resolve_rejects(given, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        get_strategy("rsi_ma_cross_v2").resolve_params(given)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_resolve_rejects_non_mapping_and_bool_param_rules():
    with pytest.raises(ConfigError, match="object"):
        get_strategy("sma_crossover").resolve_params([("fast", 3)])
    from quantlab.strategies.base import Param

    class Toy(Strategy):
        name = "toy"
        description = "toy"
        params = (Param("flag", bool, False, description="a flag"),)

    assert Toy().resolve_params({"flag": True}) == {"flag": True}
    assert Toy().resolve_params({"flag": np.bool_(True)}) == {"flag": True}
    for bad in (1, 0, "true", 1.0):
        with pytest.raises(ConfigError, match="boolean"):
            Toy().resolve_params({"flag": bad})
    assert Toy().describe()["params"][0]["type"] == "boolean"


def test_cross_param_constraints():
    with pytest.raises(ConfigError, match="fast < slow"):
        get_strategy("sma_crossover").resolve_params({"fast": 50, "slow": 50})
    with pytest.raises(ConfigError, match="fast < slow"):
        get_strategy("sma_crossover").resolve_params({"fast": 60})
    assert get_strategy("sma_crossover").resolve_params({"fast": 5, "slow": 6.0}) == {"fast": 5, "slow": 6}
    with pytest.raises(ConfigError, match="exit_window <= entry_window"):
        get_strategy("donchian_breakout").resolve_params({"entry_window": 5, "exit_window": 8})


def test_warmup_bars():
    assert get_strategy("rsi_ma_cross_v2").warmup_bars({}) == 20
    assert get_strategy("rsi_ma_cross_v2").warmup_bars({"rsi_window": 40, "ma_window": 5}) == 39
    assert get_strategy("sma_crossover").warmup_bars({"fast": 3, "slow": 7}) == 7
    assert get_strategy("bollinger_reversion").warmup_bars({}) == 20
    assert get_strategy("donchian_breakout").warmup_bars({"entry_window": 30, "exit_window": 12}) == 30
    assert get_strategy("buy_and_hold").warmup_bars({}) == 0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_signal_before_warmup_and_outputs_well_formed(name, jit_mode):
    s = get_strategy(name)
    o, h, lo, c = random_walk(400, seed=3, vol=0.03)
    # expr has no defaults: entry and exit are required
    p = s.resolve_params({"entry": "crossed_above(close, sma(close, w))", "exit": "crossed_below(close, sma(close, w))",
                          "w": 20} if name == "expr" else {})
    sig = s.signals(o, h, lo, c, p)
    assert isinstance(sig, Signals)
    assert sig.entries.dtype == bool and sig.exits.dtype == bool and sig.entries.shape == (400,)
    w = s.warmup_bars(p)
    if name != "buy_and_hold":
        assert not sig.entries[:w].any() and not sig.exits[:w].any()
        assert sig.entries[w:].any() and sig.exits[w:].any()


def test_signals_errors():
    s = get_strategy("sma_crossover")
    with pytest.raises(StrategyError, match="equal length"):
        s.signals(np.ones(5), np.ones(5), np.ones(5), np.ones(6), {})
    with pytest.raises(ConfigError):
        s.signals(np.ones(5), np.ones(5), np.ones(5), np.ones(5), {"fast": 0})

    class Broken(Strategy):
        name = "broken"
        description = "raises"

        def compute(self, open_, high, low, close, params):
            return Signals(close > {}, close > 0)

    with pytest.raises(StrategyError, match="broken.*TypeError") as err:
        Broken().signals(np.ones(3), np.ones(3), np.ones(3), np.ones(3), {})
    assert err.value.exit_code == 4

    class Malformed(Strategy):
        name = "malformed"
        description = "wrong dtype"

        def compute(self, open_, high, low, close, params):
            return Signals(close, close > 0)

    with pytest.raises(StrategyError, match="malformed entries"):
        Malformed().signals(np.ones(3), np.ones(3), np.ones(3), np.ones(3), {})


# ----------------------------------------------------------------------------------- indicators
def reference_rsi(close, window):
    """The original's RSI (ta library): pandas EWM of clipped diffs, first diff counted as 0."""
    delta = pd.Series(close).diff()
    up = delta.where(delta > 0, 0.0)
    down = -delta.where(delta < 0, 0.0)
    up_avg = up.ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    down_avg = down.ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    rsi = 100 - 100 / (1 + up_avg / down_avg)
    return np.where(down_avg == 0, 100.0, rsi)


@pytest.mark.parametrize("window", [2, 14, 30])
def test_rsi_matches_pandas_reference(window, jit_mode):
    _, _, _, close = random_walk(600, seed=window)
    close[200:240] = close[200]  # flat: down average decays but stays > 0
    close[400:] = close[399] + np.arange(200) * 0.1  # only rises: down average decays toward 0
    got = ind.rsi(close, window)
    ref = reference_rsi(close, window)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got[: window - 1]).all() and not np.isnan(got[window - 1:]).any()
    np.testing.assert_allclose(got[window - 1:], ref[window - 1:], rtol=1e-10, atol=1e-9)
    assert ((got[window - 1:] >= 0) & (got[window - 1:] <= 100)).all()


def test_rsi_edge_cases():
    flat = np.full(30, 50.0)
    assert np.all(ind.rsi(flat, 14)[13:] == 100.0)  # no down move at all -> 100
    falling = 100.0 - np.arange(30.0)
    assert np.all(ind.rsi(falling, 14)[13:] == 0.0)


def test_other_indicators_against_naive_versions(jit_mode):
    o, h, lo, c = random_walk(300, seed=9)
    c[50:80] = c[50]
    for w in (1, 3, 20):
        naive = np.array([c[t - w + 1: t + 1].mean() if t >= w - 1 else np.nan for t in range(len(c))])
        np.testing.assert_allclose(ind.sma(c, w), naive, rtol=1e-12, equal_nan=True)
        hi = np.array([h[t - w + 1: t + 1].max() if t >= w - 1 else np.nan for t in range(len(h))])
        lw = np.array([lo[t - w + 1: t + 1].min() if t >= w - 1 else np.nan for t in range(len(lo))])
        np.testing.assert_array_equal(ind.rolling_max(h, w), hi)
        np.testing.assert_array_equal(ind.rolling_min(lo, w), lw)
    assert np.all(ind.sma(c, 20)[69:80] == c[50])  # flat window: exact, not rounding noise
    for w, ddof in ((2, 0), (20, 0), (20, 1)):
        mean, std = ind.rolling_mean_std(c, w, ddof)
        windows = [c[t - w + 1: t + 1] for t in range(w - 1, len(c))]
        naive_mean = np.array([np.nan] * (w - 1) + [x.mean() for x in windows])
        naive_std = np.array([np.nan] * (w - 1) + [x.std(ddof=ddof) for x in windows])
        np.testing.assert_allclose(mean, naive_mean, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(std, naive_std, rtol=1e-9, atol=1e-12, equal_nan=True)
    # a flat stretch has exactly zero deviation (pandas' rolling std leaves ~3e-7 of noise here)
    flat_mean, flat_std = ind.rolling_mean_std(c, 20)
    assert np.all(flat_std[69:80] == 0.0) and np.all(flat_mean[69:80] == c[50])
    span = 10
    np.testing.assert_allclose(ind.ema(c, span), pd.Series(c).ewm(span=span, adjust=False, min_periods=span)
                               .mean().to_numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ind.wilder(c, 14), pd.Series(c).ewm(alpha=1 / 14, adjust=False, min_periods=14)
                               .mean().to_numpy(), rtol=1e-12, equal_nan=True)
    # ATR: Wilder seed = mean of the first 14 true ranges, then (prev*13 + tr)/14
    prev = np.concatenate(([np.nan], c[:-1]))
    tr = np.nanmax(np.vstack([h - lo, np.abs(h - prev), np.abs(lo - prev)]), axis=0)
    expected = np.full(len(c), np.nan)
    expected[13] = tr[:14].mean()
    for t in range(14, len(c)):
        expected[t] = (expected[t - 1] * 13 + tr[t]) / 14
    np.testing.assert_allclose(ind.atr(h, lo, c, 14), expected, rtol=1e-12, equal_nan=True)
    filled = ind.atr(h, lo, c, 14, fill_warmup=True)
    np.testing.assert_allclose(filled[:13], np.cumsum(tr[:13]) / np.arange(1, 14), rtol=1e-12)
    np.testing.assert_array_equal(filled[13:], ind.atr(h, lo, c, 14)[13:])


def test_crossings_and_shift():
    a = np.array([1.0, 2.0, 3.0, 2.0, 2.0, 3.0, np.nan, 3.0])
    b = np.full(8, 2.0)
    assert where(ind.crossed_above(a, b)) == [2, 5]  # 2 -> 3 crosses; touching 2 is not above
    assert where(ind.crossed_below(a, b)) == []  # never strictly below after being >=
    assert where(ind.crossed_below(np.array([3.0, 2.0, 1.0]), 2.0)) == [2]
    np.testing.assert_array_equal(ind.shift(np.array([1.0, 2.0, 3.0]), 1), [np.nan, 1.0, 2.0])


# ------------------------------------------------------------------------------------ signals
def test_rsi_ma_cross_v2_on_crafted_prices(jit_mode):
    s = get_strategy("rsi_ma_cross_v2")
    close = np.array([10.0, 9, 8, 7, 6, 8, 10, 9, 7, 5, 6, 8, 9])
    # MA(3): t2 9, t3 8, t4 7, t5 7, t6 8, t7 9, t8 8.67, t9 7, t10 6, t11 6.33, t12 7.67
    # above the MA at 5, 6, 11, 12 (t7: close == MA, neither); below from 8 to 10
    o = h = lo = close
    base = {"ma_window": 3, "rsi_window": 2}
    sig = s.signals(o, h, lo, close, {**base, "rsi_buy_max": 100.0, "rsi_sell_min": 100.0})
    assert where(sig.entries) == [5, 11]
    assert where(sig.exits) == [8]
    assert sig.cooldown == 0
    # the RSI filter, by hand (alpha 1/2): at 5 up 1, down 0.46875 -> 68.09; at 11 up 1.296875,
    # down 0.41357 -> 75.82; at 6 -> 86.49 and at 12 -> 84.74
    rsi = ind.rsi(close, 2)
    np.testing.assert_allclose(rsi[[5, 6, 11, 12]], [100 - 100 / (1 + 1 / 0.46875),
                                                     100 - 100 / (1 + 1.5 / 0.234375),
                                                     100 - 100 / (1 + 1.296875 / 0.4135742187500),
                                                     100 - 100 / (1 + 1.1484375 / 0.20678710937500)], rtol=1e-12)
    sig = s.signals(o, h, lo, close, {**base, "rsi_buy_max": 70.0, "rsi_sell_min": 100.0})
    assert where(sig.entries) == [5]
    # exits also when RSI > rsi_sell_min, but only where the MA cross is defined (t >= 3)
    sig = s.signals(o, h, lo, close, {**base, "rsi_buy_max": 70.0, "rsi_sell_min": 80.0, "cooldown_days": 4})
    assert where(sig.exits) == [6, 8, 12]
    assert sig.cooldown == 4


def test_rsi_ma_cross_v2_matches_original_definition_on_random_data(jit_mode):
    o, h, lo, c = random_walk(1500, seed=21)
    s = get_strategy("rsi_ma_cross_v2")
    sig = s.signals(o, h, lo, c, {})
    frame = pd.DataFrame({"close": c})
    frame["rsi"] = reference_rsi(c, 14)
    frame["ma20"] = frame["close"].rolling(20).mean()
    prev_close, prev_ma = frame["close"].shift(1), frame["ma20"].shift(1)
    cross_up = (frame["close"] > frame["ma20"]) & (prev_close <= prev_ma)
    cross_down = (frame["close"] < frame["ma20"]) & (prev_close >= prev_ma)
    buy = cross_up & (frame["rsi"] < 60.0)
    sell = cross_down | (frame["rsi"] > 75.0)
    valid = frame["ma20"].notna() & prev_ma.notna() & frame["rsi"].notna()
    assert np.array_equal(sig.entries, (buy & valid).to_numpy())
    assert np.array_equal(sig.exits, (sell & valid).to_numpy())
    assert sig.entries.sum() > 10 and sig.exits.sum() > 10


def test_sma_crossover_on_crafted_prices(jit_mode):
    close = np.array([5.0, 4, 3, 4, 6, 7, 5, 3, 2, 4])
    # SMA2: -, 4.5, 3.5, 3.5, 5, 6.5, 6, 4, 2.5, 3; SMA3: -, -, 4, 3.67, 4.33, 5.67, 6, 5, 3.33, 3
    sig = get_strategy("sma_crossover").signals(close, close, close, close, {"fast": 2, "slow": 3})
    assert where(sig.entries) == [4]  # 3.5 <= 3.67 then 5 > 4.33
    assert where(sig.exits) == [7]  # 6 >= 6 then 4 < 5
    assert sig.cooldown == 0


def test_bollinger_reversion_on_crafted_prices(jit_mode):
    close = np.array([10.0, 10, 10, 10, 10, 7, 8, 10.5, 11, 11])
    sig = get_strategy("bollinger_reversion").signals(close, close, close, close, {"window": 4, "num_std": 1.0})
    # t5: window [10,10,10,7]: mean 9.25, std 1.299 -> lower 7.95 > 7, previous bar 10 >= lower 10
    assert where(sig.entries) == [5]
    # middle: t6 [10,10,7,8] 8.75 (8 below), t7 [10,7,8,10.5] 8.875 (10.5 above) -> exit at 7
    assert where(sig.exits) == [7]


def test_donchian_breakout_on_crafted_prices(jit_mode):
    close = np.array([10.0, 11, 10, 10.5, 11.5, 11, 10, 9, 9.5, 12])
    high = close + 0.2
    low = close - 0.2
    sig = get_strategy("donchian_breakout").signals(close, high, low, close,
                                                    {"entry_window": 3, "exit_window": 2})
    # highs of the 3 previous bars at t4: max(11.2, 10.2, 10.7) = 11.2 < 11.5 -> breakout
    # t9: max(10.2, 9.2, 9.7) = 10.2 < 12 -> breakout
    assert where(sig.entries) == [4, 9]
    # lows of the 2 previous bars: t6 min(11.3, 10.8) = 10.8 > 10 -> exit; t7 min(10.8, 9.8) > 9
    assert where(sig.exits) == [6, 7]


def test_buy_and_hold_signals():
    c = np.linspace(10, 20, 7)
    sig = get_strategy("buy_and_hold").signals(c, c, c, c, {})
    assert sig.entries.all() and not sig.exits.any() and sig.cooldown == 0


def test_plugins_register_through_env(tmp_path, monkeypatch):
    import quantlab.strategies as registry

    (tmp_path / "ql_test_plugin.py").write_text(
        "from quantlab.strategies import Strategy, Signals, register\n"
        "import numpy as np\n"
        "@register\n"
        "class Always(Strategy):\n"
        "    name = 'always_long_test'\n"
        "    description = 'test plugin'\n"
        "    def compute(self, open_, high, low, close, params):\n"
        "        return Signals(np.ones(len(close), bool), np.zeros(len(close), bool))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("QUANTLAB_PLUGINS", "ql_test_plugin")
    try:
        s = get_strategy("always_long_test")
        assert s.signals(np.ones(3), np.ones(3), np.ones(3), np.ones(3)).entries.all()
        assert "always_long_test" in {d["name"] for d in describe_strategies()}
        with pytest.raises(ConfigError, match="already registered"):
            registry.register(type("Clash", (Strategy,), {"name": "sma_crossover", "description": "x"}))
    finally:
        registry.REGISTRY.pop("always_long_test", None)
    monkeypatch.setenv("QUANTLAB_PLUGINS", "no_such_module_ql")
    with pytest.raises(ConfigError, match="no_such_module_ql"):
        get_strategy("sma_crossover")


@pytest.mark.parametrize("strategy, loaded", [("rsi_ma_cross_v2", False), ("expr", True)])
def test_the_expression_language_is_imported_only_for_expr_requests(tmp_path, strategy, loaded):
    """The run planner (cold path) imports strategies.expr only when the request names it."""
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    params = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": strategy}
    if strategy == "expr":
        params["strategy_params"] = {"entry": "close > sma(close, 5)", "exit": "close < sma(close, 5)"}
    code = (f"import sys; sys.path.insert(0, {str(src)!r}); from quantlab.commands.run.plan import plan_run; "
            f"plan_run({params!r}, request_id=None, warnings=[], origin='json', claim=False); "
            "print('quantlab.strategies.expr' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QUANTLAB_OUTPUTS_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(loaded)
    assert "expr" in REGISTRY and get_strategy("expr").name == "expr"  # listed all along
