"""The synthetic generator as it was before its in-place rewrite (session 6): the reference the
rewritten one must equal bit for bit (tests/unit/test_synthetic_bytes.py). Calendar and streams
are the module's own (unchanged); the stamps, the OHLCV arithmetic and the warm-up walk are the
old code, with a fresh array per step."""

from __future__ import annotations

import numpy as np

from quantlab.data.bars import Bars
from quantlab.data.synthetic import _INITIAL_PRICE, _MAX_NS, _MIN_NS, _STREAMS_PER_PATH, _Calendar, _streams
from quantlab.data.tickers import is_crypto
from quantlab.data.timeutil import NS, Interval


def _stamps(calendar: _Calendar, positions: np.ndarray) -> np.ndarray:
    if calendar.kind != "fixed":
        return calendar.at(int(positions[0]), int(positions[-1]) + 1)
    lo, hi = int(positions.min()), int(positions.max())
    first, last = calendar.first_ns + lo * calendar.step_ns, calendar.first_ns + hi * calendar.step_ns
    if not _MIN_NS <= first <= last <= _MAX_NS:
        raise OverflowError("beyond datetime64[ns]")
    return (calendar.first_ns + positions * calendar.step_ns).astype(NS)


def _ohlcv(prev_close, close, rngs, sigma_bar, out) -> None:
    open_, high, low, volume = out
    n = close.shape[0]
    rngs[1].standard_normal(n, out=open_)
    open_ *= 0.1 * sigma_bar
    np.exp(open_, out=open_)
    open_ *= prev_close
    body = np.maximum(open_, close)
    rngs[2].standard_normal(n, out=high)
    np.abs(high, out=high)
    high *= 0.5 * sigma_bar
    np.exp(high, out=high)
    high *= body
    np.minimum(open_, close, out=body)
    rngs[3].standard_normal(n, out=low)
    np.abs(low, out=low)
    low *= -0.5 * sigma_bar
    np.exp(low, out=low)
    low *= body
    rngs[4].standard_normal(n, out=volume)
    volume *= 0.35
    np.exp(volume, out=volume)
    volume *= 1.0e6
    np.round(volume, out=volume)


def reference_generate(*, ticker: str, interval: Interval, start: np.datetime64, count: int, lookback: int,
                       seed: int) -> Bars:
    crypto = is_crypto(ticker)
    calendar = _Calendar.build(start, interval, crypto)
    index = _stamps(calendar, np.arange(-lookback, count, dtype=np.int64))
    mu, sigma = (0.15, 0.65) if crypto else (0.07, 0.18)
    dt = calendar.dt_years()
    drift, sigma_bar = (mu - 0.5 * sigma * sigma) * dt, sigma * np.sqrt(dt)
    rngs = _streams(seed, ticker, interval.text, start)
    forward, backward = rngs[:_STREAMS_PER_PATH], rngs[_STREAMS_PER_PATH:]
    total = lookback + count
    open_, high, low, close, volume = (np.empty(total) for _ in range(5))
    log_ret = close[lookback:]
    forward[0].standard_normal(count, out=log_ret)
    log_ret *= sigma_bar
    log_ret += drift
    np.cumsum(log_ret, out=log_ret)
    np.exp(log_ret, out=log_ret)
    log_ret *= _INITIAL_PRICE
    prev_close = np.empty(count)
    prev_close[:1] = _INITIAL_PRICE
    prev_close[1:] = close[lookback:-1]
    _ohlcv(prev_close, close[lookback:], forward, sigma_bar,
           (open_[lookback:], high[lookback:], low[lookback:], volume[lookback:]))
    if lookback:
        back_ret = drift + sigma_bar * backward[0].standard_normal(lookback)
        walk = _INITIAL_PRICE * np.exp(-np.concatenate(([0.0], np.cumsum(back_ret))))
        close[:lookback] = walk[:lookback][::-1]
        back_prev = walk[1:][::-1].copy()
        _ohlcv(back_prev, close[:lookback], backward, sigma_bar,
               (open_[:lookback], high[:lookback], low[:lookback], volume[:lookback]))
    return Bars(index=index, open=open_, high=high, low=low, close=close, volume=volume,
                ticker=ticker, interval=interval.text, source="synthetic")
