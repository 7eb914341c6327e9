"""The ``forward`` command: evaluate a sweep's selected parameters on a later window, and resume.

DAG: per candidate, the ``run`` chain (load_data -> signals -> simulate -> score, content-
addressed, so an identical window is never recomputed) -> forward_session -> refresh_index.

Candidates come from a prior sweep run directory: for a grid sweep, the top ``forward_top_k``
leaderboard rows by ``forward_metric``; for a walk-forward sweep, the last split's train-selected
candidates in their train rank. The forward window trades only from ``forward_start``; indicator
warm-up reads earlier bars.

Resume replays the session deterministically from ``forward_start`` to the new end with the same
candidates and costs. The recorded ledger and trades must be an exact prefix of the replay (else
the data of the processed window changed: exit 3, nothing is rewritten); only the new bars and
trades are appended. So a resumed session ends with exactly the metrics, trades and ledger of one
forward run over the whole window, and never holds a bar or a trade twice. The replay carries the
open position, cash and cooldown across the old end by construction.

The session directory is ``forward_outdir`` itself (default ``outputs/forward_runs/<session_id>``);
an existing one must be empty or hold the same session (then the request extends it). A session is
resumed by its directory under the id recorded in its ``session_metadata.json`` (renamed and copied
directories work). Requests naming a session directory hold its lock (:func:`session_lock_key`)
from planning to reading back their result, and keep their bookkeeping under a key of their own
(``requests/<request_key>/``), so concurrent resumes run one at a time and never share an answer.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import atomic_copy, atomic_write_json, atomic_write_text, read_json
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
from quantlab.commands.common import publish_staging
from quantlab.commands.run import (ENGINE_KEYS, _claim_run_id, _iso, _trades_csv,
                                   plan_run, summary_of)
from quantlab.contract import namespaces
from quantlab.contract.paths import outputs_root, resolve_input_path, resolve_output_dir
from quantlab.contract.runid import format_run_id, staging_name
from quantlab.dates import parse_date
from quantlab.errors import ConfigError, DataError
from quantlab.commands.worker import warm_step

BASE_FROM_SWEEP = ("ticker", "interval", "source", "data_path", "seed", "strategy", "fee", "slippage_mode",
                   "slippage_bps", "k_atr", "fill", "allow_short", "initial_cash")


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
    from quantlab.metric_registry import lower_is_better, metric_names
    from quantlab.strategies import get_strategy

    if metric not in metric_names():
        raise ConfigError(f"params.forward_metric must be one of [{', '.join(metric_names())}], got {metric!r}")
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
        overrides = {k: float(row[k]) for k in ("fee", "slippage_bps", "k_atr") if row.get(k) not in (None, "")}
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


def _read_session(session: Path, field_name: str) -> dict:
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
        session_meta = _read_session(session, "resume_forward")
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
                existing = _read_session(session, "forward_outdir")
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
                run_id, ts = _claim_run_id(out_dir, "forward", digest, now)
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


# ---------------------------------------------------------------------------------------- step
LEDGER_HEADER = ["timestamp", "candidate", "close", "position", "equity", "return"]
TRADE_HEADER_PREFIX = "candidate"


def _ledger_lines(candidate: str, equity_path: Path) -> list[str]:
    from quantlab.columnar import column_to_numpy, read_parquet

    eq = read_parquet(equity_path)
    ts = column_to_numpy(eq, "timestamp")
    cols = [column_to_numpy(eq, n).tolist() for n in ("close", "position", "equity", "returns")]
    return [f"{_iso(t)},{candidate},{c:.10g},{int(p)},{e:.10g},{r:.10g}" for t, c, p, e, r in zip(ts, *cols)]


def _prefix_check(old: list[str], new: list[str], what: str, session: Path) -> None:
    if len(old) > len(new) or new[: len(old)] != old:
        raise DataError(f"cannot resume {session.name}: the {what} of the already processed window differ from a "
                        "replay (the data changed); start a new forward session")


@warm_step
def step_forward_session(record: dict, sim_dirs: list[str], marker_out: str) -> dict:
    """Write (or extend, on resume) the forward session directory."""
    run_id = record["run_id"]
    session = Path(record["session_dir"])
    resume = record["resume"]
    target = session if resume else Path(record["staging_dir"])
    target.mkdir(parents=True, exist_ok=True)
    ledger, trades_lines, per_candidate = [], [], {}
    for cand, sim in zip(record["candidates"], sim_dirs):
        cid = cand["candidate_id"]
        ledger += _ledger_lines(cid, Path(sim) / "equity.parquet")
        csv_text = _trades_csv(str(Path(sim) / "trades.parquet")).splitlines()
        header = csv_text[0]
        trades_lines += [f"{cid},{line}" for line in csv_text[1:]]
        per_candidate[cid] = read_json(Path(sim) / "metrics.json")
    trades_header = f"{TRADE_HEADER_PREFIX},{header}"
    is_noop = False
    meta_old: dict = {}
    if resume:
        meta_old = read_json(session / "session_metadata.json")
        old_ledger = (session / "ledger.csv").read_text().splitlines()[1:]
        old_trades = (session / "trades.csv").read_text().splitlines()[1:]
        for cand in record["candidates"]:
            cid = cand["candidate_id"]
            _prefix_check([x for x in old_ledger if x.split(",")[1] == cid],
                          [x for x in ledger if x.split(",")[1] == cid], "ledger bars", session)
            # a trade still open at the old end is provisional (marked, not closed): not a prefix
            _prefix_check([x for x in old_trades if x.split(",")[0] == cid and not x.endswith(",open")],
                          [x for x in trades_lines if x.split(",")[0] == cid], "trades", session)
        is_noop = len(ledger) == len(old_ledger)
    primary = record["candidates"][0]["candidate_id"]
    metrics = per_candidate[primary]["metrics"]
    summary = summary_of(metrics)
    window = per_candidate[primary]["window"]
    if not is_noop:
        # append-only: old lines are a verified prefix of these
        atomic_write_text(target / "ledger.csv", ",".join(LEDGER_HEADER) + "\n" + "\n".join(ledger) + "\n")
        atomic_write_text(target / "trades.csv", trades_header + "\n" + "".join(line + "\n" for line in trades_lines))
        sim0 = Path(sim_dirs[0])
        for name in ("equity.parquet", "equity.png"):
            atomic_copy(sim0 / name, target / name)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        source = record["source"]
        config = {"forward_start": record["forward_start"], "forward_end": record["forward_end"],
                  "source_run_dir": source["run_dir"], "candidates": [
                      {k: c[k] for k in ("candidate_id", "label", "strategy_params", "engine_overrides")}
                      for c in record["candidates"]], **{k: source.get(k) for k in ENGINE_KEYS}}
        atomic_write_json(target / "config.json", config, sort_keys=True)
        atomic_write_json(target / "metrics.json", {
            "command": "forward", "mode": "forward", "status": "success", "summary": summary, "metrics": metrics,
            "candidates": {cid: m["metrics"] for cid, m in per_candidate.items()}}, sort_keys=True)
        metadata = {
            "session_id": run_id, "run_id": run_id, "command": "forward", "mode": "forward", "status": "success",
            "created_at": record["created_at"], "updated_at": now, "request_id": record["request_id"],
            "source": source, "source_run_id": source["run_id"], "source_run_dir": source["run_dir"],
            "ticker": source["ticker"], "interval": source["interval"], "strategy": source["strategy"],
            "strategy_params": record["candidates"][0]["strategy_params"], "initial_cash": source.get("initial_cash"),
            "candidates": [{k: v for k, v in c.items() if k not in ("keys", "params")} for c in record["candidates"]],
            "forward_start": record["forward_start"], "forward_end": record["forward_end"],
            "forward_metric": record["forward_metric"], "first_bar": window.get("first_bar"),
            "last_bar": window.get("last_bar"), "bars": metrics.get("bars"),
            "resume_count": meta_old.get("resume_count", -1) + 1 if resume else 0,
            "summary": summary, "code_fingerprint": code_fingerprint(), **runtime_info(),
        }
        atomic_write_json(target / "session_metadata.json", metadata, sort_keys=True)
        _write_forward_report(target, metadata, per_candidate, record)
    result = {"run_id": run_id, "session_id": run_id, "mode": "forward", "artifacts_path": str(session),
              "report_path": str(session / "report.json"), "summary": summary, "is_noop": is_noop,
              "resumed": resume}
    if not resume:
        return publish_staging(target, session, marker_out, result)
    atomic_write_json(marker_out, result)
    return result


def _write_forward_report(target: Path, metadata: dict, per_candidate: dict, record: dict) -> None:
    from quantlab.artifacts.report_doc import machine_contract, report_document

    summary = metadata["summary"]
    artifacts = {"metadata": "session_metadata.json", "config": "config.json", "metrics": "metrics.json",
                 "report": "report.json", "trades": "trades.csv", "ledger": "ledger.csv",
                 "equity": "equity.parquet", "equity_plot": "equity.png", "run_report": "run_report.md"}
    mc = machine_contract(
        "forward", "forward", record["request_id"], run_id=metadata["run_id"], session_id=metadata["run_id"],
        mode="forward", summary=summary, source_run_id=metadata["source_run_id"],
        primary_candidate=record["candidates"][0]["candidate_id"],
        candidates=[{"candidate_id": c["candidate_id"], "label": c.get("label"), "strategy_params": c["strategy_params"],
                     "summary": summary_of(per_candidate[c["candidate_id"]]["metrics"])} for c in record["candidates"]],
        forward_start=metadata["forward_start"], forward_end=metadata["forward_end"], last_bar=metadata["last_bar"],
        resume_count=metadata["resume_count"], artifacts=artifacts, warnings=record.get("warnings", []))
    lines = [f"# Forward session {metadata['run_id']}", "",
             f"- source sweep: {metadata['source_run_id']} ({record['source']['mode']})",
             f"- {metadata['ticker']} {metadata['strategy']} from {metadata['forward_start']} "
             f"(bars {metadata['first_bar']} .. {metadata['last_bar']}), resumed {metadata['resume_count']} times",
             f"- summary, equity.parquet and equity.png: candidate {mc['primary_candidate']} "
             f"(of {len(mc['candidates'])})",
             "", "| candidate | params | total_return | sharpe_simple | max_drawdown | trades |", "|---|---|---|---|---|---|"]
    for c in mc["candidates"]:
        s = c["summary"]
        lines.append(f"| {c['candidate_id']} | {json.dumps(c['strategy_params'], sort_keys=True)} | "
                     f"{s['total_return']} | {s['sharpe_simple']} | {s['max_drawdown']} | {s['trades']} |")
    atomic_write_text(target / "run_report.md", "\n".join(lines) + "\n")
    atomic_write_json(target / "report.json", report_document(
        artifact_type="quantlab_forward_report", mc=mc, summary=summary,
        header={k: metadata[k] for k in ("run_id", "mode", "created_at", "updated_at", "git_commit",
                                         "python_version", "request_id")}))


def rebuild_session_report(session: Path) -> Path:
    """Rewrite report.json and run_report.md of a forward session from its own files."""
    try:
        metadata = _read_session(session, "run_dir")
        metrics = read_json(session / "metrics.json")
        per_candidate = {cid: {"metrics": m} for cid, m in metrics["candidates"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{session} has an unreadable session_metadata.json/metrics.json") from None
    try:
        warnings = read_json(session / "report.json")["machine_contract"]["warnings"]
    except (OSError, ValueError, KeyError, TypeError):
        warnings = [w for w in [candidates_note(metadata["candidates"])] if w]
    record = {"request_id": metadata.get("request_id"), "candidates": metadata["candidates"],
              "source": metadata["source"], "warnings": warnings}
    if any(c.get("candidate_id") not in per_candidate for c in record["candidates"]):
        raise ConfigError(f"{session}: metrics.json lacks a candidate of session_metadata.json")
    _write_forward_report(session, metadata, per_candidate, record)
    return session / "report.json"
