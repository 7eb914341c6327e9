"""User data files (CSV / Parquet) and DataFrame → :class:`Bars` conversion. pandas is imported lazily.

File rules (docs/data.md "CSV format"): the type comes from the extension (``.csv``, ``.csv.gz``,
``.parquet``, ``.pq``); column names are matched ignoring case, spaces, ``_``, ``-`` and ``.``
(``Adj Close`` = ``adj_close`` = ``adjclose``; ``vol`` = ``volume``); the time is the ``date``/
``datetime``/``timestamp``/``time`` column, else the Parquet ``DatetimeIndex``, else the first
column; an adjusted close column (``Adj Close``, ``adj_close``, ``adjclose``, ``adjusted close``)
is returned as ``adj_close`` for :mod:`quantlab.data.adjust`; other extra columns are ignored; a
missing ``volume`` column means volume 0. yfinance's multi-level CSV export (``Price``/``Ticker``/
``Date`` header rows) is recognised.

Times: ``date_format`` (strptime codes, e.g. ``%d/%m/%Y``) parses text dates exactly. Without it,
``a/b/yyyy`` dates (also with ``.`` or ``-``) are read month-first or day-first only when the file
itself decides (a first field above 12 means day-first, a second field above 12 month-first);
otherwise they are ambiguous and refused. Time zone aware times are converted to UTC for intraday
bars and keep their local calendar date for daily and longer bars; naive ones are taken as UTC.
Integer epochs are read as s/ms/us/ns by magnitude.

User files are never repaired, with one exception: a file sorted newest first is reversed (with a
note). Otherwise unsorted, duplicated or inconsistent rows fail validation.
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
# normalised header (lower case without spaces, "_", "-", ".") -> canonical name
_ALIASES = {"adjclose": "adj_close", "adjustedclose": "adj_close", "adjclosingprice": "adj_close",
            "vol": "volume", "datetimeutc": "datetime", "timestamputc": "timestamp"}
_SLASH_DATE = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})(?:[ T].*)?$"
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


def _slash_format(series: pd.Series, label: str) -> str | None:
    """The strptime format of ``a/b/yyyy`` text dates when the file decides it, else ``None`` for
    other text; ambiguous files (every field <= 12) raise FrameError asking for date_format."""
    parts = series.astype(str).str.extract(_SLASH_DATE)
    matched = parts[0].notna()
    if not matched.any() or not matched.all():
        return None
    first, second = parts[0].astype(int), parts[2].astype(int)
    sep = str(parts[1].iloc[0])
    year = "%Y" if len(str(parts[3].iloc[0])) == 4 else "%y"
    rest = series.astype(str).str.strip().str.len() > parts[0].str.len() + parts[2].str.len() + parts[3].str.len() + 2
    if rest.any():
        return None  # dates with a time part: leave them to pandas
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first and month_first:
        raise FrameError(f"{label} mixes day-first and month-first dates")
    if day_first:
        return f"%d{sep}%m{sep}{year}"
    if month_first:
        return f"%m{sep}%d{sep}{year}"
    raise FrameError(
        f"{label} has ambiguous dates (day/month or month/day: no field is above 12); give "
        f"params.date_format, e.g. \"%d{sep}%m{sep}{year}\" or \"%m{sep}%d{sep}{year}\""
    )


def _to_utc_ns(values: pd.Series | pd.Index, label: str, *, date_format: str | None = None,
               local_dates: bool = False) -> np.ndarray:
    """Convert times to ``datetime64[ns]``: naive → taken as UTC; aware → UTC, or their local
    calendar date when ``local_dates`` (daily and longer bars)."""
    import pandas as pd

    series = pd.Series(values, copy=False)
    try:
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            numbers = series.to_numpy(dtype=np.float64)
            stamps = pd.to_datetime(series, unit=_epoch_unit(numbers), utc=True)
        elif date_format is not None:
            try:
                stamps = pd.to_datetime(series, format=date_format)
            except (ValueError, TypeError):
                raise FrameError(f"{label} does not match date_format {date_format!r}") from None
        else:  # datetimes (naive or aware) or text; text in one format first, then per element
            text = series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
            fmt = _slash_format(series, label) if text else None
            try:
                stamps = pd.to_datetime(series, format=fmt)
            except (ValueError, TypeError):
                stamps = pd.to_datetime(series, utc=True, format="mixed")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = (stamps.dt.tz_localize(None).dt.normalize() if local_dates
                      else stamps.dt.tz_convert("UTC").dt.tz_localize(None))
        # as_unit raises on overflow; a direct numpy cast to ns would wrap around silently
        return stamps.dt.as_unit("ns").to_numpy(dtype=NS)
    except FrameError:
        raise
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


def _canonical(column: object) -> str:
    key = str(column).strip().lower()
    squeezed = "".join(ch for ch in key if ch not in " _-.")
    if squeezed in _ALIASES:
        return _ALIASES[squeezed]
    return squeezed if squeezed in (*PRICE_FIELDS, "volume", *TIME_COLUMNS, "price") else key


def frame_to_arrays(frame: pd.DataFrame, *, date_format: str | None = None,
                    local_dates: bool = False) -> dict[str, np.ndarray]:
    """Extract ``index`` (ns) and OHLCV float arrays (plus ``adj_close`` when the frame has an
    adjusted close) from a DataFrame, without repairing anything. See the module docstring for
    the column and time rules.

    Raises:
        FrameError: missing/ambiguous columns or unparseable times (message without cell values).
    """
    import pandas as pd

    frame = _flatten_columns(frame)
    wanted = {*PRICE_FIELDS, "volume", *TIME_COLUMNS, "price", "adj_close"}
    by_name: dict[str, object] = {}  # only the names we use, so messages never quote other headers
    for column in frame.columns:
        key = _canonical(column)
        if key not in wanted:
            continue
        if key in by_name:
            raise FrameError(f"column '{key}' appears more than once (names are case-insensitive)")
        by_name[key] = column

    # yfinance >= 0.2.51 CSV export: header "Price,Close,...", then rows "Ticker,..." and "Date,,,".
    if len(frame.columns) and _canonical(frame.columns[0]) == "price" and "date" not in by_name:
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
    times = {"date_format": date_format, "local_dates": local_dates}
    if time_key is not None:
        index = _to_utc_ns(frame[by_name[time_key]], f"time column '{time_key}'", **times)
    elif isinstance(frame.index, pd.DatetimeIndex):
        index = _to_utc_ns(frame.index, "the time index", **times)
    else:
        first_column = frame.columns[0]
        if _canonical(first_column) in (*PRICE_FIELDS, "volume", "adj_close"):
            raise FrameError("no time column (date, datetime, timestamp or time)")
        index = _to_utc_ns(frame[first_column], "the first column (time)", **times)

    arrays: dict[str, np.ndarray] = {"index": index}
    for name in (*PRICE_FIELDS, "volume", "adj_close"):
        if name == "adj_close" and name not in by_name:
            continue
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
    arrays.pop("adj_close", None)
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
        if any(_canonical(name) == "adj_close" for name in table.column_names):
            return None  # the pandas path reads the adjusted close
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


def _oldest_first(arrays: dict[str, np.ndarray], notes: list[str], ticker: str) -> dict[str, np.ndarray]:
    """Rows of a file listed newest first, reversed (with a note); any other order is kept."""
    stamps = arrays["index"].view(np.int64)
    if len(stamps) > 1 and not np.isnat(arrays["index"]).any() and bool((np.diff(stamps) < 0).all()):
        notes.append(f"{ticker}: the file lists its rows newest first: they were read in reverse (oldest first)")
        return {name: values[::-1].copy() for name, values in arrays.items()}
    return arrays


def read_file_bars(path: str | os.PathLike[str], *, ticker: str, interval: str, describe: str,
                   adjust: str = "auto", date_format: str | None = None) -> Bars:
    """Read a CSV or Parquet file of bars (not validated; see :func:`validate_bars`).

    ``describe`` (ticker, range, interval) prefixes error messages. ``adjust`` and the adjusted
    close column give the prices (:mod:`quantlab.data.adjust`); ``date_format`` parses text dates.

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
        fast = _parquet_fast(location) if date_format is None else None
        if fast is not None and len(fast["index"]):
            return _file_bars(fast, ticker=ticker, interval=interval, adjust=adjust)
    import pandas as pd

    from quantlab.data.timeutil import parse_interval

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
        arrays = frame_to_arrays(frame, date_format=date_format,
                                 local_dates=not parse_interval(interval).is_intraday)
    except FrameError as exc:
        raise fail(str(exc)) from None
    return _file_bars(arrays, ticker=ticker, interval=interval, adjust=adjust)


def _file_bars(arrays: dict[str, np.ndarray], *, ticker: str, interval: str, adjust: str) -> Bars:
    from quantlab.data.adjust import adjusted_bars

    notes: list[str] = []
    arrays = _oldest_first(arrays, notes, ticker)
    return adjusted_bars(arrays, ticker=ticker, interval=interval, source="file", adjust=adjust,
                         notes=tuple(notes))
