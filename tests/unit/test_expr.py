"""The expression language (strategy 'expr'): parser, compiler, functions, cache, safety."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.engine import EngineConfig
from quantlab.engine import indicators as ind
from quantlab.engine.sweep import evaluate_grid
from quantlab.errors import ConfigError
from quantlab.strategies import get_strategy
from quantlab.strategies.expr import compiler
from quantlab.strategies.expr.compiler import compile_expr, evaluate, evaluate_condition
from quantlab.strategies.expr.functions import FUNCTIONS
from quantlab.strategies.expr.parser import MAX_LENGTH, ExprError, parse

EXPR = get_strategy("expr")
CROSS = {"entry": "crossed_above(sma(close, fast), sma(close, slow))",
         "exit": "crossed_below(sma(close, fast), sma(close, slow))"}


def walk(n=600, seed=1):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.01)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.01)
    volume = rng.integers(1_000, 10_000, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


BARS = walk()


def value(text, **params):
    return evaluate(compile_expr(text, params), BARS)


# ------------------------------------------------------------------------------------- parser
def test_precedence_and_associativity():
    assert parse("1 - 2 - 3") == ("bin", 6, "-", ("bin", 2, "-", ("num", 0, 1.0), ("num", 4, 2.0)), ("num", 8, 3.0))
    tree = parse("not a < b + c * d and e > 1 or f < 2")
    assert tree[2] == "or" and tree[3][2] == "and" and tree[3][3][0] == "not"
    assert tree[3][3][2][2] == "<" and tree[3][3][2][4][2] == "+" and tree[3][3][2][4][4][2] == "*"
    assert value("2 + 3 * 4 - 10 / 5 - -1") == 13.0
    assert value("(2 + 3) * 4") == 20.0


@pytest.mark.parametrize("text, message, column", [
    ("sma(close, fats) > 1", "unknown name 'fats' (did you mean 'fast'?)", 12),
    ("smaa(close, 3) > 1", "unknown function 'smaa' (did you mean 'sma'?)", 1),
    ("close >", "unexpected end of expression", 8),
    ("close > 1 1", "unexpected '1'", 11),
    ("a < b < c", "chained comparisons", 7),
    ("close.x", "unexpected character '.'", 6),
    ("sma(close) > 1", "sma() takes 2 arguments, got 1", 1),
    ("sma(close, 2.5) > 1", "window must be a whole number", 12),
    ("sma(close, close) > 1", "must be a constant", 12),
    ("close + (close > 1) > 1", "'+' needs numbers or series, got a condition", 7),
    ("close and close > 1", "'and' needs conditions", 7),
    ("sma > 1", "'sma' is a function", 1),
])
def test_compile_errors_have_position_and_caret(text, message, column):
    with pytest.raises(ExprError) as err:
        compile_expr(text, {"fast": 10})
    line = err.value.render("entry")
    assert message in line and f"at column {column}:" in line and "\n" not in line
    assert line.split(": ")[-1].replace("^", "", 1) == text  # the snippet is the text with a caret inserted


# ---------------------------------------------------------------------- functions and look-back
def test_functions_match_engine_indicators():
    c, h, lo = BARS["close"], BARS["high"], BARS["low"]
    same = {
        "sma(close, 7)": ind.sma(c, 7), "ema(close, 7)": ind.ema(c, 7), "wma(close, 7)": ind.wma(c, 7),
        "std(close, 7)": ind.rolling_mean_std(c, 7)[1], "highest(high, 7)": ind.rolling_max(h, 7),
        "lowest(low, 7)": ind.rolling_min(lo, 7), "rsi(close)": ind.rsi(c, 14), "roc(close, 5)": ind.roc(c, 5),
        "macd(close)": ind.macd(c, 12, 26), "macd_signal(close, 5, 8, 3)": ind.macd_signal(c, 5, 8, 3),
        "bb_upper(close, 20, 2)": ind.bb_upper(c, 20, 2.0), "bb_lower(close, 20)": ind.bb_lower(c, 20, 2.0),
        "bb_middle(close, 20)": ind.bb_middle(c, 20), "atr(5)": ind.atr(h, lo, c, 5),
        "donchian_upper(9)": ind.rolling_max(h, 9), "donchian_lower(9)": ind.rolling_min(lo, 9),
        "shift(close, 3)": ind.shift(c, 3), "abs(close - open)": np.abs(c - BARS["open"]),
        "min(high, close * 2)": np.minimum(h, c * 2), "max(low, 100)": np.maximum(lo, 100.0),
    }
    assert set(FUNCTIONS) <= {t.split("(")[0] for t in same} | {"crossed_above", "crossed_below"}
    for text, expected in same.items():
        np.testing.assert_array_equal(value(text), expected, err_msg=text)
    np.testing.assert_array_equal(value("crossed_above(close, sma(close, 5))"), ind.crossed_above(c, ind.sma(c, 5)))


def test_indicator_definitions():
    x = np.array([1.0, 2.0, 4.0, 8.0, 0.0, 5.0])
    np.testing.assert_allclose(ind.wma(x, 3)[2:], [(1 + 4 + 12) / 6, (2 + 8 + 24) / 6, (4 + 16 + 0) / 6,
                                                   (8 + 0 + 15) / 6])
    assert np.isnan(ind.wma(x, 3)[:2]).all()
    np.testing.assert_allclose(ind.roc(x, 2)[2:], [300.0, 300.0, -100.0, -37.5])
    assert np.isnan(ind.roc(x, 2)[:2]).all()
    assert np.isnan(ind.roc(np.array([0.0, 1.0]), 1)[1])  # x[t - window] == 0: undefined


@pytest.mark.parametrize("text, lead", [
    ("close > 1", 0), ("sma(close, 10) > 1", 9), ("crossed_above(sma(close, 5), sma(close, 20))", 20),
    ("ema(sma(close, 10), 5) > 1", 13), ("shift(sma(close, 5), 3) > 1", 7), ("roc(close, 4) > 0", 4),
    ("macd_signal(close) > 0", 33), ("atr(14) > 1 and rsi(close, 30) < 50", 29),
    ("crossed_above(close, shift(donchian_upper(20), 1))", 21),
])
def test_lookback_is_derived_and_nested_lookbacks_add_up(text, lead):
    tree = compile_expr(text, {})
    assert tree[2] == lead
    if tree[0] == "bin" and tree[3] in ("<", ">"):  # the look-back is exactly the left side's leading nans
        left = evaluate(tree[4], BARS)
        assert np.isnan(left[:lead]).all() and not np.isnan(left[lead:]).any()


def test_nested_indicator_starts_where_its_input_is_defined():
    inner = ind.sma(BARS["close"], 10)
    np.testing.assert_array_equal(value("ema(sma(close, 10), 5)"), ind._after(9, len(inner), ind.ema(inner[9:], 5)))


def test_warmup_of_equivalents_equals_the_builtins():
    assert EXPR.warmup_bars({**CROSS, "fast": 10, "slow": 50}) == get_strategy("sma_crossover").warmup_bars(
        {"fast": 10, "slow": 50})
    assert EXPR.warmup_bars({"entry": "crossed_below(close, bb_lower(close, w, k))",
                             "exit": "crossed_above(close, bb_middle(close, w))", "w": 20, "k": 2}) == 20
    assert EXPR.warmup_bars({"entry": "close > shift(donchian_upper(a), 1)",
                             "exit": "close < shift(donchian_lower(b), 1)", "a": 30, "b": 12}) == 30


# ---------------------------------------------------------------------------- arithmetic, nan
def test_division_by_zero_is_nan_and_nan_compares_false():
    assert np.isnan(value("close / 0")).all() and np.isnan(value("1 / (close - close)")).all()
    assert np.isnan(compile_expr("1 / 0", {})[3])
    for op in ("<", "<=", ">", ">=", "==", "!="):
        assert not evaluate_condition(compile_expr(f"close / 0 {op} 1", {}), BARS).any(), op
        assert not evaluate_condition(compile_expr(f"1 {op} 0 / 0", {}), BARS).any(), op
    assert evaluate_condition(compile_expr("not (close / 0 > 1)", {}), BARS).all()
    big = value("close * 1e308 * 1e308")
    assert np.isinf(big).all()  # overflow is IEEE inf, not an error


# ------------------------------------------------------------------------------ strategy params
def test_resolve_params_keeps_expressions_verbatim_and_numbers():
    given = {"entry": "  crossed_above(close,sma(close,w))\n", "exit": "close<0", "w": 20.0, "k": 3}
    resolved = EXPR.resolve_params(given)
    assert resolved == given and isinstance(resolved["k"], int)


@pytest.mark.parametrize("given, message", [
    ({"exit": "close > 1"}, "needs strategy_params.entry"),
    ({"entry": "close > 1", "exit": 3}, "'exit' must be an expression string"),
    ({**CROSS, "fast": "10", "slow": 50}, "'fast' must be a number"),
    ({**CROSS, "fast": True, "slow": 50}, "'fast' must be a number"),
    ({**CROSS, "fast": float("nan"), "slow": 50}, "must be finite"),
    ({**CROSS, "fast": 10, "slow": 50, "close": 1}, "reserved word"),
    ({**CROSS, "fast": 10, "slow": 50, "bad-name": 1}, "identifier"),
    ({**CROSS, "fast": 10, "slow": 10**12}, "window must be a whole number of bars in [1, 100000], got 1000000000000"),
    ({**CROSS, "fast": 0, "slow": 5}, "window must be a whole number"),
    ({"entry": "sma(close, 3)", "exit": "close > 1"}, "entry: must be a condition"),
])
def test_bad_params_are_config_errors(given, message):
    with pytest.raises(ConfigError, match=None) as err:
        EXPR.resolve_params(given)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_window_longer_than_the_data_is_a_config_error():
    o, h, lo, c = (BARS[k][:50] for k in ("open", "high", "low", "close"))
    with pytest.raises(ConfigError, match="window 60 is longer than the 50 bars"):
        EXPR.signals(o, h, lo, c, {"entry": "sma(close, 60) > 1", "exit": "close < 1"})


def test_short_rules_fold_into_the_reversing_engine_signals():
    o, h, lo, c = (BARS[k] for k in ("open", "high", "low", "close"))
    sig = EXPR.signals(o, h, lo, c, {"entry": "close > 1e9", "exit": "close < 0", "short_entry": "close > open",
                                     "short_exit": "close < open"})
    np.testing.assert_array_equal(sig.entries, c < o)
    np.testing.assert_array_equal(sig.exits, c > o)


def test_volume_reaches_the_expression_only_where_given():
    o, h, lo, c = (BARS[k] for k in ("open", "high", "low", "close"))
    params = {"entry": "volume > sma(volume, 5)", "exit": "close < 0"}
    sig = EXPR.signals(o, h, lo, c, params, volume=BARS["volume"])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(sig.entries, BARS["volume"] > ind.sma(BARS["volume"], 5))
    with pytest.raises(ConfigError, match="volume is not available"):
        EXPR.signals(o, h, lo, c, params)


# ------------------------------------------------------------------------------------ the cache
def test_cache_reuses_shared_subexpressions_and_resets_for_new_data():
    o, h, lo, c = (BARS[k].copy() for k in ("open", "high", "low", "close"))
    EXPR.signals(o, h, lo, c, {**CROSS, "fast": 5, "slow": 20})
    before = compiler.CACHE.hits
    EXPR.signals(o, h, lo, c, {**CROSS, "fast": 5, "slow": 30})  # sma(close, 5) is reused
    assert compiler.CACHE.hits > before
    c2 = c.copy()
    c2[-1] *= 2  # new arrays: nothing computed for the old ones may be reused
    got = EXPR.signals(o, h, lo, c2, {**CROSS, "fast": 5, "slow": 20})
    ref = get_strategy("sma_crossover").signals(o, h, lo, c2, {"fast": 5, "slow": 20})
    np.testing.assert_array_equal(got.entries, ref.entries)
    np.testing.assert_array_equal(got.exits, ref.exits)


def test_generic_sweep_path_equals_sma_crossover_grid():
    o, h, lo, c = (BARS[k] for k in ("open", "high", "low", "close"))
    combos = [{"fast": f, "slow": s} for f in (3, 5, 8) for s in (20, 40) if f < s]
    cfg = EngineConfig(fee=0.001, slippage_bps=2.0)
    want = evaluate_grid(o, h, lo, c, "sma_crossover", combos, cfg, start=40, periods_per_year=252)
    got = evaluate_grid(o, h, lo, c, "expr", [{**CROSS, **x} for x in combos], cfg, start=40, periods_per_year=252,
                        threads=2)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


# ---------------------------------------------------------------------------------- security
HOSTILE = [
    "__import__('os')", "close.__class__", "().__class__.__bases__", "lambda: close", "lambda x: x",
    "[x for x in close]", "{c: 1 for c in close}", 'f"{close}"', "'close'", "close[0]", "close if 1 else 2",
    "exec('1')", "eval('1')", "open('/etc/passwd')", "getattr(close, 'x')", "sma(close, 10**12) > 1",
    "close; import os", "close\\\nx", "x := 1", "close @ close", "close ** 2", "close % 2", "~close", "@",
    "sma(close, 1e12) > 1", "sma(close, -1) > 1", "sma(close, 1e400) > 1", "shift(close, 0) > 1",
    "(" * 10_000 + "close" + ")" * 10_000, "not " * 10_000 + "close > 1", "-" * 9_000 + "close > 1",
    "+".join(["close"] * 3_000) + " > 1", "sma(" * 2_000 + "close" + ", 2)" * 2_000 + " > 1",
    "close > " + "9" * 100, "c" * 100_000, "", "   ",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_a_config_error(text):
    with pytest.raises(ConfigError) as err:
        EXPR.resolve_params({"entry": text, "exit": "close < 0"})
    assert "\n" not in str(err.value) and len(str(err.value)) < 1_000


ALPHABET = st.sampled_from(list("abcdeflmnorstuxy_0123456789.+-*/<>=!(), \n\t'\"[]{}:;@#$%^&|~`\\")
                           + ["close", "sma(", "and", "not", "or", "fast", "__", "1e9", "lambda", "import"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        tree = compile_expr(text, {"fast": 3})
    except ExprError as exc:
        assert "\n" not in exc.render("entry")
        return
    evaluate(tree, BARS)  # whatever parses evaluates without raising


LEAVES = st.sampled_from(["close", "open", "high", "low", "volume", "fast", "2", "0", "0.5"])


def _numeric(children):
    return st.one_of(
        st.tuples(children, st.sampled_from("+-*/"), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["sma", "ema", "wma", "std", "highest", "lowest", "rsi", "roc", "shift"]),
                  children, st.integers(1, 30)).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        children.map(lambda x: f"-{x}"), children.map(lambda x: f"abs({x})"),
    )


NUMERIC = st.recursive(LEAVES, _numeric, max_leaves=8)
CONDITION = st.one_of(
    st.tuples(NUMERIC, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), NUMERIC).map(" ".join),
    st.tuples(NUMERIC, NUMERIC).map(lambda t: f"crossed_above({t[0]}, {t[1]})"),
)


@settings(max_examples=150, deadline=None)
@given(CONDITION, CONDITION)
def test_generated_expressions_evaluate_to_bool_signals(entry, exit_):
    o, h, lo, c = (BARS[k] for k in ("open", "high", "low", "close"))
    params = {"entry": f"{entry} and not ({exit_})", "exit": exit_, "fast": 4}
    sig = EXPR.signals(o, h, lo, c, params, volume=BARS["volume"])
    assert sig.entries.dtype == bool and sig.entries.shape == (len(c),) and sig.exits.shape == (len(c),)
    assert not (sig.entries & sig.exits).any()
    assert 0 <= EXPR.warmup_bars(params)


def test_length_cap():
    with pytest.raises(ExprError, match=f"at most {MAX_LENGTH}"):
        parse("1" * (MAX_LENGTH + 1))


def test_lint_flags_unused_names_and_rules_that_ignore_the_bars():
    params = EXPR.resolve_params({"entry": "fast > 3 and atr(14) > 0", "exit": "1 > 2", "fast": 1, "spare": 2})
    assert EXPR.lint(params) == ["strategy_params.spare is not used by any expression",
                                 "strategy_params.exit does not depend on the bars: it is the same (always or "
                                 "never true) on every bar"]
    assert EXPR.lint(EXPR.resolve_params({**CROSS, "fast": 5, "slow": 9})) == []
