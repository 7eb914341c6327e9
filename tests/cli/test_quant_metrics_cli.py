"""The metrics quants expect, black-box through main.py (issue #17): in metrics.json, the
leaderboard (the grid ones), the schema and --list-metrics; risk_free_rate and benchmark in the
content keys; a missing benchmark exits 3; agreement with numbers recomputed from the artifacts."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from conftest import assert_every_json_parses, strict_json

WINDOW = {"start": "2015-01-01", "end": "2017-01-01"}


def _run(ql, **params):
    payload = {"schema_version": "1.0", "command": "run",
               "params": {"ticker": "^IXIC", "strategy": "sma_crossover", **WINDOW, **params}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    env = res.envelope
    from pathlib import Path

    return env, Path(env["artifacts_path"])


def _equity(run_dir):
    from quantlab.columnar import column_to_numpy, read_parquet

    table = read_parquet(str(run_dir / "equity.parquet"))
    return {k: column_to_numpy(table, k) for k in ("timestamp", "close", "returns")}


def test_run_metrics_agree_with_its_artifacts_and_a_benchmark_run(ql):
    env, run_dir = _run(ql, benchmark="^GSPC", risk_free_rate=0.02)
    doc = strict_json((run_dir / "metrics.json").read_text())
    m = doc["metrics"]
    window = strict_json((run_dir / "metadata.json").read_text())["window"]
    assert window["benchmark"] == "^GSPC" and window["risk_free_rate"] == 0.02
    # the benchmark's closes, from a run of the benchmark itself over the same window
    _, bench_dir = _run(ql, ticker="^GSPC", strategy="buy_and_hold")
    eq, bench = _equity(run_dir), _equity(bench_dir)
    assert np.array_equal(eq["timestamp"], bench["timestamp"])
    b = np.concatenate(([0.0], bench["close"][1:] / bench["close"][:-1] - 1.0))
    r = eq["returns"]
    rf = 1.02 ** (1 / 252) - 1
    (a, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones(len(b)), b - rf]), r - rf, rcond=None)
    assert m["beta"] == pytest.approx(beta, rel=1e-9) and m["alpha"] == pytest.approx(a * 252, rel=1e-9)
    assert m["tracking_error"] == pytest.approx(np.std(r - b, ddof=1) * math.sqrt(252), rel=1e-9)
    q = np.quantile(r, 0.05)
    assert m["var_95"] == pytest.approx(q, rel=1e-12) and m["cvar_95"] == pytest.approx(r[r <= q].mean(), rel=1e-12)
    assert m["sharpe_simple"] == pytest.approx((r.mean() - rf) / r.std(ddof=1) * math.sqrt(252), rel=1e-9)
    # SQN, expectancy, best/worst trade, holding time by hand from trades.csv
    with open(run_dir / "trades.csv") as fh:
        trades = list(csv.DictReader(fh))
    ret = [float(t["return"]) for t in trades]
    pnl = [float(t["pnl"]) for t in trades]
    n = len(trades)
    assert n == m["trades"] >= 2
    mean = sum(ret) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in ret) / (n - 1))
    assert m["sqn"] == pytest.approx(math.sqrt(n) * mean / sd, rel=1e-6)  # trades.csv: 10 digits
    assert m["expectancy"] == pytest.approx(sum(pnl) / n, rel=1e-6)
    assert m["best_trade"] == pytest.approx(max(ret), rel=1e-9) and m["worst_trade"] == pytest.approx(min(ret), rel=1e-9)
    assert m["avg_holding_bars"] == pytest.approx(sum(int(t["bars_held"]) for t in trades) / n)
    # a different benchmark or risk-free rate is a different result, not a cache hit
    env2, dir2 = _run(ql, benchmark="^GSPC", risk_free_rate=0.0)
    env3, dir3 = _run(ql)
    m2 = strict_json((dir2 / "metrics.json").read_text())["metrics"]
    m3 = strict_json((dir3 / "metrics.json").read_text())["metrics"]
    assert m2["sharpe_simple"] > m["sharpe_simple"] and m2["beta"] == pytest.approx(m["beta"], rel=1e-12)
    assert m3["beta"] != m2["beta"] and m3["total_return"] == m2["total_return"]
    hashes = {json.loads((d / "metadata.json").read_text())["config_hash"] for d in (run_dir, dir2, dir3)}
    assert len(hashes) == 3
    assert_every_json_parses(ql.outputs)


SERIES = ("alpha", "beta", "var_95", "cvar_95", "tracking_error", "information_ratio", "max_drawdown_duration_days")


def test_sweep_leaderboard_carries_every_metric_equal_to_a_single_run(ql):
    payload = {"schema_version": "1.0", "command": "sweep",
               "params": {"ticker": "^IXIC", "strategy": "sma_crossover", **WINDOW, "risk_free_rate": 0.03,
                          "param_grid": {"fast": [5, 10], "slow": [50]}}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    from pathlib import Path

    sweep_dir = Path(res.envelope["artifacts_path"])
    with open(sweep_dir / "leaderboard.csv") as fh:
        rows = {(r["fast"], r["slow"]): r for r in csv.DictReader(fh)}
    row = rows[("10", "50")]
    report = strict_json((sweep_dir / "report.json").read_text())  # its rows: the metrics in full
    full = next(r["metrics"] for r in report["results"] if r["params"]["fast"] == 10)
    _, run_dir = _run(ql, risk_free_rate=0.03, strategy_params={"fast": 10, "slow": 50})
    single = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    for name in ("sharpe_simple", "sortino", "expectancy", "sqn", "best_trade", "worst_trade", "avg_holding_bars",
                 "exposure_adjusted_return", "max_drawdown_duration_bars", *SERIES):
        assert single[name] is not None and full[name] == pytest.approx(single[name], rel=1e-12, abs=0), name
        assert float(row[name]) == pytest.approx(single[name], rel=1e-9), name  # the CSV: 10 digits
    assert full["var_95"] < 0 and full["max_drawdown_duration_days"] > 0
    # the risk-free rate is in the shards' key: rf 0 gives a different Sharpe and alpha, the same beta
    res0 = ql.request({**payload, "params": {**payload["params"], "risk_free_rate": 0.0}})
    with open(Path(res0.envelope["artifacts_path"]) / "leaderboard.csv") as fh:
        row0 = {(r["fast"], r["slow"]): r for r in csv.DictReader(fh)}[("10", "50")]
    assert float(row0["sharpe_simple"]) > float(row["sharpe_simple"])
    assert float(row0["alpha"]) != float(row["alpha"]) and float(row0["beta"]) == float(row["beta"])
    # a series metric is a sweep objective: the leaderboard is ranked by it
    by_var = ql.request({**payload, "params": {**payload["params"], "objective": "cvar_95",
                                               "param_grid": {"fast": [5, 10, 20], "slow": [50, 100]}}})
    assert by_var.returncode == 0, by_var.stderr
    with open(Path(by_var.envelope["artifacts_path"]) / "leaderboard.csv") as fh:
        ranked = [float(r["cvar_95"]) for r in csv.DictReader(fh)]
    assert len(ranked) == 6 and ranked == sorted(ranked, reverse=True)
    assert_every_json_parses(ql.outputs)


def test_walkforward_leaderboards_carry_the_series_metrics(ql):
    """Train and test leaderboards carry the series metrics; a test row equals a single run over
    the test window."""
    from pathlib import Path

    from conftest import ROOT

    res = ql.request({"schema_version": "1.0", "command": "sweep",
                      "params": {"config_path": str(ROOT / "config/experiments/spx_walkforward.yaml")}})
    assert res.returncode == 0, res.stderr
    split = Path(res.envelope["artifacts_path"]) / "splits" / "2014_2015__2016"
    with open(split / "train_leaderboard.csv") as fh:
        assert all(r[name] != "" for r in csv.DictReader(fh) for name in SERIES)
    with open(split / "test_leaderboard.csv") as fh:
        top = next(csv.DictReader(fh))
    params = {k: float(top[k]) for k in ("rsi_buy_max", "rsi_sell_min")} | {"cooldown_days": int(top["cooldown_days"])}
    _, run_dir = _run(ql, ticker="SPX", strategy="rsi_ma_cross_v2", start="2016-01-01", end="2017-01-01",
                      fee=0.002, slippage_mode="fixed", slippage_bps=8.0, k_atr=0.05, strategy_params=params,
                      robustness=True)
    doc = strict_json((run_dir / "metrics.json").read_text())
    single = doc["metrics"]
    assert float(top["total_return"]) == pytest.approx(single["total_return"], rel=1e-9)
    for name in SERIES:
        assert float(top[name]) == pytest.approx(single[name], rel=1e-9), name
    # the test rows' psr: the single run's probabilistic Sharpe over the same window (float32 series)
    assert 0.0 < float(top["psr"]) < 1.0
    assert float(top["psr"]) == pytest.approx(doc["robustness"]["probabilistic_sharpe"], abs=1e-5)
    with open(split.parent.parent / "leaderboard.csv") as fh:
        assert all(r["psr"] != "" for r in csv.DictReader(fh))


def test_list_metrics_and_schema_describe_every_metric(ql):
    listing = strict_json(ql.cli("--list-metrics").stdout)
    by_name = {m["name"]: m for m in listing}
    assert all(m["in_sweep"] is True for m in listing) and set(SERIES) <= set(by_name)
    assert by_name["max_drawdown_duration_bars"]["higher_is_better"] is False
    assert all(m["description"] for m in listing)
    schema = strict_json(ql.cli("--schema", "run").stdout)
    assert [m["name"] for m in schema["x-metrics"]] == list(by_name)
    run_params = json.dumps(schema)
    assert "risk_free_rate" in run_params and "benchmark" in run_params
    sweep = strict_json(ql.cli("--schema", "sweep").stdout)
    assert "sqn" in json.dumps(sweep) and '"alpha"' in json.dumps(sweep)


def test_missing_benchmark_exits_3_and_publishes_nothing(ql):
    payload = {"schema_version": "1.0", "command": "run",
               "params": {"ticker": "^IXIC", "strategy": "sma_crossover", **WINDOW, "source": "sample",
                          "benchmark": "NOPE"}}
    res = ql.request(payload)
    assert res.returncode == 3
    assert res.envelope["error"]["code"] == "DATA_ERROR" and "benchmark NOPE" in res.envelope["error"]["message"]
    assert len(res.stderr.strip().splitlines()) == 1
    assert not any(p.is_dir() for p in ql.runs_dir().glob("*run*")) if ql.runs_dir().exists() else True


def test_zero_trade_run_nulls_and_warns(ql):
    env, run_dir = _run(ql, ticker="SPX", start="2017-01-04", end="2017-03-01",
                        strategy_params={"fast": 5, "slow": 200})
    m = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    assert m["trades"] == 0
    for key in ("sqn", "expectancy", "best_trade", "worst_trade", "avg_holding_bars", "exposure_adjusted_return"):
        assert m[key] is None, key
    assert any("0 trades" in w for w in env["warnings"])
    assert all(v is None or math.isfinite(v) for v in m.values())


def test_reproduce_command_keeps_the_benchmark_and_the_rate(ql):
    import shlex

    env, run_dir = _run(ql, benchmark="^GSPC", risk_free_rate=0.02)
    args = shlex.split(strict_json((run_dir / "report.json").read_text())["reproduce"]["command"])
    assert args[args.index("--benchmark") + 1] == "^GSPC" and args[args.index("--risk-free-rate") + 1] == "0.02"
    again = ql.cli(*args[2:])
    assert again.returncode == 0, again.stderr
    assert env["run_id"].split("_")[-1] in again.stdout  # the same resolved request
