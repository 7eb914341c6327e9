"""The ``run`` command's artifact writers: a run directory's (or paper session's) result files,
run_report.md and report.json. The publish steps (:mod:`quantlab.commands.run.steps`) call them.
"""

from __future__ import annotations

import json
from pathlib import Path

from quantlab.artifacts.io import atomic_copy, atomic_write_json, atomic_write_text, format_value, read_json
from quantlab.engine import risk
from quantlab.errors import ConfigError


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
    for key, default in risk.DEFAULTS.items():  # risk controls: only those set
        if params.get(key, default) != default:
            parts += [f"--{key.replace('_', '-')}", str(params[key])]
    for key in ("risk_free_rate", "benchmark"):  # scoring: left out at their defaults (older commands)
        if params.get(key):
            parts += [f"--{key.replace('_', '-')}", str(params[key])]
    for key, value in sorted(params.get("strategy_params", {}).items()):
        parts += ["--param", f"{key}={value}"]
    return " ".join(shlex.quote(p) for p in parts)


MC_ARTIFACTS = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
                "report": "report.json", "trades": "trades.csv", "equity": "equity.parquet",
                "equity_plot": "equity.png", "run_report": "run_report.md"}


def _run_report_md(metadata: dict, config: dict, metrics: dict, robustness: dict | None = None) -> str:
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
    from quantlab.commands.robust_run import report_lines

    lines += report_lines(robustness)
    lines += ["", "## Files", "", ", ".join(MC_ARTIFACTS.values()), "", "## Reproduce", "",
              f"    {reproduce_command(c)}", ""]
    return "\n".join(lines)


PAPER_ARTIFACTS = {"metadata": "session_metadata.json", "status": "session_status.json", "config": "config.json",
                   "metrics": "metrics.json", "report": "report.json", "trades": "trades.csv",
                   "run_report": "run_report.md", "equity": "equity.parquet", "equity_plot": "equity.png"}


def write_report(run_dir: Path, metadata: dict, config: dict, metrics: dict, *, paper: bool = False) -> Path:
    """(Re)write ``run_report.md`` and then ``report.json`` of a run directory (or paper session)
    from its metadata, config and metrics. Idempotent: rebuilding gives the same files."""
    # the same key order whether the inputs come from memory or from the sorted JSON files
    config = json.loads(json.dumps(config, sort_keys=True))
    metrics = json.loads(json.dumps(metrics, sort_keys=True))
    summary = summary_of(metrics)
    request_id = metadata.get("request_id")
    warnings = metadata.get("warnings", [])
    from quantlab.commands.robust_run import contract_fields

    robust = contract_fields(run_dir)  # robustness: true (metrics.json), else {}
    atomic_write_text(run_dir / "run_report.md",
                      _run_report_md(metadata, config, metrics, robust.get("robustness")))
    mode = "paper" if paper else "run"
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract as contract, report_document

    machine_contract = contract("paper" if paper else "run", "run", request_id, metadata.get("status", "success"),
                                run_id=metadata["run_id"], mode=mode, summary=summary,
                                artifacts=PAPER_ARTIFACTS if paper else MC_ARTIFACTS, warnings=warnings,
                                **robust)
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


def write_results(target: Path, record: dict, sim: Path, *, mode: str) -> tuple[dict, dict, dict, dict, list]:
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
    for name in ("trades.csv", "equity.parquet", "equity.png"):  # trades.csv: made by step_simulate
        atomic_copy(sim / name, target / name)
    return config, metrics, window, summary, result_warnings


def zero_trade_warnings(metrics: dict) -> list[str]:
    """Warnings about a finished simulation: a result with zero trades is suspicious."""
    if metrics.get("trades") != 0:
        return []
    return ["0 trades: the strategy never traded in this window, so its metrics describe doing nothing"]


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
