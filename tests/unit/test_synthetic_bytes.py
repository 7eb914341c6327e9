"""Synthetic bars are the same bytes release after release: a stored run's content keys, its
cached bars and every published result depend on them. The digests below were computed with
the column-by-column generator before it was rewritten to fill preallocated arrays in place."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

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
