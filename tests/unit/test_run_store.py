"""The run chain's store files (commands/run/steps.py): the trades.csv that step_simulate writes
from its in-memory trade log is exactly what the trade log read back from trades.parquet gives,
so publishing can copy it (an identical rerun reads no Parquet)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from quantlab.artifacts.trades_csv import trades_csv_text
from quantlab.columnar import column_to_numpy, read_parquet
from quantlab.commands.run import steps
from quantlab.commands.run.plan import plan_run


@pytest.mark.parametrize("params", [
    {"ticker": "SPX", "start": "2015-01-01", "end": "2018-01-01", "strategy": "sma_crossover"},
    {"ticker": "SYN", "source": "synthetic", "interval": "1h", "start": "2020-01-01", "end": "2020-03-01",
     "allow_short": True, "strategy": "sma_crossover", "stop_loss": 0.01},
])
def test_simulate_writes_the_trades_csv_of_its_trades_parquet(tmp_path, monkeypatch, params):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run(params, request_id=None, warnings=[], origin="json", claim=False)
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet", "equity.parquet",
                                                  "trades.parquet", "trades.csv")}
    steps.step_load_data(plan.specs["data"], f["bars.parquet"])
    steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])
    steps.step_simulate(plan.specs["sim"], f["bars.parquet"], f["signals.parquet"], f["equity.parquet"],
                        f["trades.parquet"], f["trades.csv"])
    table = read_parquet(f["trades.parquet"])
    expected = trades_csv_text({name: column_to_numpy(table, name) for name in table.column_names})
    written = open(f["trades.csv"], encoding="utf-8").read()
    assert written == expected
    assert table.num_rows > 3 and written.count("\n") == table.num_rows + 1


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=3 << 20), st.binary(max_size=1 << 10))
def test_atomic_copy_copies_every_byte_over_an_older_file(tmp_path_factory, data, old):
    from quantlab.artifacts.io import atomic_copy

    d = tmp_path_factory.mktemp("copy")
    (d / "src").write_bytes(data)
    (d / "dst").write_bytes(old)
    atomic_copy(d / "src", d / "dst")
    assert (d / "dst").read_bytes() == data and sorted(p.name for p in d.iterdir()) == ["dst", "src"]


def _per_cell_csv(col) -> str:
    """trades.csv as it was built before, one format call per cell (the reference)."""
    from quantlab.dates import bar_times_iso
    from quantlab.engine.risk import EXIT_REASONS
    from quantlab.artifacts.trades_csv import HEADER

    n = len(col["side"])
    fmt = "{:.10g}".format
    columns = [[str(i) for i in range(1, n + 1)], ["long" if s > 0 else "short" for s in col["side"].tolist()],
               bar_times_iso(col["entry_time"]), bar_times_iso(col["exit_time"])]
    columns += [list(map(fmt, col[name].tolist())) for name in
                ("entry_price", "exit_price", "qty", "entry_fee", "exit_fee", "pnl", "ret")]
    columns.append([str(int(b)) for b in col["bars_held"].tolist()])
    columns.append(["open" if o else "closed" for o in col["open"].tolist()])
    columns.append([EXIT_REASONS[int(r)] for r in col["exit_reason"].tolist()])
    return "\n".join([",".join(HEADER), *map(",".join, zip(*columns))]) + "\n"


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(-2**40, 2**40), st.integers(0, 10**6),
                          floats, floats, floats, floats, floats, floats, floats, st.integers(0, 10**7),
                          st.integers(0, 1), st.integers(0, 5)), max_size=40))
def test_trades_csv_rows_are_the_per_cell_format(rows):
    """One ``%`` per row (trades_csv.ROW) writes exactly the bytes of a format call per cell:
    ``%.10g`` of any float (nan, inf, -0.0, subnormal), integers, the ISO times, the labels."""
    import numpy as np

    from quantlab.engine.risk import EXIT_REASONS

    cols = list(zip(*rows)) or [()] * 13
    t0 = np.asarray(cols[1], dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    col = {"side": np.asarray(cols[0], dtype=np.int8), "entry_time": t0,
           "exit_time": t0 + np.asarray(cols[2], dtype=np.int64).astype("timedelta64[s]")}
    for name, values in zip(("entry_price", "exit_price", "qty", "entry_fee", "exit_fee", "pnl", "ret"), cols[3:10]):
        col[name] = np.asarray(values, dtype=np.float64)
    col["bars_held"] = np.asarray(cols[10], dtype=np.int64)
    col["open"] = np.asarray(cols[11], dtype=np.int8)
    col["exit_reason"] = np.asarray(cols[12], dtype=np.int8) % len(EXIT_REASONS)
    assert trades_csv_text(col) == _per_cell_csv(col)


def test_a_writer_thread_failure_fails_simulate_and_leaves_no_file(tmp_path, monkeypatch):
    """step_simulate writes its Parquet files on threads (artifacts.beside.writes_beside): a write
    that fails there fails the step with that error, and leaves neither the file nor a temp file."""
    import pyarrow.parquet as pq

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run({"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01"}, request_id=None, warnings=[],
                    origin="json", claim=False)
    out = tmp_path / "sim"
    out.mkdir()
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet")}
    steps.step_load_data(plan.specs["data"], f["bars.parquet"])
    steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])
    real = pq.write_table

    def half_then_fail(table, where, **kwargs):
        if "timestamp" in table.column_names and "equity" in table.column_names:  # the equity table
            where.write(b"PAR1 half a file")
            raise OSError(28, "No space left on device")
        return real(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        steps.step_simulate(plan.specs["sim"], f["bars.parquet"], f["signals.parquet"], str(out / "equity.parquet"),
                            str(out / "trades.parquet"), str(out / "trades.csv"))
    assert "equity.parquet" not in {p.name for p in out.iterdir()}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_failing_trades_csv_fails_simulate_and_leaves_no_csv(tmp_path, monkeypatch):
    from quantlab.artifacts import trades_csv

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run({"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01"}, request_id=None, warnings=[],
                    origin="json", claim=False)
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet", "equity.parquet",
                                                  "trades.parquet", "trades.csv")}
    steps.step_load_data(plan.specs["data"], f["bars.parquet"])
    steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])

    def broken(col):
        raise RuntimeError("cannot format")
    monkeypatch.setattr(trades_csv, "trades_csv_parts", broken)  # both paths (kernel or %) go through it
    with pytest.raises(RuntimeError, match="cannot format"):
        steps.step_simulate(plan.specs["sim"], f["bars.parquet"], f["signals.parquet"], f["equity.parquet"],
                            f["trades.parquet"], f["trades.csv"])
    assert not [p.name for p in tmp_path.iterdir() if "trades.csv" in p.name]


EVERY_STRATEGY = {"rsi_ma_cross_v2": {}, "sma_crossover": {}, "bollinger_reversion": {}, "donchian_breakout": {},
                  "buy_and_hold": {},
                  "expr": {"entry": "close > sma(close, 10) and volume > 0", "exit": "low < shift(low, 1)"}}


@pytest.mark.parametrize("strategy, strategy_params", EVERY_STRATEGY.items())
def test_the_chain_never_writes_into_the_bars_it_reads(tmp_path, monkeypatch, strategy, strategy_params):
    """read_bars hands the signals and simulate steps the remembered table's own memory
    (columnar.column_view, no copy): no built-in strategy and no simulation (ATR stops, shorts)
    writes into it, so the table the worker's chain keeps stays the file's content."""
    import numpy as np

    from quantlab.columnar import column_view, remembering
    from quantlab.data import read_bars
    from quantlab.strategies import REGISTRY

    assert set(REGISTRY) == set(EVERY_STRATEGY)  # a new built-in strategy joins the list
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run({"ticker": "SYN", "source": "synthetic", "interval": "1h", "start": "2020-01-01",
                     "end": "2020-04-01", "strategy": strategy, "strategy_params": strategy_params,
                     "allow_short": True, "stop_loss_atr": 2.0, "take_profit": 0.03},
                    request_id=None, warnings=[], origin="json", claim=False)
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet", "equity.parquet",
                                                  "trades.parquet", "trades.csv")}
    with remembering():
        steps.step_load_data(plan.specs["data"], f["bars.parquet"])
        kept = read_parquet(f["bars.parquet"])
        before = {name: column_to_numpy(kept, name) for name in kept.column_names}
        assert np.shares_memory(read_bars(f["bars.parquet"]).close, column_view(kept, "close"))
        steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])
        steps.step_simulate(plan.specs["sim"], f["bars.parquet"], f["signals.parquet"], f["equity.parquet"],
                            f["trades.parquet"], f["trades.csv"])
        assert read_parquet(f["bars.parquet"]) is kept
    for name, values in before.items():
        assert column_to_numpy(kept, name).tobytes() == values.tobytes(), name
    assert read_parquet(f["trades.parquet"]).num_rows > 0


def test_a_plugin_that_writes_into_its_inputs_leaves_the_chains_bars_as_read(tmp_path, monkeypatch):
    """Plugins get copies of the bars (built-ins get the kept table's own memory): one that scales
    its ``close`` in place changes nothing the simulation then reads."""
    import numpy as np

    from quantlab.columnar import remembering
    from quantlab.strategies import REGISTRY, SmaCrossover

    class Scribbler(SmaCrossover):
        name = "scribbler"

        def signals(self, open_, high, low, close, params, **kw):
            close *= 2.0
            return super().signals(open_, high, low, close, params, **kw)

    Scribbler.__module__ = "my_plugins"  # a plugin's module, not quantlab's
    monkeypatch.setitem(REGISTRY, "scribbler", Scribbler())
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    plan = plan_run({"ticker": "SYN", "source": "synthetic", "interval": "1h", "start": "2020-01-01",
                     "end": "2020-03-01", "strategy": "scribbler"},
                    request_id=None, warnings=[], origin="json", claim=False)
    f = {name: str(tmp_path / name) for name in ("bars.parquet", "signals.parquet")}
    with remembering():
        steps.step_load_data(plan.specs["data"], f["bars.parquet"])
        kept = read_parquet(f["bars.parquet"])
        before = column_to_numpy(kept, "close")
        steps.step_signals(plan.specs["signals"], f["bars.parquet"], f["signals.parquet"])
        assert read_parquet(f["bars.parquet"]) is kept
    assert np.array_equal(column_to_numpy(kept, "close"), before)
