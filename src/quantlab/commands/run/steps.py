"""The ``run`` command's step functions, which the workflow rules call (workflow/rules/*.smk).

DAG, each step writing a file the next one reads:

    load_data  -> store/data/<dkey>/bars.parquet
    signals    -> store/signals/<skey>/signals.parquet
    simulate   -> store/sim/<mkey>/{equity,trades}.parquet, trades.csv
    score      -> store/sim/<mkey>/metrics.json
    plot       -> store/sim/<mkey>/equity.png
    publish    -> requests/<run_id>/published.json   (writes outputs/runs/<run_id>/ atomically)
    index      -> requests/<run_id>/index.json       (rebuilds runs_index.* under a file lock)

Store paths are content-addressed (inputs + code fingerprint), so an identical request finds
every intermediate up to date and a changed parameter recomputes only what depends on it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from quantlab.artifacts.beside import writes_beside
from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, read_json
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
from quantlab.columnar import (WRITE_OPTIONS, column_to_numpy, metadata_of, promise, read_parquet, table_from_numpy,
                               write_parquet)
from quantlab.commands.run.plan import ENGINE_KEYS
from quantlab.commands.run.publish import write_report, write_results, zero_trade_warnings
from quantlab.commands.speculate import take as take_speculated
from quantlab.commands.worker import warm_step
from quantlab.contract.runid import staging_name
from quantlab.dates import bar_time_iso
from quantlab.errors import ConfigError, DataError, StrategyError


def data_request(spec: dict):
    from quantlab.data import DataRequest

    return DataRequest(ticker=spec["ticker"], start=spec["start"], end=spec["end"], interval=spec["interval"],
                       source=spec["source"], data_path=spec.get("data_path"),
                       lookback_bars=int(spec.get("lookback_bars", 0)), seed=int(spec.get("seed", 7)),
                       cache_dir=spec.get("cache_dir"), adjust=spec.get("adjust") or "auto",
                       date_format=spec.get("date_format"), require_coverage=True)


def prefetch_data(spec: dict) -> None:
    """Parse bundled sample data into the loader's in-process memo (worker warm-up only: no
    network, no files written)."""
    from quantlab.data import load_bars

    if spec.get("source") in ("auto", "sample") and not spec.get("data_path"):
        load_bars(data_request({**spec, "source": "sample"}))


@warm_step
def step_load_data(spec: dict, out_path: str) -> None:
    if take_speculated("step_load_data", spec, (out_path,)):
        return
    from quantlab.data import load_bars, write_bars

    write_bars(load_bars(data_request(spec)), out_path)


@warm_step
def step_signals(spec: dict, bars_path: str, out_path: str) -> None:
    if take_speculated("step_signals", spec, (out_path,)):
        return
    import numpy as np

    from quantlab.data import read_bars
    from quantlab.strategies import get_strategy

    bars = read_bars(bars_path)
    strategy = get_strategy(spec["strategy"])
    # the bars are views of the table the chain keeps (columnar.column_view): a plugin, which may
    # write into its inputs, gets copies; a built-in never does (test_the_chain_never_writes_...)
    own = type(strategy).__module__.startswith("quantlab.")
    prices = [a if own else np.array(a) for a in (bars.open, bars.high, bars.low, bars.close)]
    try:
        # volume only for strategies that declare it (plugins may override signals() without it)
        extra = {"volume": bars.volume if own else np.array(bars.volume)} \
            if getattr(strategy, "uses_volume", False) else {}
        sig = strategy.signals(*prices, dict(spec["strategy_params"]), **extra)
    except (ConfigError, DataError, StrategyError):
        raise
    except Exception as exc:
        raise StrategyError(f"strategy '{strategy.name}' failed while computing signals: "
                            f"{type(exc).__name__}: {exc}") from exc
    entries = np.asarray(sig.entries, dtype=bool)
    exits = np.asarray(sig.exits, dtype=bool)
    if entries.shape != (len(bars),) or exits.shape != (len(bars),):
        raise StrategyError(f"strategy '{strategy.name}' returned signals of the wrong length")
    write_parquet(out_path, table_from_numpy({"entries": entries, "exits": exits}, {"cooldown": int(sig.cooldown)}))


def _read_signals(path: str):
    from quantlab.strategies import Signals

    table = read_parquet(path)
    return Signals(entries=column_to_numpy(table, "entries"), exits=column_to_numpy(table, "exits"),
                   cooldown=int(metadata_of(table).get("cooldown", 0)))


def engine_config(engine: dict):
    from quantlab.engine import EngineConfig

    return EngineConfig(**{k: engine[k] for k in ENGINE_KEYS})


def trade_start(bars, spec: dict) -> int:
    start = bars.index_of(spec["start"])
    if start >= len(bars):
        raise DataError(f"No bars for {spec['ticker']} from {spec['start']}: the data ends before the window")
    return start


def bars_needed(warmup: int) -> int:
    """Bars a strategy needs: its warm-up plus one tradable bar."""
    return int(warmup) + 1


def insufficient_message(ticker: str, start: str, end: str, available: int, strategy: str, warmup: int) -> str:
    return (f"insufficient data for {ticker} {start}..{end}: {available} bars available, strategy {strategy} "
            f"needs {bars_needed(warmup)} ({int(warmup)} warm-up + 1)")


def require_bars(available: int, spec: dict) -> None:
    """``DataError`` (exit 3) when the loaded bars (warm-up history before the window included)
    cannot give the strategy its warm-up and one tradable bar. ``spec`` carries ticker, start,
    end, strategy and warmup."""
    if available < bars_needed(spec["warmup"]):
        raise DataError(insufficient_message(spec["ticker"], spec["start"], spec["end"], available,
                                             spec["strategy"], spec["warmup"]))


@warm_step
def step_simulate(spec: dict, bars_path: str, signals_path: str, equity_out: str, trades_out: str,
                  trades_csv_out: str | None = None) -> None:
    """The simulation's equity table and trade log (Parquet) and, with ``trades_csv_out``, the
    contract's trades.csv built from the same arrays (publishing then only copies it)."""
    if take_speculated("step_simulate", spec, (equity_out, trades_out, trades_csv_out)):
        return
    from quantlab.data import read_bars
    from quantlab.engine import simulate

    bars = read_bars(bars_path)
    signals = _read_signals(signals_path)
    start = trade_start(bars, spec)
    if "warmup" in spec:
        require_bars(len(bars), spec)
    cfg = engine_config(spec["engine"])
    from quantlab.metrics import bar_calendar

    calendar = bar_calendar(bars.index, spec["interval"])  # from every loaded bar, warm-up included
    try:
        result = simulate(bars.open, bars.high, bars.low, bars.close, signals, cfg, start=start,
                          periods_per_year=calendar["periods_per_year"])
    except (ConfigError, DataError, StrategyError):
        raise
    except Exception as exc:
        raise StrategyError(f"simulation failed: {type(exc).__name__}: {exc}") from exc
    with writes_beside() as beside:  # each file written on a thread
        _write_simulation(beside, bars, start, cfg, calendar, result, equity_out, trades_out, trades_csv_out)
        if "PIL.Image" not in sys.modules:  # a big run's worker: the later steps' imports here,
            beside(_warm_later, late_ok=True)  # while the writes run (native: they need no GIL)


def _warm_later() -> None:
    """What the run's later steps need, done ahead: their imports (commands/imports_ahead.py
    ``LATER_MODULES``), the chart's plugins and fonts (artifacts/plots.py ``warm``) and the
    code fingerprint publishing records. A failure only means a step does it itself (and
    reports what fails there)."""
    try:
        from quantlab.artifacts.plots import warm
        from quantlab.commands.imports_ahead import import_later

        import_later("run")
        warm()
        code_fingerprint()
    except Exception:  # noqa: BLE001 - see the docstring
        pass


def equity_columns(index, close, cfg, result) -> dict:
    """The equity table's columns, each built in one buffer (a 1M-bar run: every 8 MB temporary
    is ~2k fresh pages): the peak (which includes the start) becomes the drawdown in place, and
    ``initial_cash * close / close[0]`` is computed in its output. Same values, bit for bit, as
    the expressions they stand for (maximum is exact, and each element sees the same operations)."""
    import numpy as np

    equity = np.asarray(result.equity, dtype=float)
    drawdown = np.maximum.accumulate(equity)  # == maximum.accumulate(maximum(equity, initial_cash))
    np.maximum(drawdown, cfg.initial_cash, out=drawdown)  # ... once the start joins the peak
    np.divide(equity, drawdown, out=drawdown)
    drawdown -= 1.0
    benchmark = np.multiply(close, cfg.initial_cash)
    if len(benchmark):
        benchmark /= close[0]
    return {"timestamp": index, "close": close, "equity": equity,
            "position": np.asarray(result.position, dtype=np.int8),
            "returns": np.asarray(result.returns, dtype=float), "drawdown": drawdown, "benchmark_equity": benchmark}


# timestamps (and the trades' bar indices) written as deltas: a minute grid is a few bytes per
# page instead of 7 MB of snappy-compressed int64 per million bars, and ~3x cheaper to encode
DELTA_COLUMNS = ("timestamp", "entry_idx", "exit_idx", "entry_time", "exit_time")


def _write_simulation(beside, bars, start: int, cfg, calendar: dict, result, equity_out: str, trades_out: str,
                      trades_csv_out: str | None) -> None:
    import numpy as np

    table = table_from_numpy(equity_columns(bars.index[start:], bars.close[start:], cfg, result), {
        "open_position": int(result.open_position), "start": start,
        "margin_call": -1 if result.margin_call is None else int(result.margin_call),
        "calendar": json.dumps(calendar), "data_notes": json.dumps(list(bars.notes)),
        "adjustment": bars.adjustment})
    _write_promised(beside, equity_out, table)
    trades = {f.name: np.asarray(getattr(result.trades, f.name)) for f in dataclasses.fields(result.trades)}
    trades["entry_time"] = bars.index[trades["entry_idx"].astype(np.int64)]
    trades["exit_time"] = bars.index[trades["exit_idx"].astype(np.int64)]
    is_open = np.zeros(len(result.trades), dtype=np.int8)
    if result.open_position and len(is_open):
        is_open[-1] = 1  # the engine logs a position open at the end as its last trade
    trades["open"] = is_open
    _write_promised(beside, trades_out, table_from_numpy(trades))
    if trades_csv_out is not None:  # late: no later step of the chain reads it (artifacts/beside.py)
        from quantlab.artifacts.trades_csv import write_trades_csv

        beside(write_trades_csv, trades_csv_out, trades, late_ok=True)


def _write_promised(beside, path: str, table) -> None:
    """Write a table on a thread; a chain that reads back from memory (the worker's speculative
    run chain: columnar.remembering) gets it from there at once (columnar.promise), so the
    write is late there: score and plot start while it is encoded. Anywhere else the step waits
    for it as for any write (artifacts/beside.py)."""
    beside(write_parquet, path, table, WRITE_OPTIONS, DELTA_COLUMNS, late_ok=promise(path, table))


def _load_sim(equity_path: str, trades_path: str):
    """The equity table and the simulation's result, its arrays read-only views of the tables'
    buffers (scoring only reads them: no 8 MB copy per column of a 1M-bar run)."""
    from quantlab.engine import SimResult, TradeLog

    eq = read_parquet(equity_path)
    tr = read_parquet(trades_path)
    trades = TradeLog(**{f.name: column_to_numpy(tr, f.name, copy=False) for f in dataclasses.fields(TradeLog)})
    result = SimResult(
        equity=column_to_numpy(eq, "equity", copy=False), position=column_to_numpy(eq, "position", copy=False),
        returns=column_to_numpy(eq, "returns", copy=False), trades=trades,
        open_position=int(metadata_of(eq).get("open_position", 0)),
    )
    return eq, result


@warm_step
def step_score(spec: dict, equity_path: str, trades_path: str, out_path: str) -> None:
    if take_speculated("step_score", spec, (out_path,)):
        return
    from quantlab.metrics import compute_metrics
    from quantlab.scoring import score_inputs, scoring_info

    eq, result = _load_sim(equity_path, trades_path)
    meta = metadata_of(eq)
    calendar = json.loads(meta["calendar"])  # step_simulate: from the bars' own timestamps
    close = column_to_numpy(eq, "close", copy=False)
    ppy = calendar["periods_per_year"]
    ts = column_to_numpy(eq, "timestamp", copy=False)
    warnings = list(json.loads(meta.get("data_notes", "[]")))  # the data step's notes (issue #16)
    metrics = compute_metrics(result, close, start=0, periods_per_year=ppy,
                              initial_cash=float(spec["engine"]["initial_cash"]),
                              **score_inputs(spec, ts, warnings))
    info = {
        "first_bar": bar_time_iso(ts[0]) if len(ts) else None,
        "last_bar": bar_time_iso(ts[-1]) if len(ts) else None,
        "periods_per_year": ppy,
        "bar_interval": calendar["interval"],
        "calendar": calendar["calendar"],
        "open_position": result.open_position,
        **scoring_info(spec),
    }
    if meta.get("adjustment"):
        info["price_adjustment"] = meta["adjustment"]  # how the data step adjusted the prices
    margin_call = int(meta.get("margin_call", -1))
    if margin_call >= 0:
        when = bar_time_iso(ts[margin_call - int(meta.get("start", 0))])
        warnings.append(f"margin call: the short position wiped the account out at {when} "
                        "(equity at or below zero); it was liquidated and the run ends with no equity")
    if metrics.get("ambiguous_bars"):
        warnings.append(f"{metrics['ambiguous_bars']} exit bar(s) touched both the stop and the take-profit: the "
                        "stop was assumed first (conservative; the bars cannot tell the order, docs/engine.md)")
    atomic_write_json(out_path, {"metrics": metrics, "window": info, "warnings": warnings}, sort_keys=True)


@warm_step
def step_plot(spec: dict, equity_path: str, out_path: str) -> None:
    if take_speculated("step_plot", spec, (out_path,)):
        return
    from quantlab.artifacts.plots import equity_png

    eq = read_parquet(equity_path)

    def col(name: str):  # the chart only reads: views of the table (a 1M-bar run: no 8 MB copies)
        return column_to_numpy(eq, name, copy=False)

    png = equity_png(col("timestamp"), col("equity"), col("benchmark_equity"), spec["title"],
                     drawdown=col("drawdown"), close=col("close"),
                     position=col("position"))  # price panel with trade markers, dated ticks
    atomic_write_bytes(out_path, png)


@warm_step
def step_publish(record: dict, sim_dir: str, marker_out: str) -> dict:
    """Write the run directory into its staging dir, then rename it into place (atomic)."""
    sim = Path(sim_dir)
    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    staging.mkdir(parents=True, exist_ok=True)
    config, metrics, window, summary, found = write_results(staging, record, sim, mode="run")
    late_warnings = found + zero_trade_warnings(metrics)
    metadata = {
        "run_id": run_id, "command": "run", "mode": "run", "status": "success",
        "created_at": record["created_at"], "request_id": record["request_id"],
        "config_path": "json_request" if record.get("origin") == "json" else "inline_cli",
        "config_hash": canonical_hash(config, algo="sha1"), "summary": summary, "window": window,
        "content_keys": record["keys"], "code_fingerprint": code_fingerprint(),
        "warnings": list(record.get("warnings", [])) + late_warnings, **runtime_info(),
    }
    atomic_write_json(staging / "metadata.json", metadata, sort_keys=True)
    write_report(staging, metadata, config, metrics)
    from quantlab.commands.common import publish_staging

    return publish_staging(staging, final, marker_out, {
        "run_id": run_id, "mode": "run", "artifacts_path": str(final),
        "report_path": str(final / "report.json"), "summary": summary, "warnings": late_warnings})


@warm_step
def step_publish_paper(record: dict, sim_dir: str, marker_out: str) -> dict:
    """Write a paper session's results into its (already visible) session directory."""
    from quantlab.commands.paper import read_status

    sim = Path(sim_dir)
    run_id = record["run_id"]
    session = Path(record["out_dir"]) / run_id
    config, metrics, window, summary, result_warnings = write_results(session, record, sim, mode="paper")
    result_warnings = result_warnings + zero_trade_warnings(metrics)
    metadata = {**read_json(session / "session_metadata.json"), "status": "success", "summary": summary,
                "window": window, "content_keys": record["keys"]}
    metadata["warnings"] = list(metadata.get("warnings", [])) + result_warnings
    atomic_write_json(session / "session_metadata.json", metadata, sort_keys=True)
    write_report(session, metadata, config, metrics, paper=True)
    result = {"run_id": run_id, "session_id": run_id, "mode": "run", "artifacts_path": str(session),
              "report_path": str(session / "report.json"), "summary": summary,
              "session_status": read_status(session).get("status"), "warnings": result_warnings}
    atomic_write_json(marker_out, result)
    return result


@warm_step
def step_refresh_index(record: dict, published_path: str, out_path: str) -> dict:
    from quantlab.artifacts.runs_index import refresh

    published = read_json(published_path)
    paths = refresh(record.get("index_dir") or record["out_dir"], published.get("artifacts_path"))
    result = {**published, **paths}
    atomic_write_json(out_path, result)
    return result
