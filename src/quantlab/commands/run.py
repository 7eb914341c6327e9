"""The ``run`` command: plan (content keys, run id) and the steps its workflow rules call.

DAG (workflow/rules/*.smk), each step writing a file the next one reads:

    load_data  -> store/data/<dkey>/bars.parquet
    signals    -> store/signals/<skey>/signals.parquet
    simulate   -> store/sim/<mkey>/{equity,trades}.parquet
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
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import (atomic_copy, atomic_write_bytes, atomic_write_json, atomic_write_text,
                                   format_value, read_json)
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
from quantlab.columnar import column_to_numpy, metadata_of, parquet_bytes, read_parquet, table_from_numpy
from quantlab.contract import namespaces
from quantlab.contract.params import DEFAULT_STRATEGY, RUN_PARAMS
from quantlab.contract.paths import imported_path, outputs_root, resolve_input_path, resolve_output_dir
from quantlab.contract.runid import claim_run_id, iso_z, peek_run_id, staging_name
from quantlab.errors import ConfigError, DataError, StrategyError
from quantlab.dates import parse_date
from quantlab.commands.worker import warm_step


def __getattr__(name: str):  # the registry's current lists under their old names
    from quantlab import metric_registry as mr

    lists = {"SUMMARY_KEYS": mr.summary_names}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FLAT_STRATEGY_KEYS = ("rsi_buy_max", "rsi_sell_min", "cooldown_days")
ENGINE_KEYS = ("fee", "slippage_mode", "slippage_bps", "k_atr", "fill", "allow_short", "initial_cash")


# --------------------------------------------------------------------------------------- plan
@dataclass
class RunPlan:
    run_id: str
    created_at: str
    params: dict[str, Any]            # resolved request params (defaults applied)
    strategy_params: dict[str, Any]
    request_id: Any
    out_dir: Path
    keys: dict[str, str]              # data / signals / sim content keys
    specs: dict[str, dict]            # what each keyed step needs
    warnings: list[str] = field(default_factory=list)
    origin: str = "json"

    @property
    def paper(self) -> bool:
        return bool(self.params.get("paper"))

    @property
    def kind(self) -> str:
        """The request's output namespace (``quantlab.contract.namespaces``)."""
        return "paper" if self.paper else "run"

    @property
    def target(self) -> str:
        """The request's final workflow output (paper sessions do not refresh the runs index)."""
        return namespaces.target(self.run_id, self.kind)

    @property
    def published(self) -> str:
        """The publish step's marker (relative to the internal root)."""
        return namespaces.request_file(self.run_id, self.kind, "published.json")

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.run_id

    @property
    def staging_dir(self) -> Path:
        return self.out_dir / staging_name(self.run_id)

    def request_record(self) -> dict:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "request_id": self.request_id,
            "params": self.params,
            "strategy_params": self.strategy_params,
            "out_dir": str(self.out_dir),
            "keys": self.keys,
            "warnings": self.warnings,
            "origin": self.origin,
        }

    def snakemake_config(self) -> dict:
        return {
            "kind": self.kind,
            "planned": True,
            "data": {self.keys["data"]: self.specs["data"]},
            "signals": {self.keys["signals"]: self.specs["signals"]},
            "sim": {self.keys["sim"]: self.specs["sim"]},
            "requests": {self.run_id: self.request_record()},
        }


_parse_date = parse_date  # the shared helper (quantlab.dates), under its old name


DEFAULT_TICKER = "SPX"  # the bundled S&P 500 sample: no network needed
DEFAULT_SAMPLE_WINDOW = ("2017-01-01", "2018-01-01")


def _default_ticker(resolved: dict, params: dict, warnings: list[str]) -> None:
    """No ticker: a data file names itself (its file name), a synthetic series is ``SYNTH``;
    otherwise the bundled S&P 500 sample stands in, over 2017 unless a window is given. Every
    stand-in (ticker and window) is named in the warnings."""
    if resolved.get("ticker"):
        return
    if resolved.get("data_path"):
        stem = Path(str(resolved["data_path"])).stem
        resolved["ticker"] = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:64] or "FILE"
        warnings.append(f"no ticker given: the data file's name '{resolved['ticker']}' is used as the ticker")
    elif resolved.get("source") == "synthetic":
        resolved["ticker"] = "SYNTH"
        warnings.append("no ticker given: the synthetic series is called 'SYNTH'")
    else:
        resolved["ticker"] = DEFAULT_TICKER
        window = ""
        if params.get("start") is None and params.get("end") is None:
            resolved["start"], resolved["end"] = DEFAULT_SAMPLE_WINDOW
            window = f" over the default window {DEFAULT_SAMPLE_WINDOW[0]}..{DEFAULT_SAMPLE_WINDOW[1]}"
        warnings.append(f"no ticker given: the bundled S&P 500 sample ({DEFAULT_TICKER}) stood in{window}")
        if window:
            return
    for name in ("start", "end"):
        if params.get(name) is None:
            warnings.append(f"params.{name} not given: the default {resolved[name]!r} is used")


def resolve_run_params(params: dict[str, Any], warnings: list[str]) -> tuple[dict, dict]:
    """Defaults + strategy resolution. Returns (resolved params, strategy params)."""
    from quantlab.strategies import get_strategy

    resolved = {spec.name: spec.default for spec in RUN_PARAMS}
    resolved.update({k: v for k, v in params.items() if k not in FLAT_STRATEGY_KEYS})
    resolved["strategy"] = resolved.get("strategy") or DEFAULT_STRATEGY
    _default_ticker(resolved, params, warnings)
    strategy = get_strategy(resolved["strategy"])
    declared = {p.name for p in strategy.params}
    given = dict(params.get("strategy_params") or {})
    for key in FLAT_STRATEGY_KEYS:
        if key in params:
            if key in declared:
                if key in given and given[key] != params[key]:
                    raise ConfigError(f"params.{key} conflicts with params.strategy_params.{key}")
                given.setdefault(key, params[key])
            else:
                warnings.append(f"params key '{key}' ignored: strategy '{strategy.name}' has no such parameter")
    strategy_params = strategy.resolve_params(given)
    short_rules = [k for k in ("short_entry", "short_exit") if strategy.name == "expr" and k in strategy_params]
    if short_rules and not resolved.get("allow_short"):
        raise ConfigError(f"strategy_params.{short_rules[0]} needs params.allow_short = true")
    if hasattr(strategy, "lint"):  # suspicious but valid strategy params (expr)
        warnings.extend(strategy.lint(strategy_params))
    start = _parse_date(resolved["start"], "start")
    end = _parse_date(resolved["end"], "end")
    if start >= end:
        raise ConfigError(f"params.start ({resolved['start']}) must be before params.end ({resolved['end']})")
    if resolved["source"] == "file" and not resolved.get("data_path"):
        raise ConfigError("params.data_path is required when params.source is 'file'")
    if resolved.get("data_path") and resolved["source"] == "auto":
        resolved["source"] = "file"
    resolved["strategy_params"] = strategy_params
    return resolved, strategy_params


def _claim_run_id(out_dir: Path, mode: str, digest: str, now: datetime | None = None,
                  staging: bool = True) -> tuple[str, datetime]:
    """Kept for callers of the old name: see :func:`quantlab.contract.runid.claim_run_id`."""
    return claim_run_id(out_dir, mode, digest, now, staging=staging)


def make_data_spec(resolved: dict, start: str, end: str, lookback_bars: int) -> tuple[str, dict]:
    """The load_data step's spec for a window, and its content key."""
    data_path = None
    data_digest = None
    if resolved.get("data_path"):
        path = resolve_input_path(resolved["data_path"], "data_path")
        if not path.is_file():
            raise DataError(f"No data for {resolved['ticker']} {start}..{end}: "
                            f"data_path {path} does not exist or is not a file")
        data_path = str(path)
        st = path.stat()
        data_digest = canonical_hash([str(path), st.st_size, st.st_mtime_ns])
    elif resolved["source"] == "auto":  # bars stored by `data import` are served first: key on them
        imported = imported_path(outputs_root() / "cache", resolved["ticker"], resolved["interval"])
        if imported.is_file():
            st = imported.stat()
            data_digest = canonical_hash(["imported", st.st_size, st.st_mtime_ns])
    spec = {
        "ticker": resolved["ticker"], "start": start, "end": end,
        "interval": resolved["interval"], "source": resolved["source"], "data_path": data_path,
        "data_digest": data_digest, "seed": resolved["seed"], "lookback_bars": int(lookback_bars),
        "adjust": resolved.get("adjust") or "auto", "date_format": resolved.get("date_format"),
        "cache_dir": str(outputs_root() / "cache"), "code": code_fingerprint("data"),
    }
    return canonical_hash({k: v for k, v in spec.items() if k != "cache_dir"}, 16), spec


def plan_run(params: dict[str, Any], *, request_id: Any, warnings: list[str], origin: str,
             claim: bool = True) -> RunPlan:
    from quantlab.strategies import get_strategy

    resolved, strategy_params = resolve_run_params(params, warnings)
    paper = bool(resolved.get("paper"))
    if paper:
        if resolved.get("out_dir"):
            warnings.append("params.out_dir ignored: paper sessions live under outputs/paper_sessions")
        out_dir = outputs_root() / "paper_sessions"
    else:
        out_dir = resolve_output_dir(resolved.get("out_dir"), outputs_root() / "runs")
    strategy = get_strategy(resolved["strategy"])
    warmup = int(strategy.warmup_bars(strategy_params))
    dkey, data_spec = make_data_spec(resolved, resolved["start"], resolved["end"], warmup)
    code = code_fingerprint()
    signals_spec = {"data": dkey, "strategy": strategy.name, "strategy_params": strategy_params, "code": code}
    skey = canonical_hash(signals_spec, 16)
    engine = {k: resolved[k] for k in ENGINE_KEYS}
    sim_spec = {"data": dkey, "signals": skey, "engine": engine, "start": resolved["start"],
                "end": resolved["end"], "strategy": strategy.name, "warmup": warmup,
                "ticker": resolved["ticker"], "interval": resolved["interval"], "code": code,
                "title": f"{resolved['ticker']} {strategy.name} {resolved['start']}..{resolved['end']}"}
    mkey = canonical_hash(sim_spec, 16)
    identity = {k: v for k, v in resolved.items() if k not in ("out_dir",)}
    digest = canonical_hash(identity, 7, algo="sha1")
    mode = "paper" if paper else "run"
    if claim:
        run_id, ts = claim_run_id(out_dir, mode, digest, staging=not paper)
    else:
        run_id, ts = peek_run_id(mode, digest)
    return RunPlan(
        run_id=run_id, created_at=iso_z(ts), params=resolved,
        strategy_params=strategy_params, request_id=request_id, out_dir=out_dir,
        keys={"data": dkey, "signals": skey, "sim": mkey},
        specs={"data": data_spec, "signals": signals_spec, "sim": sim_spec},
        warnings=warnings, origin=origin,
    )


# -------------------------------------------------------------------------------------- steps
def _data_request(spec: dict):
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
        load_bars(_data_request({**spec, "source": "sample"}))


@warm_step
def step_load_data(spec: dict, out_path: str) -> None:
    from quantlab.data import load_bars, write_bars

    write_bars(load_bars(_data_request(spec)), out_path)


@warm_step
def step_signals(spec: dict, bars_path: str, out_path: str) -> None:
    import numpy as np

    from quantlab.data import read_bars
    from quantlab.strategies import get_strategy

    bars = read_bars(bars_path)
    strategy = get_strategy(spec["strategy"])
    try:
        # volume only for strategies that declare it (plugins may override signals() without it)
        extra = {"volume": bars.volume} if getattr(strategy, "uses_volume", False) else {}
        sig = strategy.signals(bars.open, bars.high, bars.low, bars.close, dict(spec["strategy_params"]), **extra)
    except (ConfigError, DataError, StrategyError):
        raise
    except Exception as exc:
        raise StrategyError(f"strategy '{strategy.name}' failed while computing signals: "
                            f"{type(exc).__name__}: {exc}") from exc
    entries = np.asarray(sig.entries, dtype=bool)
    exits = np.asarray(sig.exits, dtype=bool)
    if entries.shape != (len(bars),) or exits.shape != (len(bars),):
        raise StrategyError(f"strategy '{strategy.name}' returned signals of the wrong length")
    table = table_from_numpy({"entries": entries, "exits": exits}, {"cooldown": int(sig.cooldown)})
    atomic_write_bytes(out_path, parquet_bytes(table))


def _read_signals(path: str):
    from quantlab.strategies import Signals

    table = read_parquet(path)
    return Signals(entries=column_to_numpy(table, "entries"), exits=column_to_numpy(table, "exits"),
                   cooldown=int(metadata_of(table).get("cooldown", 0)))


def _engine_config(engine: dict):
    from quantlab.engine import EngineConfig

    return EngineConfig(**{k: engine[k] for k in ENGINE_KEYS})


def _trade_start(bars, spec: dict) -> int:
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
def step_simulate(spec: dict, bars_path: str, signals_path: str, equity_out: str, trades_out: str) -> None:
    import numpy as np

    from quantlab.data import read_bars
    from quantlab.engine import simulate

    bars = read_bars(bars_path)
    signals = _read_signals(signals_path)
    start = _trade_start(bars, spec)
    if "warmup" in spec:
        require_bars(len(bars), spec)
    cfg = _engine_config(spec["engine"])
    try:
        result = simulate(bars.open, bars.high, bars.low, bars.close, signals, cfg, start=start)
    except (ConfigError, DataError, StrategyError):
        raise
    except Exception as exc:
        raise StrategyError(f"simulation failed: {type(exc).__name__}: {exc}") from exc
    from quantlab.metrics import bar_calendar

    calendar = bar_calendar(bars.index, spec["interval"])  # from every loaded bar, warm-up included
    close = bars.close[start:]
    equity = np.asarray(result.equity, dtype=float)
    peak = np.maximum.accumulate(np.maximum(equity, cfg.initial_cash))  # the peak includes the start
    table = table_from_numpy({
        "timestamp": bars.index[start:],
        "close": close,
        "equity": equity,
        "position": np.asarray(result.position, dtype=np.int8),
        "returns": np.asarray(result.returns, dtype=float),
        "drawdown": equity / peak - 1.0,
        "benchmark_equity": cfg.initial_cash * close / close[0],
    }, {"open_position": int(result.open_position), "start": start,
        "margin_call": -1 if result.margin_call is None else int(result.margin_call),
        "calendar": json.dumps(calendar), "data_notes": json.dumps(list(bars.notes)),
        "adjustment": bars.adjustment})
    atomic_write_bytes(equity_out, parquet_bytes(table))
    trades = {f.name: np.asarray(getattr(result.trades, f.name)) for f in dataclasses.fields(result.trades)}
    trades["entry_time"] = bars.index[trades["entry_idx"].astype(np.int64)]
    trades["exit_time"] = bars.index[trades["exit_idx"].astype(np.int64)]
    is_open = np.zeros(len(result.trades), dtype=np.int8)
    if result.open_position and len(is_open):
        is_open[-1] = 1  # the engine logs a position open at the end as its last trade
    trades["open"] = is_open
    atomic_write_bytes(trades_out, parquet_bytes(table_from_numpy(trades)))


def _load_sim(equity_path: str, trades_path: str):
    from quantlab.engine import SimResult, TradeLog

    eq = read_parquet(equity_path)
    tr = read_parquet(trades_path)
    trades = TradeLog(**{f.name: column_to_numpy(tr, f.name) for f in dataclasses.fields(TradeLog)})
    result = SimResult(
        equity=column_to_numpy(eq, "equity"), position=column_to_numpy(eq, "position"),
        returns=column_to_numpy(eq, "returns"), trades=trades,
        open_position=int(metadata_of(eq).get("open_position", 0)),
    )
    return eq, result


@warm_step
def step_score(spec: dict, equity_path: str, trades_path: str, out_path: str) -> None:
    from quantlab.metrics import compute_metrics

    eq, result = _load_sim(equity_path, trades_path)
    meta = metadata_of(eq)
    calendar = json.loads(meta["calendar"])  # step_simulate: from the bars' own timestamps
    close = column_to_numpy(eq, "close")
    ppy = calendar["periods_per_year"]
    metrics = compute_metrics(result, close, start=0, periods_per_year=ppy,
                              initial_cash=float(spec["engine"]["initial_cash"]))
    ts = column_to_numpy(eq, "timestamp")
    info = {
        "first_bar": _iso(ts[0]) if len(ts) else None,
        "last_bar": _iso(ts[-1]) if len(ts) else None,
        "periods_per_year": ppy,
        "bar_interval": calendar["interval"],
        "calendar": calendar["calendar"],
        "open_position": result.open_position,
    }
    if meta.get("adjustment"):
        info["price_adjustment"] = meta["adjustment"]  # how the data step adjusted the prices
    warnings = list(json.loads(meta.get("data_notes", "[]")))  # the data step's notes (issue #16)
    margin_call = int(meta.get("margin_call", -1))
    if margin_call >= 0:
        when = _iso(ts[margin_call - int(meta.get("start", 0))])
        warnings.append(f"margin call: the short position wiped the account out at {when} "
                        "(equity at or below zero); it was liquidated and the run ends with no equity")
    atomic_write_json(out_path, {"metrics": metrics, "window": info, "warnings": warnings}, sort_keys=True)


@warm_step
def step_plot(spec: dict, equity_path: str, out_path: str) -> None:
    from quantlab.artifacts.plots import equity_png

    eq = read_parquet(equity_path)
    ts = column_to_numpy(eq, "timestamp")
    png = equity_png([_iso(ts[0]), _iso(ts[-1])] if len(ts) else [], column_to_numpy(eq, "equity"),
                     column_to_numpy(eq, "benchmark_equity"), spec["title"],
                     drawdown=column_to_numpy(eq, "drawdown"))
    atomic_write_bytes(out_path, png)


def _iso(ts) -> str:
    import numpy as np

    return str(np.datetime_as_string(np.datetime64(ts, "s"), unit="s")) + "Z"


# -------------------------------------------------------------------------------- publishing
def summary_of(metrics: dict) -> dict:
    """The summary metrics of the registry (in-summary entries), in registry order."""
    from quantlab.metric_registry import summary_names

    return {k: metrics.get(k) for k in summary_names()}


def reproduce_command(params: dict) -> str:
    import shlex

    parts = ["python", "main.py", "run"]
    for key in ("ticker", "start", "end", "interval", "source", "strategy", "fee", "slippage_mode",
                "slippage_bps", "k_atr", "fill", "initial_cash"):
        parts += [f"--{key.replace('_', '-')}", str(params[key])]
    if params.get("allow_short"):
        parts.append("--allow-short")
    if params.get("data_path"):
        parts += ["--data-path", str(params["data_path"])]
    if params.get("adjust") not in (None, "auto"):  # the default adjust is left out (older commands)
        parts += ["--adjust", str(params["adjust"])]
    if params.get("date_format"):
        parts += ["--date-format", str(params["date_format"])]
    for key, value in sorted(params.get("strategy_params", {}).items()):
        parts += ["--param", f"{key}={value}"]
    return " ".join(shlex.quote(p) for p in parts)


def _trades_csv(trades_path: str) -> str:
    """trades.csv: header row, comma-separated, no embedded commas, no empty cells. ``status``
    is ``open`` for a position still open at the end (exit = the last bar's close, no exit fee)."""
    tr = read_parquet(trades_path)
    n = tr.num_rows
    cols = {name: column_to_numpy(tr, name) for name in tr.column_names}
    for name in ("entry_time", "exit_time"):
        cols[name] = [_iso(t) for t in cols[name]]
    cols = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in cols.items()}
    header = ["trade_id", "side", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
              "entry_fee", "exit_fee", "pnl", "return", "bars_held", "status"]
    is_open = cols.get("open", [0] * n)
    lines = [",".join(header)]
    for i in range(n):
        side = "long" if cols["side"][i] > 0 else "short"
        lines.append(",".join([
            str(i + 1), side, cols["entry_time"][i], cols["exit_time"][i],
            f"{cols['entry_price'][i]:.10g}", f"{cols['exit_price'][i]:.10g}", f"{cols['qty'][i]:.10g}",
            f"{cols['entry_fee'][i]:.10g}", f"{cols['exit_fee'][i]:.10g}", f"{cols['pnl'][i]:.10g}",
            f"{cols['ret'][i]:.10g}", str(int(cols["bars_held"][i])), "open" if is_open[i] else "closed",
        ]))
    return "\n".join(lines) + "\n"


MC_ARTIFACTS = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
                "report": "report.json", "trades": "trades.csv", "equity": "equity.parquet",
                "equity_plot": "equity.png", "run_report": "run_report.md"}


def _run_report_md(metadata: dict, config: dict, metrics: dict) -> str:
    window = metadata.get("window") or {}

    fmt = format_value
    c = config
    lines = [f"# Run {metadata['run_id']}", "",
             f"- ticker: {c['ticker']} ({c['interval']}, source {c['source']})",
             f"- window: {c['start']} .. {c['end']} (bars traded: {metrics.get('bars')}, "
             f"{window.get('first_bar')} .. {window.get('last_bar')})",
             f"- strategy: {c['strategy']} {c.get('strategy_params', {})}",
             f"- costs: fee {c['fee']} per side, slippage {c['slippage_mode']} "
             f"({c['slippage_bps']} bps / k_atr {c['k_atr']}), fill {c['fill']}",
             f"- created_at: {metadata['created_at']}", "", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in metrics.items()]
    lines += ["", "## Files", "", ", ".join(MC_ARTIFACTS.values()), "", "## Reproduce", "",
              f"    {reproduce_command(c)}", ""]
    return "\n".join(lines)


PAPER_ARTIFACTS = {"metadata": "session_metadata.json", "status": "session_status.json", "config": "config.json",
                   "metrics": "metrics.json", "report": "report.json", "trades": "trades.csv",
                   "run_report": "run_report.md", "equity": "equity.parquet", "equity_plot": "equity.png"}


def write_report(run_dir: Path, metadata: dict, config: dict, metrics: dict, *, paper: bool = False) -> Path:
    """(Re)write ``run_report.md`` and then ``report.json`` of a run directory (or paper session)
    from its metadata, config and metrics. Idempotent: rebuilding gives the same files."""
    import json

    # the same key order whether the inputs come from memory or from the sorted JSON files
    config = json.loads(json.dumps(config, sort_keys=True))
    metrics = json.loads(json.dumps(metrics, sort_keys=True))
    summary = summary_of(metrics)
    request_id = metadata.get("request_id")
    warnings = metadata.get("warnings", [])
    atomic_write_text(run_dir / "run_report.md", _run_report_md(metadata, config, metrics))
    mode = "paper" if paper else "run"
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract as contract, report_document

    from quantlab.commands.robust_run import contract_fields

    machine_contract = contract("paper" if paper else "run", "run", request_id, metadata.get("status", "success"),
                                run_id=metadata["run_id"], mode=mode, summary=summary,
                                artifacts=PAPER_ARTIFACTS if paper else MC_ARTIFACTS, warnings=warnings,
                                **contract_fields(run_dir))
    if paper:
        machine_contract["session_id"] = metadata["run_id"]
    report = report_document(
        artifact_type="quantlab_run_report", mc=machine_contract, summary=summary,
        header={"run_id": metadata["run_id"], "mode": mode, "created_at": metadata["created_at"],
                "git_commit": metadata.get("git_commit"), "python_version": metadata.get("python_version"),
                "config_path": metadata.get("config_path"), "config_hash": metadata.get("config_hash"),
                "request_id": request_id},
        sections={"reproduce": {"command": reproduce_command(config)}, "config_resolved": config,
                  "results": [metrics]},
        artifacts=artifact_listing(run_dir, exclude=("session_status.json",)))
    atomic_write_json(run_dir / "report.json", report)
    return run_dir / "report.json"


def _write_results(target: Path, record: dict, sim: Path, *, mode: str) -> tuple[dict, dict, dict, dict, list]:
    """The result files a run directory and a paper session share: config.json, metrics.json,
    trades.csv, equity.parquet, equity.png. Returns (config, metrics, window, summary, the
    warnings of the results themselves, e.g. a margin call)."""
    scored = read_json(sim / "metrics.json")
    metrics, window = scored["metrics"], scored["window"]
    result_warnings = list(scored.get("warnings", []))
    summary = summary_of(metrics)
    config = dict(record["params"])
    config.pop("out_dir", None)
    atomic_write_json(target / "config.json", config, sort_keys=True)
    from quantlab.commands.robust_run import run_robustness

    atomic_write_json(target / "metrics.json", {
        "command": "run", "mode": mode, "status": "success", "summary": summary, "metrics": metrics,
        "bar_interval": window.get("bar_interval"), "periods_per_year": window.get("periods_per_year"),
        **run_robustness(record["params"], sim, window),
    }, sort_keys=True)
    atomic_write_text(target / "trades.csv", _trades_csv(str(sim / "trades.parquet")))
    for name in ("equity.parquet", "equity.png"):
        atomic_copy(sim / name, target / name)
    return config, metrics, window, summary, result_warnings


@warm_step
def step_publish(record: dict, sim_dir: str, marker_out: str) -> dict:
    """Write the run directory into its staging dir, then rename it into place (atomic)."""
    sim = Path(sim_dir)
    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    staging.mkdir(parents=True, exist_ok=True)
    config, metrics, window, summary, found = _write_results(staging, record, sim, mode="run")
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


def zero_trade_warnings(metrics: dict) -> list[str]:
    """Warnings about a finished simulation: a result with zero trades is suspicious."""
    if metrics.get("trades") != 0:
        return []
    return ["0 trades: the strategy never traded in this window, so its metrics describe doing nothing"]


@warm_step
def step_publish_paper(record: dict, sim_dir: str, marker_out: str) -> dict:
    """Write a paper session's results into its (already visible) session directory."""
    from quantlab.commands.paper import read_status

    sim = Path(sim_dir)
    run_id = record["run_id"]
    session = Path(record["out_dir"]) / run_id
    config, metrics, window, summary, result_warnings = _write_results(session, record, sim, mode="paper")
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


def rebuild_report(run_dir: Path) -> Path:
    """``--report RUN_DIR``: rebuild report.json and run_report.md from the run's own files."""
    run_dir = Path(run_dir)
    try:
        metadata = read_json(run_dir / "metadata.json")
        config = read_json(run_dir / "config.json")
        metrics = read_json(run_dir / "metrics.json")["metrics"]
    except FileNotFoundError as exc:
        raise ConfigError(f"{run_dir} is not a run directory: {Path(exc.filename).name} is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{run_dir} has an unreadable metadata/config/metrics file ({type(exc).__name__})") from None
    if metadata.get("mode") != "run":
        raise ConfigError(f"{run_dir} is a '{metadata.get('mode')}' directory; --report rebuilds run directories")
    return write_report(run_dir, metadata, config, metrics)


@warm_step
def step_refresh_index(record: dict, published_path: str, out_path: str) -> dict:
    from quantlab.artifacts.runs_index import refresh

    published = read_json(published_path)
    paths = refresh(record.get("index_dir") or record["out_dir"])
    result = {**published, **paths}
    atomic_write_json(out_path, result)
    return result
