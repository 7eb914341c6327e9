"""User data files (CSV / Parquet) and DataFrame → :class:`Bars` conversion. pandas is imported lazily.

File rules: the type comes from the extension (``.csv``, ``.csv.gz``, ``.parquet``, ``.pq``);
column names are matched case-insensitively; the time is the ``date``/``datetime``/``timestamp``/
``time`` column, else the Parquet ``DatetimeIndex``, else the first column; ``Adj Close`` and other
extra columns are ignored; a missing ``volume`` column means volume 0. yfinance's multi-level CSV
export (``Price``/``Ticker``/``Date`` header rows) is recognised. Time zone aware times are converted
to UTC, naive ones are taken as UTC, integer epochs are read as s/ms/us/ns by magnitude.

User files are never repaired: unsorted, duplicated or inconsistent rows fail validation.
Error messages name the path and the reason, never the file's contents.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from quantlab.data.bars import PRICE_FIELDS, Bars
from quantlab.data.timeutil import NS
from quantlab.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TIME_COLUMNS = ("date", "datetime", "timestamp", "time")
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


class FrameError(ValueError):
    """A DataFrame cannot be turned into bars; the message is safe to show (no cell values)."""


def _epoch_unit(values: np.ndarray) -> str:
    """Guess the unit of integer epoch times from their magnitude (dates after ~1973)."""
    magnitude = float(np.nanmax(np.abs(values))) if values.size else 0.0
    if magnitude >= 1e17:
        return "ns"
    if magnitude >= 1e14:
        return "us"
    if magnitude >= 1e11:
        return "ms"
    return "s"


def _to_utc_ns(values: pd.Series | pd.Index, label: str) -> np.ndarray:
    """Convert times to UTC ``datetime64[ns]``: aware → UTC, naive → taken as UTC."""
    import pandas as pd

    series = pd.Series(values, copy=False)
    try:
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            numbers = series.to_numpy(dtype=np.float64)
            stamps = pd.to_datetime(series, unit=_epoch_unit(numbers), utc=True)
        else:  # datetimes (naive or aware) or text; text in one format first, then per element
            try:
                stamps = pd.to_datetime(series, utc=True)
            except (ValueError, TypeError):
                stamps = pd.to_datetime(series, utc=True, format="mixed")
        # as_unit raises on overflow; a direct numpy cast to ns would wrap around silently
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns").to_numpy(dtype=NS)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise FrameError(f"{label} could not be parsed as dates") from None


def _flatten_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Reduce yfinance-style MultiIndex columns (Price × Ticker) to the price level."""
    import pandas as pd

    if not isinstance(frame.columns, pd.MultiIndex):
        return frame
    for level in range(frame.columns.nlevels):
        names = {str(name).strip().lower() for name in frame.columns.get_level_values(level)}
        if set(PRICE_FIELDS) <= names:
            others = [lvl for lvl in range(frame.columns.nlevels) if lvl != level]
            if any(frame.columns.get_level_values(lvl).nunique() > 1 for lvl in others):
                raise FrameError("columns hold several tickers; expected one")
            flat = frame.copy(deep=False)
            flat.columns = frame.columns.get_level_values(level)
            return flat
    raise FrameError("multi-level columns without open/high/low/close")


def frame_to_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Extract ``index`` (UTC ns) and OHLCV float arrays from a DataFrame, without repairing anything.

    Raises:
        FrameError: missing/ambiguous columns or unparseable times (message without cell values).
    """
    import pandas as pd

    frame = _flatten_columns(frame)
    wanted = {*PRICE_FIELDS, "volume", *TIME_COLUMNS, "price"}
    by_name: dict[str, object] = {}  # only the names we use, so messages never quote other headers
    for column in frame.columns:
        key = str(column).strip().lower()
        if key not in wanted:
            continue
        if key in by_name:
            raise FrameError(f"column '{key}' appears more than once (names are case-insensitive)")
        by_name[key] = column

    # yfinance >= 0.2.51 CSV export: header "Price,Close,...", then rows "Ticker,..." and "Date,,,".
    if len(frame.columns) and str(frame.columns[0]).strip().lower() == "price" and "date" not in by_name:
        first = frame[by_name["price"]].astype(str).str.strip().str.lower()
        header_rows = 0
        while header_rows < min(2, len(frame)) and first.iloc[header_rows] in ("ticker", "date"):
            header_rows += 1
        if header_rows:
            frame = frame.iloc[header_rows:]
            by_name["date"] = by_name.pop("price")

    missing = [name for name in PRICE_FIELDS if name not in by_name]
    if missing:
        raise FrameError(f"missing column(s) {', '.join(missing)} (found {len(frame.columns)} columns)")

    time_key = next((name for name in TIME_COLUMNS if name in by_name), None)
    if time_key is not None:
        index = _to_utc_ns(frame[by_name[time_key]], f"time column '{time_key}'")
    elif isinstance(frame.index, pd.DatetimeIndex):
        index = _to_utc_ns(frame.index, "the time index")
    else:
        first_column = frame.columns[0]
        if str(first_column).strip().lower() in (*PRICE_FIELDS, "volume", "adj close"):
            raise FrameError("no time column (date, datetime, timestamp or time)")
        index = _to_utc_ns(frame[first_column], "the first column (time)")

    arrays: dict[str, np.ndarray] = {"index": index}
    for name in (*PRICE_FIELDS, "volume"):
        if name not in by_name:
            arrays[name] = np.zeros(len(frame), dtype=np.float64)
            continue
        column = frame[by_name[name]]
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            raise FrameError(f"column {name} has {int(bad.sum())} non-numeric value(s)")
        arrays[name] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return arrays


def frame_to_bars(frame: pd.DataFrame, *, ticker: str, interval: str, source: str, where: str) -> Bars:
    """:func:`frame_to_arrays` wrapped into :class:`Bars`; errors become DataError naming ``where``."""
    try:
        arrays = frame_to_arrays(frame)
    except FrameError as exc:
        raise DataError(f"Cannot use {where} for {ticker}: {exc}") from None
    return Bars(**arrays, ticker=ticker, interval=interval, source=source)


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """``"csv"``, ``"parquet"`` or ``None`` from the file name's extension (case-insensitive)."""
    name = Path(path).name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def _parquet_fast(location: Path) -> dict[str, np.ndarray] | None:
    """The common Parquet layout (a timestamp column + numeric OHLC[V] columns, no nulls) read
    with pyarrow alone: ~0.2 s less than pandas on a cold process. Anything else -> None (the
    pandas path handles it)."""
    try:
        import pyarrow as pa

        from quantlab.columnar import column_to_numpy, read_parquet

        table = read_parquet(location)
        by_name = {name.strip().lower(): name for name in table.column_names}
        time_key = next((k for k in TIME_COLUMNS if k in by_name), None)
        if time_key is None or any(f not in by_name for f in PRICE_FIELDS):
            return None
        if not pa.types.is_timestamp(table.schema.field(by_name[time_key]).type):
            return None
        arrays = {"index": column_to_numpy(table, by_name[time_key]).astype("datetime64[ns]")}
        for name in (*PRICE_FIELDS, "volume"):
            if name not in by_name:
                if name == "volume":
                    arrays[name] = np.zeros(len(arrays["index"]))
                    continue
                return None
            ftype = table.schema.field(by_name[name]).type
            if not (pa.types.is_floating(ftype) or pa.types.is_integer(ftype)):
                return None
            col = table.column(by_name[name])
            col = col.cast(pa.float64()) if not pa.types.is_float64(ftype) else col
            arrays[name] = column_to_numpy(pa.table({"v": col}), "v").astype(np.float64)
        return arrays
    except (ValueError, TypeError, KeyError, OSError, ImportError):
        return None
    except Exception:  # noqa: BLE001 - pyarrow errors on odd files: let the pandas path decide
        return None


def read_file_bars(path: str | os.PathLike[str], *, ticker: str, interval: str, describe: str) -> Bars:
    """Read a CSV or Parquet file of bars (not validated; see :func:`validate_bars`).

    ``describe`` (ticker, range, interval) prefixes error messages.

    Raises:
        DataError: missing file, unsupported extension, unreadable content, missing columns.
    """
    location = Path(path)

    def fail(reason: str) -> DataError:
        return DataError(f"Cannot load {describe} from file {location}: {reason}")

    kind = file_kind(location)
    if kind is None:
        raise fail("unsupported file type (expected .csv, .csv.gz, .parquet or .pq)")
    if not location.exists():
        raise fail("file not found")
    if not location.is_file():
        raise fail("not a regular file")
    if kind == "parquet":
        fast = _parquet_fast(location)
        if fast is not None and len(fast["index"]):
            return Bars(**fast, ticker=ticker, interval=interval, source="file")
    import pandas as pd

    try:
        if kind == "csv":
            frame = pd.read_csv(location)
        else:
            frame = pd.read_parquet(location)
    except Exception as exc:  # parser, decoding, compression and I/O errors alike
        raise fail(f"not a readable {kind.upper()} file ({type(exc).__name__})") from None
    if frame.empty:
        raise fail("the file has no rows")
    try:
        arrays = frame_to_arrays(frame)
    except FrameError as exc:
        raise fail(str(exc)) from None
    return Bars(**arrays, ticker=ticker, interval=interval, source="file")
