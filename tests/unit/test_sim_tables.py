"""A run's simulation tables and chart, built with less memory traffic, are the same as before:
the equity table's columns bit for bit what the original expressions give, the timestamps stored
with the delta encoding read back equal (pyarrow and pandas), the chart's points and markers the
ones the full-length arrays gave, and the chart's imports done while simulate writes its files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantlab.artifacts import plots
from quantlab.columnar import column_to_numpy, read_parquet, table_from_numpy, write_parquet
from quantlab.commands.run import steps

SRC = Path(__file__).resolve().parents[2] / "src"
floats = st.one_of(st.floats(-1e6, 1e6, width=64), st.just(float("nan")), st.just(0.0), st.just(-0.0))


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 200), cash=st.sampled_from([1.0, 10_000, 12_345.67, 1e6]), data=st.data())
def test_equity_columns_are_the_original_expressions_bit_for_bit(n, cash, data):
    equity = data.draw(hnp.arrays(np.float64, n, elements=floats))
    close = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.01, 1e5)))
    result = SimpleNamespace(equity=equity, position=np.zeros(n, dtype=np.int8), returns=np.zeros(n))
    cfg = SimpleNamespace(initial_cash=cash)
    index = np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(60, "s")
    cols = steps.equity_columns(index, close, cfg, result)
    peak = np.maximum.accumulate(np.maximum(equity, cash))  # the original code
    assert _bits(cols["drawdown"]) == _bits(equity / peak - 1.0)
    assert _bits(cols["benchmark_equity"]) == _bits(cash * close / close[0])
    assert list(cols) == ["timestamp", "close", "equity", "position", "returns", "drawdown", "benchmark_equity"]
    assert cols["equity"] is equity  # no copies of what the engine gave
    assert cols["timestamp"] is index


def test_delta_columns_read_back_equal_and_smaller(tmp_path):
    n = 50_000
    ts = np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(60, "s")
    cols = {"timestamp": ts, "equity": np.linspace(1.0, 2.0, n), "entry_idx": np.arange(n, dtype=np.int64) * 3}
    table = table_from_numpy(cols, {"k": "v"})
    write_parquet(tmp_path / "delta.parquet", table, delta=steps.DELTA_COLUMNS)
    write_parquet(tmp_path / "plain.parquet", table)
    meta = pq.ParquetFile(tmp_path / "delta.parquet").metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["timestamp"] and "DELTA_BINARY_PACKED" in encodings["entry_idx"]
    assert "DELTA_BINARY_PACKED" not in encodings["equity"]
    back = pq.read_table(tmp_path / "delta.parquet")
    assert back.equals(pq.read_table(tmp_path / "plain.parquet"), check_metadata=True)
    import pandas as pd

    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "delta.parquet"), pd.read_parquet(tmp_path / "plain.parquet"))
    assert (tmp_path / "delta.parquet").stat().st_size < (tmp_path / "plain.parquet").stat().st_size / 2


def test_parquet_is_written_through_a_native_file(tmp_path, monkeypatch):
    """pyarrow writes into its own file object (no GIL taken per write), still atomically."""
    seen = []
    real = pq.write_table

    def spy(table, where, **kwargs):
        seen.append(isinstance(where, pa.NativeFile))
        return real(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", spy)
    write_parquet(tmp_path / "x.parquet", table_from_numpy({"a": np.arange(3.0)}))
    assert seen == [True]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_column_views_are_read_only_and_equal(tmp_path):
    ts = np.datetime64("2020-01-01", "ns") + np.arange(10) * np.timedelta64(1, "D")
    table = table_from_numpy({"t": ts, "x": np.arange(10.0), "p": np.ones(10, dtype=np.int8)})
    for name in ("t", "x", "p"):
        view = column_to_numpy(table, name, copy=False)
        assert np.array_equal(view, column_to_numpy(table, name)) and view.dtype == column_to_numpy(table, name).dtype
        assert not view.flags.writeable


def _old_xs(n, left=plots.MARGIN_L, right=plots.W - plots.MARGIN_R):  # the original x of every bar
    return left + (np.arange(n) / max(n - 1, 1)) * (right - left)


def _old_points(values, lo, hi, top, height):  # the original: every bar scaled, then sampled
    n = len(values)
    x, y = _old_xs(n), plots._scale(values, lo, hi, top, height)
    if n > 2000:
        idx = np.linspace(0, n - 1, 2000).astype(int)
        x, y = x[idx], y[idx]
    return list(zip(x.tolist(), y.tolist()))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9000), seed=st.integers(0, 2**32 - 1))
def test_line_points_are_the_full_series_points(n, seed):
    values = np.random.default_rng(seed).normal(0, 1, n).cumsum()
    lo, hi = float(values.min()), float(values.max())
    assert plots._line_points(values, lo, hi, 44, 300) == _old_points(values, lo, hi, 44, 300)
    idx = np.random.default_rng(seed).integers(0, n, 20)
    assert plots._xs_at(idx, n).tolist() == _old_xs(n)[idx].tolist() and plots._xs(n).tolist() == _old_xs(n).tolist()


def test_equity_png_is_what_the_full_length_arrays_drew(monkeypatch):
    n = 7000
    rng = np.random.default_rng(3)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, n))
    position = (rng.random(n) < 0.3).astype(np.int8) * np.sign(rng.normal(size=n)).astype(np.int8)
    equity = 1e4 * np.cumprod(1 + rng.normal(0, 0.001, n))
    stamps = np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(60, "s")
    args = (stamps, equity, 1e4 * close / close[0], "SYN x 2020..2021")
    png = plots.equity_png(*args, close=close, position=position)
    monkeypatch.setattr(plots, "_line_points", _old_points)  # the original points...

    def old_xs_at(idx, n_, left=plots.MARGIN_L, right=plots.W - plots.MARGIN_R):  # ...and x positions
        return _old_xs(n_, left, right)[idx]

    monkeypatch.setattr(plots, "_xs_at", old_xs_at)
    assert plots.equity_png(*args, close=close, position=position) == png


def test_simulate_imports_the_charts_modules_while_it_writes(tmp_path):
    """In a process that has not imported Pillow (a big run's worker), step_simulate imports the
    chart's modules (Pillow, its image plugins), the runs index's, and computes the code
    fingerprint beside its writes: the plot, publish and index steps then import nothing."""
    code = f"""
import sys, os
sys.path.insert(0, {str(SRC)!r})
os.environ["QUANTLAB_OUTPUTS_DIR"] = {str(tmp_path / "outputs")!r}
from quantlab.commands.run import steps
from quantlab.commands.run.plan import plan_run
plan = plan_run({{"ticker": "SPX", "start": "2016-01-01", "end": "2017-01-01"}}, request_id=None, warnings=[],
                origin="json", claim=False)
d = {str(tmp_path)!r}
steps.step_load_data(plan.specs["data"], d + "/bars.parquet")
steps.step_signals(plan.specs["signals"], d + "/bars.parquet", d + "/signals.parquet")
assert "PIL.Image" not in sys.modules
from quantlab.artifacts import provenance
provenance._source_fingerprint.cache_clear()  # the worker forked before planning has not computed it
steps.step_simulate(plan.specs["sim"], d + "/bars.parquet", d + "/signals.parquet", d + "/equity.parquet",
                    d + "/trades.parquet", d + "/trades.csv")
from PIL import Image
print("PIL.PngImagePlugin" in sys.modules, Image._initialized >= 1, "quantlab.artifacts.catalog_sync" in sys.modules,
      provenance._source_fingerprint.cache_info().currsize >= 1)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"] * 4


def test_plot_step_reads_the_remembered_table_without_changing_it(tmp_path):
    from quantlab.columnar import remembering

    n = 3000
    cols = {"timestamp": np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(60, "s"),
            "close": np.linspace(1, 2, n), "equity": np.linspace(1e4, 2e4, n), "position": np.ones(n, dtype=np.int8),
            "returns": np.zeros(n), "drawdown": np.zeros(n), "benchmark_equity": np.linspace(1e4, 2e4, n)}
    before = {k: v.copy() for k, v in cols.items()}
    with remembering():
        write_parquet(tmp_path / "equity.parquet", table_from_numpy(cols))
        steps.step_plot.__wrapped__({"title": "t"}, str(tmp_path / "equity.parquet"), str(tmp_path / "equity.png"))
        table = read_parquet(tmp_path / "equity.parquet")
    assert all(np.array_equal(column_to_numpy(table, k), before[k]) for k in cols)
    assert (tmp_path / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_promised_table_is_read_back_before_its_file_exists(tmp_path, monkeypatch):
    """Inside remembering(), a table promised for a path is what read_parquet gives while its
    write runs; the write withdraws the promise (done: the file's memo takes over; failed: no
    file, and reading it fails). Outside remembering() nothing is promised."""
    from quantlab.columnar import promise, remembering

    table = table_from_numpy({"a": np.arange(5.0)})
    path = tmp_path / "t.parquet"
    assert promise(path, table) is False and not path.exists()
    with remembering():
        assert promise(path, table) is True
        assert read_parquet(path) is table and not path.exists()
        write_parquet(path, table)
        assert read_parquet(path) is table and path.exists()
        bad = tmp_path / "bad.parquet"
        promise(bad, table)

        def fail(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pq, "write_table", fail)
        with np.testing.assert_raises(OSError):
            write_parquet(bad, table)
        assert not bad.exists() and not list(tmp_path.glob("*.tmp"))
        with np.testing.assert_raises(FileNotFoundError):
            read_parquet(bad)


def _plan(tmp_path, monkeypatch):
    from quantlab.commands.run.plan import plan_run

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run({"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01"}, request_id=None, warnings=[],
                    origin="json", claim=False)
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet", "equity.parquet",
                                                  "trades.parquet", "trades.csv", "metrics.json")}
    steps.step_load_data(plan.specs["data"], f["bars.parquet"])
    steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])
    return plan, f


def test_in_the_speculative_chain_score_starts_while_the_tables_are_written(tmp_path, monkeypatch):
    """The worker's run chain (remembering + late_writes, commands/speculate.py): step_simulate
    returns while its Parquet files are still being written, and the next step reads the tables
    from memory; the files then land, equal to what was read. Elsewhere the step waits for them."""
    import threading

    from quantlab.artifacts.beside import late_writes
    from quantlab.columnar import remembering

    plan, f = _plan(tmp_path, monkeypatch)
    release, held = threading.Event(), []
    real = pq.write_table

    def held_write(table, where, **kwargs):
        held.append(release.wait(timeout=20))  # True: released by the test once the step had returned
        return real(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", held_write)
    with remembering():
        with late_writes() as pending:
            steps.step_simulate.__wrapped__(plan.specs["sim"], f["bars.parquet"], f["signals.parquet"],
                                            f["equity.parquet"], f["trades.parquet"], None)
            assert not Path(f["equity.parquet"]).exists() and not Path(f["trades.parquet"]).exists()
            steps.step_score.__wrapped__(plan.specs["sim"], f["equity.parquet"], f["trades.parquet"], f["metrics.json"])
            early = read_parquet(f["equity.parquet"])
            release.set()
            for writes in pending:
                writes.wait()
    assert held == [True, True]
    assert pq.read_table(f["equity.parquet"]).equals(early, check_metadata=True)
    monkeypatch.setattr(pq, "write_table", real)
    metrics = (tmp_path / "metrics.json").read_bytes()
    steps.step_score.__wrapped__(plan.specs["sim"], f["equity.parquet"], f["trades.parquet"], f["metrics.json"])
    assert (tmp_path / "metrics.json").read_bytes() == metrics  # the same score from the files
