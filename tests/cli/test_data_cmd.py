"""Issue #16, the ``data`` commands: ``main.py data list|inspect|import [--json]``. Black-box
through main.py; every CSV is built by the test (from the bundled AAPL bars or synthetic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import strict_json


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return strict_json(lines[0])


def _error(proc, code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


def _aapl_csv(path: Path, start: str, end: str, *, adj_close: bool = True, newest_first: bool = False) -> Path:
    """The bundled raw AAPL bars of ``[start, end)`` as a CSV (with the vendor's Adj Close)."""
    from quantlab.data.sample import _stock_arrays, sample_file
    from quantlab.data.timeutil import format_time

    raw = _stock_arrays(sample_file("AAPL"), "AAPL")
    days = [format_time(t) for t in raw["index"]]
    rows = [i for i, d in enumerate(days) if start <= d < end]
    if newest_first:
        rows = rows[::-1]
    header = "Date,Open,High,Low,Close,Volume" + (",Adj Close" if adj_close else "")
    lines = [header]
    for i in rows:
        cells = [days[i], *(repr(float(raw[k][i])) for k in ("open", "high", "low", "close", "volume"))]
        if adj_close:
            cells.append(repr(float(raw["adj_close"][i])))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def _daily_csv(path: Path, days: list[str], *, high_below_low_at: int | None = None) -> Path:
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    lines = ["date,open,high,low,close,volume"]
    for i, day in enumerate(days):
        hi, lo = close[i] * 1.01, close[i] * 0.99
        if i == high_below_low_at:
            hi, lo = lo, hi
        lines.append(f"{day},{close[i]},{hi},{lo},{close[i]},1000")
    path.write_text("\n".join(lines) + "\n")
    return path


def _bdays(start: str, n: int) -> list[str]:
    import pandas as pd

    return [d.strftime("%Y-%m-%d") for d in pd.bdate_range(start, periods=n)]


def _imported(ql) -> list[Path]:
    folder = ql.outputs / "cache" / "imported"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# ------------------------------------------------------------------------------------------ list
def test_list_shows_the_bundled_tickers_with_their_coverage(ql):
    out = _json(ql.cli("data", "list", "--json"))
    bundled = {e["ticker"]: e for e in out["entries"] if e["kind"] == "bundled"}
    assert set(bundled) == {"^GSPC", "^IXIC", "AAPL", "IBM", "MSFT", "GOOG"}
    assert (bundled["AAPL"]["first"], bundled["AAPL"]["end"]) == ("2000-03-01", "2013-03-02")
    assert "SPX" in bundled["^GSPC"]["aliases"] and bundled["AAPL"]["adjusted_close"] is True
    human = ql.cli("data", "list")
    assert human.returncode == 0 and "GOOG" in human.stdout and "2004-08-19" in human.stdout


def test_list_shows_imported_bars_and_files_under_a_data_dir(ql, tmp_path):
    data_dir = tmp_path / "mydata"
    (data_dir / "sub").mkdir(parents=True)
    csv = _daily_csv(data_dir / "sub" / "xyz.csv", _bdays("2021-01-04", 30))
    (data_dir / "notes.txt").write_text("not data\n")
    _json(ql.cli("data", "import", str(csv), "--ticker", "XYZ", "--json"))
    out = _json(ql.cli("data", "list", "--data-dir", str(data_dir), "--json"))
    imported = [e for e in out["entries"] if e["kind"] == "imported"]
    assert [(e["ticker"], e["interval"], e["bars"], e["first"]) for e in imported] == [
        ("XYZ", "1d", 30, "2021-01-04")]
    files = [e["path"] for e in out["entries"] if e["kind"] == "file"]
    assert files == [str(csv)]
    _error(ql.cli("data", "list", "--data-dir", str(tmp_path / "missing")), 2, "not a directory")


# --------------------------------------------------------------------------------------- inspect
def test_inspect_raw_aapl_2005_names_the_split(ql):
    proc = ql.cli("data", "inspect", "AAPL", "--adjust", "none", "--start", "2005-01-01", "--end", "2006-01-01",
                  "--json")
    out = _json(proc)
    assert (out["bars"], out["first"], out["last"]) == (252, "2005-01-03", "2005-12-30")
    assert (out["inferred_interval"], out["periods_per_year"], out["calendar"]) == ("1d", 252.0, "exchange")
    assert out["adjustment"].startswith("none")
    assert out["split_like_jumps"] == [{"date": "2005-02-28", "factor": 2.0}]
    assert any("possible unadjusted split on 2005-02-28" in w for w in out["warnings"])
    assert "WARNING: AAPL: possible unadjusted split on 2005-02-28" in proc.stderr
    # adjusted (the default): no jump, the adjustment is named
    adjusted = _json(ql.cli("data", "inspect", "aapl", "--start", "2005-01-01", "--end", "2006-01-01", "--json"))
    assert adjusted["split_like_jumps"] == [] and adjusted["adjustment"].startswith("auto")
    assert adjusted["warnings"] == []


def test_inspect_a_file_reports_its_largest_gap_and_reads_day_first_dates(ql, tmp_path):
    days = _bdays("2022-01-03", 40) + _bdays("2022-04-01", 40)  # a ~7-week hole in the middle
    csv = tmp_path / "eu.csv"
    _daily_csv(csv, [f"{d[8:10]}/{d[5:7]}/{d[:4]}" for d in days])
    out = _json(ql.cli("data", "inspect", str(csv), "--date-format", "%d/%m/%Y", "--json"))
    assert (out["bars"], out["first"], out["last"]) == (80, "2022-01-03", days[-1])
    gap = out["largest_gaps"][0]
    assert (gap["after"], gap["before"]) == (days[39], "2022-04-01") and gap["x_typical"] > 10
    assert any(f"gap of {gap['days']:g} days between {days[39]} and 2022-04-01" in w for w in out["warnings"])
    human = ql.cli("data", "inspect", str(csv), "--date-format", "%d/%m/%Y")
    assert human.returncode == 0 and f"gap {gap['days']:g}d {days[39]} -> 2022-04-01" in human.stdout


def test_inspect_infers_an_intraday_interval(ql, tmp_path):
    import pandas as pd

    stamps = pd.date_range("2024-01-02 14:30", periods=40, freq="h", tz="UTC")
    close = 100 + np.arange(40) * 0.1
    csv = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "high": close + 1,
                  "low": close - 1, "close": close, "volume": 10}).to_csv(csv, index=False)
    out = _json(ql.cli("data", "inspect", str(csv), "--json"))
    assert (out["bars"], out["interval"], out["inferred_interval"]) == (40, "1h", "1h")
    assert out["first"] == "2024-01-02T14:30:00Z" and out["periods_per_year"] == 252 * 6.5


def test_inspect_errors(ql, tmp_path):
    _error(ql.cli("data", "inspect", "NOSUCHTICKER"), 3, "No local bars for NOSUCHTICKER")
    _error(ql.cli("data", "inspect", str(tmp_path / "missing.csv")), 3, "file not found")
    _error(ql.cli("data", "inspect", "AAPL", "--start", "2020-01-01"), 3, "2000-03-01..2013-03-01")
    _error(ql.cli("data", "inspect", "AAPL", "--interval", "7x"), 2, "invalid choice")
    _error(ql.cli("data", "inspect"), 2, "TICKER|FILE")
    _error(ql.cli("data"), 2, "list, inspect, import")
    _error(ql.cli("data", "bogus"), 2, "invalid choice")


# ---------------------------------------------------------------------------------------- import
def _run(ql, ticker: str, start: str, end: str) -> dict:
    res = ql.request({"schema_version": "1.0", "request_id": "dc", "command": "run",
                      "params": {"ticker": ticker, "start": start, "end": end, "strategy": "buy_and_hold"}})
    assert res.returncode == 0, res.stderr
    return res.envelope


def test_import_then_run_uses_the_imported_bars_offline(ql, tmp_path):
    csv = _aapl_csv(tmp_path / "aapl export.csv", "2004-06-01", "2006-06-01", newest_first=True)
    proc = ql.cli("data", "import", str(csv), "--ticker", "MYAAPL", "--json")
    out = _json(proc)
    stored = ql.outputs / "cache" / "imported" / "MYAAPL_1d.parquet"
    assert out["path"] == str(stored) and stored.is_file()
    assert (out["ticker"], out["interval"], out["first"]) == ("MYAAPL", "1d", "2004-06-01")
    assert out["adjustment"].startswith("auto")
    assert "newest first" in proc.stderr and any("newest first" in w for w in out["warnings"])
    # run --ticker MYAAPL reads the imported (adjusted) bars: the bundled adjusted AAPL's result exactly
    mine = _run(ql, "MYAAPL", "2005-01-01", "2006-01-01")
    bundled = _run(ql, "AAPL", "2005-01-01", "2006-01-01")
    assert mine["summary"]["total_return"] == pytest.approx(bundled["summary"]["total_return"], abs=1e-9)
    assert mine["summary"]["total_return"] > 0  # the 2005 split is no crash
    assert not any("newest first" in w for w in mine.get("warnings", []))  # said once, at import time
    # a window the imported file does not cover is exit 3 naming its coverage
    res = ql.request({"schema_version": "1.0", "command": "run",
                      "params": {"ticker": "MYAAPL", "start": "2010-01-01", "end": "2011-01-01"}})
    assert res.returncode == 3 and "imported file" in res.stderr and "2004-06-01..2006-05-31" in res.stderr


def test_reimporting_changes_what_the_next_run_computes(ql, tmp_path):
    first = _aapl_csv(tmp_path / "a.csv", "2005-01-01", "2006-01-01")
    _json(ql.cli("data", "import", str(first), "--ticker", "SWAP", "--json"))
    before = _run(ql, "SWAP", "2005-01-01", "2006-01-01")
    _json(ql.cli("data", "import", str(first), "--ticker", "SWAP", "--adjust", "none", "--json"))
    after = _run(ql, "SWAP", "2005-01-01", "2006-01-01")
    # raw prices: the 2:1 split halves the position's value (+12% instead of the adjusted +123%)
    assert after["summary"]["total_return"] < before["summary"]["total_return"] / 5
    assert any("possible unadjusted split on 2005-02-28" in w for w in after["warnings"])


def test_import_human_output_says_where_the_bars_went(ql, tmp_path):
    csv = _daily_csv(tmp_path / "h.csv", _bdays("2021-01-04", 30))
    proc = ql.cli("data", "import", str(csv), "--ticker", "HUM")
    assert proc.returncode == 0, proc.stderr
    assert f"stored:     {ql.outputs / 'cache' / 'imported' / 'HUM_1d.parquet'}" in proc.stdout
    assert "run --ticker HUM" in proc.stdout


def test_import_refuses_bad_input_and_writes_nothing(ql, tmp_path):
    bad = _daily_csv(tmp_path / "bad.csv", _bdays("2021-01-04", 30), high_below_low_at=7)
    _error(ql.cli("data", "import", str(bad), "--ticker", "BAD"), 3, "2021-01-13")
    _error(ql.cli("data", "import", str(tmp_path / "none.csv"), "--ticker", "BAD"), 3, "file not found")
    daily = _daily_csv(tmp_path / "d.csv", _bdays("2021-01-04", 30))
    _error(ql.cli("data", "import", str(daily), "--ticker", "BAD", "--interval", "1h"), 3, "interval 1d")
    _error(ql.cli("data", "import", str(daily)), 2, "--ticker")
    _error(ql.cli("data", "import", str(daily), "--ticker", "  "), 2, "--ticker")
    _error(ql.cli("data", "import", "AAPL", "--ticker", "X"), 3, "no such file")
    assert _imported(ql) == []


# ------------------------------------------------------------------------------ --json-request
def _data(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "dq", "command": "data", "params": params}


def test_data_through_a_json_request(ql, tmp_path):
    res = ql.request(_data(action="inspect", target="AAPL", adjust="none", start="2005-01-01", end="2006-01-01"))
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert (env["status"], env["command"], env["exit_code"]) == ("success", "data", 0)
    assert env["data"]["split_like_jumps"] == [{"date": "2005-02-28", "factor": 2.0}]
    assert any("2005-02-28" in w for w in env["warnings"]) and "WARNING: AAPL" in res.stderr
    assert [s["event"] for s in res.signals] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    csv = _daily_csv(tmp_path / "j.csv", _bdays("2021-01-04", 30))
    res = ql.request(_data(action="import", file=str(csv), ticker="JSN"))
    assert res.returncode == 0, res.stderr
    assert res.envelope["data"]["path"] == str(ql.outputs / "cache" / "imported" / "JSN_1d.parquet")
    listed = ql.request(_data(action="list")).envelope["data"]["entries"]
    assert ("JSN", "imported") in [(e["ticker"], e["kind"]) for e in listed]


@pytest.mark.parametrize("params, code, fragment", [
    ({}, 2, "params.action"),
    ({"action": "inspect"}, 2, "params.target"),
    ({"action": "import", "file": "x.csv"}, 2, "params.ticker"),
    ({"action": "nope"}, 2, "must be one of"),
    ({"action": "inspect", "target": "NOSUCHTICKER"}, 3, "No local bars for NOSUCHTICKER"),
    ({"action": "import", "file": "/no/such/file.csv", "ticker": "X"}, 3, "file not found"),
])
def test_data_request_errors(ql, params, code, fragment):
    res = ql.request(_data(**params))
    assert res.returncode == code, res.stderr
    assert res.stderr.startswith("ERROR: ") and fragment in res.stderr
    assert res.envelope["status"] == "error" and res.envelope["exit_code"] == code
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    assert _imported(ql) == []
