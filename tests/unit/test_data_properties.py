"""Property-based tests of the data layer (hypothesis)."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.data import Bars, DataRequest, load_bars, read_bars, validate_bars, write_bars
from quantlab.errors import DataError

prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
fractions = st.floats(min_value=0.0, max_value=0.999, allow_nan=False)


@st.composite
def valid_bars(draw: st.DrawFn) -> Bars:
    """Random bars that satisfy every canonical rule by construction."""
    n = draw(st.integers(min_value=1, max_value=40))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=10**15), min_size=n, max_size=n))
    start = draw(st.integers(min_value=-(10**18), max_value=10**18))
    index = (start + np.cumsum(np.array(gaps, dtype=np.int64))).astype("datetime64[ns]")
    open_ = np.array(draw(st.lists(prices, min_size=n, max_size=n)))
    close = np.array(draw(st.lists(prices, min_size=n, max_size=n)))
    up = np.array(draw(st.lists(fractions, min_size=n, max_size=n)))
    down = np.array(draw(st.lists(fractions, min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(st.floats(min_value=0, max_value=1e15), min_size=n, max_size=n)))
    high = np.maximum(open_, close) * (1.0 + up)
    low = np.minimum(open_, close) * (1.0 - down)
    ticker = draw(st.text(min_size=1, max_size=12))
    interval = draw(st.sampled_from(["1d", "1h", "15m", "1wk"]))
    return Bars(index=index, open=open_, high=high, low=low, close=close, volume=volume,
                ticker=ticker, interval=interval, source="property")


@settings(max_examples=60, deadline=None, database=None)
@given(valid_bars())
def test_valid_bars_pass_and_round_trip(bars: Bars) -> None:
    assert validate_bars(bars, context="property") is bars
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bars.parquet"
        write_bars(bars, path)
        again = read_bars(path)
        assert [p.name for p in Path(folder).iterdir()] == ["bars.parquet"]
    assert again.fingerprint() == bars.fingerprint()
    assert (again.ticker, again.interval, again.source) == (bars.ticker, bars.interval, bars.source)
    for name in ("index", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(again, name), getattr(bars, name))


@settings(max_examples=60, deadline=None, database=None)
@given(valid_bars(), st.data())
def test_slices_of_valid_bars_are_valid(bars: Bars, data: st.DataObject) -> None:
    i = data.draw(st.integers(min_value=0, max_value=len(bars) - 1))
    j = data.draw(st.integers(min_value=i + 1, max_value=len(bars)))
    part = bars.slice(i, j)
    validate_bars(part, context="slice")
    assert part.index_of(part.index[0]) == 0
    assert bars.index_of(part.index[-1]) == j - 1


@settings(max_examples=60, deadline=None, database=None)
@given(valid_bars(), st.data())
def test_breaking_the_envelope_is_always_caught(bars: Bars, data: st.DataObject) -> None:
    row = data.draw(st.integers(min_value=0, max_value=len(bars) - 1))
    high = bars.high.copy()
    high[row] = np.nextafter(max(bars.open[row], bars.close[row]), 0.0)
    broken = Bars(index=bars.index, open=bars.open, high=high, low=np.minimum(bars.low, high),
                  close=bars.close, volume=bars.volume, ticker=bars.ticker, interval=bars.interval,
                  source=bars.source)
    with pytest.raises(DataError, match="high < max"):
        validate_bars(broken, context="property")


@settings(max_examples=30, deadline=None, database=None)
@given(
    st.dates(min_value=date(1999, 1, 1), max_value=date(2018, 12, 1)),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=0, max_value=60),
)
def test_sample_selection_respects_the_window(start, days: int, lookback: int) -> None:
    end = min(start + timedelta(days=days), date(2019, 1, 1))
    request = DataRequest("^GSPC", start.isoformat(), end.isoformat(), source="sample", lookback_bars=lookback)
    try:
        bars = load_bars(request)
    except DataError as exc:  # only a window without sessions may fail
        assert "No bars for ^GSPC" in str(exc)
        return
    begin = np.datetime64(start.isoformat(), "ns")
    inside = bars.index >= begin
    assert inside.any()
    assert int(np.count_nonzero(~inside)) <= lookback
    assert np.all(bars.index < np.datetime64(end.isoformat(), "ns"))
    validate_bars(bars, context="sample window")


_COLUMNS = ["open", "high", "low", "close", "volume"]
_VALUE_DAMAGE = ["nan", "inf", "-inf", "zero", "negative", "tiny"]  # one value of a column
_DAMAGE = [*_VALUE_DAMAGE, "none", "nat", "backwards", "repeat", "high", "low", "volume_nan", "volume_inf",
           "volume_negative"]


@pytest.mark.parametrize("kind, name", [(k, c) for k in _VALUE_DAMAGE for c in _COLUMNS] +
                         [(k, "open") for k in _DAMAGE if k not in _VALUE_DAMAGE])
@settings(max_examples=10, deadline=None, database=None)
@given(bars=valid_bars(), where=st.floats(0, 1),
       more=st.lists(st.tuples(st.sampled_from(_DAMAGE), st.sampled_from(_COLUMNS), st.floats(0, 1)), max_size=1))
def test_the_quick_validity_check_never_passes_what_the_rules_refuse(kind, name, bars: Bars, where, more) -> None:
    """bars._plainly_valid (comparisons and reductions) is True only for bars every rule accepts:
    validate_bars gives the same outcome and the same message with and without it, for each kind
    of damage in each column (and another one on top)."""
    from quantlab.data import bars as bars_module

    damage = [(kind, name, where), *more]
    cols = {name: getattr(bars, name).copy() for name in ("open", "high", "low", "close", "volume")}
    stamps = bars.index.view(np.int64).copy()
    n = len(stamps)
    for kind, name, where in damage:
        k = min(int(where * n), n - 1)
        if kind == "nat":
            stamps[k] = np.iinfo(np.int64).min
        elif kind == "backwards" and n > 1:
            stamps[max(k, 1)] = stamps[max(k, 1) - 1] - 1
        elif kind == "repeat" and n > 1:
            stamps[max(k, 1)] = stamps[max(k, 1) - 1]
        elif kind in _VALUE_DAMAGE:  # "tiny": a subnormal value, still > 0
            cols[name][k] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0, "negative": -1.0,
                             "tiny": 5e-324}[kind]
        elif kind == "high":
            cols["high"][k] = np.nextafter(max(cols["open"][k], cols["close"][k]), 0.0)
        elif kind == "low":
            cols["low"][k] = np.nextafter(min(cols["open"][k], cols["close"][k]), np.inf)
        elif kind.startswith("volume_"):
            cols["volume"][k] = {"volume_nan": np.nan, "volume_inf": np.inf, "volume_negative": -0.5}[kind]
    damaged = Bars(index=stamps.view("datetime64[ns]"), **cols, ticker=bars.ticker, interval=bars.interval,
                   source=bars.source)

    def outcome():
        try:
            return validate_bars(damaged, context="property") is damaged
        except DataError as exc:
            return str(exc)

    quick = outcome()
    assert bars_module._plainly_valid(damaged) == (quick is True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bars_module, "_plainly_valid", lambda _: False)
        assert outcome() == quick
