"""quantlab.data.adjust (back-adjustment, split detection) and the file import normaliser (issue #16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.data import DataRequest, load_bars
from quantlab.data.adjust import (adjusted_bars, adjustment_factors, detect_splits, split_warnings,
                                  with_split_notes)
from quantlab.data.files import FrameError, frame_to_arrays
from quantlab.errors import ConfigError, DataError

DAYS = np.arange("2020-01-01", "2021-01-01", dtype="datetime64[D]").astype("datetime64[ns]")

returns = st.lists(st.floats(-0.08, 0.08, allow_nan=False), min_size=3, max_size=120)


def _series(rets: list[float], start: float = 100.0) -> np.ndarray:
    return start * np.exp(np.cumsum(np.asarray(rets)))


def _arrays(close: np.ndarray, adj: np.ndarray | None = None) -> dict[str, np.ndarray]:
    out = {"index": DAYS[: close.size], "open": close * 0.995, "high": close * 1.01,
           "low": close * 0.98, "close": close, "volume": np.full(close.size, 1000.0)}
    if adj is not None:
        out["adj_close"] = adj
    return out


@settings(max_examples=60, deadline=None)
@given(returns, st.lists(st.sampled_from([1.0, 1.0, 1.0, 0.5, 1 / 3, 0.25, 0.99, 0.98]), min_size=120, max_size=120))
def test_adjusted_returns_equal_adj_close_returns(rets, events):
    """Whatever splits (0.5 ...) and dividends (0.99 ...) sit between the raw and the adjusted
    close, the auto-adjusted close has exactly the adjusted close's returns, and every OHLC row
    keeps its shape (high/low/open relative to close)."""
    adj = _series(rets)
    # raw = adj / cumulative factor applied backwards (earlier rows are higher before a split)
    factor = np.cumprod(np.asarray(events[: adj.size])[::-1])[::-1]
    raw_close = adj / factor
    bars = adjusted_bars(_arrays(raw_close, adj), ticker="T", interval="1d", source="file")
    np.testing.assert_allclose(bars.close, adj, rtol=1e-12)
    np.testing.assert_allclose(np.diff(np.log(bars.close)), np.diff(np.log(adj)), atol=1e-12)
    np.testing.assert_allclose(bars.high / bars.close, 1.01, rtol=1e-12)
    np.testing.assert_allclose(bars.volume, 1000.0)
    assert bars.adjustment.startswith("auto")


@settings(max_examples=60, deadline=None)
@given(returns, st.integers(1, 119), st.sampled_from([2.0, 3.0, 4.0, 1.5, 7.0, 0.1, 0.5]))
def test_split_on_unadjusted_data_is_detected_at_its_date(rets, at, split):
    """A synthetic split (the price divided by the split factor from one bar on) is found at that
    bar, as long as the day's own move is small."""
    rets = [r * 0.25 for r in rets]  # at most +-2% a day: only the split is a jump
    close = _series(rets)
    at = min(at, close.size - 1)
    close[at:] /= split
    found = detect_splits(DAYS[: close.size], close, np.ones(close.size))
    assert [i for i, _ in found] == [at]
    assert found[0][1] == pytest.approx(split, rel=1e-9)
    text = split_warnings(DAYS[: close.size], close, np.ones(close.size), ticker="T")
    assert len(text) == 1 and str(DAYS[at])[:10] in text[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.12, 0.12, allow_nan=False), min_size=2, max_size=200))
def test_ordinary_moves_are_not_splits(rets):
    close = _series(rets)
    assert detect_splits(DAYS[: close.size], close, np.ones(close.size)) == []


def test_splits_only_keeps_dividends_out():
    adj = _series([0.001] * 10)
    raw = adj.copy()
    raw[:5] *= 2.0  # a 2:1 split at bar 5
    raw[:8] /= 0.99  # a 1% dividend at bar 8
    factors = adjustment_factors(raw, adj, "splits_only")
    np.testing.assert_allclose(factors[:5], 0.5)
    np.testing.assert_allclose(factors[5:], 1.0)
    auto = adjustment_factors(raw, adj, "auto")
    np.testing.assert_allclose(raw * auto, adj)
    assert adjustment_factors(raw, adj, "none") is None


def test_missing_adjusted_values_take_the_next_ratio():
    raw = np.array([10.0, 10.0, 10.0, 10.0])
    adj = np.array([5.0, np.nan, 0.0, 10.0])
    np.testing.assert_allclose(adjustment_factors(raw, adj, "auto"), [0.5, 1.0, 1.0, 1.0])
    assert adjustment_factors(raw, np.full(4, np.nan), "auto") is None


def test_split_notes_only_for_unadjusted_bars():
    close = np.array([100.0, 101.0, 50.4, 50.0])
    raw = adjusted_bars(_arrays(close), ticker="T", interval="1d", source="file")
    assert raw.adjustment.startswith("none") and with_split_notes(raw).notes[0].startswith(
        "T: possible unadjusted split on 2020-01-03")
    adjusted = adjusted_bars(_arrays(close, close), ticker="T", interval="1d", source="file")
    assert with_split_notes(adjusted).notes == ()


# ------------------------------------------------------------------------------ import normaliser
@pytest.mark.parametrize("headers", [
    ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"),
    ("date", "open", "high", "low", "close", "adj_close", "volume"),
    ("TIMESTAMP", "OPEN", "HIGH", "LOW", "CLOSE", "ADJCLOSE", "VOL"),
    (" Datetime ", "open ", "High", "low", "Close", "Adjusted Close", "Volume"),
])
def test_column_names_are_case_and_alias_insensitive(headers):
    frame = pd.DataFrame([["2021-01-04", 1, 2, 0.5, 1.5, 0.75, 10]], columns=list(headers))
    arrays = frame_to_arrays(frame)
    assert arrays["close"][0] == 1.5 and arrays["adj_close"][0] == 0.75 and arrays["volume"][0] == 10
    assert str(arrays["index"][0])[:10] == "2021-01-04"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dates(min_value=pd.Timestamp("2000-01-01").date(), max_value=pd.Timestamp("2030-12-31").date()),
                min_size=1, max_size=30, unique=True), st.sampled_from(["/", ".", "-"]))
def test_slash_dates_parse_exactly_or_are_refused_as_ambiguous(days, sep):
    """Day-first text: parsed day-first when some day is above 12, else refused as ambiguous;
    with date_format always exact."""
    text = [d.strftime(f"%d{sep}%m{sep}%Y") for d in days]
    frame = pd.DataFrame({"date": text, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    expected = np.array([np.datetime64(d, "ns") for d in days])
    exact = frame_to_arrays(frame, date_format=f"%d{sep}%m{sep}%Y")["index"]
    np.testing.assert_array_equal(exact, expected)
    if any(d.day > 12 for d in days) and not all(d.day == d.month for d in days):
        np.testing.assert_array_equal(frame_to_arrays(frame)["index"], expected)
    elif all(d.day <= 12 for d in days):
        with pytest.raises(FrameError, match="ambiguous"):
            frame_to_arrays(frame)


def test_newest_first_file_is_reversed_with_a_note(tmp_path: Path):
    path = tmp_path / "d.csv"
    path.write_text("date,open,high,low,close\n2021-01-06,1,2,0.5,1\n2021-01-05,1,2,0.5,1\n2021-01-04,1,2,0.5,1\n")
    bars = load_bars(DataRequest("T", "2021-01-04", "2021-01-07", source="file", data_path=str(path)))
    assert [str(t)[:10] for t in bars.index] == ["2021-01-04", "2021-01-05", "2021-01-06"]
    assert any("newest first" in n for n in bars.notes)
    path.write_text("date,open,high,low,close\n2021-01-05,1,2,0.5,1\n2021-01-06,1,2,0.5,1\n2021-01-04,1,2,0.5,1\n")
    with pytest.raises(DataError, match="not sorted"):  # a shuffled file is still refused
        load_bars(DataRequest("T", "2021-01-04", "2021-01-07", source="file", data_path=str(path)))


def test_invalid_adjust_and_date_format_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="adjust"):
        load_bars(DataRequest("AAPL", "2004-01-01", "2005-01-01", adjust="yes"))
    with pytest.raises(ConfigError, match="date_format"):
        load_bars(DataRequest("T", "2004-01-01", "2005-01-01", source="file", data_path="x.csv",
                              date_format="dd/mm/yyyy"))


def test_bundled_stocks_parse_without_importing_bokeh():
    import subprocess
    import sys

    code = ("import sys; from quantlab.data import DataRequest, load_bars; "
            "b = load_bars(DataRequest('GOOG', '2005-01-01', '2006-01-01')); "
            "assert b.source == 'sample' and len(b) == 252, len(b); "
            "assert not any(m.startswith('bokeh') for m in sys.modules), 'bokeh imported'")
    src = str(Path(__file__).resolve().parents[2] / "src")
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); {code}"], check=True)


def test_split_on_the_open_is_found_even_when_the_day_rallies():
    """AAPL 2000-06-21: opened -50.1% (a 2:1 split) but closed only -45.1%: the gap finds it."""
    close = np.array([100.0, 101.25, 55.63])
    open_ = np.array([99.0, 98.5, 50.5])
    assert detect_splits(DAYS[:3], close, np.ones(3)) == []
    assert detect_splits(DAYS[:3], close, np.ones(3), open_) == [(2, 2.0)]


def test_bundled_raw_stocks_split_warnings():
    """Every real split of the bundled stocks is found, and nothing else but AAPL's real -52% day."""
    from quantlab.data.sample import _stock_arrays, sample_file

    found = {}
    for ticker in ("AAPL", "IBM", "MSFT", "GOOG"):
        a = _stock_arrays(sample_file(ticker), ticker)
        found[ticker] = [str(a["index"][i])[:10] for i, _ in
                         detect_splits(a["index"], a["close"], a["volume"], a["open"])]
    assert found == {"AAPL": ["2000-06-21", "2000-09-29", "2005-02-28"], "IBM": [], "MSFT": ["2003-02-18"],
                     "GOOG": []}
