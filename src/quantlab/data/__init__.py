"""QuantLab data layer: canonical OHLCV bars from the sample, file, yfinance and synthetic sources.

Canonical bars (:class:`Bars`) are numpy arrays: a UTC ``datetime64[ns]`` index that is sorted and
unique, and float64 open/high/low/close/volume with no NaN in OHLC, prices > 0,
``high >= max(open, close)``, ``low <= min(open, close)`` and finite volume >= 0.

Typical use::

    from quantlab.data import DataRequest, load_bars
    bars = load_bars(DataRequest("SPX", "2017-01-01", "2018-01-01", lookback_bars=50))

Importing this package loads numpy only: pandas (file source, :meth:`Bars.to_frame`), pyarrow
(Parquet) and yfinance are imported inside the functions that need them, and ``arch`` is never
imported (its bundled CSV files are located with ``importlib.util.find_spec``).

Errors: invalid requests raise :class:`~quantlab.errors.ConfigError` (exit 2); missing, empty or
invalid data raise :class:`~quantlab.errors.DataError` (exit 3) with a one-line message naming the
ticker, the range and the reason.
"""

from quantlab.data.bars import Bars, validate_bars
from quantlab.data.loader import SOURCES, DataRequest, data_sources, load_bars
from quantlab.data.store import read_bars, write_bars
from quantlab.data.synthetic import synthetic_bars
from quantlab.data.tickers import SAMPLE_TICKERS, is_crypto, resolve_sample_ticker

__all__ = [
    "SAMPLE_TICKERS",
    "SOURCES",
    "Bars",
    "DataRequest",
    "data_sources",
    "is_crypto",
    "load_bars",
    "read_bars",
    "resolve_sample_ticker",
    "synthetic_bars",
    "validate_bars",
    "write_bars",
]
