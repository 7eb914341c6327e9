"""Seeded synthetic OHLCV bars (geometric Brownian motion) for tests and scale benchmarks.

Calendar: for ``1d`` bars, every day at 00:00 UTC for crypto tickers and Monday-Friday otherwise;
intraday intervals use a continuous grid aligned to multiples of the step since the Unix epoch;
``Nd``/``Nwk`` step N days/weeks from the first midnight at or after ``start``; ``Nmo`` uses month
starts.

Model, per bar of length ``dt`` years (1/252 for weekday daily bars, calendar time otherwise):
``log(close / prev_close) ~ N((mu - sigma²/2) dt, sigma² dt)`` with ``mu = 7%``, ``sigma = 18%``
(crypto: 15%, 65%), first ``prev_close = 100``. ``open = prev_close · exp(0.1 σ√dt · z)``, the high
and low extend the open-close body by ``exp(±0.5 σ√dt · |z|)``, volume is lognormal around 1e6
and whole-valued. Every value comes from exp() of a finite draw, so prices are > 0 and the OHLC
envelope holds exactly in floating point.

Determinism: the random streams are keyed by ``(seed, ticker, interval, start)`` with independent
streams per component, so the same request always gives the same bytes, a later ``end`` only
appends bars (the window is a prefix-stable path), and ``lookback`` bars are generated backwards
from the first bar from their own streams, so asking for warm-up never changes the window itself.
``synthetic_bars(n, start=S)`` equals the first ``n`` bars of a ``synthetic`` load starting at S.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from quantlab.data.bars import Bars
from quantlab.data.tickers import is_crypto
from quantlab.data.timeutil import NS, NS_DAYS, Interval, ceil_day, format_time, parse_interval, parse_time
from quantlab.errors import ConfigError

_INITIAL_PRICE = 100.0
_BASE_VOLUME = 1.0e6
_MIN_NS, _MAX_NS = np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max  # int64 min is NaT
_STREAMS_PER_PATH = 5  # returns, open gap, high wick, low wick, volume


@dataclass(frozen=True)
class _Calendar:
    """Maps bar positions k (0 = first bar at or after start) to timestamps."""

    kind: str  # "weekday" | "fixed" | "month"
    first_ns: int  # first bar, ns since epoch (weekday/fixed)
    step_ns: int  # fixed only
    first_month: int  # months since 1970-01 (month only)
    months: int  # month only: months per bar

    @classmethod
    def build(cls, start: np.datetime64, interval: Interval, crypto: bool) -> _Calendar:
        start_ns = int(np.datetime64(start, "ns").astype(np.int64))
        if interval.unit == "mo":
            month = np.datetime64(start, "ns").astype("datetime64[M]")
            if int(month.astype(NS).astype(np.int64)) < start_ns:
                month = month + np.timedelta64(1, "M")
            return cls("month", 0, 0, int(month.astype(np.int64)), interval.count)
        if interval.unit == "d" and interval.count == 1 and not crypto:
            first = np.busday_offset(ceil_day(start), 0, roll="forward")
            return cls("weekday", int(first.astype(NS).astype(np.int64)), 0, 0, 0)
        step = int(interval.step.astype(np.int64))  # type: ignore[union-attr]
        if interval.is_intraday:
            first_ns = -(-start_ns // step) * step
        else:
            first_ns = int(ceil_day(start).astype(NS).astype(np.int64))
        return cls("fixed", first_ns, step, 0, 0)

    def dt_years(self) -> float:
        """Length of one bar in years, the time unit of the GBM parameters."""
        if self.kind == "weekday":
            return 1.0 / 252.0
        if self.kind == "month":
            return self.months / 12.0
        return self.step_ns / (365.25 * 86_400e9)

    def at(self, lo: int, stop: int) -> np.ndarray:
        """Timestamps (datetime64[ns]) of the positions ``lo .. stop - 1`` (negative = before the
        first bar), ``lo < stop``. A fixed step fills one array in place: ``first + k * step``."""
        positions = np.arange(lo, stop, dtype=np.int64)
        if self.kind == "weekday":
            first = np.datetime64(self.first_ns, "ns").astype("datetime64[D]")
            days = np.busday_offset(first, positions, roll="forward")
            _check_range(days[0], days[-1])
            return days.astype(NS)
        if self.kind == "month":
            months = (self.first_month + positions * self.months).astype("datetime64[M]")
            _check_range(months[0], months[-1])
            return months.astype(NS)
        first, last = self.first_ns + lo * self.step_ns, self.first_ns + (stop - 1) * self.step_ns
        if not _MIN_NS <= first <= last <= _MAX_NS:
            raise OverflowError("beyond datetime64[ns]")
        positions *= self.step_ns  # the int64 arithmetic of first + positions * step, in place
        positions += self.first_ns
        return positions.view(NS)

    def count_before(self, end: np.datetime64) -> int:
        """Number of bars at positions >= 0 strictly before ``end``."""
        end_ns = int(np.datetime64(end, "ns").astype(np.int64))
        if self.kind == "weekday":
            first = np.datetime64(self.first_ns, "ns").astype("datetime64[D]")
            last_day = ceil_day(np.datetime64(end_ns, "ns"))
            return max(0, int(np.busday_count(first, last_day))) if last_day > first else 0
        if self.kind == "month":
            end_month = int(np.datetime64(end_ns, "ns").astype("datetime64[M]").astype(np.int64))
            if int(np.datetime64(end_month, "M").astype(NS).astype(np.int64)) >= end_ns:
                end_month -= 1  # that month starts at or after end
            return max(0, (end_month - self.first_month) // self.months + 1)
        if end_ns <= self.first_ns:
            return 0
        return -(-(end_ns - self.first_ns) // self.step_ns)


def _check_range(first: np.datetime64, last: np.datetime64) -> None:
    """Raise OverflowError unless both ends are representable as datetime64[ns]."""
    if first < NS_DAYS[0] or last > NS_DAYS[1]:
        raise OverflowError("beyond datetime64[ns]")


def _streams(seed: int, ticker: str, interval: str, start: np.datetime64) -> list[np.random.Generator]:
    start_ns = int(np.datetime64(start, "ns").astype(np.int64))
    key = f"quantlab.synthetic.v1|{seed}|{ticker}|{interval}|{start_ns}"
    entropy = int.from_bytes(hashlib.sha256(key.encode()).digest(), "little")
    children = np.random.SeedSequence(entropy).spawn(2 * _STREAMS_PER_PATH)
    return [np.random.default_rng(child) for child in children]


def _ohlcv(close: np.ndarray, first_prev: float, rngs: list[np.random.Generator], sigma_bar: float,
           out: tuple) -> None:
    """open, high, low and volume of the bars, written into ``out`` (four arrays of ``len(close)``).
    A bar's previous close is the bar before's (``first_prev`` for the first). In place, with no
    temporary of a bar column: the low and volume arrays hold max/min(open, close) until their
    own draws (a 1M-bar window's columns are 8 MB each; every fresh one is ~2k page faults)."""
    open_, high, low, volume = out
    n = close.shape[0]
    rngs[1].standard_normal(n, out=open_)
    open_ *= 0.1 * sigma_bar
    np.exp(open_, out=open_)
    open_[1:] *= close[:-1]
    open_[:1] *= first_prev
    body_top, body_bottom = low, volume  # scratch until their draws
    np.maximum(open_, close, out=body_top)
    rngs[2].standard_normal(n, out=high)
    np.abs(high, out=high)
    high *= 0.5 * sigma_bar
    np.exp(high, out=high)
    high *= body_top
    np.minimum(open_, close, out=body_bottom)
    rngs[3].standard_normal(n, out=low)
    np.abs(low, out=low)
    low *= -0.5 * sigma_bar
    np.exp(low, out=low)
    low *= body_bottom
    rngs[4].standard_normal(n, out=volume)
    volume *= 0.35
    np.exp(volume, out=volume)
    volume *= _BASE_VOLUME
    np.round(volume, out=volume)


def _generate(
    *, ticker: str, interval: Interval, start: np.datetime64, count: int, lookback: int, seed: int
) -> Bars:
    crypto = is_crypto(ticker)
    calendar = _Calendar.build(start, interval, crypto)
    try:
        index = calendar.at(-lookback, count)
    except OverflowError:
        raise ConfigError(
            f"Cannot generate {lookback + count:,} synthetic {interval.text} bars around "
            f"{format_time(start)}: they would leave the datetime64[ns] range "
            "(1677-09-22..2262-04-10); use fewer bars or a shorter interval such as 1h or 1m"
        ) from None
    mu, sigma = (0.15, 0.65) if crypto else (0.07, 0.18)
    dt = calendar.dt_years()
    drift, sigma_bar = (mu - 0.5 * sigma * sigma) * dt, sigma * np.sqrt(dt)
    rngs = _streams(seed, ticker, interval.text, start)
    forward, backward = rngs[:_STREAMS_PER_PATH], rngs[_STREAMS_PER_PATH:]
    # each column is one array of lookback + count bars: the window fills its tail, the warm-up
    # its head (no concatenation); every value is the same arithmetic as drawn column by column.
    # The five columns are the rows of one allocation: numpy asks for huge pages from 4 MB on,
    # and one 40 MB block faults ~4x less than five 8 MB ones (each has an unaligned head and tail)
    open_, high, low, close, volume = np.empty((5, lookback + count))

    log_ret = close[lookback:]
    forward[0].standard_normal(count, out=log_ret)
    log_ret *= sigma_bar
    log_ret += drift
    np.cumsum(log_ret, out=log_ret)
    np.exp(log_ret, out=log_ret)
    log_ret *= _INITIAL_PRICE  # now the window's closes
    _ohlcv(close[lookback:], _INITIAL_PRICE, forward, sigma_bar,
           (open_[lookback:], high[lookback:], low[lookback:], volume[lookback:]))

    if lookback:
        back_ret = drift + sigma_bar * backward[0].standard_normal(lookback)
        # closes walking back in time from the window's first previous close (= initial price)
        walk = _INITIAL_PRICE * np.exp(-np.concatenate(([0.0], np.cumsum(back_ret))))
        close[:lookback] = walk[:lookback][::-1]
        _ohlcv(close[:lookback], float(walk[lookback]), backward, sigma_bar,
               (open_[:lookback], high[:lookback], low[:lookback], volume[:lookback]))
    return Bars(index=index, open=open_, high=high, low=low, close=close, volume=volume,
                ticker=ticker, interval=interval.text, source="synthetic")


def synthetic_bars(
    n: int, *, seed: int = 7, start: str = "2000-01-01", interval: str = "1d", ticker: str = "SYNTH"
) -> Bars:
    """``n`` seeded GBM bars starting at the first calendar slot at or after ``start``.

    Deterministic for ``(n, seed, start, interval, ticker)`` and fast: 1,000,000 bars in well
    under half a second. See the module docstring for the calendar and the model.

    ``datetime64[ns]`` ends in 2262, so about 68,000 weekday daily bars fit after 2000-01-01:
    ask for scale benchmarks in an intraday interval (``interval="1m"``: 1,000,000 bars span
    under two years; ``"1h"``: 114 years).

    Raises:
        ConfigError: ``n < 1``, an invalid ``start`` or ``interval``, or bars beyond 2262-04-10.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"Invalid synthetic bar count {n!r}: expected an integer >= 1")
    return _generate(ticker=ticker, interval=parse_interval(interval), start=parse_time(start, "start"),
                     count=int(n), lookback=0, seed=seed)


def synthetic_range(
    *, ticker: str, start: np.datetime64, end: np.datetime64, interval: Interval, seed: int, lookback: int
) -> Bars:
    """Synthetic bars covering ``[start, end)`` plus ``lookback`` bars before ``start``.

    May return zero bars when the calendar has no slot in the window (e.g. a weekend for a stock).
    """
    calendar = _Calendar.build(start, interval, is_crypto(ticker))
    count = calendar.count_before(end)
    if count == 0:
        return Bars(index=np.empty(0, dtype=NS), open=np.empty(0), high=np.empty(0), low=np.empty(0),
                    close=np.empty(0), volume=np.empty(0), ticker=ticker, interval=interval.text,
                    source="synthetic")
    return _generate(ticker=ticker, interval=interval, start=start, count=count, lookback=lookback, seed=seed)
