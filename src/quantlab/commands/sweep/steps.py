"""The ``sweep`` command's step functions, which workflow/rules/sweep.smk calls.

Grid DAG:        load_data -> sweep_shard (x N) -> merge_leaderboard -> publish_sweep -> refresh_index
Walk-forward:    per split: load_data(train) -> sweep_shard (x N) -> wf_select
                            load_data(test)  -> wf_test(selected)
                 -> merge_walkforward -> publish_sweep -> refresh_index
"""

from __future__ import annotations

import contextlib
import json
import math
import os

from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from quantlab.commands.speculate import take as take_speculated
from quantlab.commands.sweep.results import combo_warmup, drop_insufficient, load_shards, rank_rows, result_rows
from quantlab.commands.worker import warm_step
from quantlab.metric_registry import grid_metric_names, integer_names


def _evaluate(bars, spec: dict, combos: list[dict], threads: int | None = None, keep_returns=False):
    from quantlab.commands.run.steps import engine_config, trade_start
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.metrics import bar_calendar

    start = trade_start(bars, {"start": spec["start"], "ticker": spec["ticker"]})
    ppy = bar_calendar(bars.index, spec["interval"])["periods_per_year"]  # as a run of the same bars
    into = keep_returns(len(combos), len(bars) - start) if callable(keep_returns) else None  # a returns file
    out = evaluate_grid(bars.open, bars.high, bars.low, bars.close, spec["strategy"], combos,
                        engine_config(spec["engine"]), start=start, periods_per_year=ppy,
                        threads=threads or shard_threads(), keep_returns=bool(keep_returns), volume=bars.volume,
                        returns_out=into, risk_free_rate=spec.get("risk_free_rate", 0.0),
                        timestamps=bars.index)
    return (*out, ppy) if keep_returns else out  # keep_returns: (metrics, returns, periods per year)


def shard_threads() -> int:
    """Threads a sweep shard declares (the rule's ``threads:``): QUANTLAB_SWEEP_THREADS, default 2."""
    return int(os.environ.get("QUANTLAB_SWEEP_THREADS", "2"))


def prefetch_sweep(data_specs: list[dict], strategy: str, combo: dict, warm_numba: bool,
                   robust: bool = False, speculate: tuple | None = None) -> None:
    """Worker warm-up (see commands/worker.py): parse bundled data into the loader's memo and, for
    big grids, load the numba grid kernels while the parent is still starting Snakemake; with
    ``robust`` (robustness on) also the robustness passes' kernels, which the merge step would
    otherwise load on the critical path; then, with ``speculate`` = ``(internal root, data specs
    by key, new shard specs by key, board)``, the data steps and the shards computed ahead, and
    with ``board`` = ``(board directory, request record)`` (a short grid sweep) all of its shards
    and its board (commands/speculate.py)."""
    _warm_sweep(data_specs, strategy, combo, warm_numba, robust)
    if speculate is not None:
        from quantlab.commands.speculate import speculate_sweep

        internal, data, shards, board = speculate
        speculate_sweep(internal, data, shards, shard_threads(), board)


def _warm_sweep(data_specs: list[dict], strategy: str, combo: dict, warm_numba: bool, robust: bool) -> None:
    import numpy as np

    from quantlab.commands.run.steps import prefetch_data

    for spec in data_specs:
        prefetch_data(spec)
    if not warm_numba:
        return
    from quantlab.commands.warmup import forced_jit
    from quantlab.engine import EngineConfig
    from quantlab.engine.sweep import evaluate_grid

    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    with forced_jit():
        evaluate_grid(close, close * 1.01, close * 0.99, close, strategy, [combo], EngineConfig(), start=0,
                      periods_per_year=252.0, threads=1)
        if robust:  # float32 series, as a shard's returns file gives them
            from quantlab.robustness import robustness_report

            robustness_report(rng.normal(0.0, 0.01, (64, 8)).astype(np.float32), n_boot=20)


@warm_step
def step_sweep_shard(spec: dict, bars_path: str, out_parquet: str, out_sidecar: str,
                     threads: int | None = None) -> None:
    """Evaluate one shard of combinations on ``threads`` threads (the rule's ``threads``, as the
    scheduler granted them). With ``spec["returns"]`` (robustness on) the combinations are
    evaluated a chunk at a time with their per-bar returns, and what the robustness statistics
    need of those goes to ``<shard>.robust.npz`` (``robust_sweep.summarise_shard``; the returns
    are not kept); else that file summarises nothing. The sidecar is written last (it marks
    completion) and says whether the shard was summarised."""
    from quantlab.commands.robust_sweep import ShardSummary, summarise_shard, summary_path
    from quantlab.store_layout import SHARD_OLD_RETURNS, shard_sibling

    # the returns file a shard kept before its summary (2 GB at 100k combinations): gone with it
    with contextlib.suppress(OSError):
        os.unlink(shard_sibling(out_parquet, SHARD_OLD_RETURNS))
    if take_speculated("sweep.step_sweep_shard", spec, (out_parquet, out_sidecar, summary_path(out_parquet))):
        return
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.data import read_bars

    bars = read_bars(bars_path)
    keep = spec.get("returns", True)
    if keep:
        metrics, ppy = summarise_shard(bars, spec, threads or shard_threads(), summary_path(out_parquet))
    else:
        metrics = _evaluate(bars, spec, spec["combos"], threads)
        ShardSummary().write(summary_path(out_parquet), [], spec)
    cols = {name: np.asarray(metrics[name], dtype=np.float64) for name in grid_metric_names()}
    meta = {"keys": json.dumps(spec["combo_keys"]), "bars_available": str(len(bars))}
    if keep and ppy is not None:
        meta["periods_per_year"] = repr(float(ppy))
    atomic_write_bytes(out_parquet, parquet_bytes(table_from_numpy(cols, meta)))
    # compact, by the C encoder (the planner reads it; indented, 100,000 combinations cost ~1 s)
    atomic_write_text(out_sidecar, json.dumps({"combos": [{"key": k, "params": c} for k, c in
                                                          zip(spec["combo_keys"], spec["combos"])],
                                               "returns": keep}, separators=(",", ":"), allow_nan=False))


@warm_step
def step_merge_leaderboard(record: dict, shard_paths: list[str], out_dir: str) -> None:
    """A grid request's columnar board in the store (commands/sweep/board.py)."""
    from quantlab.commands.speculate import board_ident, take_dir
    from quantlab.commands.sweep.board import merge_board
    from quantlab.store_layout import BOARD_FILES

    if take_dir("sweep.step_merge_leaderboard", board_ident(record), out_dir, BOARD_FILES[0]):
        return
    merge_board(record, shard_paths, out_dir)


@warm_step
def step_wf_select(spec: dict, shard_paths: list[str], out_path: str) -> None:
    """Rank the train results, drop combos under min_trades, keep top_k."""
    results, available = load_shards(shard_paths)
    rows = result_rows(spec, spec["train"]["combo_keys"], results)
    rows, skipped = drop_insufficient(rows, available, spec["strategy"], {
        "ticker": spec["ticker"], "start": spec["train_start"], "end": spec["train_end"]})
    from quantlab.commands.robust_sweep import rank_and_report

    def eligible_of(ranked):
        return [r for r in ranked if (r["metrics"].get("trades") or 0) >= spec["min_trades"]]

    # trials: every train combination evaluated; best: the one carried to the test window
    ranked, robust = rank_and_report(spec.get("robustness", False), shard_paths, rows,
                                     lambda rs: rank_rows(rs, spec["sort_by"], spec["ascending"]),
                                     lambda rs: (eligible_of(rs) or rs or [None])[0])
    eligible = eligible_of(ranked)
    selected = eligible[: spec["top_k"]]
    atomic_write_json(out_path, {"train": ranked, "eligible": len(eligible), "selected": [r["index"] for r in selected],
                                 "skipped": skipped, **robust})


@warm_step
def step_wf_test(spec: dict, selected_path: str, bars_path: str, out_path: str, equity_out: str) -> None:
    """Evaluate the selected combos on the test window; keep the rank-1 combo's test series."""
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.commands.experiment import ENGINE_GRID_KEYS
    from quantlab.commands.run.steps import engine_config, trade_start, require_bars
    from quantlab.data import read_bars
    from quantlab.engine import simulate
    from quantlab.metrics import bar_calendar
    from quantlab.strategies import get_strategy

    selected = read_json(selected_path)
    idx = selected["selected"]
    bars = read_bars(bars_path)
    combos = [spec["combos"][i] for i in idx]
    test_spec = {**spec, "start": spec["test_start"]}
    strategy = get_strategy(spec["strategy"])
    for combo in combos:
        require_bars(len(bars), {"ticker": spec["ticker"], "start": spec["test_start"], "end": spec["test_end"],
                                 "strategy": strategy.name, "warmup": combo_warmup(strategy, combo)})
    metrics, psr = {}, None
    if combos and spec.get("robustness"):  # the test rows' psr, from their test-window returns
        from quantlab.commands.robust_sweep import psr_of_rows

        metrics, returns, _ = _evaluate(bars, test_spec, combos, keep_returns=True)
        psr = psr_of_rows(returns)
    elif combos:
        metrics = _evaluate(bars, test_spec, combos)
    rows = []
    for j, i in enumerate(idx):
        row = {}
        for name in grid_metric_names():
            v = float(metrics[name][j])
            row[name] = None if math.isnan(v) else (int(v) if name in integer_names() else v)
        if psr is not None:
            row["psr"] = psr[j]
        rows.append({"index": i, "label": spec["labels"][i], "params": spec["combos"][i], "metrics": row,
                     "rank_in_train": j + 1})
    trades_meta: list = []
    start = trade_start(bars, {"start": spec["test_start"], "ticker": spec["ticker"]})
    if not combos:  # nothing selected: the out-of-sample window stays flat (in cash)
        m = len(bars) - start
        cols = {"timestamp": bars.index[start:], "returns": np.zeros(m), "position": np.zeros(m, dtype=np.int8),
                "close": bars.close[start:]}
    else:
        combo = dict(combos[0])
        engine = dict(spec["engine"])
        for key in ENGINE_GRID_KEYS:
            if key in combo:
                engine[key] = combo.pop(key)
        extra = {"volume": bars.volume} if getattr(strategy, "uses_volume", False) else {}
        sig = strategy.signals(bars.open, bars.high, bars.low, bars.close, combo, **extra)
        ppy = bar_calendar(bars.index, spec["interval"])["periods_per_year"]
        res = simulate(bars.open, bars.high, bars.low, bars.close, sig, engine_config(engine), start=start,
                       periods_per_year=ppy)
        cols = {"timestamp": bars.index[start:], "returns": np.asarray(res.returns, dtype=float),
                "position": np.asarray(res.position, dtype=np.int8), "close": bars.close[start:]}
        t = res.trades
        trades_meta = [[int(a) - start, int(b) - start, int(s), float(p), float(r), int(x)] for a, b, s, p, r, x in
                       zip(t.entry_idx, t.exit_idx, t.side, t.pnl, t.ret, t.exit_reason)]
    atomic_write_bytes(equity_out, parquet_bytes(table_from_numpy(cols, {"trades": json.dumps(trades_meta)})))
    atomic_write_json(out_path, {"name": spec["name"], "test": rows})


@warm_step
def step_merge_walkforward(record: dict, split_files: list[tuple[str, str, str, str]], out_path: str) -> None:
    """Per-split train/test tables and the stitched out-of-sample series (rank-1 per split)."""
    import numpy as np

    from quantlab.columnar import column_to_numpy, metadata_of, read_parquet
    from quantlab.engine import SimResult, TradeLog
    from quantlab.metrics import bar_calendar, compute_metrics

    splits_out = []
    returns, positions, closes, stamps, trades = [], [], [], [], []
    offset = 0
    for split_id, selected_path, test_path, equity_path in split_files:
        sel = read_json(selected_path)
        test = read_json(test_path)
        eq = read_parquet(equity_path)
        r = column_to_numpy(eq, "returns")
        returns.append(r)
        positions.append(column_to_numpy(eq, "position"))
        closes.append(column_to_numpy(eq, "close"))
        stamps.append(column_to_numpy(eq, "timestamp"))
        for a, b, s, p, ret, reason in json.loads(metadata_of(eq)["trades"]):
            trades.append((a + offset, b + offset, s, p, ret, reason))
        offset += len(r)
        splits_out.append({"split_id": split_id, "name": test["name"], "train": sel["train"],
                           "eligible": sel["eligible"], "test": test["test"], "skipped": sel.get("skipped", []),
                           **({"robustness": sel["robustness"]} if "robustness" in sel else {})})
    r = np.concatenate(returns) if returns else np.array([])
    initial = float(record["base"]["initial_cash"])
    equity = initial * np.cumprod(1.0 + r) if len(r) else np.array([])
    oos_metrics = None
    if len(r):
        n = len(trades)
        tl = TradeLog(entry_idx=np.array([t[0] for t in trades], dtype=np.int64),
                      exit_idx=np.array([t[1] for t in trades], dtype=np.int64),
                      side=np.array([t[2] for t in trades], dtype=np.int8),
                      entry_price=np.zeros(n), exit_price=np.zeros(n), qty=np.zeros(n), entry_fee=np.zeros(n),
                      exit_fee=np.zeros(n), pnl=np.array([t[3] for t in trades], dtype=float),
                      ret=np.array([t[4] for t in trades], dtype=float),
                      bars_held=np.array([t[1] - t[0] for t in trades], dtype=np.int64),
                      exit_reason=np.array([t[5] for t in trades], dtype=np.int8))
        res = SimResult(equity=equity, position=np.concatenate(positions), returns=r, trades=tl, open_position=0)
        ppy = bar_calendar(np.concatenate(stamps), record["base"]["interval"])["periods_per_year"]
        oos_metrics = compute_metrics(res, np.concatenate(closes), start=0, periods_per_year=ppy,
                                      initial_cash=initial, timestamps=np.concatenate(stamps),
                                      risk_free_rate=record["base"].get("risk_free_rate", 0.0))
    ts = [str(t)[:19] + "Z" for t in (np.concatenate(stamps) if stamps else [])]
    atomic_write_json(out_path, {"splits": splits_out, "oos": {"metrics": oos_metrics, "timestamps": ts,
                                                               "equity": equity.tolist(), "returns": r.tolist()}})


@warm_step
def step_publish_sweep(record: dict, merged_path: str, marker_out: str) -> dict:
    from quantlab.commands.sweep.publish import publish_sweep

    return publish_sweep(record, merged_path, marker_out)
