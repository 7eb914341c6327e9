"""numpy <-> Arrow/Parquet without pandas.

pyarrow imports pandas (~0.15 s) the first time ``pa.array`` or ``ChunkedArray.to_numpy`` is
called, to check whether its input is a pandas object. A single ``run`` has a budget of a few
hundred milliseconds, so the store's files are converted through raw Arrow buffers instead:
``Array.from_buffers`` to write and ``numpy.frombuffer`` to read. Supported column types:
float64, int64, int32, int8, bool and datetime64[ns] (stored as timestamp[ns, tz=UTC]).
No nulls are written; reading a column with nulls raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Mapping

from quantlab._lazy import np

_NUMPY_OF = {"double": "float64", "int64": "int64", "int32": "int32", "int8": "int8"}


def _to_arrow(values: np.ndarray):
    import pyarrow as pa

    values = np.asarray(values)
    n = len(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values.astype(np.uint8), bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(bits)])
    if np.issubdtype(values.dtype, np.datetime64):
        ns = np.ascontiguousarray(values.astype("datetime64[ns]", copy=False).view(np.int64))
        return pa.Array.from_buffers(pa.timestamp("ns", tz="UTC"), n, [None, pa.py_buffer(ns)])
    types = {np.dtype(np.float64): pa.float64(), np.dtype(np.int64): pa.int64(),
             np.dtype(np.int32): pa.int32(), np.dtype(np.int8): pa.int8()}
    arrow_type = types.get(values.dtype)
    if arrow_type is None:
        if np.issubdtype(values.dtype, np.floating):
            values, arrow_type = values.astype(np.float64), pa.float64()
        elif np.issubdtype(values.dtype, np.integer):
            values, arrow_type = values.astype(np.int64), pa.int64()
        else:
            raise TypeError(f"unsupported column dtype {values.dtype}")
    return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(np.ascontiguousarray(values))])


def table_from_numpy(columns: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None, *,
                     required: bool = False):
    """A table of the columns; ``required``: fields declared not null, which Parquet then writes
    without definition levels (a 1M-bar bars file: ~-25 % of the write's CPU). No nulls either way."""
    import pyarrow as pa

    names = list(columns)
    arrays = [_to_arrow(columns[name]) for name in names]
    if required:
        schema = pa.schema([pa.field(name, array.type, nullable=False) for name, array in zip(names, arrays)])
        table = pa.Table.from_arrays(arrays, schema=schema)
    else:
        table = pa.Table.from_arrays(arrays, names=names)
    if metadata:
        table = table.replace_schema_metadata({k.encode(): str(v).encode() for k, v in metadata.items()})
    return table


def column_to_numpy(table, name: str, copy: bool = True) -> np.ndarray:
    """Column ``name`` as a numpy array of its own; with ``copy=False`` read-only, and a view of
    the table's buffer where the type allows (numbers; timestamps in ns), for a reader that only
    reads (the score step: no 8 MB copy per column of a 1M-bar run). See :func:`column_view`
    for a writable view."""
    values = _column(table, name, copy)
    return values if copy else _read_only(values)


def column_view(table, name: str) -> np.ndarray:
    """A numeric or ``timestamp[ns]`` column as a writable numpy array over the table's own
    memory, without a copy (a copy for other types, and when the memory is read-only: numba
    compiles read-only arrays apart, so the result is always writable).

    Never write into it: the table may be one :func:`remembering` keeps, which later readers
    of the same file get back (a 1M-bar run's bars: the signals and simulate steps read them)."""
    values = _column(table, name, copy=False)
    return values if values.flags.writeable else values.copy()


def _column(table, name: str, copy: bool) -> np.ndarray:
    import pyarrow as pa

    col = table.column(name)
    if isinstance(col, pa.ChunkedArray):  # one chunk: its own buffers (combine_chunks would copy them)
        arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    else:
        arr = col
    n, off = len(arr), arr.offset
    if arr.null_count:
        raise ValueError(f"column {name} has nulls")
    t = arr.type
    data = arr.buffers()[1]
    if data is None:
        empty = {"bool": np.bool_}.get(str(t), np.float64)
        return np.zeros(0, dtype=empty)
    if pa.types.is_boolean(t):
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[off:off + n].view(np.bool_)  # 0/1 bytes: valid booleans, no second copy
    if pa.types.is_timestamp(t):
        raw = np.frombuffer(data, dtype=np.int64)[off:off + n]
        if t.unit == "ns":
            return raw.copy().view("datetime64[ns]") if copy else raw.view("datetime64[ns]")
        return raw.astype(f"datetime64[{t.unit}]").astype("datetime64[ns]")
    dtype = _NUMPY_OF.get(str(t))
    if dtype is None:
        raise TypeError(f"unsupported Arrow type {t} in column {name}")
    values = np.frombuffer(data, dtype=dtype)[off:off + n]
    return values.copy() if copy else values


def _read_only(view: np.ndarray) -> np.ndarray:
    """``view`` made read-only (a table built from numpy arrays lends them writable): the same
    array flags whichever way the table came, so numba sees one signature."""
    view.flags.writeable = False
    return view


def metadata_of(table) -> dict[str, str]:
    return _decoded(table.schema)


def metadata_of_file(path: str | os.PathLike) -> dict[str, str]:
    """:func:`metadata_of` the table in a Parquet file, from its footer (no column decoded)."""
    import pyarrow.parquet as pq

    return _decoded(pq.read_schema(path))


def _decoded(schema) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}


# Parquet without dictionary encoding: the store's columns are mostly distinct floats, where
# trying a dictionary first made writing ~3x (through a Python file object ~5x: 0.26 s for a
# 1M-bar bars file) and reading ~2x slower for no smaller file.
WRITE_OPTIONS = {"use_dictionary": False}
# ... and without compression or column statistics, for columns of random floats (a 1M-bar bars
# file: snappy saved 8 % of 48 MB and doubled the write's CPU, ~45 -> ~24 ms; no reader filters
# on statistics), encoded 64k rows at a time rather than 1k (~-10 %). Readers get the same table.
RAW_WRITE_OPTIONS = {**WRITE_OPTIONS, "compression": "none", "write_statistics": False, "write_batch_size": 1 << 16}


def parquet_bytes(table) -> bytes:
    """A table as Parquet bytes (:data:`WRITE_OPTIONS`)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, **WRITE_OPTIONS)
    return buf.getvalue()


def write_parquet(path: str | os.PathLike, table, options: Mapping = WRITE_OPTIONS, delta: tuple = ()) -> None:
    """Write a table to ``path`` atomically (artifacts.io), straight into the file by pyarrow's
    own output (no bytes object of the whole file in between, no GIL taken per write).
    ``options``: :data:`WRITE_OPTIONS` or :data:`RAW_WRITE_OPTIONS`; ``delta``: integer or
    timestamp columns to store with Parquet's DELTA_BINARY_PACKED encoding where the table has
    them (a regular grid of timestamps shrinks to a few bytes a page; same values read back)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from quantlab.artifacts.io import atomic_write_named

    options = dict(options)
    encoded = {name: "DELTA_BINARY_PACKED" for name in delta if name in table.column_names}
    if encoded:
        options["column_encoding"] = encoded

    def fill(tmp: str) -> None:
        with pa.OSFile(tmp, "w") as sink:  # pyarrow's own file: its writes need no GIL
            pq.write_table(table, sink, **options)

    try:
        atomic_write_named(path, fill)
        remember(path, table)
    finally:
        _PROMISED.pop(os.fspath(path), None)


# Read-after-write memo (see :func:`remembering`): path -> (the file's identity, its table)
_RECENT: dict[str, tuple[tuple, object]] = {}
_PROMISED: dict[str, object] = {}  # path -> the table a write started here is putting there (:func:`promise`)
_REMEMBERING: list[bool] = []


def _identity(path: str | os.PathLike) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@contextlib.contextmanager
def remembering():
    """While active, a table this process writes (:func:`write_parquet`, :func:`remember`) is
    kept, and :func:`read_parquet` of the same file gives it back without decoding the file.
    The step worker's speculative chain uses it: each step reads what the previous one has just
    written (a 1M-bar run reads its bars twice and its equity table twice). A hit needs the
    very file written: same device, inode, size and modification time (a file replaced or
    touched since is read from disk). Leaving drops every kept table."""
    _REMEMBERING.append(True)
    try:
        yield
    finally:
        _REMEMBERING.pop()
        if not _REMEMBERING:
            _RECENT.clear()
            _PROMISED.clear()


def remember(path: str | os.PathLike, table) -> None:
    """Keep ``table`` as the content of the file just written at ``path`` (inside :func:`remembering`)."""
    if _REMEMBERING:
        _RECENT[os.fspath(path)] = (_identity(path), table)


def promise(path: str | os.PathLike, table) -> bool:
    """Inside :func:`remembering`: ``table`` is what a :func:`write_parquet` this process has
    started (on a thread, artifacts/beside.py) is putting at ``path``; :func:`read_parquet`
    gives it back already, so the chain's next step need not wait for the file (a 1M-bar run's
    score starts while the equity table is still being encoded). The write, done or failed,
    withdraws the promise; a failed one leaves no file, and the step that wrote it is not
    counted as done (commands/speculate.py). True when promised (inside remembering())."""
    if _REMEMBERING:
        _PROMISED[os.fspath(path)] = table
    return bool(_REMEMBERING)


def read_parquet(path: str | os.PathLike):
    """Read a whole Parquet file (``ParquetFile.read`` avoids pyarrow.dataset, which imports
    pandas), or the table this process has just written there (:func:`remembering`)."""
    import pyarrow.parquet as pq

    if _PROMISED:
        promised = _PROMISED.get(os.fspath(path))
        if promised is not None:
            return promised
    if _RECENT:
        kept = _RECENT.get(os.fspath(path))
        try:
            if kept is not None and kept[0] == _identity(path):
                return kept[1]
        except OSError:
            pass
    return pq.ParquetFile(path).read()
