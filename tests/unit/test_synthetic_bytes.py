"""Synthetic bars are the same bytes release after release: a stored run's content keys, its
cached bars and every published result depend on them. The digests below were computed with
the column-by-column generator before it was rewritten to fill preallocated arrays in place."""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.data.synthetic import synthetic_range
from quantlab.data.timeutil import parse_interval, parse_time


@pytest.mark.parametrize("ticker, interval, lookback, start, end, bars, digest", [
    ("SYN", "1m", 20, "2020-01-01", "2020-01-08", 10100, "0418832370e24a2a"),
    ("BTC-USD", "1d", 300, "2019-06-03", "2021-03-01", 937, "63dedd83dc6ae42e"),
    ("SYN", "1d", 0, "2019-06-03", "2020-01-09", 158, "c114ae2ec18e6c8d"),
    ("SYN", "1mo", 3, "2000-01-01", "2010-01-01", 123, "b21cbf6159acb78e"),
])
def test_synthetic_bars_keep_their_bytes(ticker, interval, lookback, start, end, bars, digest):
    b = synthetic_range(ticker=ticker, start=parse_time(start, "start"), end=parse_time(end, "end"),
                        interval=parse_interval(interval), seed=7, lookback=lookback)
    raw = b"".join(np.ascontiguousarray(getattr(b, f)).tobytes() for f in ("index", "open", "high", "low", "close",
                                                                             "volume"))
    assert (len(b), hashlib.sha256(raw).hexdigest()[:16]) == (bars, digest)


INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(-2**40, 2**40), ticker=st.sampled_from(["SYN", "BTC-USD", "AAPL"]),
       interval=st.sampled_from(INTERVALS), count=st.integers(1, 3000), lookback=st.integers(0, 400),
       start=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
def test_the_in_place_generator_gives_the_old_generators_bits(seed, ticker, interval, count, lookback, start):
    """synthetic._generate (one array per column, filled in place; stamps built in the position
    array; the previous close and the body bounds without arrays of their own) equals the old
    generator (tests/unit/synthetic_reference.py) bit for bit, and refuses the same ranges."""
    from quantlab.data.synthetic import _generate
    from quantlab.errors import ConfigError
    from tests.unit.synthetic_reference import reference_generate

    args = dict(ticker=ticker, interval=parse_interval(interval), start=np.datetime64(start, "ns"),
                count=count, lookback=lookback, seed=seed)
    try:
        expected = reference_generate(**args)
    except OverflowError:
        with pytest.raises(ConfigError, match="datetime64"):
            _generate(**args)
        return
    got = _generate(**args)
    for name in ("index", "open", "high", "low", "close", "volume"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
