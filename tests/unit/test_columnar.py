"""numpy <-> Arrow conversion without pandas must round-trip every supported type exactly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantlab.columnar import column_to_numpy, metadata_of, parquet_bytes, read_parquet, table_from_numpy


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), data=st.data())
def test_round_trip_through_parquet(tmp_path_factory, n, data):
    cols = {
        "f": data.draw(hnp.arrays(np.float64, n, elements=st.floats(allow_nan=False))),
        "i": data.draw(hnp.arrays(np.int64, n)),
        "b": data.draw(hnp.arrays(np.bool_, n)),
        "s": data.draw(hnp.arrays(np.int8, n)),
        "t": np.datetime64("2000-01-01", "ns") + np.arange(n) * np.timedelta64(86_400, "s"),
    }
    path = tmp_path_factory.mktemp("pq") / "x.parquet"
    path.write_bytes(parquet_bytes(table_from_numpy(cols, {"k": "v"})))
    table = read_parquet(path)
    assert metadata_of(table) == {"k": "v"}
    for name, values in cols.items():
        out = column_to_numpy(table, name)
        assert out.dtype == values.dtype or (name == "t" and out.dtype == np.dtype("datetime64[ns]"))
        np.testing.assert_array_equal(out, values)
        view = column_to_numpy(table, name, copy=False)
        assert view.dtype == out.dtype and not view.flags.writeable
        np.testing.assert_array_equal(view, values)


def test_a_view_shares_the_tables_buffer_read_only():
    """copy=False (the score step): the numbers and ns timestamps are the table's own memory (the
    float column: the very array the table was built from), read-only even when the table lends a
    writable numpy array (a remembered table)."""
    values = np.arange(10.0)
    stamps = np.datetime64("2020-01-01", "ns") + np.arange(10) * np.timedelta64(60, "s")
    table = table_from_numpy({"f": values, "t": stamps}).slice(2, 5)
    for name, source in (("f", values), ("t", stamps)):
        view = column_to_numpy(table, name, copy=False)
        assert np.shares_memory(view, column_to_numpy(table, name, copy=False)) and not view.flags.writeable
        np.testing.assert_array_equal(view, source[2:7])
        assert name == "t" or np.shares_memory(view, source)
        own = column_to_numpy(table, name)
        assert not np.shares_memory(own, source) and own.flags.writeable


def test_sliced_tables_respect_offsets():
    table = table_from_numpy({"b": np.array([True, False, True, True, False] * 3),
                              "f": np.arange(15.0)}).slice(3, 7)
    np.testing.assert_array_equal(column_to_numpy(table, "f"), np.arange(3.0, 10.0))
    np.testing.assert_array_equal(column_to_numpy(table, "b"), np.array([True, False, True, False, True, True, False]))


def test_no_pandas_import():
    code = ("import sys, numpy as np; sys.path.insert(0, 'src');"
            "from quantlab.columnar import *;"
            "t = table_from_numpy({'a': np.arange(3.0), 'b': np.ones(3, bool)});"
            "import io; b = parquet_bytes(t); import pyarrow.parquet as pq;"
            "t2 = pq.ParquetFile(io.BytesIO(b)).read(); column_to_numpy(t2, 'a'); column_to_numpy(t2, 'b');"
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__import__("pathlib").Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def _table(n: int = 50):
    return table_from_numpy({"f": np.arange(float(n)), "b": np.arange(n) % 3 == 0}, {"k": "v"})


def test_a_table_written_while_remembering_is_read_back_without_decoding(tmp_path):
    """columnar.remembering: the very table written is given back for the very file written; a
    file replaced or touched since is read from disk; nothing is kept outside the block."""
    import os

    from quantlab.columnar import remembering, write_parquet

    path = tmp_path / "x.parquet"
    table = _table()
    with remembering():
        write_parquet(path, table)
        assert read_parquet(path) is table and read_parquet(str(path)) is table
        os.utime(path, ns=(1, 1))  # touched since: read from disk
        back = read_parquet(path)
        assert back is not table and back.equals(table)
        write_parquet(path, table)
        path.write_bytes(parquet_bytes(_table(7)))  # replaced by another writer
        assert read_parquet(path).num_rows == 7
        write_parquet(path, table)
    assert read_parquet(path) is not table  # the block is left: nothing kept
    write_parquet(path, table)
    assert read_parquet(path) is not table  # outside a block: never kept


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 2000), k=st.integers(1, 4))
def test_parquet_written_on_threads_is_the_bytes_written_here(tmp_path_factory, n, k):
    """artifacts.beside.writes_beside: files written on threads are byte for byte what a serial write gives."""
    from quantlab.artifacts.beside import writes_beside
    from quantlab.columnar import write_parquet

    d = tmp_path_factory.mktemp("beside")
    tables = [table_from_numpy({"x": np.arange(n, dtype=np.float64) * (i + 1), "t": np.arange(n).astype(
        "datetime64[s]").astype("datetime64[ns]")}, {"i": str(i)}) for i in range(k)]
    with writes_beside() as beside:
        for i, table in enumerate(tables):
            beside(write_parquet, d / f"{i}.parquet", table)
    assert [(d / f"{i}.parquet").read_bytes() for i in range(k)] == [parquet_bytes(t) for t in tables]


def test_a_late_write_goes_on_past_its_block_only_where_collected(tmp_path):
    """artifacts.beside: inside late_writes() a block leaves its late write running (the chain
    waits for it later); anywhere else the block waits for it like for any write."""
    import threading

    from quantlab.artifacts.beside import late_writes, writes_beside

    released, seen = threading.Event(), []

    def late_write(path):
        seen.append(released.wait(timeout=60))  # True: released by the test after the block
        path.write_text("late")

    with late_writes() as pending:
        with writes_beside() as beside:
            beside(late_write, tmp_path / "a", late_ok=True)
    released.set()
    assert len(pending) == 1
    pending[0].wait()
    assert seen == [True] and (tmp_path / "a").read_text() == "late"

    with writes_beside() as beside:
        beside(lambda: (tmp_path / "b").write_text("waited"), late_ok=True)
    assert (tmp_path / "b").read_text() == "waited"


def test_late_writes_are_collected_only_in_their_own_thread(tmp_path):
    """A step computing on another thread (speculate.Step.on_thread) waits for its own late
    writes: a late_writes() block collects those of its thread only."""
    import threading

    from quantlab.artifacts.beside import late_writes, writes_beside

    def other_step():
        with writes_beside() as beside:
            beside(lambda: (tmp_path / "other").write_text("x"), late_ok=True)

    with late_writes() as pending:
        thread = threading.Thread(target=other_step)
        thread.start()
        thread.join()
    assert pending == [] and (tmp_path / "other").read_text() == "x"


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300), cut=st.integers(0, 300), data=st.data())
def test_a_column_view_is_the_columns_values_in_the_tables_own_writable_memory(tmp_path_factory, n, cut, data):
    """columnar.column_view: the values column_to_numpy gives, writable (numba compiles read-only
    arrays apart), over the table's memory for float64, int64, int32, int8 and timestamp[ns]
    columns, whether the table was built here from numpy or read from Parquet, sliced or not;
    a copy for booleans."""
    from quantlab.columnar import column_view

    cols = {
        "f": data.draw(hnp.arrays(np.float64, n, elements=st.floats(allow_nan=False))),
        "i": data.draw(hnp.arrays(np.int64, n)),
        "j": data.draw(hnp.arrays(np.int32, n)),
        "s": data.draw(hnp.arrays(np.int8, n)),
        "b": data.draw(hnp.arrays(np.bool_, n)),
        "t": data.draw(hnp.arrays(np.int64, n)).view("datetime64[ns]"),
    }
    built = table_from_numpy(cols)
    path = tmp_path_factory.mktemp("view") / "x.parquet"
    path.write_bytes(parquet_bytes(built))
    for table in (built, read_parquet(path), built.slice(min(cut, n))):
        for name in cols:
            view, copy = column_view(table, name), column_to_numpy(table, name)
            assert view.flags.writeable and view.dtype == copy.dtype
            np.testing.assert_array_equal(view, copy)
            chunk = table.column(name).chunk(0) if table.column(name).num_chunks else None
            if name != "b" and chunk is not None and len(chunk):
                data_buffer = chunk.buffers()[1]
                start = data_buffer.address + chunk.offset * view.itemsize
                assert view.__array_interface__["data"][0] == start  # no copy
        if table is built:
            for name in ("f", "i", "t"):
                assert len(cols[name]) == 0 or np.shares_memory(column_view(table, name), cols[name])


def test_a_column_view_of_read_only_memory_is_a_writable_copy():
    """A table over read-only memory (e.g. a read-only numpy array) gives a writable copy."""
    from quantlab.columnar import column_view

    values = np.arange(5.0)
    values.flags.writeable = False
    view = column_view(table_from_numpy({"f": values}), "f")
    assert view.flags.writeable and not np.shares_memory(view, values)
    np.testing.assert_array_equal(view, values)
