"""The interactive pages on hand-made result directories: a run whose trades.csv carries stop
levels and exit reasons (and one without), a run with missing files, a walk-forward sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quantlab.columnar import parquet_bytes, table_from_numpy

pytest.importorskip("bokeh")

from quantlab.reports import figure, kind_of, render  # noqa: E402
from quantlab.errors import ConfigError  # noqa: E402


def doc_models(layout, name: str) -> list:
    return [m for m in layout.references() if type(m).__name__ == name]


def make_run(d: Path, trades: str | None, n: int = 60) -> Path:
    d.mkdir(parents=True)
    ts = np.datetime64("2020-01-01", "ns") + np.arange(n) * np.timedelta64(1, "D")
    close = 100 + np.sin(np.arange(n) / 4) * 5
    position = np.zeros(n, dtype=np.int8)
    position[10:20] = 1
    equity = 10_000 * np.cumprod(1 + np.diff(close, prepend=close[0]) / close * position)
    (d / "equity.parquet").write_bytes(parquet_bytes(table_from_numpy({
        "timestamp": ts, "close": close, "equity": equity, "position": position,
        "returns": np.diff(equity, prepend=equity[0]) / equity, "drawdown": equity / np.maximum.accumulate(equity) - 1,
        "benchmark_equity": 10_000 * close / close[0]})))
    (d / "metadata.json").write_text(json.dumps({"run_id": d.name, "mode": "run"}))
    (d / "config.json").write_text(json.dumps({"ticker": "X", "strategy": "s", "start": "2020-01-01",
                                               "end": "2020-03-01", "strategy_params": {"fast": 3}}))
    if trades is not None:
        (d / "trades.csv").write_text(trades)
    return d


HEAD = "trade_id,side,entry_time,exit_time,entry_price,exit_price,qty,pnl,return,bars_held,status"
ROW = "1,long,2020-01-11T00:00:00Z,2020-01-21T00:00:00Z,101.0,99.0,1,-2,-0.0198,10,closed"


def test_stop_levels_and_exit_reasons_are_drawn_when_trades_carry_them(tmp_path):
    with_stops = make_run(tmp_path / "a", f"{HEAD},stop_price,exit_reason\n{ROW},98.5,stop\n")
    layout = figure(with_stops)
    segments = [r for r in doc_models(layout, "GlyphRenderer") if "stop" in r.data_source.data]
    assert len(segments) == 1 and list(segments[0].data_source.data["stop"]) == [98.5]
    exits = [r for r in doc_models(layout, "GlyphRenderer") if "reason" in r.data_source.data]
    assert exits and list(exits[0].data_source.data["reason"]) == ["stop"]
    plain = figure(make_run(tmp_path / "b", f"{HEAD}\n{ROW}\n"))
    assert not [r for r in doc_models(plain, "GlyphRenderer") if "stop" in r.data_source.data]
    exits = [r for r in doc_models(plain, "GlyphRenderer") if "reason" in r.data_source.data]
    assert list(exits[0].data_source.data["reason"]) == ["signal"]


def test_missing_files_are_notes_not_failures(tmp_path):
    page = render(make_run(tmp_path / "c", None))
    assert "trades.csv is missing or unreadable" in page
    assert "the run&#x27;s OHLC bars are no longer in the store" in page or "no longer in the store" in page
    with pytest.raises(ConfigError, match="not a run directory"):
        kind_of(tmp_path)


def test_walkforward_page_shows_in_and_out_of_sample(tmp_path):
    d = tmp_path / "wf"
    d.mkdir()
    (d / "metadata.json").write_text(json.dumps({"run_id": "wf", "mode": "walkforward"}))
    (d / "config.json").write_text(json.dumps({"ticker": "X", "strategy": "s", "param_grid": {"fast": [1, 2]}}))
    (d / "walkforward_summary.csv").write_text(
        "split,n_train_runs,n_eligible,n_selected,best_train_sharpe,best_train_return,test_sharpe_rank1,"
        "test_return_rank1\na,2,2,1,1.5,0.2,0.4,0.05\nb,2,2,1,0.9,0.1,-0.2,-0.01\n")
    (d / "leaderboard.csv").write_text("rank,split,fast,sharpe_simple,total_return\n1,a,1,0.4,0.05\n1,b,2,-0.2,-0.01\n")
    ts = np.datetime64("2020-01-01", "ns") + np.arange(30) * np.timedelta64(1, "D")
    eq = 10_000 + np.arange(30.0)
    (d / "oos_equity.parquet").write_bytes(parquet_bytes(table_from_numpy(
        {"timestamp": ts, "equity": eq, "returns": np.zeros(30)})))
    assert kind_of(d) == "walkforward"
    layout = figure(d)
    bars = [r for r in doc_models(layout, "GlyphRenderer") if "v" in r.data_source.data]
    assert len(bars) == 2  # Sharpe and total return
    assert all(list(b.data_source.data["x"]) == [("a", "IS"), ("a", "OOS"), ("b", "IS"), ("b", "OOS")] for b in bars)
    assert sorted(list(b.data_source.data["v"]) for b in bars) == [[0.2, 0.05, 0.1, -0.01], [1.5, 0.4, 0.9, -0.2]]
    oos = [r for r in doc_models(layout, "GlyphRenderer") if "equity" in r.data_source.data]
    assert len(oos) == 1 and list(oos[0].data_source.data["equity"]) == list(eq)
    assert len(doc_models(layout, "DataTable")) == 1
