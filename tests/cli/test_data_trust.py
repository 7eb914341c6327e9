"""Issue #16, data a researcher can trust: adjusted prices, bundled real stocks, forgiving and explicit
file import. Black-box through main.py; every CSV is built by the test (or from the bundled stocks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import strict_json


def _run(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "d16", "command": "run", "params": params}


def _report(res) -> dict:
    return strict_json(Path(res.envelope["report_path"]).read_text())


def _metadata(res) -> dict:
    return strict_json((Path(res.envelope["artifacts_path"]) / "metadata.json").read_text())


def _assert_failed(res, code: int, *fragments: str) -> str:
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), res.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    return lines[0]


def _no_run_dir(ql) -> None:
    runs = ql.runs_dir()
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


def _aapl_raw() -> dict[str, np.ndarray]:
    from quantlab.data.sample import _stock_arrays, sample_file

    return _stock_arrays(sample_file("AAPL"), "AAPL")


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _daily_rows(n: int = 60, start: str = "2021-01-04", fmt: str = "%Y-%m-%d", jump_at: int | None = None):
    """Business-day rows date,open,high,low,close,volume of a gentle random walk (optionally a
    2:1 split-like halving at ``jump_at``)."""
    import pandas as pd

    rng = np.random.default_rng(3)
    days = pd.bdate_range(start, periods=n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    if jump_at is not None:
        close[jump_at:] /= 2
    rows = []
    for day, c in zip(days, close):
        rows.append(f"{day.strftime(fmt)},{c:.4f},{c * 1.01:.4f},{c * 0.99:.4f},{c:.4f},1000")
    return rows


# ------------------------------------------------------------------------------ adjustment
def test_split_warning_names_the_date_on_raw_aapl_2005(ql):
    res = ql.request(_run(ticker="AAPL", start="2004-06-01", end="2006-01-01", strategy="buy_and_hold",
                          adjust="none"))
    assert res.returncode == 0, res.stderr
    warnings = _report(res)["machine_contract"]["warnings"]
    split = [w for w in warnings if "possible unadjusted split on 2005-02-28" in w]
    assert split and "2:1 split" in split[0], warnings
    assert f"WARNING: {split[0]}" in res.stderr.splitlines()
    assert res.envelope["warnings"] == warnings or split[0] in res.envelope["warnings"]
    assert _metadata(res)["window"]["price_adjustment"].startswith("none")


@pytest.mark.parametrize("splits", [None, [
    {"name": "s1", "train": {"start": "2004-06-01", "end": "2005-06-01"},
     "test": {"start": "2005-06-01", "end": "2006-01-01"}}]], ids=["grid", "walkforward"])
def test_sweeps_carry_the_data_warnings_of_their_windows(ql, splits):
    """A sweep on raw AAPL across its 2005 split warns like a run (report, stderr, envelope), and
    so does its identical rerun (no Snakemake: the fast path publishes again)."""
    params = {"ticker": "AAPL", "start": "2004-06-01", "end": "2006-01-01", "adjust": "none",
              "strategy": "sma_crossover", "param_grid": {"fast": [5, 10], "slow": [30, 50]}}
    if splits:
        params["splits"] = splits
    payload = {"schema_version": "1.0", "command": "sweep", "params": params}
    for attempt in ("first", "identical rerun"):
        res = ql.request(payload)
        assert res.returncode == 0, res.stderr
        warnings = _report(res)["machine_contract"]["warnings"]
        split = [w for w in warnings if "possible unadjusted split on 2005-02-28" in w]
        assert len(split) == 1, (attempt, warnings)
        assert res.stderr.startswith("WARNING: ") and res.stderr.count(split[0]) == 1, (attempt, res.stderr)
        assert split[0] in res.envelope["warnings"], attempt


def test_bundled_stocks_are_served_adjusted_by_default(ql):
    """AAPL's 2005 split neither crashes the backtest nor shows as a fake -50% day."""
    res = ql.request(_run(ticker="AAPL", start="2004-06-01", end="2006-01-01", strategy="buy_and_hold"))
    assert res.returncode == 0, res.stderr
    warnings = _report(res)["machine_contract"]["warnings"]
    assert not any("split" in w for w in warnings), warnings
    assert "WARNING" not in res.stderr
    assert _metadata(res)["window"]["price_adjustment"].startswith("auto")
    raw = ql.request(_run(ticker="AAPL", start="2004-06-01", end="2006-01-01", strategy="buy_and_hold",
                          adjust="none"))
    # the raw series halves at the split; the adjusted buy-and-hold is far better and its worst
    # drawdown is not the fake -50% day
    assert res.envelope["summary"]["total_return"] > raw.envelope["summary"]["total_return"] + 1
    assert res.envelope["summary"]["max_drawdown"] > -0.4 > raw.envelope["summary"]["max_drawdown"]


def test_adjusted_and_unadjusted_copies_give_the_same_backtest(ql):
    """A raw copy of AAPL with an Adj Close column and a pre-adjusted copy without one (both built
    from the bundled data) give the same backtest as the bundled series itself."""
    arrays = _aapl_raw()
    days = arrays["index"].astype("datetime64[D]").astype(str)
    keep = (days >= "2003-01-01") & (days < "2008-01-01")
    ratio = arrays["adj_close"] / arrays["close"]
    raw_rows, adj_rows = [], []
    for i in np.flatnonzero(keep):
        o, h, lo, c, v, a = (float(arrays[k][i]) for k in ("open", "high", "low", "close", "volume", "adj_close"))
        raw_rows.append(f"{days[i]},{o!r},{h!r},{lo!r},{c!r},{a!r},{v:.0f}")
        r = float(ratio[i])
        adj_rows.append(f"{days[i]},{o * r!r},{h * r!r},{lo * r!r},{c * r!r},{v:.0f}")
    raw = _write_csv(ql.tmp / "aapl_raw.csv", "Date,Open,High,Low,Close,Adj Close,Volume", raw_rows)
    adjusted = _write_csv(ql.tmp / "aapl_adj.csv", "date,open,high,low,close,volume", adj_rows)
    common = {"ticker": "AAPL", "start": "2004-01-01", "end": "2007-01-01", "strategy": "sma_crossover",
              "strategy_params": {"fast": 10, "slow": 50}}
    results = [ql.request(_run(**common, data_path=str(raw))),
               ql.request(_run(**common, data_path=str(adjusted))),
               ql.request(_run(**common))]
    for res in results:
        assert res.returncode == 0, res.stderr
        assert not any("split" in w for w in res.envelope.get("warnings", []))
    summaries = [r.envelope["summary"] for r in results]
    for key in ("total_return", "sharpe_simple", "max_drawdown", "trades"):
        assert summaries[0][key] == pytest.approx(summaries[1][key], rel=1e-9, abs=1e-12), key
        assert summaries[0][key] == pytest.approx(summaries[2][key], rel=1e-9, abs=1e-12), key
    # the raw copy without adjustment warns about both 2005 and none other in the window
    none = ql.request(_run(**common, data_path=str(raw), adjust="none"))
    assert none.returncode == 0
    assert [w for w in none.envelope["warnings"] if "split" in w][0].startswith(
        "AAPL: possible unadjusted split on 2005-02-28")


def test_splits_only_removes_the_split_but_not_the_dividends(ql):
    common = {"ticker": "MSFT", "start": "2003-01-01", "end": "2006-01-01", "strategy": "buy_and_hold"}
    auto = ql.request(_run(**common))
    splits = ql.request(_run(**common, adjust="splits_only"))
    raw = ql.request(_run(**common, adjust="none"))
    assert auto.returncode == splits.returncode == raw.returncode == 0
    # MSFT split 2:1 on 2003-02-18 and paid a $3 special dividend in Nov 2004
    assert any("2003-02-18" in w for w in raw.envelope["warnings"])
    assert "warnings" not in splits.envelope or not any("split" in w for w in splits.envelope["warnings"])
    tr = {name: r.envelope["summary"]["total_return"] for name, r in
          (("auto", auto), ("splits", splits), ("raw", raw))}
    assert tr["auto"] > tr["splits"] > tr["raw"]


def test_invalid_adjust_is_a_bad_request(ql):
    res = ql.request(_run(ticker="AAPL", start="2004-01-01", end="2005-01-01", adjust="dividends"))
    _assert_failed(res, 2, "adjust")
    _no_run_dir(ql)


# ------------------------------------------------------------------------------ bundled stocks
def test_four_stock_basket_and_portfolio_run_offline(ql):
    legs = [{"label": t.lower(), "ticker": t, "weight": 0.25} for t in ("AAPL", "IBM", "MSFT", "GOOG")]
    res = ql.request({"schema_version": "1.0", "request_id": "basket", "command": "portfolio",
                      "params": {"start": "2006-01-01", "end": "2012-01-01", "legs": legs}})
    assert res.returncode == 0, res.stderr
    out = Path(res.envelope["artifacts_path"])
    metrics = strict_json((out / "metrics.json").read_text())
    assert sorted(s["session_id"] for s in metrics["sessions"]) == ["aapl", "goog", "ibm", "msft"]
    assert res.signals[-1]["event"] == "SESSION_COMPLETED"
    # offline: nothing was downloaded (no yfinance cache)
    assert not (ql.outputs / "cache" / "yfinance").exists()


@pytest.mark.parametrize("ticker,first", [("IBM", "2000-03-01"), ("GOOG", "2004-08-19"), ("GOOGL", "2004-08-19")])
def test_bundled_stock_coverage_is_named_when_the_window_is_outside(ql, ticker, first):
    res = ql.request(_run(ticker=ticker, start="1999-01-01", end="2001-01-01", source="sample"))
    _assert_failed(res, 3, first, "2013-03-01")
    _no_run_dir(ql)


# ------------------------------------------------------------------------------ file import
def test_descending_mixed_case_file_loads_with_a_note(ql):
    rows = _daily_rows()
    path = _write_csv(ql.tmp / "newest_first.csv", "DATE,Open,HIGH,low,Close,VOLUME", list(reversed(rows)))
    ascending = _write_csv(ql.tmp / "oldest_first.csv", "timestamp,open,high,low,close,vol", rows)
    common = {"ticker": "X", "start": "2021-01-04", "end": "2021-03-26", "strategy": "buy_and_hold"}
    res = ql.request(_run(**common, data_path=str(path)))
    assert res.returncode == 0, res.stderr
    notes = [w for w in res.envelope["warnings"] if "newest first" in w]
    assert notes and notes[0] in _report(res)["machine_contract"]["warnings"]
    same = ql.request(_run(**common, data_path=str(ascending)))
    assert same.returncode == 0, same.stderr
    assert same.envelope["summary"] == res.envelope["summary"]


def test_day_first_dates_load_with_date_format_and_ambiguity_is_an_error(ql):
    rows = _daily_rows(n=8, start="2021-02-01", fmt="%d/%m/%Y")  # every day and month <= 12
    path = _write_csv(ql.tmp / "ddmm.csv", "Date,Open,High,Low,Close,Volume", rows)
    common = {"ticker": "X", "start": "2021-02-01", "end": "2021-02-11", "strategy": "buy_and_hold"}
    res = ql.request(_run(**common, data_path=str(path)))
    line = _assert_failed(res, 3, "ambiguous", "date_format")
    assert "not sorted" not in line
    _no_run_dir(ql)
    ok = ql.request(_run(**common, data_path=str(path), date_format="%d/%m/%Y"))
    assert ok.returncode == 0, ok.stderr
    assert _metadata(ok)["window"]["first_bar"].startswith("2021-02-01")


def test_day_first_dates_the_file_decides_never_say_not_sorted(ql):
    rows = _daily_rows(n=40, start="2021-03-01", fmt="%d/%m/%Y")  # days above 12: day-first
    path = _write_csv(ql.tmp / "ddmm.csv", "Date,Open,High,Low,Close,Volume", rows)
    res = ql.request(_run(ticker="X", start="2021-03-01", end="2021-04-24", strategy="buy_and_hold",
                          data_path=str(path)))
    assert res.returncode == 0, res.stderr
    wrong = ql.request(_run(ticker="X", start="2021-03-01", end="2021-04-24", strategy="buy_and_hold",
                            data_path=str(path), date_format="%m/%d/%Y"))
    _assert_failed(wrong, 3, "date_format '%m/%d/%Y'")


def test_window_not_covered_by_the_file_names_its_coverage(ql):
    path = _write_csv(ql.tmp / "short.csv", "date,open,high,low,close,volume", _daily_rows())
    res = ql.request(_run(ticker="X", start="2015-01-01", end="2024-01-01", strategy="buy_and_hold",
                          data_path=str(path)))
    _assert_failed(res, 3, "covers 2021-01-04..2021-03-26 only")
    _no_run_dir(ql)
    inside = ql.request(_run(ticker="X", start="2021-01-01", end="2021-03-29", strategy="buy_and_hold",
                             data_path=str(path)))  # weekend slack at both ends is fine
    assert inside.returncode == 0, inside.stderr


def test_time_zone_aware_daily_dates_keep_their_local_date(ql):
    rows = [r.split(",", 1) for r in _daily_rows(n=30)]
    aware = [f"{day}T00:00:00+09:00,{rest}" for day, rest in rows]
    path = _write_csv(ql.tmp / "tokyo.csv", "Date,Open,High,Low,Close,Volume", aware)
    res = ql.request(_run(ticker="X", start="2021-01-04", end="2021-02-13", strategy="buy_and_hold",
                          data_path=str(path)))
    assert res.returncode == 0, res.stderr
    assert _metadata(res)["window"]["first_bar"] == "2021-01-04T00:00:00Z"  # not 2021-01-03T15:00


def test_intraday_file_runs_with_its_real_interval(ql):
    import pandas as pd

    stamps = pd.date_range("2021-03-01 14:30", periods=7 * 40, freq="h", tz="UTC")
    stamps = stamps[(stamps.hour >= 14) & (stamps.hour <= 20)]
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, len(stamps))))
    rows = [f"{t.isoformat()},{c:.5f},{c * 1.001:.5f},{c * 0.999:.5f},{c:.5f},10" for t, c in zip(stamps, close)]
    path = _write_csv(ql.tmp / "hourly.csv", "Datetime,Open,High,Low,Close,Volume", rows)
    res = ql.request(_run(ticker="X", start="2021-03-01", end="2021-03-13", interval="1h",
                          strategy="buy_and_hold", data_path=str(path)))
    assert res.returncode == 0, res.stderr
    window = _metadata(res)["window"]
    assert window["bar_interval"] == "1h"
    assert window["first_bar"] == "2021-03-01T14:30:00Z"


@pytest.mark.parametrize("row,reason", [
    ("2021-01-06,1,1.1,0.9,,10", "close is NaN or infinite in 1 row (first at 2021-01-06)"),
    ("2021-01-06,1,0.8,0.9,1,10", "high < max(open, close) in 1 row (first at 2021-01-06)"),
    ("2021-01-06,-1,1.1,0.9,1,10", "open <= 0 in 1 row (first at 2021-01-06)"),
    ("2021-01-05,1,1.1,0.9,1,10", "duplicate timestamps: 1 row (first at 2021-01-05)"),
])
def test_bad_rows_are_still_rejected_with_their_date(ql, row, reason):
    rows = ["2021-01-04,1,1.1,0.9,1,10", "2021-01-05,1,1.1,0.9,1,10", row, "2021-01-07,1,1.1,0.9,1,10"]
    path = _write_csv(ql.tmp / "bad.csv", "date,open,high,low,close,volume", rows)
    res = ql.request(_run(ticker="X", start="2021-01-04", end="2021-01-08", strategy="buy_and_hold",
                          data_path=str(path)))
    _assert_failed(res, 3, reason)
    _no_run_dir(ql)


def test_schema_states_the_new_params():
    from conftest import ROOT

    schema = json.loads((ROOT / "config" / "schemas" / "request.schema.json").read_text())
    text = json.dumps(schema)
    assert '"adjust"' in text and '"date_format"' in text and '"splits_only"' in text


def test_reproduce_command_keeps_adjust_and_date_format(ql):
    import shlex

    rows = _daily_rows(n=30, start="2021-03-01", fmt="%d/%m/%Y")
    path = _write_csv(ql.tmp / "ddmm.csv", "Date,Open,High,Low,Close,Volume", rows)
    res = ql.request(_run(ticker="X", start="2021-03-01", end="2021-04-10", strategy="buy_and_hold",
                          data_path=str(path), date_format="%d/%m/%Y", adjust="none"))
    assert res.returncode == 0, res.stderr
    command = _report(res)["reproduce"]["command"]
    args = shlex.split(command)
    assert args[args.index("--adjust") + 1] == "none"
    assert args[args.index("--date-format") + 1] == "%d/%m/%Y"
    again = ql.cli(*args[2:])
    assert again.returncode == 0, again.stderr
    run_id = res.envelope["run_id"]
    assert run_id.split("_")[-1] in again.stdout  # same run identity (digest of the resolved params)


def test_sweep_takes_adjust_into_its_data(ql):
    def sweep(adjust):
        return ql.request({"schema_version": "1.0", "request_id": "sw", "command": "sweep", "params": {
            "ticker": "AAPL", "start": "2004-06-01", "end": "2006-01-01", "strategy": "sma_crossover",
            "adjust": adjust, "param_grid": {"fast": [5, 10], "slow": [50]}}})

    auto, raw = sweep("auto"), sweep("none")
    assert auto.returncode == 0 and raw.returncode == 0, auto.stderr + raw.stderr
    assert auto.envelope["summary"]["total_return"] > raw.envelope["summary"]["total_return"] + 0.5


def test_basket_names_a_legs_data_warning(ql):
    legs = [{"label": "aapl", "ticker": "AAPL", "weight": 0.5}, {"label": "ibm", "ticker": "IBM", "weight": 0.5}]
    res = ql.request({"schema_version": "1.0", "request_id": "basket", "command": "portfolio",
                      "params": {"start": "2004-06-01", "end": "2006-01-01", "adjust": "none", "legs": legs}})
    assert res.returncode == 0, res.stderr
    warnings = _report(res)["machine_contract"]["warnings"]
    assert [w for w in warnings if w.startswith("leg aapl: AAPL: possible unadjusted split on 2005-02-28")]
    assert not [w for w in warnings if w.startswith("leg ibm")]
    assert any(line.startswith("WARNING: leg aapl: AAPL: possible unadjusted split") for line in res.stderr.splitlines())
