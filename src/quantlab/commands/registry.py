"""The command registry: a request's ``command`` -> how it is carried out and printed for people.

A workflow command names its plan builder (:mod:`quantlab.orchestrate.plans`), which the one
executor runs; ``report`` needs no workflow and names a handler. :func:`dispatch` is all
``main.py`` calls. Imports stay inside the functions (cold ``run`` path).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    plan: str | None = None                 # the plan builder's name in quantlab.orchestrate.plans
    handle: Callable | None = None          # (req, opts) -> result, for a command without a workflow


def report_command(req, opts) -> dict:
    """Rebuild a result directory's report (report.json, the markdown and the interactive
    report.html), or write the HTML report of a root of results."""
    from quantlab.contract.paths import resolve_input_path
    from quantlab.errors import ConfigError
    from quantlab.registry.runs import is_run_dir

    run_dir = resolve_input_path(req.params["run_dir"], "run_dir")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run_dir}")
    result = {"mode": "report", "report_only": True, "run_id": run_dir.name, "artifacts_path": str(run_dir),
              "summary": None}
    children = [child for child in run_dir.iterdir() if child.is_dir()]
    if not is_run_dir(run_dir) and any(is_run_dir(c) or any(is_run_dir(g) for g in c.iterdir() if g.is_dir())
                                       for c in children):
        # a root of results (or of roots: outputs/): one self-contained HTML research report
        from quantlab.registry.html_report import write_html_report

        return {**result, "run_id": None, "report_path": str(write_html_report(run_dir))}
    from quantlab.reports import kind_of, write_report_html

    kind = kind_of(run_dir)  # ConfigError for a directory that holds no result
    html = str(write_report_html(run_dir))
    if kind not in ("run", "paper", "forward"):  # sweeps and portfolios: the interactive page only
        return {**result, "report_path": html}
    if kind == "forward":
        from quantlab.commands.forward.publish import rebuild_session_report as rebuild
    else:
        from quantlab.commands.run.publish import rebuild_report as rebuild
    return {**result, "report_path": str(rebuild(run_dir)), "html_report_path": html}


def data_command(req, opts) -> dict:
    """``data`` list | inspect | import (quantlab.commands.data): its result is the envelope's ``data``."""
    from quantlab.commands.data import run_action

    params = dict(req.params)
    params.pop("signal_webhook", None)
    data = run_action(params.pop("action", None), params)
    return {"mode": "data", "summary": None, "data": data, "warnings": data.get("warnings") or []}


COMMANDS: dict[str, Command] = {
    "run": Command(plan="run_plan"),          # paper=true: a paper session
    "sweep": Command(plan="sweep_plan"),      # grid and walk-forward
    "forward": Command(plan="forward_plan"),
    "portfolio": Command(plan="portfolio_plan"),  # params.legs: a basket
    "report": Command(handle=report_command),
    "data": Command(handle=data_command),  # the human CLI: main.py data ACTION (quantlab.commands.data)
}


def dispatch(req, opts) -> dict:
    from quantlab.errors import ConfigError

    command = COMMANDS.get(req.command)
    if command is None:
        raise ConfigError(f"unknown command '{req.command}'")
    if command.handle is not None:
        return command.handle(req, opts)
    from quantlab.orchestrate import plans
    from quantlab.orchestrate.execute import execute

    result = execute(getattr(plans, command.plan)(req, opts), opts)
    if getattr(opts, "html_report", False) and not result.get("dry_run"):
        from quantlab.reports.hook import add_html_report

        add_html_report(result)
    return result


def describe(opts) -> int:
    """--schema [COMMAND] / --list-strategies: self-description for agents, as JSON on stdout."""
    import json

    from quantlab.contract.params import COMMANDS as REQUEST_COMMANDS

    if opts.list_strategies:
        from quantlab.strategies import describe_strategies

        print(json.dumps(describe_strategies(), indent=2))
        return 0
    if opts.schema and opts.schema not in REQUEST_COMMANDS:
        print(f"ERROR: --schema takes one of {', '.join(REQUEST_COMMANDS)}, got {opts.schema!r}", file=sys.stderr)
        return 2
    from quantlab.contract.schema import described_request_schema

    print(json.dumps(described_request_schema(opts.schema or None), indent=2))
    return 0


def print_human(result: dict) -> None:
    """The human CLI's summary of a result (the machine path prints the envelope instead)."""
    if result.get("report_only"):
        kind = "research report" if result["report_path"].endswith(".html") else "report rebuilt"
        print(f"{kind}: {result['report_path']}")
        if result.get("html_report_path"):
            print(f"interactive report: {result['html_report_path']}")
        return
    if result.get("dry_run"):
        print("dry run: nothing executed")
        print("stale steps: " + (", ".join(result["stale_steps"]) or "none"))
        for out in result["stale_outputs"]:
            print(f"  would make {out}")
        return
    from quantlab.artifacts.io import format_value as fmt
    from quantlab.metric_registry import summary_names

    s = result.get("summary") or {}
    print(f"run {result['run_id']}")
    print("  " + "  ".join(f"{k} {fmt(s.get(k))}" for k in summary_names()))
    print(f"  artifacts: {result['artifacts_path']}")
    print(f"  report:    {result['report_path']}")
    if result.get("html_report_path"):
        print(f"  html:      {result['html_report_path']}")
    if result.get("runs_index_md"):
        print(f"  index:     {result['runs_index_md']}")
