"""The ``forward`` command's planner: a request -> :class:`ForwardPlan` (candidates from a prior
sweep, the session directory, per-candidate ``run`` chains, the request's own bookkeeping key).
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import read_json
from quantlab.artifacts.provenance import canonical_hash
from quantlab.commands.experiment import ENGINE_GRID_KEYS, engine_override
from quantlab.commands.run.plan import plan_run
from quantlab.contract import namespaces
from quantlab.contract.paths import outputs_root, resolve_input_path, resolve_output_dir
from quantlab.contract.runid import claim_run_id, format_run_id, staging_name
from quantlab.dates import parse_date
from quantlab.engine.risk import RISK_KEYS
from quantlab.errors import ConfigError, DataError


BASE_FROM_SWEEP = ("ticker", "interval", "source", "data_path", "seed", "strategy", "fee", "slippage_mode",
                   "slippage_bps", "k_atr", "fill", "allow_short", "initial_cash", *RISK_KEYS)


@dataclass
class ForwardPlan:
    run_id: str                 # the session id (from the session's metadata on a resume)
    created_at: str
    out_dir: Path               # the directory holding the session (its index root)
    record: dict
    config: dict
    resume: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def session_dir(self) -> Path:
        return Path(self.record["session_dir"])

    @property
    def staging_dir(self) -> Path | None:
        staging = self.record.get("staging_dir")
        return Path(staging) if staging else None

    @property
    def request_key(self) -> str:
        """This request's own bookkeeping key under ``<internal>/requests/`` (never shared)."""
        return self.record["request_key"]

    @property
    def target(self) -> str:
        return namespaces.target(self.request_key, "forward")


def session_target(params: dict) -> Path | None:
    """The existing (or to be created) session directory a request names, resolved; None for a
    new session in the default root (whose directory is claimed under a fresh id)."""
    if params.get("resume_forward"):
        return resolve_input_path(params["resume_forward"], "resume_forward")
    if params.get("forward_outdir"):
        return resolve_output_dir(params["forward_outdir"], outputs_root() / "forward_runs", "forward_outdir")
    return None


def session_lock_key(session_dir: Path) -> str:
    """The flock key serialising every request on one session directory (by its real path)."""
    return "forward_session_" + hashlib.sha1(str(session_dir).encode()).hexdigest()[:16]


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def load_candidates(run_dir: Path, metric: str, top_k: int) -> tuple[dict, list[dict]]:
    """The sweep's base settings and its top candidates (params typed by the strategy)."""
    from quantlab.metric_registry import grid_metric_names, lower_is_better
    from quantlab.strategies import get_strategy

    if metric not in grid_metric_names():  # a leaderboard column
        raise ConfigError(f"params.forward_metric must be one of [{', '.join(grid_metric_names())}], got {metric!r}")
    try:
        meta = read_json(run_dir / "metadata.json")
        config = read_json(run_dir / "config.json")
    except FileNotFoundError:
        raise ConfigError(f"params.forward_eval: {run_dir} is not a sweep run directory "
                          "(metadata.json/config.json missing)") from None
    except (OSError, ValueError):
        raise ConfigError(f"params.forward_eval: {run_dir} has an unreadable metadata.json/config.json") from None
    if meta.get("command") != "sweep" or meta.get("mode") not in ("grid", "walkforward"):
        raise ConfigError(f"params.forward_eval: {run_dir} is a '{meta.get('mode')}' directory, not a sweep run")
    strategy = get_strategy(config.get("strategy") or meta.get("strategy") or "rsi_ma_cross_v2")
    declared = {p.name for p in strategy.params}
    if meta["mode"] == "grid":
        rows = _csv_rows(run_dir / "leaderboard.csv")
        ranked = [r for r in rows if r.get(metric) not in (None, "")]
        ranked.sort(key=lambda r: float(r[metric]), reverse=metric not in lower_is_better())
    else:
        splits = sorted((run_dir / "splits").glob("*/test_leaderboard.csv"))
        if not splits:
            raise ConfigError(f"params.forward_eval: {run_dir} has no walk-forward split results")
        ranked = _csv_rows(splits[0] if len(splits) == 1 else _last_split(run_dir, splits))
        ranked.sort(key=lambda r: int(r["rank"]))
    if not ranked:
        raise DataError(f"params.forward_eval: {run_dir} has no candidate with a {metric} value")
    candidates = []
    for i, row in enumerate(ranked[:top_k], 1):
        params = {k: _number(row[k]) for k in declared if row.get(k) not in (None, "")}
        overrides = {k: engine_override(k, row[k]) for k in ENGINE_GRID_KEYS if row.get(k) not in (None, "")}
        candidates.append({"candidate_id": f"c{i}", "label": row.get("label") or None,
                           "strategy_params": strategy.resolve_params(params), "engine_overrides": overrides,
                           "selection_metric": metric, "selection_value": _number(row.get(metric, "")),
                           "source_rank": int(row["rank"]) if row.get("rank") else i})
    source = {"run_id": meta.get("run_id", run_dir.name), "run_dir": str(run_dir), "mode": meta["mode"],
              "end": config.get("end"), **{k: config.get(k) for k in BASE_FROM_SWEEP}}
    source["strategy"] = strategy.name
    return source, candidates


def _last_split(run_dir: Path, splits: list[Path]) -> Path:
    """The split whose test window is the latest (from the experiment), else the last by name."""
    try:
        exp = read_json(run_dir / "config.json")
        names = [s.get("name") or f"split_{i + 1}" for i, s in enumerate(exp.get("splits") or [])]
        ends = {n: s["test"]["end"] for n, s in zip(names, exp["splits"])}
        name = max(ends, key=lambda n: parse_date(str(ends[n]), "splits.test.end"))
        return run_dir / "splits" / name.replace("/", "_") / "test_leaderboard.csv"
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return sorted(splits)[-1]


def _csv_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        raise ConfigError(f"params.forward_eval: {path.name} missing in {path.parent}") from None


def _warn_in_sample(start: str, source: dict, warnings: list[str]) -> None:
    """A forward window that starts before the sweep's data ended overlaps the period its
    parameters were selected on: the result is (partly) in-sample, so say so."""
    sweep_end = source.get("end")
    if sweep_end and parse_date(start, "forward_start") < parse_date(str(sweep_end), "end"):
        warnings.append(f"forward window starts {start}, inside the sweep's training period (which ends "
                        f"{sweep_end}): the result is in-sample, not a forward test")


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def read_session(session: Path, field_name: str) -> dict:
    try:
        meta = read_json(session / "session_metadata.json")
    except (OSError, ValueError):
        raise ConfigError(f"params.{field_name}: {session} is not a forward session "
                          "(session_metadata.json missing or unreadable)") from None
    if not isinstance(meta, dict) or meta.get("command") != "forward":
        raise ConfigError(f"params.{field_name}: {session} is not a forward session")
    session_id = meta.get("session_id") or meta.get("run_id")
    if not isinstance(session_id, str) or not session_id or not isinstance(meta.get("candidates"), list) \
            or not isinstance(meta.get("source"), dict) or not meta.get("forward_start") or not meta.get("forward_end"):
        raise ConfigError(f"params.{field_name}: {session} has an incomplete session_metadata.json "
                          "(session_id, source, candidates, forward_start/end)")
    return meta


def _identity(source: dict, candidates: list[dict], start: Any) -> str:
    return canonical_hash({"source": source, "candidates": candidates, "start": str(start)}, 7, algo="sha1")


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def candidates_note(candidates: list[dict]) -> str | None:
    """The warning a multi-candidate session carries: what its summary, equity and chart use."""
    if len(candidates) <= 1:
        return None
    first = candidates[0]
    return (f"forward session has {len(candidates)} candidates "
            f"({', '.join(c['candidate_id'] for c in candidates)}): its summary, equity.parquet, equity.png and "
            f"any portfolio use candidate {first['candidate_id']} only (the sweep's best by "
            f"{first.get('selection_metric')}); every candidate's results are in machine_contract.candidates, "
            "ledger.csv and trades.csv")


def _request_key(claim: bool) -> str:
    """A bookkeeping key of this request alone (``requests/<key>/``), never the session id: two
    requests on one session must not read each other's markers. Shaped like a run id (the
    workflow's wildcard), with a random suffix; claimed by an atomic mkdir."""
    from quantlab.contract.paths import internal_root

    for _ in range(100):
        now = datetime.now(timezone.utc)
        key = format_run_id(now, "forward", secrets.token_hex(4)[:7])
        if not claim:
            return key
        requests = internal_root() / "requests"
        requests.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(requests / key)
            return key
        except FileExistsError:
            continue
    raise ConfigError("could not allocate a request key for the forward session")


def plan_forward(params: dict, *, request_id: Any, warnings: list[str], origin: str,
                 claim: bool = True) -> ForwardPlan:
    """Plan a new session or a resume. A request naming a directory (``resume_forward`` or
    ``forward_outdir``) must hold that directory's session lock (:func:`session_lock_key`)
    while it plans and runs, so that what it reads here is still true when it writes."""
    named = session_target(params)
    resume_dir = params.get("resume_forward")
    session_meta: dict | None = None
    staging: Path | None = None
    if resume_dir:
        session = named
        if not session.is_dir():
            raise ConfigError(f"params.resume_forward: forward session directory not found: {session}")
        session_meta = read_session(session, "resume_forward")
    else:
        if not params.get("forward_eval"):
            raise ConfigError("JSON request for 'forward' requires params.forward_eval (alias run_dir): "
                              "a sweep run directory (or params.resume_forward: a forward session)")
        run_dir = resolve_input_path(params["forward_eval"], "forward_eval")
        if not run_dir.is_dir():
            raise ConfigError(f"params.forward_eval: sweep run directory not found: {run_dir}")
        source, candidates = load_candidates(run_dir, params.get("forward_metric") or "sharpe_simple",
                                             int(params.get("forward_top_k") or 1))
        start = params.get("forward_start") or source.get("end")
        if not start:
            raise ConfigError("params.forward_start is required (the sweep does not record its end date)")
        session = named
        if session is not None and session.exists() and not _is_empty_dir(session):
            # forward_outdir IS the session directory: only the same session may already be there
            existing = None
            if (session / "session_metadata.json").is_file():
                existing = read_session(session, "forward_outdir")
                if _identity(existing["source"], existing["candidates"], existing["forward_start"]) \
                        != _identity(source, candidates, start):
                    existing = None
            if existing is None:
                raise ConfigError(f"params.forward_outdir: {session} is not empty and is not this forward session "
                                  "(forward_outdir is the session directory itself: give a new or empty directory, "
                                  "or resume the session there with resume_forward)")
            session_meta = existing  # the same session: extend it like a resume
    if session_meta is not None:
        source = session_meta["source"]
        candidates = session_meta["candidates"]
        start = session_meta["forward_start"]
        end = params.get("forward_end") or _today()
        if parse_date(str(end), "forward_end") < parse_date(str(session_meta["forward_end"]), "forward_end"):
            raise ConfigError(f"params.forward_end ({end}) is before the session's end "
                              f"({session_meta['forward_end']}): a resume only extends a session")
        run_id = session_meta.get("session_id") or session_meta["run_id"]
        created_at = session_meta["created_at"]
    else:
        end = params.get("forward_end") or _today()
        run_id = created_at = None
    if parse_date(str(start), "forward_start") >= parse_date(str(end), "forward_end"):
        raise ConfigError(f"params.forward_start ({start}) must be before params.forward_end ({end})")
    if not resume_dir:
        _warn_in_sample(str(start), source, warnings)
    config: dict[str, Any] = {"kind": "forward", "planned": True, "data": {}, "signals": {}, "sim": {},
                              "requests": {}}
    legs = []
    for cand in candidates:
        run_params = {k: source[k] for k in BASE_FROM_SWEEP if source.get(k) is not None}
        run_params.update(start=str(start), end=str(end), strategy_params=cand["strategy_params"])
        run_params.update(cand.get("engine_overrides") or {})
        leg = plan_run(run_params, request_id=None, warnings=[], origin=origin, claim=False)
        for kind in ("data", "signals", "sim"):
            config[kind][leg.keys[kind]] = leg.specs[kind]
        legs.append({**cand, "keys": leg.keys, "params": leg.params})
    note = candidates_note(candidates)
    if note and note not in warnings:
        warnings.append(note)
    if run_id is None:
        digest = _identity(source, candidates, start)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        if session is None:
            out_dir = outputs_root() / "forward_runs"
            if claim:
                run_id, ts = claim_run_id(out_dir, "forward", digest, now)
            else:
                run_id, ts = format_run_id(now, "forward", digest), now
            session = out_dir / run_id
            staging = out_dir / staging_name(run_id)
        else:
            # a named directory: the caller holds its session lock, so the staging name is ours
            run_id, ts = format_run_id(now, "forward", digest), now
            staging = session.parent / staging_name(session.name)
            if claim:
                shutil.rmtree(staging, ignore_errors=True)  # left by a killed request on this directory
                staging.mkdir(parents=True)
                (staging / ".owner").write_text(str(os.getpid()))
        created_at = ts.isoformat().replace("+00:00", "Z")
    request_key = _request_key(claim)
    record = {
        "run_id": run_id, "created_at": created_at, "request_id": request_id, "out_dir": str(session.parent),
        "session_dir": str(session), "staging_dir": str(staging) if staging else None,
        "request_key": request_key, "index_dir": str(session.parent), "origin": origin, "warnings": warnings,
        "source": source, "candidates": legs, "forward_start": str(start), "forward_end": str(end),
        "resume": session_meta is not None,
        "forward_metric": candidates[0]["selection_metric"] if candidates else None,
    }
    config["requests"][request_key] = record
    return ForwardPlan(run_id=run_id, created_at=created_at, out_dir=session.parent, record=record, config=config,
                       resume=session_meta is not None, warnings=warnings)
