"""Parquet persistence of :class:`~quantlab.data.bars.Bars` with pyarrow (no pandas).

File layout: columns ``timestamp`` (``timestamp[ns, tz=UTC]``), ``open``, ``high``, ``low``,
``close``, ``volume`` (``double``); schema metadata ``quantlab.format = bars/1`` plus
``quantlab.ticker``, ``quantlab.interval`` and ``quantlab.source``; optionally ``quantlab.notes``
(JSON list of the loader's notes) and ``quantlab.adjustment``. Written with the columns declared
not null, without compression or column statistics (``columnar.RAW_WRITE_OPTIONS``); any Parquet
file of that layout reads, nullable columns included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from quantlab.columnar import RAW_WRITE_OPTIONS, column_view, read_parquet, table_from_numpy, write_parquet
from quantlab.data.bars import VALUE_FIELDS, Bars
from quantlab.errors import DataError

FORMAT = "bars/1"
_META = {"format": b"quantlab.format", "ticker": b"quantlab.ticker",
         "interval": b"quantlab.interval", "source": b"quantlab.source"}
_NOTES, _ADJUSTMENT = b"quantlab.notes", b"quantlab.adjustment"  # optional (JSON list, text)


def write_bars(bars: Bars, path: str | os.PathLike[str]) -> None:
    """Write ``bars`` to a Parquet file atomically (``artifacts.io``: a temporary file in the
    destination directory, created if needed, renamed over ``path``), so readers never see a
    partial file and a failure leaves no temporary file behind. Not fsync'd, like every other
    store file and artifact (docs/architecture.md, "Leaving the process"): derived data, and
    a 1M-bar file's fsync was ~0.1-0.2 s of a big run's wall time, waiting on the disk.
    """
    columns = {"timestamp": bars.index}
    columns.update({name: np.asarray(getattr(bars, name), dtype=np.float64) for name in VALUE_FIELDS})
    table = table_from_numpy(columns, {
        _META["format"].decode(): FORMAT,
        _META["ticker"].decode(): bars.ticker,
        _META["interval"].decode(): bars.interval,
        _META["source"].decode(): bars.source,
        **({_NOTES.decode(): json.dumps(list(bars.notes))} if bars.notes else {}),
        **({_ADJUSTMENT.decode(): bars.adjustment} if bars.adjustment else {}),
    }, required=True)
    write_parquet(path, table, RAW_WRITE_OPTIONS)  # random floats: compression saves little


def _notes(metadata: dict) -> tuple[str, ...]:
    """The notes in a bars file's schema metadata (ValueError/TypeError when they are malformed)."""
    return tuple(str(n) for n in json.loads(metadata.get(_NOTES, b"[]")))


def read_bars_notes(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The data notes (split warnings, file notes) :func:`write_bars` stored with the bars,
    read from the Parquet footer only; ``()`` when there are none or the file is unreadable."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        return _notes(metadata)
    except (OSError, ValueError, TypeError):
        return ()


def read_bars(path: str | os.PathLike[str]) -> Bars:
    """Read a file written by :func:`write_bars` (pyarrow → numpy, no pandas).

    Bars are returned as stored (call :func:`~quantlab.data.bars.validate_bars` to check them).
    Their arrays are the table's memory (``columnar.column_view``: no copy), which the step
    worker's read-after-write memo may hand to the next reader too: like any
    :class:`~quantlab.data.bars.Bars`, treat them as immutable.

    Raises:
        DataError: the file is missing, unreadable, not Parquet, truncated, or lacks the QuantLab
        columns/metadata. The message names the path and the reason, never the file's contents.
    """
    import pyarrow as pa

    source_path = Path(path)

    def fail(reason: str) -> DataError:
        return DataError(f"Cannot read bars file {source_path}: {reason}")

    if not source_path.is_file():
        raise fail("file not found" if not source_path.exists() else "not a regular file")
    try:
        table = read_parquet(source_path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
        raise fail(f"not a readable Parquet file ({type(exc).__name__})") from None
    metadata = table.schema.metadata or {}
    if metadata.get(_META["format"]) != FORMAT.encode():
        raise fail("not a QuantLab bars file (missing quantlab.format metadata)")
    labels = {}
    for key in ("ticker", "interval", "source"):
        raw = metadata.get(_META[key])
        if raw is None:
            raise fail(f"missing quantlab.{key} metadata")
        labels[key] = raw.decode("utf-8", errors="replace")
    missing = [name for name in ("timestamp", *VALUE_FIELDS) if name not in table.column_names]
    if missing:
        raise fail(f"missing column(s) {', '.join(missing)}")
    try:
        stamps = table.schema.field("timestamp").type
        if not pa.types.is_timestamp(stamps):
            raise fail(f"column timestamp has type {stamps}, expected a timestamp")
        index = column_view(table, "timestamp")
        values = {name: np.asarray(column_view(table, name), dtype=np.float64) for name in VALUE_FIELDS}
    except DataError:
        raise
    except Exception as exc:
        raise fail(f"unreadable column data ({type(exc).__name__})") from None
    try:
        notes = _notes(metadata)
    except (ValueError, TypeError):
        raise fail("unreadable quantlab.notes metadata") from None
    adjustment = metadata.get(_ADJUSTMENT, b"").decode("utf-8", errors="replace")
    return Bars(index=index, **values, **labels, notes=notes, adjustment=adjustment)
