"""Black-box tests through main.py: every request answers for itself (issues #10 and #19).

Too few bars fails (exit 3) instead of a 0-trade success; impossible sweep combinations are
skipped and counted instead of aborting the sweep; a zero-trade result is flagged; a
walk-forward whose selection is empty stays integral and flat; a forward window inside the
sweep's training period is flagged as in-sample.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import strict_json


def _request(command: str, **params) -> dict:
    return {"schema_version": "1.0", "request_id": "suff-1", "command": command, "params": params}


def _failed(res, code: int) -> str:
    assert res.returncode == code, res.stderr
    env = res.envelope
    assert env["status"] == "error" and env["exit_code"] == code
    last = res.signals[-1]
    assert last["event"] == "SESSION_FAILED" and last["exit_code"] == code
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, res.stderr
    assert env["error"]["message"] == last["message"] == errors[0][len("ERROR: "):]
    return errors[0]


def _report(res) -> dict:
    assert res.returncode == 0, res.stderr
    assert res.signals[-1]["event"] == "SESSION_COMPLETED"
    return strict_json(Path(res.envelope["report_path"]).read_text())


def _forward_after_sweep(ql, sweep_start: str, sweep_end: str, forward_start: str, forward_end: str):
    """A one-combination sma_crossover grid sweep, then a forward evaluation of it."""
    sweep = ql.request(_request("sweep", ticker="SPX", start=sweep_start, end=sweep_end,
                                strategy="sma_crossover", param_grid={"fast": [5], "slow": [30]}))
    assert sweep.returncode == 0, sweep.stderr
    return ql.request(_request("forward", forward_eval=sweep.envelope["artifacts_path"],
                               forward_start=forward_start, forward_end=forward_end)), sweep


def _no_run_dirs(ql) -> None:
    runs = ql.runs_dir()
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()], list(runs.iterdir())


# ------------------------------------------------------------------------- 10.2 too few bars
def test_run_with_too_few_bars_fails_with_exit_3_naming_the_need(ql):
    res = ql.request(_request("run", ticker="^GSPC", start="1999-01-04", end="1999-01-20"))
    line = _failed(res, 3)
    # the bundled data starts on 1999-01-04: no warm-up history before the window
    assert line == ("ERROR: insufficient data for ^GSPC 1999-01-04..1999-01-20: 11 bars available, "
                    "strategy rsi_ma_cross_v2 needs 21 (20 warm-up + 1)")
    assert res.envelope["error"]["code"] == "DATA_ERROR"
    _no_run_dirs(ql)


def test_warmup_history_before_the_window_counts(ql):
    # the same 11-bar window a year later has its 20 warm-up bars before `start`: it runs
    res = ql.request(_request("run", ticker="^GSPC", start="2000-01-04", end="2000-01-20"))
    assert res.returncode == 0, res.stderr


def test_sweep_skips_combinations_without_enough_bars(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="1999-01-04", end="1999-06-01", strategy="sma_crossover",
                              param_grid={"fast": [5, 20], "slow": [40, 235]}))
    mc = _report(res)["machine_contract"]
    assert mc["combinations_total"] == 4 and mc["combinations_skipped"] == 2
    assert mc["combinations_evaluated"] == 2
    assert {e["reason"] for e in mc["skipped_examples"]} == {"insufficient_data"}
    assert sorted(e["params"]["fast"] for e in mc["skipped_examples"]) == [5, 20]
    assert "needs 236 (235 warm-up + 1)" in mc["skipped_examples"][0]["message"]
    assert any("2 of 4 combinations skipped" in w for w in mc["warnings"])
    assert any(line.startswith("WARNING: ") and "2 of 4 combinations skipped" in line
               for line in res.stderr.splitlines())
    assert any("2 of 4 combinations skipped" in w for w in res.envelope["warnings"])
    lines = (Path(res.envelope["artifacts_path"]) / "leaderboard.csv").read_text().splitlines()
    assert len(lines) == 1 + 2  # only the evaluated combinations are ranked


def test_sweep_where_no_combination_has_enough_bars_fails_with_exit_3(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="1999-01-04", end="1999-06-01", strategy="sma_crossover",
                              param_grid={"fast": [5, 20], "slow": [200, 235]}))
    line = _failed(res, 3)
    assert "insufficient data for SPX 1999-01-04..1999-06-01: 102 bars available" in line
    assert "needs 201 (200 warm-up + 1)" in line
    _no_run_dirs(ql)


def test_walkforward_skips_combinations_without_enough_train_bars(ql):
    # the train window has 37 bars and no history before it: slow=100 cannot warm up there
    res = ql.request(_request("sweep", ticker="SPX", start="1999-01-04", end="1999-06-01", strategy="sma_crossover",
                              param_grid={"fast": [5], "slow": [20, 100]},
                              splits=[{"name": "s1", "train": {"start": "1999-01-04", "end": "1999-03-01"},
                                       "test": {"start": "1999-03-01", "end": "1999-06-01"}}]))
    mc = _report(res)["machine_contract"]
    assert mc["combinations_total"] == 2 and mc["combinations_skipped"] == 1
    assert mc["skipped_examples"][0]["params"]["slow"] == 100
    assert mc["skipped_examples"][0]["reason"] == "insufficient_data"
    assert mc["best_result"]["params"]["slow"] == 20


def test_forward_window_with_too_few_bars_fails_with_exit_3(ql):
    res, _ = _forward_after_sweep(ql, "1999-01-04", "1999-12-31", "1999-01-04", "1999-01-20")
    line = _failed(res, 3)
    assert line == ("ERROR: insufficient data for SPX 1999-01-04..1999-01-20: 11 bars available, "
                    "strategy sma_crossover needs 31 (30 warm-up + 1)")


# --------------------------------------------------------------- 10.3 impossible combinations
def test_sweep_grid_skips_combinations_breaking_constraints(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              param_grid={"fast": list(range(5, 60, 6)), "slow": list(range(40, 236, 15))}))
    report = _report(res)
    mc = report["machine_contract"]
    total = len(range(5, 60, 6)) * len(range(40, 236, 15))
    invalid = sum(1 for f in range(5, 60, 6) for s in range(40, 236, 15) if f >= s)
    assert invalid > 0
    assert mc["combinations_total"] == total and mc["combinations_skipped"] == invalid
    assert mc["combinations_evaluated"] == total - invalid
    example = mc["skipped_examples"][0]
    assert example["reason"] == "invalid_params" and example["params"]["fast"] >= example["params"]["slow"]
    assert "fast < slow" in example["message"]
    assert 0 < len(mc["skipped_examples"]) <= 5
    assert any(f"{invalid} of {total} combinations skipped" in w for w in mc["warnings"])
    assert any(line.startswith("WARNING: ") and "combinations skipped" in line for line in res.stderr.splitlines())
    rows = (Path(res.envelope["artifacts_path"]) / "leaderboard.csv").read_text().splitlines()
    assert len(rows) == 1 + total - invalid


def test_sweep_where_every_combination_breaks_constraints_fails_with_exit_2(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              param_grid={"fast": [50, 60], "slow": [40, 50]}))
    line = _failed(res, 2)
    assert "no valid combination" in line and "fast < slow" in line


def test_invalid_parameter_sets_are_skipped_by_label(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              parameter_sets=[{"label": "ok", "parameters": {"fast": 5, "slow": 30}},
                                              {"label": "inverted", "parameters": {"fast": 30, "slow": 5}},
                                              {"label": "too_big", "parameters": {"fast": 5, "slow": 10**9}}]))
    mc = _report(res)["machine_contract"]
    assert mc["combinations_total"] == 3 and mc["combinations_skipped"] == 2
    assert {e["label"] for e in mc["skipped_examples"]} == {"inverted", "too_big"}
    assert any("'inverted'" in w for w in mc["warnings"])
    assert mc["best_result"]["label"] == "ok"


def test_labels_with_commas_and_quotes_survive_in_the_leaderboard_csv(ql):
    """The contract's CSV quotes text as RFC 4180 says: labels come back as written."""
    labels = ["fast 5, slow 30", 'the "slow" one', "plain"]
    sets = [{"label": lab, "parameters": {"fast": f, "slow": s}} for lab, (f, s) in zip(labels, [(5, 30), (10, 100),
                                                                                               (20, 50)])]
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              parameter_sets=sets))
    _report(res)
    with open(Path(res.envelope["artifacts_path"]) / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["label"] for r in rows) == sorted(labels)
    assert {r["label"]: (r["fast"], r["slow"]) for r in rows}["fast 5, slow 30"] == ("5", "30")


def test_out_of_range_grid_value_is_still_refused(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              param_grid={"fast": [5, -3], "slow": [30]}))
    assert "out of range" in _failed(res, 2)


# ------------------------------------------------------------------ 10.12 zero-trade results
def test_run_with_zero_trades_warns(ql):
    res = ql.request(_request("run", ticker="SPX", start="2017-01-04", end="2017-03-01", strategy="sma_crossover",
                              strategy_params={"fast": 5, "slow": 200}))
    mc = _report(res)["machine_contract"]
    assert mc["summary"]["trades"] == 0
    assert any("0 trades" in w for w in mc["warnings"])
    assert any(line.startswith("WARNING: ") and "0 trades" in line for line in res.stderr.splitlines())
    assert any("0 trades" in w for w in res.envelope["warnings"])


def test_run_with_trades_does_not_warn(ql):
    res = ql.request(_request("run", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="sma_crossover",
                              strategy_params={"fast": 5, "slow": 30}))
    mc = _report(res)["machine_contract"]
    assert mc["summary"]["trades"] > 0 and mc["warnings"] == []
    assert "WARNING" not in res.stderr


def test_sweep_best_with_zero_trades_warns(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2017-01-04", end="2017-03-01", strategy="sma_crossover",
                              param_grid={"fast": [5], "slow": [150, 200]}))
    mc = _report(res)["machine_contract"]
    assert mc["summary"]["trades"] == 0
    assert any("made 0 trades" in w for w in mc["warnings"])
    assert any("made 0 trades" in line for line in res.stderr.splitlines())


# ------------------------------------------------------- 19.10 walk-forward, nothing selected
def test_walkforward_with_nothing_selected_stays_integral_and_flat(ql):
    res = ql.request(_request("sweep", ticker="SPX", start="2016-01-01", end="2018-01-01", strategy="sma_crossover",
                              param_grid={"fast": [5, 10], "slow": [30]}, constraints={"min_trades": 1000},
                              splits=[{"name": "s1", "train": {"start": "2016-01-01", "end": "2017-01-01"},
                                       "test": {"start": "2017-01-01", "end": "2017-07-01"}}]))
    report = _report(res)
    mc = report["machine_contract"]
    summary = mc["summary"]
    assert summary["trades"] == 0 and isinstance(summary["trades"], int)
    assert summary["total_return"] == 0.0 and summary["max_drawdown"] == 0.0
    assert summary["sharpe_simple"] is None  # flat equity: an undefined ratio is null (docs/engine.md)
    assert res.envelope["summary"] == summary == report["summary"]
    assert any("nothing selected" in w and "min_trades=1000" in w for w in mc["warnings"])
    assert any("nothing selected" in line for line in res.stderr.splitlines())
    import pyarrow.parquet as pq

    oos = pq.read_table(Path(res.envelope["artifacts_path"]) / "oos_equity.parquet").to_pydict()
    assert len(oos["equity"]) > 100 and set(oos["equity"]) == {10_000.0}


# ------------------------------------------------------------- 19.11 in-sample forward window
def test_forward_window_inside_the_training_period_warns(ql):
    res, sweep = _forward_after_sweep(ql, "2016-01-01", "2018-01-01", "2017-06-01", "2018-06-01")
    report = _report(res)
    warnings = report["machine_contract"]["warnings"]
    assert any("in-sample" in w for w in warnings), warnings
    assert any(line.startswith("WARNING: ") and "in-sample" in line for line in res.stderr.splitlines())
    out = ql.request(_request("forward", forward_eval=sweep.envelope["artifacts_path"],
                              forward_start="2018-01-01", forward_end="2018-06-01"))
    assert not any("in-sample" in w for w in _report(out)["machine_contract"]["warnings"])
    assert json.dumps(out.envelope).count("in-sample") == 0


# ------------------------------------------------------ 10.12 indicators after a NaN warm-up
MACD_PLUGIN = '''
from quantlab.engine import indicators as ind
from quantlab.strategies import Param, Signals, Strategy, register


@register
class Macd(Strategy):
    name = "macd_test"
    description = "MACD line crossing its signal line (test plugin)"
    params = (Param("fast", int, 12, 1, 500), Param("slow", int, 26, 2, 500), Param("signal", int, 9, 1, 500))

    def warmup_bars(self, params):
        params = self.resolve_params(params)
        return params["slow"] + params["signal"]

    def compute(self, open_, high, low, close, params):
        line = ind.ema(close, params["fast"]) - ind.ema(close, params["slow"])
        signal = ind.ema(line, params["signal"])  # the input starts with the slow EMA's NaN warm-up
        return Signals(ind.crossed_above(line, signal), ind.crossed_below(line, signal))
'''


def test_indicator_of_an_indicator_trades(ql, tmp_path):
    plugin = tmp_path / "plugins" / "ql_macd_test.py"
    plugin.parent.mkdir()
    plugin.write_text(MACD_PLUGIN)
    ql.env["PYTHONPATH"] = str(plugin.parent)
    ql.env["QUANTLAB_PLUGINS"] = "ql_macd_test"
    res = ql.request(_request("run", ticker="SPX", start="2017-01-01", end="2018-01-01", strategy="macd_test"))
    mc = _report(res)["machine_contract"]
    assert mc["summary"]["trades"] > 5 and mc["warnings"] == []


# ------------------------------------------------------------ 10.12 trades open at the end
def _trades(run_dir: Path) -> list[dict]:
    import csv

    with open(run_dir / "trades.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_buy_and_hold_reports_its_open_trade(ql):
    res = ql.request(_request("run", ticker="SPX", start="2017-01-04", end="2017-03-01", strategy="buy_and_hold"))
    report = _report(res)
    mc = report["machine_contract"]
    assert mc["summary"]["trades"] == 1 and mc["summary"]["win_rate"] == 1.0
    assert mc["warnings"] == [] and "WARNING" not in res.stderr
    (trade,) = _trades(Path(res.envelope["artifacts_path"]))
    assert trade["status"] == "open" and trade["exit_fee"] == "0"
    assert trade["exit_time"] == "2017-02-28T00:00:00Z"  # marked at the last bar's close
    assert float(trade["pnl"]) / 10_000 == pytest.approx(report["summary"]["total_return"], rel=1e-9)
    assert all(v != "" for v in trade.values())


def test_sweep_counts_an_open_trade_like_the_single_run(ql):
    params = dict(ticker="SPX", start="2017-01-04", end="2017-03-01", strategy="buy_and_hold")
    sweep = ql.request(_request("sweep", **params, param_grid={"fee": [0.002]}))
    run = ql.request(_request("run", **params))
    assert _report(sweep)["machine_contract"]["summary"] == _report(run)["machine_contract"]["summary"]


def test_forward_resume_over_a_trade_open_at_the_old_end(ql):
    sweep = ql.request(_request("sweep", ticker="SPX", start="2016-01-01", end="2017-01-01", strategy="buy_and_hold",
                                param_grid={"fee": [0.002]}))
    assert sweep.returncode == 0, sweep.stderr
    first = ql.request(_request("forward", forward_eval=sweep.envelope["artifacts_path"],
                                forward_start="2017-01-01", forward_end="2017-06-01"))
    session = Path(first.envelope["artifacts_path"])
    assert [t["status"] for t in _trades(session)] == ["open"]
    resumed = ql.request(_request("forward", resume_forward=str(session), forward_end="2018-01-01"))
    assert resumed.returncode == 0, resumed.stderr
    (trade,) = _trades(session)
    assert trade["status"] == "open" and trade["exit_time"].startswith("2017-12-29")
    assert _report(resumed)["machine_contract"]["summary"]["trades"] == 1


def test_forward_session_written_before_exit_reason_resumes(ql):
    """A session whose trades.csv predates the exit_reason column (issue #13) resumes: the replay is
    compared on the old file's columns, and a closed trade that changed still stops the resume."""
    sweep = ql.request(_request("sweep", ticker="SPX", start="2015-01-01", end="2017-01-01", strategy="sma_crossover",
                                param_grid={"fast": [5], "slow": [20]}))
    assert sweep.returncode == 0, sweep.stderr
    first = ql.request(_request("forward", forward_eval=sweep.envelope["artifacts_path"],
                                forward_start="2017-01-01", forward_end="2017-09-01"))
    assert first.returncode == 0, first.stderr
    session = Path(first.envelope["artifacts_path"])
    path = session / "trades.csv"
    header, *rows = path.read_text().splitlines()
    cols = header.split(",")
    keep = [i for i, c in enumerate(cols) if c != "exit_reason"]
    assert len(keep) == len(cols) - 1 and len(rows) >= 2
    old = [",".join(line.split(",")[i] for i in keep) for line in [header, *rows]]
    path.write_text("\n".join(old) + "\n")  # as the previous version wrote it
    resumed = ql.request(_request("forward", resume_forward=str(session), forward_end="2017-12-01"))
    assert resumed.returncode == 0, resumed.stderr
    assert "exit_reason" in path.read_text().splitlines()[0]  # rewritten with this version's columns
    # a recorded closed trade that the replay does not reproduce is still refused
    header, *rows = path.read_text().splitlines()
    pnl = header.split(",").index("pnl")
    fields = rows[0].split(",")
    fields[pnl] = "123456.0"
    path.write_text("\n".join([header, ",".join(fields), *rows[1:]]) + "\n")
    again = ql.request(_request("forward", resume_forward=str(session), forward_end="2018-01-01"))
    assert again.returncode == 3 and "differ from a replay" in again.stderr
