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
