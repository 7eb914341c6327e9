"""The ``sweep`` command's planner: an experiment -> :class:`SweepPlan` (data keys, content-addressed
shards, run id).

A shard is a set of combinations evaluated by one job (the grid engine, vectorised/numba over
its combos). Shard files are content-addressed: ``store/sweep/<family>/shards/<key>.parquet``,
where the family is (data, strategy, engine settings, window, code) and the key is a hash of the
combination keys it holds. A sidecar ``<key>.json`` lists them; ``<key>.robust.npz`` holds
what the robustness statistics need of their per-bar returns (``robust_sweep.ShardSummary``). The planner reads the sidecars,
so an identical sweep finds every combination computed, a widened grid computes only the new
combinations, and a killed sweep resumes from its finished shards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import read_json
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint
from quantlab.commands.experiment import ENGINE_GRID_KEYS, Experiment
from quantlab.commands.run.plan import ENGINE_KEYS, make_data_spec
from quantlab.commands.common import StagedPlan
from quantlab.contract.paths import internal_root, outputs_root, resolve_output_dir
from quantlab.contract.runid import claim_run_id, iso_z, peek_run_id
from quantlab.store_layout import SHARD_SUMMARY


WORK_PER_SHARD = 2_000_000  # bar-combos per shard job (a few tens of ms of kernel time)
# a grid sweep of at most this many bar-combos (~0.3 s of kernel time on 2 threads) is computed
# ahead whole, board included, by the step worker (commands/speculate.py): its shard jobs then
# only move files, and no progress is lost (it ends about as soon as Snakemake has started).
# (At 10,000 combinations on 5,000 bars, 73M estimated, computing every shard ahead measured no
# better than shards as jobs, and more CPU under load: the shards then compete with Snakemake's
# import.) Its shards are then as big as ~100 MB of float32 per-bar values allows
# (WHOLE_SHARD_WORK): each shard job costs a hand-off, a bars read and its file writes, and the
# kernel threads within a shard anyway (1,000 combos on 5,000 bars: one shard instead of four)
SPECULATE_ALL_WORK = 40_000_000
WHOLE_SHARD_WORK = 25_000_000


def computed_whole(mode: str, work: int) -> bool:
    """Whether a sweep of ``work`` new bar-combos (``estimate_bars`` x new combinations) is
    computed ahead whole by the step worker: a grid of at most ``SPECULATE_ALL_WORK``."""
    return mode == "grid" and work <= SPECULATE_ALL_WORK


@dataclass
class SweepPlan(StagedPlan):
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
    kind = "sweep"


def _family(dkey: str, exp: Experiment, start: str) -> str:
    engine = {k: exp.base[k] for k in ENGINE_KEYS}
    return canonical_hash({"data": dkey, "strategy": exp.strategy, "engine": engine, "start": start,
                           "risk_free_rate": exp.base["risk_free_rate"], "code": code_fingerprint()}, 16)


def combo_key(family: str, combo: dict) -> str:
    return canonical_hash({"family": family, "params": combo}, 16)


def combo_keys(family: str, combos: list[dict]) -> list[str]:
    """:func:`combo_key` of every combination, with one JSON encoder (the same text: the sorted
    keys of ``{"family", "params"}`` come in that order)."""
    import hashlib
    import json

    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode
    head = '{"family":' + encode(family) + ',"params":'
    return [hashlib.sha256((head + encode(c) + "}").encode()).hexdigest()[:16] for c in combos]


def likely_jit(params: dict) -> bool:
    """Whether a sweep request's grid (read from its params, before planning) will run its
    kernels under numba (``engine.jit.COLD_THRESHOLD`` bar-combos): an early step worker then
    starts numba while the parent plans. False when the grid is not inline (an experiment file)."""
    from quantlab.commands.warmup import estimate_bars as bars_in
    from quantlab.engine.jit import COLD_THRESHOLD

    grid = params.get("param_grid")
    if not isinstance(grid, dict) or not grid:
        return False
    try:
        combos = math.prod(len(v) if isinstance(v, (list, tuple)) else 1 for v in grid.values())
        bars = bars_in(params.get("interval") or "1d", params["start"], params["end"])
    except Exception:  # noqa: BLE001 - a bad request is the planner's to report
        return False
    return combos * bars >= COLD_THRESHOLD


def _cached_combos(family: str, need_returns: bool = False) -> dict[str, str]:
    """combo key -> shard key, from the finished shards' sidecars of a family (with
    ``need_returns``, only shards whose returns were summarised for the robustness statistics)."""

    shard_dir = internal_root() / "store" / "sweep" / family / "shards"
    found: dict[str, str] = {}
    try:
        entries = sorted(shard_dir.glob("*.json"))
    except OSError:
        return found
    for sidecar in entries:
        shard = sidecar.stem
        if not ((shard_dir / f"{shard}.parquet").is_file() and (shard_dir / f"{shard}{SHARD_SUMMARY}").is_file()):
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


def estimate_bars(base: dict, start: str, end: str) -> int:
    from quantlab.commands.warmup import estimate_bars as bars_in

    return bars_in(base["interval"], start, end)


def _plan_grid(config: dict, exp: Experiment, dkey: str, start: str, end: str, cores: int,
               shards_hint: int | None, plan_new: list[str], plan_reused: list[str],
               force: bool = False, returns: bool = True) -> dict:
    """Shard one grid on one data window; returns {family, combo_keys, shards} for the request.
    With ``force`` no finished shard is reused: every combination is planned again. ``returns``:
    the shards keep their combinations' return series (robustness on), so only shards that kept
    them are reused, and new ones are keyed apart from shards that did not."""
    family = _family(dkey, exp, start)
    keys = combo_keys(family, exp.combos)
    cached = {} if force else _cached_combos(family, need_returns=returns)
    missing = [i for i, k in enumerate(keys) if k not in cached]
    shards_used = sorted({cached[k] for k in keys if k in cached})
    plan_reused.extend(shards_used)
    if missing:
        work = len(missing) * estimate_bars(exp.base, start, end)
        if computed_whole(exp.mode, work):
            n = shards_hint or math.ceil(work / WHOLE_SHARD_WORK)
        else:
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
                "risk_free_rate": exp.base["risk_free_rate"],
            }
            shards_used.append(shard)
            plan_new.append(shard)
    return {"family": family, "combo_keys": keys, "data": dkey,  # its bars: the merge evaluates the selected combo
            "shards": [f"store/sweep/{family}/shards/{s}.parquet" for s in sorted(set(shards_used))]}


def plan_sweep(exp: Experiment, params: dict, *, request_id: Any, warnings: list[str], origin: str,
               cores: int = 2, claim: bool = True, force: bool = False) -> SweepPlan:
    from quantlab.strategies import get_strategy

    out_dir = resolve_output_dir(params.get("out_dir"), outputs_root() / "runs")
    strategy = get_strategy(exp.strategy)
    lookback = max(int(strategy.warmup_bars({k: v for k, v in c.items() if k not in ENGINE_GRID_KEYS}))
                   for c in exp.combos)
    config: dict[str, Any] = {"kind": "sweep", "planned": True, "data": {}, "shards": {}, "wf_splits": {},
                              "requests": {}}
    new: list[str] = []
    reused: list[str] = []
    shards_hint = params.get("shards")
    from quantlab.commands.robust_sweep import robust_requested

    robust = robust_requested(params, exp)
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
                "risk_free_rate": exp.base["risk_free_rate"],
                "combos": exp.combos, "labels": exp.labels,
                "sort_by": exp.sort_by, "ascending": exp.ascending, "top_k": exp.top_k,
                "min_trades": exp.min_trades, "robustness": robust,
            }
            request["splits"].append(split_id)
    request["data_keys"] = list(config["data"])  # every window loaded, in order (their notes: publish)
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
