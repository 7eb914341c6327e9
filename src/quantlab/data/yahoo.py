"""The ``yfinance`` source: lazy import, Parquet cache, explicit vendor clean-up.

yfinance (pinned in ``requirements.lock``) is imported only when a download is needed, never on
the cold ``run`` path. Downloads call ``yfinance.Ticker(ticker).history(start=..., end=...,
interval=..., auto_adjust=False, actions=False)``: the raw OHLC and Yahoo's ``Adj Close``, which the
``adjust`` rule then applies like for a file (:mod:`quantlab.data.adjust`; ``auto`` back-adjusts
OHLC by ``Adj Close / Close``, equal to yfinance's own ``auto_adjust=True``). Yahoo's raw ``Close`` is
already split-adjusted, so ``splits_only`` and ``none`` both serve it (dividends not adjusted) with yfinance's ``hide_exceptions`` off, so network
and Yahoo errors surface as exceptions instead of log lines; the vendor's logger and warnings are
kept off stderr (the machine path stays one ``ERROR:`` line). Daily and longer bars keep Yahoo's
exchange-local dates (midnight, like ``yfinance.download``'s ``ignore_tz``); intraday bars are
converted to UTC. yfinance's own small caches (time zones, cookies) live in
``<cache_dir>/yfinance/vendor`` instead of the user's home directory.

Offline (a connection, DNS or timeout error anywhere in the exception chain) the one-line error
says that Yahoo Finance could not be reached and names the bundled tickers that need no network.

When ``lookback_bars`` is requested the download starts earlier by a calendar
margin estimated from the interval (weekends and holidays included), so warm-up bars are available;
the selection then keeps at most ``lookback_bars`` of them.

Cache: ``<cache_dir>/yfinance/<safe ticker>_<interval>_<download start>_<download end>.parquet``
(``..._<end>_<adjust>.parquet`` for adjust ``none`` / ``splits_only``),
written atomically with :func:`~quantlab.data.store.write_bars` after validation. A cache file that
cannot be read or fails validation is deleted and downloaded again. Without ``cache_dir`` nothing
is cached.

Vendor clean-up (Yahoo data only, never user files), applied before validation and caching:
rows whose open, high, low and close are all missing are dropped (Yahoo's placeholders for
sessions without trades), a missing volume becomes 0 (indices), and the high/low are widened to
the open-close body (``high = max(high, open, close)``, ``low = min(low, open, close)``) because
Yahoo's adjusted bars sometimes break the envelope by rounding. Anything else (partial NaN rows,
non-positive prices, duplicates) still fails validation.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from quantlab.data.bars import Bars, validate_bars
from quantlab.data.store import read_bars, write_bars
from quantlab.data.tickers import safe_ticker
from quantlab.data.timeutil import DAY_NS, Interval, floor_day, format_time, parse_interval
from quantlab.errors import DataError

log = logging.getLogger(__name__)

_REASON_LIMIT = 200


def download_window(
    start: np.datetime64, end: np.datetime64, interval: Interval, lookback: int, crypto: bool
) -> tuple[np.datetime64, np.datetime64]:
    """The ``[start, end)`` to download so that about ``lookback`` bars precede ``start``."""
    if lookback <= 0:
        return start, end
    if interval.is_intraday:
        bar_seconds = interval.approx_days * 86_400
        session_seconds = 86_400 if crypto else 6.5 * 3_600  # a regular US equity session
        bars_per_day = max(1.0, session_seconds / bar_seconds)
        days = lookback / bars_per_day
        days = days if crypto else days * 7 / 5 * 1.1
    elif interval.unit == "d":
        days = lookback * interval.count
        days = days if crypto else days * 7 / 5 * 1.1
    else:  # weeks and months already count calendar time
        days = lookback * interval.approx_days
    margin = math.ceil(days) + (3 if crypto else 7)
    padded = floor_day(start) - np.timedelta64(margin, "D")
    return padded.astype("datetime64[ns]"), end


def _file_time(moment: np.datetime64) -> str:
    text = format_time(moment)
    return text.replace(":", "") if "T" in text else text


def cache_path(
    cache_dir: str | os.PathLike[str], ticker: str, interval: str, start: np.datetime64, end: np.datetime64,
    adjust: str = "auto",
) -> Path:
    """``<cache_dir>/yfinance/<safe ticker>_<interval>_<start>_<end>[_<adjust>].parquet`` for a
    download window (no suffix for the default ``auto``)."""
    suffix = "" if adjust == "auto" else f"_{adjust}"
    name = f"{safe_ticker(ticker)}_{interval}_{_file_time(start)}_{_file_time(end)}{suffix}.parquet"
    return Path(cache_dir) / "yfinance" / name


def read_cache(path: Path, *, ticker: str, interval: str) -> Bars | None:
    """Cached bars, or ``None`` when absent; a damaged or mismatching file is deleted."""
    if not path.is_file():
        return None
    try:
        bars = read_bars(path)
        if bars.ticker != ticker or bars.interval != interval:
            raise DataError(f"cache file {path} holds {bars.ticker} ({bars.interval})")
        return validate_bars(bars, context=f"{ticker} cache file {path}")
    except DataError as exc:
        log.warning("Discarding unusable yfinance cache file %s: %s", path, exc)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return None


def _yfinance_time(moment: np.datetime64) -> str | datetime:
    if int(np.datetime64(moment, "ns").astype(np.int64)) % DAY_NS == 0:
        return format_time(moment)
    naive = np.datetime64(moment, "us").astype(datetime)
    return naive.replace(tzinfo=timezone.utc)


def _short(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` on one line, at most about 200 characters."""
    text = " ".join(str(exc).split())
    if len(text) > _REASON_LIMIT:
        text = text[: _REASON_LIMIT - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def repair_vendor_bars(bars: Bars) -> Bars:
    """Apply the documented Yahoo clean-up (see the module docstring); returns new arrays."""
    prices = np.vstack([bars.open, bars.high, bars.low, bars.close])
    keep = ~np.isnan(prices).all(axis=0)
    dropped = int(keep.size - np.count_nonzero(keep))
    open_, high, low, close = (row[keep] for row in prices)
    volume = np.nan_to_num(bars.volume[keep], nan=0.0)
    with np.errstate(invalid="ignore"):
        widened_high = np.fmax(high, np.fmax(open_, close))
        widened_low = np.fmin(low, np.fmin(open_, close))
    changed = int(np.count_nonzero((widened_high != high) | (widened_low != low)))
    if dropped or changed:
        log.info("yfinance %s: dropped %d empty rows, widened high/low on %d rows",
                 bars.ticker, dropped, changed)
    return Bars(index=bars.index[keep], open=open_, high=widened_high, low=widened_low, close=close,
                volume=volume, ticker=bars.ticker, interval=bars.interval, source=bars.source,
                notes=bars.notes, adjustment=bars.adjustment)


_OFFLINE_ERRORS = frozenset({"ConnectionError", "Timeout", "TimeoutError", "ConnectTimeout", "DNSError", "gaierror"})


def is_offline_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the network could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if {cls.__name__ for cls in type(current).__mro__} & _OFFLINE_ERRORS:
            return True
        current = current.__cause__ or current.__context__
    return False


def offline_hint() -> str:
    """The bundled tickers that work without a network, for error messages."""
    from quantlab.data.sample import SAMPLES
    from quantlab.data.tickers import SAMPLE_TICKERS

    parts = []
    for canonical, spec in SAMPLES.items():
        if spec.adjusted:
            continue
        short = next((a for a in SAMPLE_TICKERS if SAMPLE_TICKERS[a] == canonical and a.isalpha()
                      and a != canonical.lstrip("^")), None)
        names = f"{short} or {canonical}" if short else canonical
        parts.append(f"{names} = {spec.name}")
    first, last = SAMPLES["^GSPC"].coverage
    stocks = [spec for spec in SAMPLES.values() if spec.adjusted]
    stock_text = ""
    if stocks:  # coverage[1] is exclusive: the day after the last bar
        last_bar = str(np.datetime64(stocks[0].coverage[1]) - np.timedelta64(1, "D"))
        stock_text = "; stocks " + ", ".join(f"{spec.ticker} from {spec.coverage[0]}" for spec in stocks)
        stock_text += f", daily to {last_bar}"
    return (f"offline, use a bundled ticker ({'; '.join(parts)}; daily bars {first}..{last}{stock_text}) "
            "or source 'file' / 'synthetic'")


def _quiet_vendor_logs() -> None:
    """Keep yfinance's log records off stderr: its failures surface as exceptions instead."""
    vendor = logging.getLogger("yfinance")
    if not vendor.handlers:
        vendor.addHandler(logging.NullHandler())
    vendor.propagate = False


def _history_frame(ticker: str, start: np.datetime64, end: np.datetime64, interval: str,
                   cache_dir: str | os.PathLike[str] | None):
    """Yahoo's bars as yfinance parses them (raises on any network or vendor error)."""
    import warnings

    import yfinance

    _quiet_vendor_logs()
    yfinance.config.debug.hide_exceptions = False
    if cache_dir is not None:
        vendor_cache = Path(cache_dir) / "yfinance" / "vendor"
        vendor_cache.mkdir(parents=True, exist_ok=True)
        yfinance.set_tz_cache_location(str(vendor_cache))  # all of its caches, despite the name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = yfinance.Ticker(ticker).history(
            start=_yfinance_time(start), end=_yfinance_time(end), interval=interval,
            auto_adjust=False, actions=False,
        )
    if frame is not None and len(frame) and not parse_interval(interval).is_intraday:
        index = frame.index
        if getattr(index, "tz", None) is not None:
            frame = frame.set_axis(index.tz_localize(None), axis=0)
    return frame


def download_bars(
    ticker: str, start: np.datetime64, end: np.datetime64, interval: str, *, describe: str,
    cache_dir: str | os.PathLike[str] | None = None, adjust: str = "auto",
) -> Bars:
    """Download, adjust (``adjust``), clean up and validate bars from Yahoo.

    Raises:
        DataError: ``"Data for <describe> could not be downloaded: <reason>"`` when yfinance is
        missing, raises, returns nothing, or returns bars that fail validation; when Yahoo cannot
        be reached the reason says so and suggests the bundled tickers.
    """
    from quantlab.data.files import FrameError, frame_to_arrays

    def fail(reason: str) -> DataError:
        return DataError(f"Data for {describe} could not be downloaded: {reason}")

    try:
        importlib.import_module("yfinance")  # pinned; imported here for a clear message if it is missing
    except ImportError:
        raise fail("the yfinance package is not installed (pip install -r requirements.lock)") from None
    try:
        frame = _history_frame(ticker, start, end, interval, cache_dir)
    except Exception as exc:  # network, HTTP, parsing, rate limits: all end as a data error
        if is_offline_error(exc):
            raise fail(f"Yahoo Finance could not be reached ({_short(exc)}); {offline_hint()}") from None
        raise fail(_short(exc)) from None
    if frame is None or len(frame) == 0:
        raise fail("yfinance returned no rows")
    try:
        arrays = frame_to_arrays(frame)
    except FrameError as exc:
        raise fail(f"unexpected yfinance result ({exc})") from None
    from quantlab.data.adjust import adjusted_bars

    bars = repair_vendor_bars(adjusted_bars(arrays, ticker=ticker, interval=interval, source="yfinance",
                                            adjust="none" if adjust == "splits_only" else adjust))
    if len(bars) == 0:
        raise fail("yfinance returned only empty rows")
    return validate_bars(bars, context=f"{describe} from source yfinance")


def fetch_bars(
    ticker: str,
    start: np.datetime64,
    end: np.datetime64,
    interval: str,
    *,
    cache_dir: str | os.PathLike[str] | None,
    describe: str,
    adjust: str = "auto",
) -> Bars:
    """Cached bars for the download window, else a fresh download (cached when ``cache_dir``)."""
    path = cache_path(cache_dir, ticker, interval, start, end, adjust) if cache_dir is not None else None
    if path is not None:
        cached = read_cache(path, ticker=ticker, interval=interval)
        if cached is not None:
            return cached
    bars = download_bars(ticker, start, end, interval, describe=describe, cache_dir=cache_dir, adjust=adjust)
    if path is not None:
        try:
            write_bars(bars, path)
        except OSError as exc:  # caching is best effort; the data itself is fine
            log.warning("Could not write yfinance cache file %s: %s", path, exc)
    return bars
