"""The ``portfolio`` command's artifact writers: weights, correlation, the portfolio equity and
its plot, metrics/metadata/config, report.md and report.json of a portfolio run directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantlab._lazy import np
from quantlab.artifacts.io import (atomic_write_bytes, atomic_write_json, atomic_write_text, format_value, read_json)
from quantlab.commands.portfolio.selection import describe_selection
from quantlab.contract.runid import staging_name
from quantlab.errors import QuantLabError


ARTIFACTS = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
             "report": "report.json", "weights": "weights.json", "correlation": "correlation.json",
             "portfolio_equity": "portfolio_equity.parquet", "equity_plot": "equity.png",
             "run_report": "report.md"}


def _ts_array(iso: list[str]):
    return np.array([t[:-1] if t.endswith("Z") else t for t in iso], dtype="datetime64[s]").astype("datetime64[ns]")


def _report_md(record: dict, results: list[dict], display_mode: str, warnings: list[str]) -> str:
    first = results[0]
    scan, sel = first["scan"], first["selection"]
    cal = first["calendar"]
    lines = [f"# Portfolio {record['run_id']} ({display_mode})", "",
             f"- root: {first['root']}",
             f"- sessions: {scan['scanned']} scanned, {scan['eligible']} eligible ({scan['incomplete']} incomplete, "
             f"{scan['not_forward']} not forward, {scan['duplicates']} duplicates collapsed), "
             f"{sel['selected']} selected",
             f"- selection: {describe_selection(sel['criteria'])}; ranked by {sel['criteria']['rank_metric']}",
             f"- calendar: {cal['bars']} bars ({cal['interval']}), {cal['first_bar']} .. {cal['last_bar']}, "
             f"{cal['periods_per_year']:g} periods/year",
             f"- portfolio: buy and hold of the initial weights (no rebalancing), start value "
             f"{first['portfolio']['start_value']:,.2f} (sum of the sessions' initial cash)",
             f"- created_at: {record['created_at']}", "", "## Metrics", "",
             "| metric | " + " | ".join(r["mode"] for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for key in first["metrics"]:
        lines.append(f"| {key} | " + " | ".join(format_value(r["metrics"].get(key)) for r in results) + " |")
    lines += ["", "## Sessions", "",
              "| session | ticker | strategy | first bar | last bar | total_return | max_drawdown | "
              + " | ".join(f"w {r['mode']}" for r in results) + " | "
              + " | ".join(f"contrib {r['mode']}" for r in results) + " |",
              "|---|---|---|---|---|---|---|" + "---|" * (2 * len(results))]
    for k, row in enumerate(first["sessions"]):
        sid = row["session_id"]
        lines.append(f"| {sid} | {row['ticker']} | {row['strategy']} | {row['first_bar']} | {row['last_bar']} | "
                     f"{format_value(row['total_return'])} | {format_value(row['max_drawdown'])} | "
                     + " | ".join(format_value(r["weights"]["weights"].get(sid)) for r in results) + " | "
                     + " | ".join(format_value(r["contributions"].get(sid)) for r in results) + " |")
    corr = first["correlation"]
    ids = corr["session_ids"]
    lines += ["", "## Correlation of per-bar returns", "", "| | " + " | ".join(ids) + " |",
              "|---|" + "---|" * len(ids)]
    for i, sid in enumerate(ids):
        lines.append(f"| {sid} | " + " | ".join(format_value(v) for v in corr["matrix"][i]) + " |")
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    lines += ["", "## Files", "", ", ".join(ARTIFACTS.values()), ""]
    return "\n".join(lines)


def publish_portfolio(record: dict, mode_jsons: list[str], marker_out: str) -> dict:
    """Write ``<out_dir>/<run_id>/`` through ``<out_dir>/.tmp_<run_id>`` renamed into place.

    ``record`` = ``{"run_id", "created_at", "request_id", "out_dir", "root", "modes", "compare",
    "warnings"}``; ``mode_jsons`` are the :func:`step_portfolio_mode` outputs in ``modes`` order
    (the first mode gives the summary). Writes the marker ``{run_id, mode, artifacts_path,
    report_path, summary}`` and returns it.
    """
    from quantlab.artifacts.portfolio_plot import portfolio_png
    from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
    from quantlab.columnar import parquet_bytes, table_from_numpy

    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    modes = list(record["modes"])
    results = [read_json(p) for p in mode_jsons]
    if not results or len(results) != len(modes):
        raise QuantLabError(f"portfolio publish got {len(results)} mode results for modes {modes}")
    for mode, res in zip(modes, results):
        if res.get("mode") != mode:
            raise QuantLabError(f"portfolio publish: result {res.get('mode')!r} given for mode {mode!r}")
    staging.mkdir(parents=True, exist_ok=True)
    first = results[0]
    compare = bool(record.get("compare"))
    display_mode = "compare" if compare else modes[0]
    summary = first["summary"]
    warnings: list[str] = list(record.get("warnings") or [])
    for res in results:
        for w in res.get("warnings") or []:
            text = f"{res['mode']}: {w}" if compare and not w.startswith(res["mode"]) else w
            if text not in warnings:
                warnings.append(text)
    side_by_side = {r["mode"]: {"summary": r["summary"], "metrics": r["metrics"],
                                "weights": r["weights"]["weights"], "contributions": r["contributions"],
                                "portfolio": r["portfolio"]} for r in results}

    # weights.json, correlation.json
    atomic_write_json(staging / "weights.json", {
        "mode": display_mode, "session_ids": first["session_ids"],
        "modes": {r["mode"]: r["weights"] for r in results}}, sort_keys=True)
    atomic_write_json(staging / "correlation.json", {**first["correlation"], "calendar": first["calendar"]})

    # portfolio_equity.parquet
    series = first["series"]
    cols: dict[str, Any] = {
        "timestamp": _ts_array(series["timestamps"]),
        "equity": np.asarray(series["equity"], dtype=np.float64),
        "normalised_equity": np.asarray(series["normalised"], dtype=np.float64),
        "returns": np.asarray(series["returns"], dtype=np.float64),
        "drawdown": np.asarray(series["drawdown"], dtype=np.float64),
        "benchmark_equity": np.asarray(series["benchmark_equity"], dtype=np.float64),
        "exposure": np.asarray(series["exposure"], dtype=np.int8),
    }
    if compare:
        for r in results:
            cols[f"equity_{r['mode']}"] = np.asarray(r["series"]["equity"], dtype=np.float64)
    table_meta = {"mode": display_mode, "modes": json.dumps(modes),
                  "start_value": repr(first["portfolio"]["start_value"])}
    atomic_write_bytes(staging / "portfolio_equity.parquet", parquet_bytes(table_from_numpy(cols, table_meta)))

    # equity.png
    idx = np.asarray(first["plot"]["index"], dtype=np.int64)
    portfolios = {r["mode"]: np.asarray(r["series"]["normalised"], dtype=np.float64)[idx] for r in results}
    sessions_plot = {sid: np.asarray(v, dtype=np.float64) for sid, v in first["plot"]["sessions"].items()}
    ts = series["timestamps"]
    title = f"Portfolio {run_id} ({display_mode}, {first['n_sessions']} sessions)"
    atomic_write_bytes(staging / "equity.png", portfolio_png(
        [ts[0], ts[-1]], portfolios, sessions_plot, title,
        drawdown=np.asarray(series["drawdown"], dtype=np.float64)[idx]))

    # config / metrics / metadata
    custom = next((r for r in results if r["mode"] == "custom_weight"), None)
    config = {"root": first["root"], "modes": modes, "compare": compare,
              "weights": custom["weights"]["input"] if custom else None,
              "selection": first["selection"]["criteria"]}
    atomic_write_json(staging / "config.json", config, sort_keys=True)
    scan_counts = {k: first["scan"][k] for k in ("scanned", "eligible", "incomplete", "not_forward", "duplicates")}
    metrics = {"command": "portfolio", "mode": display_mode, "status": "success", "summary": summary,
               "metrics": first["metrics"], "modes": side_by_side, "sessions": first["sessions"],
               "calendar": first["calendar"], "scan": scan_counts, "selection": first["selection"]["counts"]}
    atomic_write_json(staging / "metrics.json", metrics, sort_keys=True)
    info = runtime_info()
    metadata = {"run_id": run_id, "command": "portfolio", "mode": display_mode, "modes": modes, "status": "success",
                "created_at": record["created_at"], "request_id": record.get("request_id"),
                "root": first["root"], "config_hash": canonical_hash(config, algo="sha1"), "summary": summary,
                "n_sessions": first["n_sessions"], "session_ids": first["session_ids"], "scan": first["scan"],
                "selection": first["selection"], "calendar": first["calendar"],
                "code_fingerprint": code_fingerprint(), "warnings": warnings, **info}
    atomic_write_json(staging / "metadata.json", metadata, sort_keys=True)
    atomic_write_text(staging / "report.md", _report_md(record, results, display_mode, warnings))

    # report.json (last: it lists the other files)
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract, report_document

    mc = machine_contract("portfolio", "portfolio", record.get("request_id"), run_id=run_id, mode=display_mode,
                          summary=summary, modes=modes, n_sessions=first["n_sessions"],
                          session_ids=first["session_ids"], artifacts=dict(ARTIFACTS), warnings=warnings)
    report = report_document(
        artifact_type="quantlab_portfolio_report", mc=mc, summary=summary,
        header={"run_id": run_id, "mode": display_mode, "created_at": record["created_at"],
                "git_commit": info["git_commit"], "python_version": info["python_version"],
                "config_hash": metadata["config_hash"], "request_id": record.get("request_id")},
        sections={"config_resolved": config, "scan": first["scan"], "selection": first["selection"],
                  "calendar": first["calendar"], "sessions": first["sessions"],
                  "portfolio": {"mode": modes[0], "summary": summary, "metrics": first["metrics"],
                                **first["portfolio"]},
                  "modes": side_by_side, "correlation": first["correlation"]},
        artifacts=artifact_listing(staging))
    atomic_write_json(staging / "report.json", report)
    from quantlab.commands.common import publish_staging

    return publish_staging(staging, final, marker_out, {
        "run_id": run_id, "mode": display_mode, "artifacts_path": str(final),
        "report_path": str(final / "report.json"), "summary": summary, "warnings": warnings})
