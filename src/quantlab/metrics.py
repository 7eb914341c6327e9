"""Performance metrics of one simulation, all JSON-safe (Python int/float or None, never NaN/inf).

Everything is computed from the engine's single :class:`~quantlab.engine.SimResult` (equity,
positions, per-bar net returns, closed trades) through the metric registry
(:mod:`quantlab.metric_registry`: the same per-run sums and formulas as the grid engine), annualised with the bar frequency of the
instrument (:func:`periods_per_year`), never a fixed sqrt(252). numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from quantlab.errors import ConfigError, DataError
from quantlab.metric_registry import RunStats, evaluate, metric_names, scoring_scalars


def __getattr__(name: str):
    if name == "METRIC_KEYS":  # every metric, read from the registry at the time of asking
        return metric_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# bars per day of each intraday interval: (24/7 markets, exchange hours = 6.5 h)
_INTRADAY_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60}
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")

_CRYPTO_QUOTES = ("USD", "USDT", "USDC", "BUSD", "DAI", "EUR", "GBP", "JPY", "BTC", "ETH")


def periods_per_year(ticker_is_crypto: bool, interval: str) -> float:
    """Bars per year: 365 trading days for 24/7 markets, 252 otherwise, scaled by the interval.

    Intraday bars per day: 24 h x 60 / minutes for 24/7 markets, 6.5 h x 60 / minutes otherwise
    (1h -> x24 or x6.5). ``5d`` and ``1wk``: days / 5 for exchanges (50.4) and days / 7 for 24/7
    (52.14); ``1mo`` 12, ``3mo`` 4.
    """
    days = 365.0 if ticker_is_crypto else 252.0
    if interval in _INTRADAY_MINUTES:
        minutes_per_day = 24 * 60 if ticker_is_crypto else 6.5 * 60
        return days * minutes_per_day / _INTRADAY_MINUTES[interval]
    if interval == "1d":
        return days
    if interval == "5d":
        return days / 5.0
    if interval == "1wk":
        return days / 7.0 if ticker_is_crypto else days / 5.0
    if interval == "1mo":
        return 12.0
    if interval == "3mo":
        return 4.0
    raise ConfigError(f"unknown interval {interval!r}; valid intervals: {', '.join(INTERVALS)}")


_DAY = 86_400
# median bar spacing (seconds) each interval accepts: intraday +-50 %, daily up to 4 days (long
# weekends, holidays), weekly 4..10 days, monthly 25..35, quarterly 80..100
_SPACING = {**{k: (m * 30, m * 90) for k, m in _INTRADAY_MINUTES.items()}, "1d": (_DAY // 2, 4 * _DAY),
            "5d": (4 * _DAY, 10 * _DAY), "1wk": (4 * _DAY, 10 * _DAY), "1mo": (25 * _DAY, 35 * _DAY),
            "3mo": (80 * _DAY, 100 * _DAY)}
_NOMINAL = (("1m", 60), ("2m", 120), ("5m", 300), ("15m", 900), ("30m", 1800), ("1h", 3600), ("90m", 5400),
            ("1d", _DAY), ("1wk", 7 * _DAY), ("1mo", 30 * _DAY), ("3mo", 91 * _DAY))


def _spacing_text(seconds: float) -> str:
    for unit, size in (("d", _DAY), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def is_all_week(index) -> bool:
    """True when the bars trade 24/7: some fall on a Saturday and some on a Sunday (UTC).
    ``index``: datetime64 values, or int64 seconds since the epoch."""
    seconds = np.asarray(index)
    if seconds.dtype.kind == "M":
        seconds = seconds.astype("datetime64[s]").astype(np.int64)
    weekday = (seconds // _DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return bool((weekday == 5).any() and (weekday == 6).any())


_NS = 1_000_000_000  # per second
_DAY_NS = _DAY * _NS
_BLOCK = 1 << 16  # spacings checked per block (512 kB)


def _grid_step(stamps: np.ndarray) -> int | None:
    """The step in seconds when ``stamps`` (datetime64[ns], >= 2) are one strictly increasing
    grid ``first + k * step`` with a whole-second step, else None. Then the stamps floored to
    seconds are ``floor(first) + k * step``: every spacing is ``step`` (their median), the
    stamps are sorted, and NaT is not among them."""
    if stamps.dtype != np.dtype("datetime64[ns]") or stamps.ndim != 1 or len(stamps) < 2 or np.isnat(stamps[0]):
        return None  # NaT is int64 min: a grid from it would be increasing
    ns = stamps.view(np.int64)
    step = int(np.subtract(ns[1:2], ns[0:1])[0])  # int64 arithmetic, wrapping silently as np.diff's
    if step <= 0 or step % _NS:
        return None
    spacings = np.empty(min(_BLOCK, len(ns) - 1), dtype=np.int64)  # a block at a time: no array of them all
    for i in range(0, len(ns) - 1, _BLOCK):
        j = min(i + _BLOCK, len(ns) - 1)
        block = np.subtract(ns[i + 1:j + 1], ns[i:j], out=spacings[:j - i])
        if int(block.min()) != step or int(block.max()) != step:
            return None
    return step // _NS


def _weekend_on_both_days(ns: np.ndarray) -> bool:
    """:func:`is_all_week` of sorted int64 nanosecond stamps: one binary search per Saturday and
    Sunday they span instead of the weekday of every bar. Those days' bounds fit int64: its ends
    fall on a Tuesday (1677-09-21) and a Friday (2262-04-11)."""
    first_day, last_day = int(ns[0]) // _DAY_NS, int(ns[-1]) // _DAY_NS
    for weekday in (5, 6):  # day d is weekday (d + 3) % 7 (1970-01-01 was a Thursday)
        days = np.arange(first_day + (weekday - 3 - first_day) % 7, last_day + 1, 7, dtype=np.int64)
        starts = days * _DAY_NS
        if not (np.searchsorted(ns, starts + _DAY_NS) > np.searchsorted(ns, starts)).any():
            return False
    return True


def bar_calendar(index, interval: str) -> dict:
    """Bar interval and periods per year from the bars' own timestamps (UTC, oldest first).

    * The market is 24/7 (365 days a year) when some bars fall on a Saturday and some on a
      Sunday, else an exchange calendar (252 days): the ticker's name plays no part.
    * The median spacing of consecutive bars must fit ``interval`` (see ``_SPACING``): hourly
      bars declared ``1d`` raise ``DataError`` naming both. Fewer than 2 bars cannot be checked.

    Returns ``{"interval", "periods_per_year", "calendar": "24/7" | "exchange",
    "median_spacing_seconds" (None below 2 bars)}``.
    """
    if interval not in _SPACING:
        raise ConfigError(f"unknown interval {interval!r}; valid intervals: {', '.join(INTERVALS)}")
    stamps = np.asarray(index)
    step = _grid_step(stamps)
    if step is not None:  # the same answer from a few reductions and searches (a 1M-bar run: ~5x less)
        return calendar_of(interval, _weekend_on_both_days(stamps.view(np.int64)), float(step))
    seconds = stamps.astype("datetime64[s]").astype(np.int64)
    spacing = float(np.median(np.diff(seconds))) if len(seconds) >= 2 else None
    return calendar_of(interval, is_all_week(seconds), spacing)


def calendar_of(interval: str, all_week: bool, spacing: float | None) -> dict:
    """:func:`bar_calendar`'s answer from its two measurements (``spacing``: the median, None
    below 2 bars); ``DataError`` when the spacing does not fit ``interval``."""
    if spacing is not None:
        lo, hi = _SPACING[interval]
        if not lo <= spacing <= hi:
            nearest = min(_NOMINAL, key=lambda item: abs(math.log(max(spacing, 1.0) / item[1])))[0]
            raise DataError(f"the bars are {_spacing_text(spacing)} apart (median), which is interval "
                            f"{nearest}, but the request says interval {interval}: set interval {nearest}")
    return {"interval": interval, "periods_per_year": periods_per_year(all_week, interval),
            "calendar": "24/7" if all_week else "exchange", "median_spacing_seconds": spacing}


def looks_like_crypto(ticker: str) -> bool:
    """Heuristic for Yahoo-style crypto pairs (``BTC-USD``, ``ETH-EUR``, ``SOL-USDT``): 24/7 markets."""
    base, sep, quote = str(ticker).upper().rpartition("-")
    return bool(sep) and bool(base) and not base.startswith("^") and quote in _CRYPTO_QUOTES


def _finite(x) -> float | None:
    """Python float, or None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def compute_metrics(result, close: np.ndarray, *, start: int, periods_per_year: float,
                    initial_cash: float, risk_free_rate: float = 0.0, timestamps=None,
                    benchmark_close=None) -> dict:
    """The metrics payload of one simulation (keys in ``METRIC_KEYS`` order).

    ``close`` is the full close array given to the simulation and ``start`` its warm-up length,
    so ``benchmark_return`` is buy-and-hold over exactly the simulated bars. Per-bar returns are
    the engine's net returns (flat bars count as 0). One rule for degenerate input: a ratio
    whose denominator is zero or undefined is None (``null`` in JSON, NaN in the grid engine's
    arrays), never a made-up number: ``sharpe_simple`` is None with fewer than 2 bars or zero
    variance (to rounding: std <= 1e-12 x |mean|), ``sortino`` without a negative return,
    ``calmar`` without a drawdown, ``profit_factor`` without a losing trade, trade metrics
    without a closed trade. ``volatility_ann`` is 0.0 then (a measured zero, not a ratio).

    ``risk_free_rate`` (annual) enters Sharpe, Sortino and alpha; ``timestamps`` (of the simulated
    bars) gives ``max_drawdown_duration_days`` (None without); ``benchmark_close`` (closes of a
    benchmark on the simulated bars) replaces buy and hold of ``close`` in the benchmark-relative
    metrics (alpha, beta, tracking_error, information_ratio).
    """
    with np.errstate(all="ignore"):  # overflow on absurd curves ends as None, never a warning
        return _compute(result, close, start, periods_per_year, initial_cash, risk_free_rate, timestamps,
                        benchmark_close)


def _compute(result, close, start, periods_per_year, initial_cash, risk_free_rate=0.0, timestamps=None,
             benchmark_close=None) -> dict:
    close = np.asarray(close, dtype=np.float64)
    bars = len(result.equity)
    if bars == 0:
        raise ConfigError("no bars to score")
    if len(close) - start != bars:
        raise ConfigError(f"close has {len(close)} bars but the result covers {bars} from bar {start}")
    ppy, rf = scoring_scalars(periods_per_year, risk_free_rate)
    for name, series in (("timestamps", timestamps), ("benchmark_close", benchmark_close)):
        if series is not None and len(series) != bars:
            raise ConfigError(f"{name} has {len(series)} values but the result covers {bars} bars")
    stats = RunStats.from_result(result, close, start=start, periods_per_year=ppy,
                                 initial_cash=float(initial_cash), risk_free_rate=rf, timestamps=timestamps,
                                 benchmark_close=benchmark_close)
    return {name: (int(v[0]) if v.dtype.kind == "i" else _finite(v[0])) for name, v in evaluate(stats).items()}
