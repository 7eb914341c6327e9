"""strategy 'expr' through main.py: equivalence with the built-ins, errors, storage, discovery."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MAIN, run_request, strict_json

CROSS = {"entry": "crossed_above(sma(close, fast), sma(close, slow))",
         "exit": "crossed_below(sma(close, fast), sma(close, slow))"}

EQUIVALENTS = [
    ("sma_crossover", {"fast": 10, "slow": 50}, {**CROSS, "fast": 10, "slow": 50}),
    ("bollinger_reversion", {"window": 20, "num_std": 2.0},
     {"entry": "crossed_below(close, bb_lower(close, window, num_std))",
      "exit": "crossed_above(close, bb_middle(close, window))", "window": 20, "num_std": 2.0}),
    ("donchian_breakout", {"entry_window": 20, "exit_window": 10},
     {"entry": "close > shift(donchian_upper(entry_window), 1)",
      "exit": "close < shift(donchian_lower(exit_window), 1)", "entry_window": 20, "exit_window": 10}),
]


def _run_dir(ql, res) -> Path:
    assert res.returncode == 0, res.stderr
    return Path(res.envelope["artifacts_path"])


@pytest.mark.parametrize("builtin, params, expr", EQUIVALENTS, ids=[e[0] for e in EQUIVALENTS])
def test_expr_equivalent_gives_byte_identical_trades_and_metrics(ql, builtin, params, expr):
    dirs = []
    for strategy, sp in ((builtin, params), ("expr", expr)):
        res = ql.request(run_request(strategy=strategy, strategy_params=sp, start="2001-01-01", end="2018-12-31"))
        dirs.append(_run_dir(ql, res))
    a, b = dirs
    assert (a / "trades.csv").read_bytes() == (b / "trades.csv").read_bytes()
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert len((a / "trades.csv").read_text().splitlines()) > 10  # a real comparison, not two empty logs
    ra, rb = (json.loads((d / "report.json").read_text()) for d in dirs)
    assert ra["results"] == rb["results"]


def test_expressions_are_stored_verbatim_and_the_reproduce_command_reruns_them(ql):
    sp = {"entry": "crossed_above(sma(close, fast), sma(close,slow))  and rsi(close, 14) < rsi_max",
          "exit": "crossed_below(sma(close, fast), sma(close, slow)) or\nclose < 0", "fast": 10, "slow": 50,
          "rsi_max": 60}
    res = ql.request(run_request(strategy="expr", strategy_params=sp))
    run = _run_dir(ql, res)
    config = json.loads((run / "config.json").read_text())
    report = json.loads((run / "report.json").read_text())
    assert config["strategy_params"] == sp
    assert report["config_resolved"]["strategy_params"] == sp
    command = report["reproduce"]["command"]
    args = shlex.split(command)
    assert args[:2] == ["python", "main.py"]
    again = subprocess.run([sys.executable, str(MAIN), *args[2:]], capture_output=True, text=True, env=ql.env,
                           cwd=ql.tmp, timeout=120)
    assert again.returncode == 0, again.stderr
    assert run.name in again.stdout or run.name.split("_")[-1] in again.stdout  # same run identity (digest)


ERRORS = [
    ({**CROSS, "fats": 10, "slow": 50}, "unknown name 'fast' (did you mean 'fats'?)"),
    ({"entry": "sma(close, fats) > 1", "exit": "close < 0", "fast": 10},
     "strategy 'expr' entry: unknown name 'fats' (did you mean 'fast'?)"),
    ({"entry": "__import__('os')", "exit": "close < 0"}, "unexpected character \"'\" at column 12"),
    ({"entry": "close.__class__", "exit": "close < 0"}, "unexpected character '.'"),
    ({"entry": "().__class__.__bases__", "exit": "close < 0"}, "unexpected character '.'"),
    ({"entry": "lambda x: x", "exit": "close < 0"}, "unexpected character ':'"),
    ({"entry": "[c for c in close]", "exit": "close < 0"}, "unexpected character '['"),
    ({"entry": 'f"{close}"', "exit": "close < 0"}, "unexpected character '\"'"),
    ({"entry": "close > " + "1 + " * 25_000 + "1", "exit": "close < 0"}, "too long (100009 characters"),
    ({"entry": "(" * 10_000 + "close > 1" + ")" * 10_000, "exit": "close < 0"}, "too long (20009 characters"),
    ({"entry": "(" * 4_000 + "close > 1" + ")" * 4_000, "exit": "close < 0"}, "nested deeper than 32"),
    ({"entry": "not " * 2_400 + "close > 1", "exit": "close < 0"}, "nested deeper than 32"),
    ({**CROSS, "fast": 10, "slow": 10**12}, "window must be a whole number of bars in [1, 100000]"),
    ({**CROSS, "fast": 10, "slow": 6000}, "window 6000 is longer than the"),
    ({"entry": "sma(close, 5)", "exit": "close < 0"}, "entry: must be a condition"),
    ({"entry": "close > 1", "exit": "close < 0", "short_entry": "close < 1"}, "needs params.allow_short"),
]


@pytest.mark.parametrize("sp, needle", ERRORS, ids=range(len(ERRORS)))
def test_bad_expressions_fail_cleanly_with_exit_2(ql, sp, needle):
    res = ql.request(run_request(strategy="expr", strategy_params=sp))
    assert res.returncode == 2, (res.returncode, res.stderr[-500:])
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and needle in errors[0], res.stderr[-500:]
    assert len(errors[0]) < 1_000
    env = res.envelope
    assert env["status"] == "error" and env["exit_code"] == 2 and env["error"]["error_type"] == "ConfigError"
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    runs = ql.runs_dir()
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()]


def test_error_shows_the_position_with_a_caret(ql):
    res = ql.request(run_request(strategy="expr", strategy_params={
        "entry": "crossed_above(sma(close, fats), sma(close, slow))", "exit": "close < 0", "fast": 5, "slow": 9}))
    assert res.returncode == 2
    assert res.stderr.strip().endswith("at column 26: crossed_above(sma(close, ^fats), sma(close, slow))")


def test_division_by_zero_and_nan_arithmetic_have_a_defined_result(ql):
    res = ql.request(run_request(strategy="expr", strategy_params={
        "entry": "close / (close - close) > 1 or (close - close) / 0 <= 0 or close * 1e308 * 1e308 < 0",
        "exit": "close / 0 != 1"}))
    assert res.returncode == 0, res.stderr
    assert res.envelope["summary"]["trades"] == 0  # every comparison with nan is false: no signal at all


def test_short_rules_and_volume_run_with_allow_short(ql):
    sp = {"entry": "crossed_above(close, sma(close, n)) and volume > 0", "exit": "close < 0",
          "short_entry": "crossed_below(close, sma(close, n))", "n": 20}
    res = ql.request(run_request(strategy="expr", strategy_params=sp, allow_short=True))
    run = _run_dir(ql, res)
    lines = (run / "trades.csv").read_text().splitlines()
    side = lines[0].split(",").index("side")
    sides = [line.split(",")[side] for line in lines[1:]]
    assert len(sides) > 2 and len(set(sides)) == 2  # longs and shorts alternate through the reversing engine


def test_list_strategies_and_schema_describe_the_language(ql):
    listing = strict_json(ql.cli("--list-strategies").stdout)
    expr = next(s for s in listing if s["name"] == "expr")
    lang = expr["language"]
    names = {f["name"] for f in lang["functions"]}
    assert {"sma", "ema", "wma", "std", "highest", "lowest", "rsi", "atr", "roc", "macd", "macd_signal", "bb_upper",
            "bb_lower", "donchian_upper", "donchian_lower", "shift", "crossed_above", "crossed_below", "abs", "min",
            "max"} <= names
    assert "comparison" in lang["grammar"] and lang["series"] == ["open", "high", "low", "close", "volume"]
    schema = strict_json(ql.cli("--schema", "run").stdout)
    params = schema["allOf"][0]["then"]["properties"]["params"]
    rule = next(r for r in params["allOf"] 
                if r["if"].get("properties", {}).get("strategy", {}).get("const") == "expr")
    sp = rule["then"]["properties"]["strategy_params"]
    assert sp["required"] == ["entry", "exit"] and sp["additionalProperties"]["type"] == "number"
    assert sp["x-language"]["functions"] == lang["functions"]
    import jsonschema

    good = run_request(strategy="expr", strategy_params={**CROSS, "fast": 5, "slow": 20})
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(run_request(strategy="expr", strategy_params={"exit": "close < 0"}), schema)


def test_suspicious_params_are_warnings_in_the_machine_contract(ql):
    res = ql.request(run_request(strategy="expr", strategy_params={
        "entry": "fast > 3", "exit": "close < sma(close, slow)", "fast": 10, "slow": 50, "rsi_max": 60}))
    run = _run_dir(ql, res)
    warnings = json.loads((run / "report.json").read_text())["machine_contract"]["warnings"]
    assert "strategy_params.rsi_max is not used by any expression" in warnings
    assert any(w.startswith("strategy_params.entry does not depend on the bars") for w in warnings)
    assert not any("exit" in w or "slow" in w or "fast" in w.split(" is ")[0] for w in warnings)
