"""Parquet persistence of :class:`~quantlab.data.bars.Bars` with pyarrow (no pandas).

File layout: columns ``timestamp`` (``timestamp[ns, tz=UTC]``), ``open``, ``high``, ``low``,
``close``, ``volume`` (``double``); schema metadata ``quantlab.format = bars/1`` plus
``quantlab.ticker``, ``quantlab.interval`` and ``quantlab.source``; optionally ``quantlab.notes``
(JSON list of the loader's notes) and ``quantlab.adjustment``.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

import numpy as np

from quantlab.columnar import WRITE_OPTIONS, column_to_numpy, read_parquet, remember, table_from_numpy
from quantlab.data.bars import VALUE_FIELDS, Bars
from quantlab.errors import DataError

FORMAT = "bars/1"
_META = {"format": b"quantlab.format", "ticker": b"quantlab.ticker",
         "interval": b"quantlab.interval", "source": b"quantlab.source"}
_NOTES, _ADJUSTMENT = b"quantlab.notes", b"quantlab.adjustment"  # optional (JSON list, text)


def write_bars(bars: Bars, path: str | os.PathLike[str]) -> None:
    """Write ``bars`` to a Parquet file atomically.

    The table is written to a temporary file in the destination directory (created if needed),
    flushed to disk, then moved over ``path`` with :func:`os.replace`, so readers never see a
    partial file and a crash leaves no temporary file behind.
    """
    import tempfile

    import pyarrow.parquet as pq

    from quantlab.artifacts.io import file_mode

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    columns = {"timestamp": bars.index}
    columns.update({name: np.asarray(getattr(bars, name), dtype=np.float64) for name in VALUE_FIELDS})
    table = table_from_numpy(columns, {
        _META["format"].decode(): FORMAT,
        _META["ticker"].decode(): bars.ticker,
        _META["interval"].decode(): bars.interval,
        _META["source"].decode(): bars.source,
        **({_NOTES.decode(): json.dumps(list(bars.notes))} if bars.notes else {}),
        **({_ADJUSTMENT.decode(): bars.adjustment} if bars.adjustment else {}),
    })
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle, **WRITE_OPTIONS)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, file_mode())
        os.replace(tmp_name, target)
        remember(target, table)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp_name)
        raise


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
        index = column_to_numpy(table, "timestamp")
        values = {name: np.asarray(column_to_numpy(table, name), dtype=np.float64) for name in VALUE_FIELDS}
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
