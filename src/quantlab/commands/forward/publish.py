"""The ``forward`` command's report writers: run_report.md and report.json of a forward session,
written by the step and rebuilt by ``--report SESSION_DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

from quantlab.artifacts.io import atomic_write_json, atomic_write_text, read_json
from quantlab.commands.forward.plan import candidates_note, read_session
from quantlab.commands.run.publish import summary_of
from quantlab.errors import ConfigError


def write_forward_report(target: Path, metadata: dict, per_candidate: dict, record: dict) -> None:
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
        metadata = read_session(session, "run_dir")
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
    write_forward_report(session, metadata, per_candidate, record)
    return session / "report.json"
