"""Indicators skip leading undefined values: f(nan*k ++ x) == nan*k ++ f(x), bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.engine import indicators as ind

prices = st.lists(st.floats(1.0, 1000.0, allow_nan=False), min_size=0, max_size=80).map(np.array)
CASES = {
    "sma": lambda x, w: ind.sma(x, w),
    "ema": lambda x, w: ind.ema(x, w),
    "wilder": lambda x, w: ind.wilder(x, w),
    "rsi": lambda x, w: ind.rsi(x, w),
    "atr": lambda x, w: ind.atr(x * 1.01, x * 0.99, x, w),
    "atr_fill": lambda x, w: ind.atr(x * 1.01, x * 0.99, x, w, fill_warmup=True),
    "rolling_max": lambda x, w: ind.rolling_max(x, w),
    "rolling_min": lambda x, w: ind.rolling_min(x, w),
    "rolling_mean": lambda x, w: ind.rolling_mean_std(x, w)[0],
    "rolling_std": lambda x, w: ind.rolling_mean_std(x, w, ddof=1 if w > 1 else 0)[1],
}


@settings(max_examples=60, deadline=None)
@given(x=prices, lead=st.integers(0, 30), window=st.integers(1, 20), name=st.sampled_from(sorted(CASES)))
def test_leading_nans_are_skipped(x, lead, window, name):
    f = CASES[name]
    padded = np.concatenate([np.full(lead, np.nan), x])
    expected = np.concatenate([np.full(lead, np.nan), f(x, window)])
    np.testing.assert_array_equal(f(padded, window), expected)


def test_ema_of_an_ema_difference_is_defined_after_both_warm_ups():
    close = 100 + np.cumsum(np.random.default_rng(3).normal(size=200))
    line = ind.ema(close, 12) - ind.ema(close, 26)
    signal = ind.ema(line, 9)
    assert np.isnan(signal[:33]).all() and not np.isnan(signal[33:]).any()
