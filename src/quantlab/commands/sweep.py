"""The ``sweep`` command: plan (data keys, content-addressed shards, run id) and its steps.

Grid DAG:        load_data -> sweep_shard (x N) -> merge_leaderboard -> publish_sweep -> refresh_index
Walk-forward:    per split: load_data(train) -> sweep_shard (x N) -> wf_select
                            load_data(test)  -> wf_test(selected)
                 -> merge_walkforward -> publish_sweep -> refresh_index

A shard is a set of combinations evaluated by one job (the grid engine, vectorised/numba over
its combos). Shard files are content-addressed: ``store/sweep/<family>/shards/<key>.parquet``,
where the family is (data, strategy, engine settings, window, code) and the key is a hash of the
combination keys it holds. A sidecar ``<key>.json`` lists them; ``<key>.returns.npy`` holds
their per-bar net returns (float32, combos x bars) for the robustness statistics. The planner reads the sidecars,
so an identical sweep finds every combination computed, a widened grid computes only the new
combinations, and a killed sweep resumes from its finished shards.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, atomic_write_text, format_value, read_json
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
from quantlab.commands.common import publish_staging
from quantlab.commands.experiment import Experiment, skipped_summary, skipped_warning
from quantlab.commands.run import ENGINE_KEYS, _parse_date, make_data_spec, summary_of
from quantlab.contract import namespaces
from quantlab.contract.runid import claim_run_id, iso_z, peek_run_id, staging_name
from quantlab.contract.paths import internal_root, outputs_root, resolve_output_dir
from quantlab.metric_registry import integer_names, metric_names
from quantlab.errors import DataError
from quantlab.commands.worker import warm_step

PSR_KEY = "\0psr"  # a shard row's PSR while loading (never a metric name)
WORK_PER_SHARD = 2_000_000  # bar-combos per shard job (a few tens of ms of kernel time)


@dataclass
class SweepPlan:
    run_id: str
    created_at: str
    experiment: Experiment
    request_id: Any
    out_dir: Path
    config: dict                                  # Snakemake configfile content
    new_shards: list[str] = field(default_factory=list)
    reused_shards: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    origin: str = "json"

    @property
    def staging_dir(self) -> Path:
        return self.out_dir / staging_name(self.run_id)

    @property
    def target(self) -> str:
        return namespaces.target(self.run_id, "sweep")


def _family(dkey: str, exp: Experiment, start: str) -> str:
    engine = {k: exp.base[k] for k in ENGINE_KEYS}
    return canonical_hash({"data": dkey, "strategy": exp.strategy, "engine": engine, "start": start,
                           "code": code_fingerprint()}, 16)


def combo_key(family: str, combo: dict) -> str:
    return canonical_hash({"family": family, "params": combo}, 16)


def _cached_combos(family: str, need_returns: bool = False) -> dict[str, str]:
    """combo key -> shard key, from the finished shards' sidecars of a family (with
    ``need_returns``, only shards that kept their return series)."""
    shard_dir = internal_root() / "store" / "sweep" / family / "shards"
    found: dict[str, str] = {}
    try:
        entries = sorted(shard_dir.glob("*.json"))
    except OSError:
        return found
    for sidecar in entries:
        shard = sidecar.stem
        if not ((shard_dir / f"{shard}.parquet").is_file() and (shard_dir / f"{shard}.returns.npy").is_file()):
            continue
        try:
            side = read_json(sidecar)
            if need_returns and not side.get("returns"):
                continue
            for item in side["combos"]:
                found.setdefault(item["key"], shard)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged sidecar: its combos are recomputed
    return found


def _estimate_bars(base: dict, start: str, end: str) -> int:
    days = max((_parse_date(end, "end") - _parse_date(start, "start")).days, 1)
    per_day = {"1m": 1440, "2m": 720, "5m": 288, "15m": 96, "30m": 48, "60m": 24, "90m": 16, "1h": 24,
               "1d": 1, "5d": 0.2, "1wk": 1 / 7, "1mo": 1 / 30, "3mo": 1 / 90}.get(base["interval"], 1)
    return max(int(days * per_day), 1)


def _plan_grid(config: dict, exp: Experiment, dkey: str, start: str, end: str, cores: int,
               shards_hint: int | None, plan_new: list[str], plan_reused: list[str],
               force: bool = False, returns: bool = True) -> dict:
    """Shard one grid on one data window; returns {family, combo_keys, shards} for the request.
    With ``force`` no finished shard is reused: every combination is planned again. ``returns``:
    the shards keep their combinations' return series (robustness on), so only shards that kept
    them are reused, and new ones are keyed apart from shards that did not."""
    family = _family(dkey, exp, start)
    keys = [combo_key(family, c) for c in exp.combos]
    cached = {} if force else _cached_combos(family, need_returns=returns)
    missing = [i for i, k in enumerate(keys) if k not in cached]
    shards_used = sorted({cached[k] for k in keys if k in cached})
    plan_reused.extend(shards_used)
    if missing:
        work = len(missing) * _estimate_bars(exp.base, start, end)
        n = shards_hint or max(1, min(math.ceil(work / WORK_PER_SHARD), 2 * max(cores, 1)))
        n = max(1, min(n, len(missing)))
        size = math.ceil(len(missing) / n)
        for j in range(0, len(missing), size):
            chunk = missing[j:j + size]
            ckeys = [keys[i] for i in chunk]
            shard = canonical_hash({"keys": sorted(ckeys), "returns": True} if returns else sorted(ckeys), 16)
            config["shards"][shard] = {"returns": returns,
                "family": family, "data": dkey, "strategy": exp.strategy,
                "combos": [exp.combos[i] for i in chunk], "combo_keys": ckeys,
                "engine": {k: exp.base[k] for k in ENGINE_KEYS}, "start": start,
                "ticker": exp.base["ticker"], "interval": exp.base["interval"],
            }
            shards_used.append(shard)
            plan_new.append(shard)
    return {"family": family, "combo_keys": keys,
            "shards": [f"store/sweep/{family}/shards/{s}.parquet" for s in sorted(set(shards_used))]}


def plan_sweep(exp: Experiment, params: dict, *, request_id: Any, warnings: list[str], origin: str,
               cores: int = 2, claim: bool = True, force: bool = False) -> SweepPlan:
    from quantlab.strategies import get_strategy

    out_dir = resolve_output_dir(params.get("out_dir"), outputs_root() / "runs")
    strategy = get_strategy(exp.strategy)
    lookback = max(int(strategy.warmup_bars({k: v for k, v in c.items() if k not in ("fee", "slippage_bps", "k_atr")}))
                   for c in exp.combos)
    config: dict[str, Any] = {"kind": "sweep", "planned": True, "data": {}, "shards": {}, "wf_splits": {},
                              "requests": {}}
    new: list[str] = []
    reused: list[str] = []
    shards_hint = params.get("shards")
    robust = params.get("robustness") is True  # off by default: docs/robustness.md, "Cost"
    request: dict[str, Any] = {}
    if exp.mode == "grid":
        dkey, spec = make_data_spec(exp.base, exp.base["start"], exp.base["end"], lookback)
        config["data"][dkey] = spec
        request["grid"] = _plan_grid(config, exp, dkey, exp.base["start"], exp.base["end"], cores,
                                     shards_hint, new, reused, force, robust)
    else:
        request["splits"] = []
        for split in exp.splits:
            tkey, tspec = make_data_spec(exp.base, split.train_start, split.train_end, lookback)
            ekey, espec = make_data_spec(exp.base, split.test_start, split.test_end, lookback)
            config["data"][tkey] = tspec
            config["data"][ekey] = espec
            train = _plan_grid(config, exp, tkey, split.train_start, split.train_end, cores, shards_hint, new,
                               reused, force, robust)
            split_id = canonical_hash({"train": train["family"], "test": ekey, "sel": [exp.sort_by, exp.ascending,
                                       exp.top_k, exp.min_trades], "keys": train["combo_keys"],
                                       "robustness": robust}, 16)
            config["wf_splits"][split_id] = {
                "name": split.name, "train": train, "test_data": ekey, "test_start": split.test_start,
                "test_end": split.test_end, "train_start": split.train_start, "train_end": split.train_end,
                "strategy": exp.strategy, "engine": {k: exp.base[k] for k in ENGINE_KEYS},
                "ticker": exp.base["ticker"], "interval": exp.base["interval"],
                "combos": exp.combos, "labels": exp.labels,
                "sort_by": exp.sort_by, "ascending": exp.ascending, "top_k": exp.top_k,
                "min_trades": exp.min_trades, "robustness": robust,
            }
            request["splits"].append(split_id)
    identity = {"experiment": exp.raw, "combos": exp.combos}
    digest = canonical_hash(identity, 7, algo="sha1")
    if claim:
        run_id, ts = claim_run_id(out_dir, exp.mode, digest)
    else:
        run_id, ts = peek_run_id(exp.mode, digest)
    record = {
        "run_id": run_id, "created_at": iso_z(ts), "request_id": request_id,
        "out_dir": str(out_dir), "origin": origin, "mode": exp.mode, "warnings": warnings,
        "experiment": exp.raw, "base": exp.base, "strategy": exp.strategy, "grid_keys": exp.grid_keys,
        "combos": exp.combos, "labels": exp.labels, "sort_by": exp.sort_by, "ascending": exp.ascending,
        "top_k": exp.top_k, "min_trades": exp.min_trades, "source_path": exp.source_path,
        "combinations_total": exp.combinations_total or len(exp.combos), "skipped": exp.skipped,
        "new_shards": sorted(new), "reused_shards": sorted(set(reused)), "robustness": robust, **request,
    }
    config["requests"][run_id] = record
    return SweepPlan(run_id=run_id, created_at=record["created_at"], experiment=exp, request_id=request_id,
                     out_dir=out_dir, config=config, new_shards=sorted(new), reused_shards=sorted(set(reused)),
                     warnings=warnings, origin=origin)


# -------------------------------------------------------------------------------------- steps
def _evaluate(bars, spec: dict, combos: list[dict], threads: int | None = None, keep_returns: bool = False):
    from quantlab.commands.run import _engine_config, _trade_start
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.metrics import bar_calendar

    start = _trade_start(bars, {"start": spec["start"], "ticker": spec["ticker"]})
    ppy = bar_calendar(bars.index, spec["interval"])["periods_per_year"]  # as a run of the same bars
    out = evaluate_grid(bars.open, bars.high, bars.low, bars.close, spec["strategy"], combos,
                        _engine_config(spec["engine"]), start=start, periods_per_year=ppy,
                        threads=threads or shard_threads(), keep_returns=keep_returns, volume=bars.volume)
    return (*out, ppy) if keep_returns else out  # keep_returns: (metrics, returns, periods per year)


def shard_threads() -> int:
    """Threads a sweep shard declares (the rule's ``threads:``): QUANTLAB_SWEEP_THREADS, default 2."""
    return int(os.environ.get("QUANTLAB_SWEEP_THREADS", "2"))


def prefetch_sweep(data_specs: list[dict], strategy: str, combo: dict, warm_numba: bool) -> None:
    """Worker warm-up (see commands/worker.py): parse bundled data into the loader's memo and, for
    big grids, load the numba grid kernels while the parent is still starting Snakemake."""
    import numpy as np

    from quantlab.commands.run import prefetch_data

    for spec in data_specs:
        prefetch_data(spec)
    if not warm_numba:
        return
    from quantlab.engine import EngineConfig
    from quantlab.engine.sweep import evaluate_grid

    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    previous = os.environ.get("QUANTLAB_JIT")
    os.environ["QUANTLAB_JIT"] = "always"
    try:
        evaluate_grid(close, close * 1.01, close * 0.99, close, strategy, [combo], EngineConfig(), start=0,
                      periods_per_year=252.0, threads=1)
    finally:
        if previous is None:
            os.environ.pop("QUANTLAB_JIT", None)
        else:
            os.environ["QUANTLAB_JIT"] = previous


@warm_step
def step_sweep_shard(spec: dict, bars_path: str, out_parquet: str, out_sidecar: str,
                     threads: int | None = None) -> None:
    """Evaluate one shard of combinations on ``threads`` threads (the rule's ``threads``, as the
    scheduler granted them). With ``spec["returns"]`` (robustness on) each combination's per-bar
    net returns go to ``<shard>.returns.npy`` (float32, combos x bars, rows in the shard's key
    order) and its PSR to the ``psr`` column; else that file holds a (0, 0) array. The sidecar is
    written last (it marks completion) and says whether the returns were kept."""
    import io

    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.data import read_bars

    bars = read_bars(bars_path)
    keep = spec.get("returns", True)
    returns, psr = np.zeros((0, 0), dtype=np.float32), None
    if keep:
        from quantlab.robustness import probabilistic_sharpe_columns

        metrics, returns, ppy = _evaluate(bars, spec, spec["combos"], threads, keep_returns=True)
        psr = (probabilistic_sharpe_columns(returns.T) if returns.shape[0] and returns.shape[1]
               else np.full(returns.shape[0], np.nan))
    else:
        metrics = _evaluate(bars, spec, spec["combos"], threads)
    buf = io.BytesIO()
    np.save(buf, returns, allow_pickle=False)
    del returns
    atomic_write_bytes(returns_path(out_parquet), buf.getvalue())
    del buf
    cols = {name: np.asarray(metrics[name], dtype=np.float64) for name in metric_names()}
    meta = {"keys": json.dumps(spec["combo_keys"]), "bars_available": str(len(bars))}
    if keep:
        cols["psr"] = np.asarray(psr, dtype=np.float64)  # per-combination PSR vs 0 (a leaderboard column)
        meta["periods_per_year"] = repr(float(ppy))
    atomic_write_bytes(out_parquet, parquet_bytes(table_from_numpy(cols, meta)))
    atomic_write_json(out_sidecar, {"combos": [{"key": k, "params": c}
                                               for k, c in zip(spec["combo_keys"], spec["combos"])],
                                    "returns": keep})


def returns_path(shard_parquet) -> str:
    """The per-bar returns file of a shard (beside its parquet)."""
    return str(shard_parquet)[: -len(".parquet")] + ".returns.npy"


def load_returns_matrix(shard_paths: list[str], keys: list[str]):
    """(bars, len(keys)) float32 returns of the combinations ``keys`` (columns in that order), read
    shard by shard (memory-mapped) from the shards' returns files, and the bars' periods per year;
    (None, None) when a shard has none."""
    import numpy as np

    from quantlab.columnar import metadata_of, read_parquet

    where = {key: j for j, key in enumerate(keys)}
    out, ppy = None, None
    for path in shard_paths:
        rpath = returns_path(path)
        meta = metadata_of(read_parquet(path))
        if not os.path.isfile(rpath) or "periods_per_year" not in meta:
            return None, None
        ppy = float(meta["periods_per_year"])
        shard_keys = json.loads(meta["keys"])
        data = np.load(rpath, mmap_mode="r", allow_pickle=False)
        if data.shape[0] != len(shard_keys):  # a shard that did not keep its returns
            return None, None
        if out is None:
            out = np.empty((len(keys), data.shape[1]), dtype=np.float32)
        for i, key in enumerate(shard_keys):
            j = where.get(key)
            if j is not None:
                out[j] = data[i]
        del data
    return (None, None) if out is None else (out.T, ppy)


def robustness_of(shard_paths: list[str], rows: list[dict]) -> dict | None:
    """``robustness.robustness_report`` over the ranked ``rows`` (trials: every row, best: the
    first); None without rows or without return series."""
    from quantlab.robustness import robustness_report

    if not rows:
        return None
    mat, ppy = load_returns_matrix(shard_paths, [r["combo_key"] for r in rows])
    if mat is None or mat.shape[0] < 2:
        return None
    return robustness_report(mat, 0, ppy, seed=0)


def _load_shards(paths: list[str]) -> tuple[dict[str, dict], int | None]:
    """combo key -> metrics dict (None for undefined), from shard files; and the bars the
    shards' window had (warm-up history included; None if a shard does not say)."""
    from quantlab.columnar import column_to_numpy, metadata_of, read_parquet

    out: dict[str, dict] = {}
    available: int | None = None
    for path in paths:
        table = read_parquet(path)
        meta = metadata_of(table)
        keys = json.loads(meta["keys"])
        available = int(meta["bars_available"]) if "bars_available" in meta else None
        cols = {name: column_to_numpy(table, name) for name in metric_names()}
        psr = column_to_numpy(table, "psr") if "psr" in table.column_names else None
        for i, key in enumerate(keys):
            row = {}
            for name in metric_names():
                v = float(cols[name][i])
                row[name] = None if math.isnan(v) else (int(v) if name in integer_names() else v)
            if psr is not None:
                row[PSR_KEY] = None if math.isnan(float(psr[i])) else float(psr[i])
            out[key] = row
    return out, available


def _warmup(strategy, combo: dict) -> int:
    from quantlab.commands.experiment import ENGINE_GRID_KEYS

    return int(strategy.warmup_bars({k: v for k, v in combo.items() if k not in ENGINE_GRID_KEYS}))


def drop_insufficient(rows: list[dict], available: int | None, strategy_name: str,
                      window: dict) -> tuple[list, list]:
    """Split rows into those whose combination has enough bars (warm-up + 1 tradable bar) and
    skipped entries for the others; ``DataError`` (exit 3) when none has enough.
    ``window``: ticker, start, end (for the message)."""
    from quantlab.commands.experiment import _skipped_entry
    from quantlab.commands.run import bars_needed, insufficient_message
    from quantlab.strategies import get_strategy

    if available is None:  # not recorded: nothing to check against
        return rows, []
    strategy = get_strategy(strategy_name)
    kept, skipped, least = [], [], None
    for r in rows:
        warmup = _warmup(strategy, r["params"])
        if available >= bars_needed(warmup):
            kept.append(r)
            continue
        least = warmup if least is None else min(least, warmup)
        msg = insufficient_message(window["ticker"], window["start"], window["end"], available, strategy.name,
                                   warmup)
        skipped.append(_skipped_entry(r["params"], r.get("label"), "insufficient_data", msg))
    if rows and not kept:
        raise DataError(insufficient_message(window["ticker"], window["start"], window["end"], available,
                                             strategy.name, least)
                        + f" (no combination of {len(rows)} has enough bars)")
    return kept, skipped


def rank_rows(rows: list[dict], sort_by: list[str], ascending: list[bool]) -> list[dict]:
    """Stable multi-key sort; undefined (None) values always rank last."""
    ordered = list(rows)
    for metric, asc in reversed(list(zip(sort_by, ascending))):
        present = [r for r in ordered if r["metrics"].get(metric) is not None]
        absent = [r for r in ordered if r["metrics"].get(metric) is None]
        present.sort(key=lambda r: r["metrics"][metric], reverse=not asc)
        ordered = present + absent
    for i, r in enumerate(ordered, 1):
        r["rank"] = i
    return ordered


def _rows(record_like: dict, keys: list[str], results: dict[str, dict]) -> list[dict]:
    rows = []
    for i, (key, combo) in enumerate(zip(keys, record_like["combos"])):
        if key not in results:
            raise DataError(f"sweep result missing for combination {json.dumps(combo)}")
        metrics = dict(results[key])
        extra = {"psr": metrics.pop(PSR_KEY)} if PSR_KEY in metrics else {}
        rows.append({"index": i, "label": record_like["labels"][i], "params": combo, "metrics": metrics,
                     "combo_key": key, **extra})
    return rows


@warm_step
def step_wf_select(spec: dict, shard_paths: list[str], out_path: str) -> None:
    """Rank the train results, drop combos under min_trades, keep top_k."""
    results, available = _load_shards(shard_paths)
    rows = _rows(spec, spec["train"]["combo_keys"], results)
    rows, skipped = drop_insufficient(rows, available, spec["strategy"], {
        "ticker": spec["ticker"], "start": spec["train_start"], "end": spec["train_end"]})
    ranked = rank_rows(rows, spec["sort_by"], spec["ascending"])
    eligible = [r for r in ranked if (r["metrics"].get("trades") or 0) >= spec["min_trades"]]
    selected = eligible[: spec["top_k"]]
    out = {"train": ranked, "eligible": len(eligible), "selected": [r["index"] for r in selected],
           "skipped": skipped}
    if spec.get("robustness", False):
        # trials: every train combination evaluated; best: the one carried to the test window
        chosen = [r for r in ranked if selected and r["index"] == selected[0]] + \
                 [r for r in ranked if not (selected and r["index"] == selected[0])]
        out["robustness"] = robustness_of(shard_paths, chosen)
    atomic_write_json(out_path, out)


@warm_step
def step_wf_test(spec: dict, selected_path: str, bars_path: str, out_path: str, equity_out: str) -> None:
    """Evaluate the selected combos on the test window; keep the rank-1 combo's test series."""
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.commands.run import _engine_config, _trade_start, require_bars
    from quantlab.data import read_bars
    from quantlab.engine import simulate
    from quantlab.strategies import get_strategy

    selected = read_json(selected_path)
    idx = selected["selected"]
    bars = read_bars(bars_path)
    combos = [spec["combos"][i] for i in idx]
    test_spec = {**spec, "start": spec["test_start"]}
    strategy = get_strategy(spec["strategy"])
    for combo in combos:
        require_bars(len(bars), {"ticker": spec["ticker"], "start": spec["test_start"], "end": spec["test_end"],
                                 "strategy": strategy.name, "warmup": _warmup(strategy, combo)})
    metrics = _evaluate(bars, test_spec, combos) if combos else {}
    rows = []
    for j, i in enumerate(idx):
        row = {}
        for name in metric_names():
            v = float(metrics[name][j])
            row[name] = None if math.isnan(v) else (int(v) if name in integer_names() else v)
        rows.append({"index": i, "label": spec["labels"][i], "params": spec["combos"][i], "metrics": row,
                     "rank_in_train": j + 1})
    trades_meta: list = []
    start = _trade_start(bars, {"start": spec["test_start"], "ticker": spec["ticker"]})
    if not combos:  # nothing selected: the out-of-sample window stays flat (in cash)
        m = len(bars) - start
        cols = {"timestamp": bars.index[start:], "returns": np.zeros(m), "position": np.zeros(m, dtype=np.int8),
                "close": bars.close[start:]}
    else:
        combo = dict(combos[0])
        engine = dict(spec["engine"])
        for key in ("fee", "slippage_bps", "k_atr"):
            if key in combo:
                engine[key] = combo.pop(key)
        extra = {"volume": bars.volume} if getattr(strategy, "uses_volume", False) else {}
        sig = strategy.signals(bars.open, bars.high, bars.low, bars.close, combo, **extra)
        res = simulate(bars.open, bars.high, bars.low, bars.close, sig, _engine_config(engine), start=start)
        cols = {"timestamp": bars.index[start:], "returns": np.asarray(res.returns, dtype=float),
                "position": np.asarray(res.position, dtype=np.int8), "close": bars.close[start:]}
        t = res.trades
        trades_meta = [[int(a) - start, int(b) - start, int(s), float(p), float(r)] for a, b, s, p, r in
                       zip(t.entry_idx, t.exit_idx, t.side, t.pnl, t.ret)]
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
        for a, b, s, p, ret in json.loads(metadata_of(eq)["trades"]):
            trades.append((a + offset, b + offset, s, p, ret))
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
                      bars_held=np.array([t[1] - t[0] for t in trades], dtype=np.int64))
        res = SimResult(equity=equity, position=np.concatenate(positions), returns=r, trades=tl, open_position=0)
        ppy = bar_calendar(np.concatenate(stamps), record["base"]["interval"])["periods_per_year"]
        oos_metrics = compute_metrics(res, np.concatenate(closes), start=0, periods_per_year=ppy,
                                      initial_cash=initial)
    ts = [str(t)[:19] + "Z" for t in (np.concatenate(stamps) if stamps else [])]
    atomic_write_json(out_path, {"splits": splits_out, "oos": {"metrics": oos_metrics, "timestamps": ts,
                                                               "equity": equity.tolist(), "returns": r.tolist()}})


# -------------------------------------------------------------------------------- publishing
def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value).replace(",", ";")


def leaderboard_csv(rows: list[dict], param_keys: list[str], lead: tuple[str, ...] = ()) -> str:
    """One row per combination: rank, label, ``lead`` row fields, params, every metric, ``psr``
    (each combination's probabilistic Sharpe vs 0, when the rows carry it), combo key."""
    trail = ("psr",) if any("psr" in r for r in rows) else ()
    header = ["rank", "label", *lead, *param_keys, *metric_names(), *trail, "combo_key"]
    lines = [",".join(header)]
    for r in rows:
        cells = [r.get("rank"), r.get("label"), *(r.get(k) for k in lead), *(r["params"].get(k) for k in param_keys),
                 *(r["metrics"].get(m) for m in metric_names()), *(r.get(k) for k in trail), r.get("combo_key", "")]
        lines.append(",".join(_csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def _param_columns(record: dict) -> list[str]:
    keys = sorted({k for c in record["combos"] for k in c})
    varying = [k for k in record["grid_keys"] if k in keys]
    return varying + [k for k in keys if k not in varying]


def _best_result(row: dict) -> dict:
    out = {"label": row.get("label"), "rank": row.get("rank"), "params": row["params"], **row["params"],
           **row["metrics"]}
    return out


def _experiment_yaml(record: dict) -> str:
    import yaml

    header = ("# The resolved experiment of this sweep: rerun it with\n"
              "#   python main.py sweep experiment.yaml\n")
    plain = json.loads(json.dumps(record["experiment"]))  # Snakemake hands config over as OrderedDicts
    return header + yaml.safe_dump(plain, sort_keys=False, default_flow_style=None)


@warm_step
def step_publish_sweep(record: dict, merged_path: str, marker_out: str) -> dict:
    from quantlab.artifacts.io import atomic_copy

    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    staging.mkdir(parents=True, exist_ok=True)
    merged = read_json(merged_path)
    params_cols = _param_columns(record)
    mode = record["mode"]
    objective = record["sort_by"][0]
    files = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
             "report": "report.json", "run_report": "run_report.md", "leaderboard": "leaderboard.csv",
             "experiment": "experiment.yaml"}
    late_warnings: list[str] = []  # found while the sweep ran (the record's were printed at planning)
    if mode == "grid":  # the board (commands/sweep_board.py): its files are copied, its rows never read
        board = Path(merged_path).parent
        best = merged["best"]
        insufficient = merged.get("skipped", [])
        if best is not None and best["metrics"].get("trades") == 0:
            late_warnings.append(f"the best combination ({_who(best)}) made 0 trades: its metrics describe "
                                 "a strategy that never traded")
        atomic_copy(board / "leaderboard.csv", staging / "leaderboard.csv")
        if merged["heatmap"]:
            atomic_copy(board / "heatmap.png", staging / "heatmap.png")
            files["heatmap"] = "heatmap.png"
        summary = summary_of(best["metrics"] if best else {})
        best_result = _best_result(best) if best else None
        robustness = merged.get("robustness")
        extra_metrics = {"n_runs": merged["n_rows"], "leaderboard_size": merged["n_rows"]}
    else:
        oos = merged["oos"]
        all_test, all_rows = [], []
        split_summary = []
        for s in merged["splits"]:
            sdir = staging / "splits" / s["name"].replace("/", "_")
            sdir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(sdir / "train_leaderboard.csv", leaderboard_csv(s["train"], params_cols))
            test_rows = [{**t, "rank": t["rank_in_train"]} for t in s["test"]]
            atomic_write_text(sdir / "test_leaderboard.csv", leaderboard_csv(test_rows, params_cols))
            all_test.extend({**t, "split": s["name"]} for t in test_rows)
            best_train = s["train"][0]["metrics"] if s["train"] else {}
            top = s["test"][0]["metrics"] if s["test"] else {}
            split_summary.append({"split": s["name"], "n_train_runs": len(s["train"]),
                                  "n_eligible": s["eligible"], "n_selected": len(s["test"]),
                                  "best_train_sharpe": best_train.get("sharpe_simple"),
                                  "best_train_return": best_train.get("total_return"),
                                  "test_sharpe_rank1": top.get("sharpe_simple"),
                                  "test_return_rank1": top.get("total_return")})
            all_rows.extend(s["train"])
        header = list(split_summary[0]) if split_summary else ["split"]
        atomic_write_text(staging / "walkforward_summary.csv",
                          "\n".join([",".join(header)] + [",".join(_csv_cell(r[h]) for h in header)
                                                          for r in split_summary]) + "\n")
        atomic_write_text(staging / "leaderboard.csv", leaderboard_csv(all_test, params_cols, lead=("split",)))
        _write_oos(staging / "oos_equity.parquet", oos)
        files.update({"walkforward_summary": "walkforward_summary.csv", "oos_equity": "oos_equity.parquet",
                      "splits": "splits/"})
        metrics_oos = oos["metrics"] or {}
        summary = summary_of(metrics_oos)
        last = merged["splits"][-1] if merged["splits"] else None
        best_row = last["test"][0] if last and last["test"] else None
        best_result = ({**_best_result({**best_row, "rank": 1}), "split": last["name"],
                        "selected_on": "train", "oos": metrics_oos} if best_row else None)
        insufficient = []
        for s in merged["splits"]:
            insufficient.extend(s.get("skipped", []))
            if not s["test"]:
                late_warnings.append(f"split {s['name']}: no candidate passed the selection constraints "
                                     f"(min_trades={record['min_trades']}, {s['eligible']} eligible): nothing "
                                     "selected, the out-of-sample window is flat (no trades)")
        if (metrics_oos.get("trades") == 0) and all(s["test"] for s in merged["splits"]):
            late_warnings.append("the stitched out-of-sample result made 0 trades")
        robustness = walkforward_robustness(merged["splits"]) if record.get("robustness", False) else None
        extra_metrics = {"n_splits": len(merged["splits"]),
                         "n_train_runs": sum(len(s["train"]) for s in merged["splits"]),
                         "n_selected": sum(len(s["test"]) for s in merged["splits"]),
                         "n_test_runs": sum(len(s["test"]) for s in merged["splits"]),
                         "oos_metrics": metrics_oos, "splits": split_summary}
    unique_insufficient = list({json.dumps(e["params"], sort_keys=True): e for e in insufficient}.values())
    skipped = list(record.get("skipped", [])) + unique_insufficient
    total = int(record.get("combinations_total") or len(record["combos"]))
    combos_info = skipped_summary(total, skipped, len(record["combos"]) - len(unique_insufficient))
    if unique_insufficient:
        late_warnings.append(skipped_warning(unique_insufficient, total))
    robust_fields = {}
    if record.get("robustness", False):
        robust_fields["robustness"] = robustness
        if robustness and robustness.get("verdict") == "likely_overfit":
            late_warnings.append("robustness verdict likely_overfit: " + "; ".join(robustness["verdict_reasons"])
                                 + " (machine_contract.robustness)")
    warnings = list(record["warnings"]) + late_warnings
    extra_metrics.update(combos_info)
    config = {**record["experiment"]}
    atomic_write_json(staging / "config.json", config, sort_keys=True)
    atomic_write_text(staging / "experiment.yaml", _experiment_yaml(record))
    metrics = {"command": "sweep", "mode": mode, "status": "success", "summary": summary,
               "best_result": best_result, "objective": objective, "sort_by": record["sort_by"],
               **extra_metrics}
    atomic_write_json(staging / "metrics.json", metrics, sort_keys=True)
    info = runtime_info()
    metadata = {"run_id": run_id, "command": "sweep", "mode": mode, "status": "success",
                "created_at": record["created_at"], "request_id": record["request_id"],
                "config_path": record.get("source_path") or "inline_request",
                "config_hash": canonical_hash(config, algo="sha1"), "summary": summary,
                "n_combinations": len(record["combos"]), "strategy": record["strategy"],
                "shards_computed": record["new_shards"], "shards_reused": record["reused_shards"],
                "code_fingerprint": code_fingerprint(), "warnings": warnings, **info}
    atomic_write_json(staging / "metadata.json", metadata, sort_keys=True)
    atomic_write_text(staging / "run_report.md", _sweep_report_md(record, summary, best_result, metrics,
                                                                 robust_fields.get("robustness")))
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract, report_document

    mc = machine_contract("sweep", "sweep", record["request_id"], run_id=run_id, mode=mode, summary=summary,
                          best_result=best_result, artifacts=files, **combos_info, warnings=warnings,
                          **robust_fields)
    report = report_document(
        artifact_type="quantlab_run_report", mc=mc, summary=summary,
        header={"run_id": run_id, "mode": mode, "created_at": record["created_at"],
                "git_commit": info["git_commit"], "python_version": info["python_version"],
                "config_path": metadata["config_path"], "config_hash": metadata["config_hash"],
                "request_id": record["request_id"]},
        sections={"reproduce": {"command": "python main.py sweep experiment.yaml"}, "config_resolved": config,
                  "results": (merged["top"] if mode == "grid" else None)},
        artifacts=artifact_listing(staging))
    if mode == "walkforward":
        report["walkforward"] = extra_metrics
    atomic_write_json(staging / "report.json", report)
    return publish_staging(staging, final, marker_out, {
        "run_id": run_id, "mode": mode, "artifacts_path": str(final),
        "report_path": str(final / "report.json"), "summary": summary, "warnings": late_warnings})


_VERDICT_ORDER = {"likely_overfit": 0, "inconclusive": 1, "robust": 2}


def walkforward_robustness(splits: list[dict]) -> dict:
    """The walk-forward robustness block: each split's report on its train grid (the selected
    combination as the best), walk-forward efficiency (the selected combination's OOS vs IS
    cagr), parameter stability of the selections, and the worst split verdict."""
    from quantlab.robustness import parameter_stability, walk_forward_efficiency

    per_split, is_r, oos_r, chosen = [], [], [], []
    for s in splits:
        per_split.append({"split": s["name"], **(s.get("robustness") or {"verdict": None})})
        if not s["test"]:
            continue
        pick = s["test"][0]
        train = next((r for r in s["train"] if r["index"] == pick["index"]), None)
        chosen.append(pick["params"])
        if train is not None and train["metrics"].get("cagr") is not None \
                and pick["metrics"].get("cagr") is not None:
            is_r.append(train["metrics"]["cagr"])
            oos_r.append(pick["metrics"]["cagr"])
    verdicts = [p["verdict"] for p in per_split if p.get("verdict") is not None]
    worst = min(verdicts, key=_VERDICT_ORDER.__getitem__) if verdicts else None
    reasons = [f"split {p['split']}: {p['verdict']}" for p in per_split if p.get("verdict") == worst]
    return {"splits": per_split, "walk_forward_efficiency": walk_forward_efficiency(is_r, oos_r),
            "parameter_stability": parameter_stability(chosen), "verdict": worst,
            "verdict_reasons": reasons}


def _who(row: dict) -> str:
    if row.get("label") is not None:
        return f"'{row['label']}'"
    return ", ".join(f"{k}={v}" for k, v in row["params"].items())


def _write_oos(path: Path, oos: dict) -> None:
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy

    ts = np.array([t.rstrip("Z") for t in oos["timestamps"]], dtype="datetime64[ns]")
    atomic_write_bytes(path, parquet_bytes(table_from_numpy({
        "timestamp": ts, "equity": np.asarray(oos["equity"], dtype=float),
        "returns": np.asarray(oos["returns"], dtype=float)})))


def _robustness_md(rb: dict | None) -> list[str]:
    """The run report's short robustness section."""
    if rb is None:
        return ["", "## Robustness", "", "Not computed (no return series).", ""]
    fmt = format_value
    lines = ["", "## Robustness", "", f"- verdict: **{rb.get('verdict')}** ({'; '.join(rb.get('verdict_reasons') or [])})"]
    reports = rb["splits"] if "splits" in rb else [dict(rb, split=None)]
    for r in reports:
        if r.get("trials") is None:
            continue
        where = f"split {r['split']}: " if r.get("split") else ""
        lines.append(f"- {where}{r['trials']} trials ({fmt(r['effective_trials'])} effective), "
                     f"PSR {fmt(r['probabilistic_sharpe'])}, DSR {fmt(r['deflated_sharpe'])}, "
                     f"expected max Sharpe {fmt(r['expected_max_sharpe'])}, PBO {fmt(r['pbo']['pbo'])}, "
                     f"Sharpe CI [{fmt(r['sharpe_ci']['low'])}, {fmt(r['sharpe_ci']['high'])}]")
    if "walk_forward_efficiency" in rb:
        lines.append(f"- walk-forward efficiency {fmt(rb['walk_forward_efficiency']['efficiency'])}, "
                     f"parameter stability {fmt(rb['parameter_stability']['stability'])}")
    lines += ["", "See docs/robustness.md for what each number means.", ""]
    return lines


def _sweep_report_md(record: dict, summary: dict, best: dict | None, metrics: dict,
                     robustness: dict | None = None) -> str:
    base = record["base"]

    fmt = format_value

    lines = [f"# Sweep {record['run_id']} ({record['mode']})", "",
             f"- ticker: {base['ticker']} ({base['interval']}), {base['start']} .. {base['end']}",
             f"- strategy: {record['strategy']}, {len(record['combos'])} combinations "
             f"(grid keys: {', '.join(record['grid_keys'])})",
             f"- ranking: {', '.join(record['sort_by'])}",
             f"- shards computed: {len(record['new_shards'])}, reused: {len(record['reused_shards'])}", "",
             "## Summary" + (" (stitched out-of-sample)" if record["mode"] == "walkforward" else " (best)"), "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in summary.items()]
    if best:
        lines += ["", "## Best configuration", "", "```", json.dumps(best.get("params"), sort_keys=True), "```"]
    lines += ["", "Files: leaderboard.csv, experiment.yaml, metrics.json, report.json"
              + (", heatmap.png" if record["mode"] == "grid" else ", walkforward_summary.csv, splits/, oos_equity.parquet"),
              ""]
    if record.get("robustness", False):
        lines += _robustness_md(robustness)
    return "\n".join(lines)
