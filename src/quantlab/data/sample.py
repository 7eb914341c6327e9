"""Real daily bars that need no network: the S&P 500 and NASDAQ Composite files shipped by ``arch``,
and the AAPL, IBM, MSFT and GOOG stocks shipped by ``bokeh_sampledata`` (see ``STOCKS`` below and
docs/data.md; read with gzip + numpy, bokeh is never imported).

``arch`` (NCSA/BSD licence) ships ``arch/data/sp500/sp500.csv.gz`` and
``arch/data/nasdaq/nasdaq.csv.gz``: Yahoo daily OHLCV for 1999-01-04..2018-12-31 with columns
``Date`` (M/D/YYYY), ``Open, High, Low, Close, Adj Close, Volume``. Importing ``arch`` costs more
than a second, so the files are located with :func:`importlib.util.find_spec` (which does not run
``arch/__init__``) and parsed with ``gzip`` + plain string splitting into numpy arrays; the parsed
arrays are memoised per process (read-only) and every load returns copies.

Data quality (checked for arch 7/8): both files are sorted and unique, free of NaN and
non-positive prices, and every row satisfies ``low <= min(open, close)`` and
``high >= max(open, close)``; ``Adj Close`` equals ``Close`` (index levels have no dividends);
two NASDAQ rows have zero volume, which is valid. No repair is therefore applied: the parsed data
goes through :func:`~quantlab.data.bars.validate_bars`, so a future ``arch`` release with damaged
rows would fail loudly with a DataError instead of being patched silently.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass

import numpy as np

from quantlab.data.bars import Bars, validate_bars
from quantlab.data.timeutil import NS
from quantlab.errors import DataError


@dataclass(frozen=True)
class SampleSpec:
    """Where a bundled sample lives and which period it nominally covers."""

    ticker: str
    relative_path: tuple[str, ...]  # inside the package directory
    name: str
    coverage: tuple[str, str]  # [start, end) the file spans (whole calendar years for the indices)
    package: str = "arch"
    adjusted: bool = False  # the file has raw OHLC + an adjusted close (served per ``adjust``)


_YEARS_1999_2018 = ("1999-01-01", "2019-01-01")
SAMPLES: dict[str, SampleSpec] = {
    "^GSPC": SampleSpec("^GSPC", ("data", "sp500", "sp500.csv.gz"), "S&P 500", _YEARS_1999_2018),
    "^IXIC": SampleSpec("^IXIC", ("data", "nasdaq", "nasdaq.csv.gz"), "NASDAQ Composite", _YEARS_1999_2018),
}
# Quandl WIKI daily prices (public domain) shipped by bokeh_sampledata (BSD-3): unadjusted OHLCV and
# the vendor's split- and dividend-adjusted close; one gzip CSV "Ticker,Date,Open,High,Low,Close,
# Volume,Adj Close" (ISO dates, rows by ticker then date). Coverage is [first bar, last bar + 1 day).
_STOCKS = ("_data", "stocks.csv.gz")
STOCKS: dict[str, SampleSpec] = {
    ticker: SampleSpec(ticker, _STOCKS, name, coverage, package="bokeh_sampledata", adjusted=True)
    for ticker, name, coverage in (
        ("AAPL", "Apple", ("2000-03-01", "2013-03-02")),
        ("IBM", "IBM", ("2000-03-01", "2013-03-02")),
        ("MSFT", "Microsoft", ("2000-03-01", "2013-03-02")),
        ("GOOG", "Google (class A, GOOGL)", ("2004-08-19", "2013-03-02")),
    )
}
SAMPLES.update(STOCKS)

_EXPECTED_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
_cache: dict[str, Bars] = {}
_lock = threading.Lock()


def sample_file(ticker: str) -> str:
    """Path of the gzip CSV for a canonical sample ticker, located without importing its package
    (``arch`` or ``bokeh_sampledata``).

    Raises:
        DataError: the package is not installed or the file is missing from it.
    """
    spec = SAMPLES[ticker]
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for location in locations:
        candidate = os.path.join(location, *spec.relative_path)
        if os.path.isfile(candidate):
            return candidate
    reason = (f"the {spec.package} package is not installed" if not locations
              else f"{spec.package} does not ship the file")
    raise DataError(f"The bundled sample data for {ticker} is unavailable: {reason}")


def _parse(path: str, ticker: str) -> Bars:
    import gzip

    try:
        with gzip.open(path, "rt", encoding="ascii", newline="") as handle:
            lines = handle.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(
            f"The bundled sample data for {ticker} is unreadable ({type(exc).__name__}): {path}"
        ) from None
    header = lines[0].split(",") if lines else []
    try:
        positions = [header.index(name) for name in _EXPECTED_COLUMNS]
    except ValueError:
        raise DataError(
            f"The bundled sample data for {ticker} has unexpected columns: {path}"
        ) from None
    try:
        rows = [line.split(",") for line in lines[1:] if line]
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
        month_day_year = np.array(
            [text.split("/") for text in columns[positions[0]]], dtype=np.int64
        ).reshape(-1, 3)
        values = np.array([columns[p] for p in positions[1:]], dtype=np.float64)
    except (ValueError, IndexError):  # ragged rows, bad numbers or dates
        raise DataError(
            f"The bundled sample data for {ticker} has unparseable rows: {path}"
        ) from None
    months = (month_day_year[:, 2] - 1970) * 12 + (month_day_year[:, 0] - 1)
    days = months.astype("datetime64[M]").astype("datetime64[D]") + (month_day_year[:, 1] - 1)
    bars = Bars(
        index=days.astype(NS),
        open=values[0],
        high=values[1],
        low=values[2],
        close=values[3],
        volume=values[4],
        ticker=ticker,
        interval="1d",
        source="sample",
    )
    validate_bars(bars, context=f"{ticker} bundled sample ({path})")
    for name in ("index", "open", "high", "low", "close", "volume"):
        getattr(bars, name).flags.writeable = False
    return bars


_stock_rows: dict[str, dict[str, np.ndarray]] = {}


def _stock_arrays(path: str, ticker: str) -> dict[str, np.ndarray]:
    """Raw arrays (index, OHLCV, adj_close) of one ticker of the bundled stocks file."""
    import gzip

    if not _stock_rows:
        try:
            with gzip.open(path, "rt", encoding="ascii", newline="") as handle:
                lines = handle.read().splitlines()
            header = lines[0].split(",")
            names = ("Ticker", "Date", "Open", "High", "Low", "Close", "Volume", "Adj Close")
            positions = [header.index(name) for name in names]
            rows = [line.split(",") for line in lines[1:] if line]
            columns = list(zip(*rows, strict=True))
            tickers = np.array(columns[positions[0]])
            days = np.array(columns[positions[1]], dtype="datetime64[D]").astype(NS)
            values = np.array([columns[p] for p in positions[2:]], dtype=np.float64)
        except (OSError, EOFError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise DataError(
                f"The bundled sample data for {ticker} is unreadable ({type(exc).__name__}): {path}"
            ) from None
        for name in np.unique(tickers):
            rows_of = tickers == name
            _stock_rows[str(name)] = {"index": days[rows_of], "open": values[0][rows_of],
                                      "high": values[1][rows_of], "low": values[2][rows_of],
                                      "close": values[3][rows_of], "volume": values[4][rows_of],
                                      "adj_close": values[5][rows_of]}
    if ticker not in _stock_rows:
        raise DataError(f"The bundled sample data for {ticker} is missing from {path}")
    return _stock_rows[ticker]


def _parse_stock(path: str, ticker: str, adjust: str) -> Bars:
    from quantlab.data.adjust import adjusted_bars

    bars = adjusted_bars(_stock_arrays(path, ticker), ticker=ticker, interval="1d", source="sample",
                         adjust=adjust)
    validate_bars(bars, context=f"{ticker} bundled sample ({path})")
    for name in ("index", "open", "high", "low", "close", "volume"):
        getattr(bars, name).flags.writeable = False
    return bars


def sample_bars(ticker: str, adjust: str = "auto") -> Bars:
    """All bundled daily bars of a canonical sample ticker: validated, memoised, read-only arrays.

    ``adjust`` applies to the stocks (which have an adjusted close); the indices have none."""
    key = f"{ticker}|{adjust}" if SAMPLES[ticker].adjusted else ticker
    bars = _cache.get(key)
    if bars is None:
        with _lock:
            bars = _cache.get(key)
            if bars is None:
                if SAMPLES[ticker].adjusted:
                    bars = _parse_stock(sample_file(ticker), ticker, adjust)
                else:
                    bars = _parse(sample_file(ticker), ticker)
                _cache[key] = bars
    return bars


def sample_slice(ticker: str, i: int, j: int, adjust: str = "auto") -> Bars:
    """Copy of the bundled bars at positions ``[i, j)``, safe for the caller to modify."""
    full = sample_bars(ticker, adjust).slice(i, j)
    return Bars(
        index=full.index.copy(),
        open=full.open.copy(),
        high=full.high.copy(),
        low=full.low.copy(),
        close=full.close.copy(),
        volume=full.volume.copy(),
        ticker=full.ticker,
        interval=full.interval,
        source=full.source,
        notes=full.notes,
        adjustment=full.adjustment,
    )
