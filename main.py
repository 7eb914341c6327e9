#!/usr/bin/env python
"""QuantLab entry point: translate a request into a Snakemake run and its outcome into the contract.

    python main.py --json-request '<json>' [--signal-file F] [--signal-webhook URL]   (machine path)
    python main.py run --ticker SPX --start 2017-01-01 --end 2018-01-01              (human CLI)
    python main.py data list|inspect|import ... [--json]                             (data commands)
    python main.py --version | --check

Parse -> dispatch through the command registry (quantlab.commands.registry: each workflow
command yields a plan that quantlab.orchestrate.execute runs) -> exit code, signals and, under
--json-request, exactly one JSON envelope line on stdout. No research logic lives here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT_ROOT / "src"))
# one BLAS thread unless the caller says otherwise: OpenBLAS's extra threads spin ~40-60 ms of CPU
# after numpy's import, in every process, and no step does linear algebra big enough to gain
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from quantlab import __version__  # noqa: E402
from quantlab.contract.lifecycle import (Terminated, error_info, peek_command, peek_params, peek_request_id,  # noqa: E402
                                         print_warnings, settle, trap_signals, usage_failure)

ENVELOPE_SIGNAL_FIELDS = ("run_id", "artifacts_path", "report_path", "summary", "runs_index_root",
                          "runs_index_json", "runs_index_csv", "runs_index_md")


def main(argv: list[str]) -> int:
    trap_signals()
    if argv[:1] == ["data"]:  # data list|inspect|import: its own sub-commands (quantlab.commands.data)
        from quantlab.commands.data import main as data_main

        return data_main(argv[1:])
    from quantlab.orchestrate.early import drop_pending, fork_from_argv

    fork_from_argv(argv)  # a sweep's or a big run's step worker, before the imports below
    try:
        return _request(argv)
    finally:
        drop_pending()  # forked, but the request never took it (a usage error, --version)


def _request(argv: list[str]) -> int:
    from quantlab.cli import UsageError, build_parser, request_from_cli

    try:
        opts = build_parser().parse_args(argv)
    except UsageError as exc:
        return usage_failure(argv, str(exc))
    if opts.version:
        print(__version__)
        return 0
    if opts.check:
        from quantlab.cli import health_check

        return health_check()
    from quantlab.commands.registry import describe, dispatch, print_human

    if opts.schema is not None or opts.list_strategies or opts.list_metrics:
        return describe(opts)

    from quantlab.cli import INSPECTION_FLAGS

    if opts.json_request is None and any(getattr(opts, f, None) is not None for f in INSPECTION_FLAGS):
        from quantlab.inspect_cli import handle

        return handle(opts)

    from quantlab.contract.envelope import dumps, failure_envelope, success_envelope
    from quantlab.contract.signals import SignalEmitter

    machine = opts.json_request is not None
    webhook = opts.signal_webhook or (peek_params(opts.json_request).get("signal_webhook") if machine else None)
    if webhook:
        from quantlab.contract.webhook import url_refusal

        reason = url_refusal(str(webhook))
        if reason:  # a refused webhook never changes the outcome (docs/stepbit-io-v1.md, section 5)
            print(f"WARNING: signal webhook refused, events are not POSTed: {reason}", file=sys.stderr)
            webhook = None
    emitter = SignalEmitter(opts.signal_file, mode="unknown", webhook=webhook)
    req = None
    try:
        if machine:
            from quantlab.contract.request import parse_json_request

            emitter.mode = peek_command(opts.json_request)
            emitter.request_id = peek_request_id(opts.json_request)
            if not opts.dry_run:
                emitter.started()
            if emitter.mode in ("sweep", "run"):  # its step worker imports while the request is validated
                from quantlab.orchestrate.early import pending_worker  # and planned (a sweep, a big run)

                opts.early_worker = pending_worker(emitter.mode, peek_params(opts.json_request), opts)
            req = parse_json_request(opts.json_request)
        else:
            req = request_from_cli(opts)
            emitter.mode = req.command
            if not opts.dry_run:
                emitter.started()
        emitter.request_id = req.request_id
        # params.force (like --force) changes how the request executes, not what it computes
        opts.force = bool(opts.force or (req.params or {}).pop("force", False))
        opts.html_report = bool(getattr(opts, "html_report", False) or (req.params or {}).pop("html_report", False))
        print_warnings(req.warnings)
        result = dispatch(req, opts)
        settle()
    except (Terminated, Exception) as exc:  # QuantLabError, a signal, anything unexpected
        settle()
        if getattr(opts, "early_worker", None) is not None:  # the request failed before its plan took it
            opts.early_worker.abandon()
        info = error_info(exc, verbose=opts.verbose)
        code, error_type, message = info["exit_code"], info["error_type"], info["message"]
        print(f"ERROR: {message}", file=sys.stderr)
        if not opts.dry_run:
            emitter.failed(exit_code=code, error_type=error_type, message=message)
        if machine:
            print(dumps(failure_envelope(request_id=emitter.request_id, exit_code=code,
                                         error_type=error_type, message=message)), flush=True)
        return code
    late = [w for w in (result.get("warnings") or []) if w not in req.warnings]
    print_warnings(late)  # found while the workflow ran (zero trades, skipped combinations, ...)
    req.warnings = list(req.warnings) + late
    if not result.get("dry_run"):
        emitter.completed(**{k: result[k] for k in ENVELOPE_SIGNAL_FIELDS if k in result})
    if machine:
        env = success_envelope(request_id=req.request_id, command=req.command, result=result,
                               warnings=req.warnings)
        if result.get("dry_run"):
            env.update(dry_run=True, stale_steps=result["stale_steps"], stale_outputs=result["stale_outputs"])
        print(dumps(env), flush=True)
    else:
        print_human(result)
    from quantlab.testhooks import pause_at

    pause_at("after_envelope")
    return 0


if __name__ == "__main__":
    from quantlab.contract.exit import exit_now

    exit_now(main(sys.argv[1:]))  # flush everything, then skip interpreter teardown (contract/exit.py)
