"""Risk controls through main.py: run params and CLI flags, trades.csv exit reasons, metrics
counts, cache keys, sweep grids over stops (fused path, leaderboard columns, best result equal
to a plain run), forward candidates carrying their stops, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_request, strict_json
from test_run_errors import _assert_clean_failure

WINDOW = {"ticker": "SPX", "start": "2015-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
          "strategy_params": {"fast": 5, "slow": 20}}
REASONS = {"signal", "stop_loss", "take_profit", "trailing_stop", "max_bars", "end_of_data", "margin_call"}


def _trades(run_dir: Path) -> list[dict]:
    with open(run_dir / "trades.csv") as fh:
        return list(csv.DictReader(fh))


def test_run_with_stops_writes_exit_reasons_and_counts(ql):
    res = ql.request(run_request(**WINDOW, stop_loss=0.01, take_profit=0.02, max_bars_held=15))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    trades = _trades(run_dir)
    reasons = [t["exit_reason"] for t in trades]
    assert set(reasons) <= REASONS and {"stop_loss", "take_profit"} <= set(reasons)
    assert all(int(t["bars_held"]) <= 15 for t in trades)
    metrics = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    for reason in REASONS:
        assert metrics[f"exits_{reason}"] == reasons.count(reason), reason
    assert metrics["trades"] == len(trades)
    config = strict_json((run_dir / "config.json").read_text())
    assert json.dumps(config).count('"stop_loss": 0.01') >= 1


def test_stops_off_equal_the_default_and_a_stop_changes_the_simulation_key(ql):
    plain = ql.request(run_request(**WINDOW))
    off = ql.request(run_request(**WINDOW, stop_loss=0, take_profit=0.0, position_size=1.0))
    assert plain.returncode == 0 and off.returncode == 0, off.stderr
    a, b = Path(plain.envelope["artifacts_path"]), Path(off.envelope["artifacts_path"])
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert {t["exit_reason"] for t in _trades(a)} <= {"signal", "end_of_data"}
    dry = ql.request(run_request(**WINDOW, stop_loss=0.02), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    stale = set(dry.envelope["stale_steps"])
    assert "simulate" in stale and "signals" not in stale and "load_data" not in stale


def test_cli_flags(ql):
    proc = ql.cli("run", "--ticker", "SPX", "--start", "2016-01-01", "--end", "2018-01-01", "--strategy",
                  "sma_crossover", "--trailing-stop", "0.03", "--position-size", "0.5")
    assert proc.returncode == 0, proc.stderr
    run_dir = next(line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
                   if line.strip().startswith("artifacts:"))
    trades = _trades(Path(run_dir))
    assert "trailing_stop" in {t["exit_reason"] for t in trades}


def sweep_request(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "risk-sweep", "command": "sweep", "params": params}


def test_sweep_over_stops_and_strategy_params(ql):
    grid = {"fast": [5, 10], "slow": [20], "stop_loss": [0, 0.01, 0.03], "take_profit": [0, 0.04]}
    base = {k: v for k, v in WINDOW.items() if k != "strategy_params"}
    res = ql.request(sweep_request(**base, param_grid=grid, objective="total_return"))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    with open(run_dir / "leaderboard.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {"stop_loss", "take_profit"} <= set(rows[0])
    assert len({(r["fast"], r["stop_loss"], r["take_profit"]) for r in rows}) == 12
    best = strict_json((run_dir / "report.json").read_text())["machine_contract"]["best_result"]
    params = dict(best["params"])
    engine = {k: params.pop(k) for k in ("stop_loss", "take_profit") if k in params}
    run = ql.request(run_request(**{**base, "strategy_params": params, **engine}))
    assert run.returncode == 0, run.stderr
    for key in ("total_return", "sharpe_simple", "trades", "max_drawdown"):
        assert run.envelope["summary"][key] == pytest.approx(best[key], rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("params, needle", [
    ({"stop_loss": 0.02, "stop_loss_atr": 2.0}, "not both"),
    ({"stop_loss": 2.0}, "stop_loss"),
    ({"size_mode": "kelly"}, "size_mode"),
    ({"size_mode": "volatility_target"}, "target_volatility"),
    ({"max_bars_held": 2.5}, "max_bars_held"),
])
def test_bad_risk_params_exit_2(ql, params, needle):
    _assert_clean_failure(ql, ql.request(run_request(**params)), 2, needle)


def test_ambiguous_bars_are_a_warning(ql):
    # tight stops on daily bars: some bars span both the 0.5 % stop and the 0.5 % target
    res = ql.request(run_request(**WINDOW, stop_loss=0.005, take_profit=0.005, fill="close"))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    metrics = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["ambiguous_bars"] > 0
    warnings = strict_json((run_dir / "report.json").read_text())["machine_contract"]["warnings"]
    assert any("touched both the stop and the take-profit" in w for w in warnings)



def test_forward_candidates_keep_their_stops(ql):
    base = {k: v for k, v in WINDOW.items() if k != "strategy_params"}
    grid = {"fast": [5, 10], "slow": [20], "stop_loss": [0.01, 0.03], "take_profit": [0.04]}
    sweep = ql.request(sweep_request(**base, param_grid=grid, objective="total_return"))
    assert sweep.returncode == 0, sweep.stderr
    run_dir = Path(sweep.envelope["artifacts_path"])
    best = dict(strict_json((run_dir / "report.json").read_text())["machine_contract"]["best_result"]["params"])
    res = ql.request({"schema_version": "1.0", "command": "forward", "params": {
        "run_dir": str(run_dir), "forward_start": "2018-01-01", "forward_end": "2018-07-01", "forward_top_k": 1}})
    assert res.returncode == 0, res.stderr
    session = Path(res.envelope["artifacts_path"])
    cand = strict_json((session / "config.json").read_text())["candidates"][0]
    engine = {k: best.pop(k) for k in ("stop_loss", "take_profit")}
    assert cand["engine_overrides"] == engine and cand["strategy_params"] == best
    plain = ql.request(run_request(ticker="SPX", start="2018-01-01", end="2018-07-01", strategy="sma_crossover",
                                   strategy_params=best, **engine))
    assert plain.returncode == 0, plain.stderr
    assert plain.envelope["summary"] == res.envelope["summary"]


def test_walkforward_over_stops_and_volatility_sizing(ql):
    base = {k: v for k, v in WINDOW.items() if k != "strategy_params"}
    splits = [{"name": "a", "train": {"start": "2015-01-01", "end": "2016-01-01"},
               "test": {"start": "2016-01-01", "end": "2017-01-01"}}]
    res = ql.request(sweep_request(**base, splits=splits, size_mode="volatility_target", target_volatility=0.1,
                                   param_grid={"fast": [5, 10], "slow": [20], "stop_loss": [0.01, 0.03]}))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    oos = strict_json((run_dir / "report.json").read_text())["machine_contract"]
    assert oos["mode"] == "walkforward"
    metrics = strict_json((run_dir / "metrics.json").read_text())
    stitched = metrics["oos_metrics"]  # the out-of-sample trades keep their exit reasons
    assert stitched["exits_stop_loss"] == metrics["best_result"]["exits_stop_loss"] > 0
    assert sum(v for k, v in stitched.items() if k.startswith("exits_")) == stitched["trades"]
    # a plain run with volatility sizing: every entry commits at most the equity's 100 %
    run = ql.request(run_request(**WINDOW, size_mode="volatility_target", target_volatility=0.1))
    assert run.returncode == 0, run.stderr
    trades = _trades(Path(run.envelope["artifacts_path"]))
    assert trades and all(float(t["qty"]) * float(t["entry_price"]) < 10_000.0 for t in trades[:1])
