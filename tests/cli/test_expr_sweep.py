"""A param_grid sweep of an expr crossover through main.py equals the sma_crossover sweep."""

from __future__ import annotations

import csv
import json
from pathlib import Path

CROSS = {"entry": "crossed_above(sma(close, fast), sma(close, slow))",
         "exit": "crossed_below(sma(close, fast), sma(close, slow))"}
METRICS = ("total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate", "exposure", "bars")


def _sweep(ql, strategy: str, **extra) -> dict:
    params = {"ticker": "SPX", "start": "2008-01-01", "end": "2014-01-01", "strategy": strategy,
              "param_grid": {"fast": [3, 5, 10, 20], "slow": [30, 50, 100]}, **extra}
    res = ql.request({"schema_version": "1.0", "command": "sweep", "params": params})
    assert res.returncode == 0, res.stderr[-800:]
    run = Path(res.envelope["artifacts_path"])
    rows = list(csv.DictReader((run / "leaderboard.csv").open()))
    return {"rows": {(r["fast"], r["slow"]): {k: r[k] for k in METRICS} for r in rows}, "run": run}


def test_expr_grid_over_fast_and_slow_equals_the_sma_crossover_grid(ql):
    builtin = _sweep(ql, "sma_crossover")
    expr = _sweep(ql, "expr", strategy_params={**CROSS, "fast": 10, "slow": 50})
    assert len(expr["rows"]) == 12 and expr["rows"] == builtin["rows"]
    config = json.loads((expr["run"] / "config.json").read_text())
    assert json.dumps(config).count(CROSS["entry"].replace('"', '\\"')) >= 1  # expressions stored verbatim


def test_grid_key_that_no_expression_parameter_names_is_refused(ql):
    params = {"ticker": "SPX", "start": "2008-01-01", "end": "2014-01-01", "strategy": "expr",
              "strategy_params": {**CROSS, "fast": 10, "slow": 50}, "param_grid": {"fats": [3, 5]}}
    res = ql.request({"schema_version": "1.0", "command": "sweep", "params": params})
    assert res.returncode == 2 and "did you mean 'fast'?" in res.stderr


def test_a_grid_over_an_expression_that_reads_volume_equals_the_same_runs(ql):
    """Volume reaches expr strategies in sweeps as in runs (the generic grid path passes it)."""
    rule = {"entry": "crossed_above(close, sma(close, fast)) and volume > sma(volume, 20)",
            "exit": "crossed_below(close, sma(close, fast))"}
    params = {"ticker": "SPX", "start": "2010-01-01", "end": "2014-01-01", "strategy": "expr",
              "strategy_params": {**rule, "fast": 10}, "param_grid": {"fast": [10, 30]}}
    res = ql.request({"schema_version": "1.0", "command": "sweep", "params": params})
    assert res.returncode == 0, res.stderr[-800:]
    rows = {r["fast"]: r for r in csv.DictReader((Path(res.envelope["artifacts_path"]) / "leaderboard.csv").open())}
    for fast in (10, 30):
        run = ql.request({"schema_version": "1.0", "command": "run", "params": {
            "ticker": "SPX", "start": "2010-01-01", "end": "2014-01-01", "strategy": "expr",
            "strategy_params": {**rule, "fast": fast}}})
        assert run.returncode == 0, run.stderr[-800:]
        assert abs(float(rows[str(fast)]["total_return"]) - run.envelope["summary"]["total_return"]) < 1e-9
        assert int(rows[str(fast)]["trades"]) == run.envelope["summary"]["trades"]
