"""The ``forward`` command's step function (workflow/rules/forward.smk): write a session directory,
or extend it on resume (append-only: the recorded ledger and trades must be a prefix of the replay).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from quantlab.artifacts.io import atomic_copy, atomic_write_json, atomic_write_text, read_json
from quantlab.artifacts.provenance import code_fingerprint, runtime_info
from quantlab.commands.common import publish_staging
from quantlab.commands.forward.publish import write_forward_report
from quantlab.commands.run.plan import ENGINE_KEYS
from quantlab.commands.run.publish import summary_of
from quantlab.commands.worker import warm_step
from quantlab.dates import bar_time_iso
from quantlab.errors import DataError


LEDGER_HEADER = ["timestamp", "candidate", "close", "position", "equity", "return"]
TRADE_HEADER_PREFIX = "candidate"


def _ledger_lines(candidate: str, equity_path: Path) -> list[str]:
    from quantlab.columnar import column_to_numpy, read_parquet

    eq = read_parquet(equity_path)
    ts = column_to_numpy(eq, "timestamp")
    cols = [column_to_numpy(eq, n).tolist() for n in ("close", "position", "equity", "returns")]
    return [f"{bar_time_iso(t)},{candidate},{c:.10g},{int(p)},{e:.10g},{r:.10g}" for t, c, p, e, r in zip(ts, *cols)]


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
        csv_text = (Path(sim) / "trades.csv").read_text(encoding="utf-8").splitlines()  # by step_simulate
        header = csv_text[0]
        trades_lines += [f"{cid},{line}" for line in csv_text[1:]]
        per_candidate[cid] = read_json(Path(sim) / "metrics.json")
    trades_header = f"{TRADE_HEADER_PREFIX},{header}"
    is_noop = False
    meta_old: dict = {}
    if resume:
        meta_old = read_json(session / "session_metadata.json")
        old_ledger = (session / "ledger.csv").read_text().splitlines()[1:]
        old_header, *old_trades = (session / "trades.csv").read_text().splitlines()
        # compared on the old file's columns (a session written before a column was added resumes)
        old_cols = old_header.split(",")
        new_cols = trades_header.split(",")
        if not set(old_cols) <= set(new_cols):
            raise DataError(f"cannot resume {session.name}: its trades.csv columns ({old_header}) are not "
                            "a subset of this version's; start a new forward session")
        pick = [new_cols.index(c) for c in old_cols]
        replayed = [",".join(f[i] for i in pick) for f in (x.split(",") for x in trades_lines)]
        status = old_cols.index("status") if "status" in old_cols else None
        for cand in record["candidates"]:
            cid = cand["candidate_id"]
            _prefix_check([x for x in old_ledger if x.split(",")[1] == cid],
                          [x for x in ledger if x.split(",")[1] == cid], "ledger bars", session)
            # a trade still open at the old end is provisional (marked, not closed): not a prefix
            _prefix_check([x for x in old_trades if x.split(",")[0] == cid
                           and (status is None or x.split(",")[status] != "open")],
                          [x for x in replayed if x.split(",")[0] == cid], "trades", session)
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
        write_forward_report(target, metadata, per_candidate, record)
    result = {"run_id": run_id, "session_id": run_id, "mode": "forward", "artifacts_path": str(session),
              "report_path": str(session / "report.json"), "summary": summary, "is_noop": is_noop,
              "resumed": resume}
    if not resume:
        return publish_staging(target, session, marker_out, result)
    atomic_write_json(marker_out, result)
    return result
