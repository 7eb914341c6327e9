#!/usr/bin/env python
"""QuantLab entry point: translate a request into a Snakemake run and its outcome into the contract.

    python main.py --json-request '<json>' [--signal-file F] [--signal-webhook URL]   (machine path)
    python main.py run --ticker SPX --start 2017-01-01 --end 2018-01-01              (human CLI)
    python main.py --version | --check

Parse -> validate -> plan (content keys, run id) -> Snakemake targets -> exit code, signals and,
under --json-request, exactly one JSON envelope line on stdout. No research logic lives here.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from quantlab import __version__  # noqa: E402
from quantlab.errors import ConfigError, QuantLabError  # noqa: E402


class Terminated(BaseException):
    """SIGTERM/SIGINT: unwind so the failure is signalled and nothing half-written stays."""


_SIGNALLED: list[str] = []  # names of the termination signals received (the first decides the outcome)


def _on_signal(signum, _frame):
    _SIGNALLED.append(signal.Signals(signum).name)
    raise Terminated(f"terminated by signal {_SIGNALLED[0]}")


def _settle() -> None:
    """The outcome is decided: from here to exit SIGTERM/SIGINT are ignored, so the exit status,
    the envelope and the last signal line always agree (and no Terminated traceback appears)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def _one_line(text: str, limit: int = 1000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------ run command
def run_command(req, opts):
    from quantlab.artifacts.io import read_json
    from quantlab.commands import run as run_steps
    from quantlab.commands.common import KeyLocks
    from quantlab.contract.paths import internal_root

    printed = len(req.warnings)
    plan = run_steps.plan_run(req.params, request_id=req.request_id, warnings=req.warnings,
                              origin=req.origin, claim=not opts.dry_run)
    if len(req.warnings) > printed:  # found while planning (e.g. a default ticker stood in)
        print("WARNING: " + _one_line("; ".join(req.warnings[printed:])), file=sys.stderr)
    internal = internal_root()
    if opts.dry_run:
        return _dry_run(plan.snakemake_config(), plan.target, internal, mode="run", force=opts.force)
    record = plan.request_record()
    marker = internal / plan.target
    sim_dir = internal / "store" / "sim" / plan.keys["sim"]
    session = None
    if plan.paper:  # a paper session is visible (and inspectable) while it runs
        from quantlab.commands.paper import PaperSession

        session = PaperSession(plan.run_dir, session_id=plan.run_id, request_id=req.request_id,
                               created_at=plan.created_at)
        session.create(plan.params, req.warnings)
        log_path = plan.run_dir / "logs" / "snakemake.log"
    else:
        log_path = plan.staging_dir / "logs" / "snakemake.log"
    outputs = plan.store_outputs()
    stale = opts.force or any(not all(p.exists() for p in paths) for paths in outputs.values())
    try:
        with _step_worker(stale, log_path, plan), KeyLocks(internal / "locks") as locks:
            missing = _lock_keys(locks, outputs, force=opts.force)
            if session is not None:
                session.start()
            if not missing:
                # Every content-addressed intermediate is up to date: only the per-request steps
                # remain, so run them directly instead of paying Snakemake's start-up.
                published = internal / plan.published
                if plan.paper:
                    run_steps.step_publish_paper(record, str(sim_dir), str(published))
                else:
                    run_steps.step_publish(record, str(sim_dir), str(published))
                    run_steps.step_refresh_index(record, str(published), str(marker))
            else:
                _run_workflow(plan.snakemake_config(), plan.target, internal, opts, log_path)
        _pause_at("read_marker")
        result = read_json(marker)
        if result.get("warnings"):  # found by the steps (e.g. a margin call): stderr and envelope
            print("WARNING: " + _one_line("; ".join(result["warnings"])), file=sys.stderr)
            req.warnings.extend(result["warnings"])
        if session is not None:
            session.complete()
            result["session_status"] = "completed"
        return result
    except BaseException as exc:
        if session is not None:
            session.fail(**_error_info(exc, verbose=False))
            _keep_failed_log(None, internal, plan.run_id)  # the session keeps its Snakemake log
        else:
            _keep_failed_log(log_path, internal, plan.run_id)
            run_steps.discard_staging(plan)
        raise


def _error_info(exc: BaseException, verbose: bool) -> dict:
    """(exit_code, error_type, one-line message) of any exception, as the contract reports it.
    After SIGTERM/SIGINT, whatever error the interruption caused (Snakemake giving up on the
    workflow, the step worker's pipe closing) is reported as the termination it is."""
    if _SIGNALLED and not isinstance(exc, Terminated):
        exc = Terminated(f"terminated by signal {_SIGNALLED[0]}")
    if isinstance(exc, QuantLabError):
        code, error_type, message = exc.exit_code, getattr(exc, "error_type", type(exc).__name__), str(exc)
    elif isinstance(exc, Terminated):
        code, error_type, message = 1, "Terminated", str(exc)
    elif isinstance(exc, OSError):  # read-only or full disk, permissions: a clean exit 1
        code, error_type = 1, type(exc).__name__
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"cannot write outputs{where}: {exc.strerror or exc}"
    else:
        code, error_type = 1, type(exc).__name__
        message = f"unexpected error: {type(exc).__name__}: {exc}"
        if verbose:
            import traceback

            traceback.print_exc()
    return {"exit_code": code, "error_type": error_type, "message": _one_line(message)}


def _step_worker(stale: bool, log_path: Path, plan=None, prefetch=None):
    """Fork the pre-warmed step worker when the workflow will run (see commands/worker.py)."""
    import contextlib

    if not stale or os.environ.get("QUANTLAB_STEP_WORKER", "1") == "0":
        return contextlib.nullcontext()
    from quantlab.commands.worker import StepWorker

    try:
        if prefetch is None:
            prefetch = ("prefetch_data", (plan.specs["data"],))
        return StepWorker(log_path=str(log_path), prefetch=prefetch)
    except OSError:
        return contextlib.nullcontext()


def _intact(path: Path) -> bool:
    """A cheap integrity check of a store file: Parquet magic at both ends, JSON that parses.
    Store files are written atomically, so damage means outside interference (disk, a person)."""
    try:
        if path.suffix == ".parquet":
            size = path.stat().st_size
            if size < 12:
                return False
            with open(path, "rb") as fh:
                head = fh.read(4)
                fh.seek(-4, os.SEEK_END)
                return head == b"PAR1" and fh.read(4) == b"PAR1"
        if path.suffix == ".json":
            import json

            with open(path, encoding="utf-8") as fh:
                json.load(fh)
            return True
        if path.suffix == ".png":
            with open(path, "rb") as fh:
                return fh.read(8) == b"\x89PNG\r\n\x1a\n"
        return path.stat().st_size > 0
    except (OSError, ValueError):
        return False


def _lock_keys(locks, outputs: dict, force: bool = False) -> list[str]:
    """Exclusive flock on keys this request must produce, shared on keys it only reads.
    A damaged store file is removed under the exclusive lock and made again. With ``force``
    every key is locked exclusively and returned: the request remakes all of them."""
    missing = []
    for key in sorted(outputs):
        paths = outputs[key]
        if force:
            locks.acquire(key, exclusive=True)
            missing.append(key)
            continue
        if all(p.exists() and _intact(p) for p in paths):
            locks.acquire(key, exclusive=False)
            continue
        locks.acquire(key, exclusive=True)
        if all(p.exists() and _intact(p) for p in paths):  # produced by a concurrent request meanwhile
            locks.acquire(key, exclusive=False)
            continue
        for p in paths:
            if p.exists() and not _intact(p):
                print(f"WARNING: damaged cache file {p} is rebuilt", file=sys.stderr)
                p.unlink(missing_ok=True)
        missing.append(key)
    return missing


def _run_workflow(config: dict, target: str, internal: Path, opts, log_path: Path, progress=None) -> None:
    """Execute the request's DAG in-process; a failed job becomes its recorded contract error."""
    from quantlab.snakemake_runner import execute, read_failure

    config = _with_job_logs(config, target)
    outcome = execute(config=config, workdir=internal, targets=[target], cores=opts.cores, log_path=log_path,
                      verbose=opts.verbose, progress=progress, force=opts.force)
    if not outcome.ok:
        raise _mapped_error(*read_failure(outcome))
    _drop_job_logs(internal, config)


def _with_job_logs(config: dict, target: str) -> dict:
    """Per-job logs go with the request's bookkeeping (``requests/<run_id>/logs``)."""
    return {**config, "log_dir": "/".join(Path(target).parts[:2]) + "/logs"}


def _drop_job_logs(internal: Path, config: dict) -> None:
    """A successful request leaves no per-job logs behind (nothing to diagnose). Older versions
    kept every job's (mostly empty) log as ``logs/<rule>/<key>.json``: those are collected too."""
    import shutil

    shutil.rmtree(internal / config["log_dir"], ignore_errors=True)
    try:
        legacy = [e.path for e in os.scandir(internal / "logs") if e.is_dir() and e.name != "failed"]
    except OSError:
        legacy = []
    for path in legacy:
        shutil.rmtree(path, ignore_errors=True)


def _pause_at(point: str) -> None:
    if os.environ.get("QUANTLAB_TEST_PAUSE_AT"):
        from quantlab.testhooks import pause

        pause(point)


def _mapped_error(code: int, error_type: str, message: str) -> QuantLabError:
    from quantlab.errors import DataError, StrategyError

    cls = {2: ConfigError, 3: DataError, 4: StrategyError}.get(code, QuantLabError)
    err = cls(message)
    err.error_type = error_type
    return err


def _keep_failed_log(log_path: Path | None, internal: Path, run_id: str) -> None:
    from quantlab.commands.common import keep_failed_logs

    keep_failed_logs(internal, run_id, log_path)


def _dry_run(config: dict, target: str, internal: Path, mode: str, force: bool = False) -> dict:
    from quantlab.snakemake_runner import execute

    outcome = execute(config=config, workdir=internal, targets=[target], dry_run=True,
                      log_path=internal / "logs" / "dry-run.log", force=force)
    if not outcome.ok:
        raise QuantLabError(f"dry run failed: {outcome.error}")
    stale = sorted({os.path.relpath(p, internal) if os.path.isabs(p) else p for p in outcome.updated_files})
    return {"run_id": None, "mode": mode, "dry_run": True, "stale_outputs": stale,
            "stale_steps": sorted(set(outcome.jobs)), "summary": None, "artifacts_path": None,
            "report_path": None}


def sweep_command(req, opts) -> dict:
    from quantlab.artifacts.io import read_json
    from quantlab.commands import sweep as sweep_steps
    from quantlab.commands.common import KeyLocks
    from quantlab.commands.experiment import load_experiment
    from quantlab.contract.paths import internal_root, resolve_input_path

    exp = load_experiment(req.params, resolve_path=resolve_input_path)
    warnings = req.warnings + exp.warnings
    if exp.warnings:
        print("WARNING: " + _one_line("; ".join(exp.warnings)), file=sys.stderr)
    req.warnings = warnings
    plan = sweep_steps.plan_sweep(exp, req.params, request_id=req.request_id, warnings=warnings,
                                  origin=req.origin, cores=opts.cores, claim=not opts.dry_run,
                                  force=opts.force)
    internal = internal_root()
    if opts.dry_run:
        return _dry_run(plan.config, plan.target, internal, mode=exp.mode, force=opts.force)
    log_path = plan.staging_dir / "logs" / "snakemake.log"
    executor = req.params.get("executor") or opts.executor
    profile = req.params.get("profile") or opts.profile
    local = not ((executor and executor != "local") or profile)
    work = sum(len(spec["combos"]) for spec in plan.config["shards"].values()) * max(
        sweep_steps._estimate_bars(exp.base, exp.base["start"], exp.base["end"]), 1)
    prefetch = ("sweep.prefetch_sweep", (list(plan.config["data"].values()), exp.strategy,
                                          {k: v for k, v in exp.combos[0].items()}, work >= 300_000))
    try:
        with _step_worker(local and bool(plan.new_shards), log_path, prefetch=prefetch), \
                KeyLocks(internal / "locks") as locks:
            _lock_keys(locks, _sweep_outputs(plan, internal), force=opts.force)
            from quantlab.snakemake_runner import execute_cli, read_failure

            if not local:
                config = _with_job_logs(plan.config, plan.target)
                outcome = execute_cli(config=config, workdir=internal, targets=[plan.target],
                                      executor=executor, profile=_profile_path(profile), jobs=opts.jobs,
                                      log_path=log_path, extra_args=["--forceall"] if opts.force else None)
                if not outcome.ok:
                    raise _mapped_error(*read_failure(outcome))
                _drop_job_logs(internal, config)
            else:
                _run_workflow(plan.config, plan.target, internal, opts, log_path,
                              progress=_progress_printer(len(plan.new_shards)))
        _pause_at("read_marker")
        result = read_json(internal / plan.target)
        result["mode"] = exp.mode
        return result
    except BaseException:
        _keep_failed_log(log_path, internal, plan.run_id)
        sweep_steps.discard_staging(plan)
        raise


def forward_command(req, opts) -> dict:
    from quantlab.artifacts.io import read_json
    from quantlab.commands import forward as fwd
    from quantlab.commands.common import KeyLocks
    from quantlab.contract.paths import internal_root
    from quantlab.testhooks import pause

    internal = internal_root()
    named = fwd.session_target(req.params)
    with KeyLocks(internal / "locks") as locks:
        if named is not None and not opts.dry_run:
            # one request at a time per session directory, held from reading the session to reading
            # this request's own result back: a resume plans on what the previous one wrote
            locks.acquire(fwd.session_lock_key(named), exclusive=True)
            pause("forward_session_locked")
        before = len(req.warnings)
        plan = fwd.plan_forward(req.params, request_id=req.request_id, warnings=req.warnings, origin=req.origin,
                                claim=not opts.dry_run)
        if len(req.warnings) > before:
            print("WARNING: " + _one_line("; ".join(req.warnings[before:])), file=sys.stderr)
        if opts.dry_run:
            return _dry_run(plan.config, plan.target, internal, mode="forward", force=opts.force)
        log_dir = plan.session_dir if plan.resume else plan.staging_dir
        log_path = log_dir / "logs" / "snakemake.log"
        outputs = {}
        for leg in plan.record["candidates"]:
            keys = leg["keys"]
            outputs[keys["data"]] = [internal / "store/data" / keys["data"] / "bars.parquet"]
            outputs[keys["signals"]] = [internal / "store/signals" / keys["signals"] / "signals.parquet"]
            outputs[keys["sim"]] = [internal / "store/sim" / keys["sim"] / name for name in
                                    ("equity.parquet", "trades.parquet", "metrics.json", "equity.png")]
        try:
            _lock_keys(locks, outputs, force=opts.force)
            _run_workflow(plan.config, plan.target, internal, opts, log_path)
            return read_json(internal / plan.target)
        except BaseException:
            _keep_failed_log(log_path, internal, plan.request_key)
            fwd.discard_staging(plan)
            raise


def portfolio_command(req, opts) -> dict:
    import shutil

    from quantlab.artifacts.io import read_json
    from quantlab.commands.portfolio_plan import plan_portfolio
    from quantlab.contract.paths import internal_root

    plan = plan_portfolio(req.params, request_id=req.request_id, warnings=req.warnings, claim=not opts.dry_run)
    internal = internal_root()
    if opts.dry_run:
        return _dry_run(plan.config, plan.target, internal, mode="portfolio", force=opts.force)
    log_path = plan.staging_dir / "logs" / "snakemake.log"
    try:
        _run_workflow(plan.config, plan.target, internal, opts, log_path)
        _pause_at("read_marker")
        result = read_json(internal / plan.target)
    except BaseException:
        _keep_failed_log(log_path, internal, plan.run_id)
        shutil.rmtree(plan.staging_dir, ignore_errors=True)
        raise
    new = [w for w in result.pop("warnings", None) or [] if w not in req.warnings]
    if new:  # found while combining (calendar gaps, weights): the envelope and stderr say so too
        print("WARNING: " + _one_line("; ".join(new)), file=sys.stderr)
        req.warnings.extend(new)
    return result


def _profile_path(profile: str | None) -> str | None:
    """A profile name from profiles/ or a path to a profile directory."""
    if not profile:
        return None
    if os.sep not in profile and (PROJECT_ROOT / "profiles" / profile).is_dir():
        return str(PROJECT_ROOT / "profiles" / profile)
    from quantlab.contract.paths import resolve_input_path

    path = resolve_input_path(profile, "profile")
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"params.profile: no Snakemake profile (config.yaml) at {path}")
    return str(path)


def _sweep_outputs(plan, internal: Path) -> dict:
    """Content key -> the store files it stands for (data, shards, walk-forward splits)."""
    outputs = {dkey: [internal / "store" / "data" / dkey / "bars.parquet"] for dkey in plan.config["data"]}
    for shard, spec in plan.config["shards"].items():
        base = internal / "store" / "sweep" / spec["family"] / "shards" / shard
        outputs[shard] = [base.with_suffix(".parquet"), base.with_suffix(".json")]
    for split in plan.config["wf_splits"]:
        base = internal / "store" / "wf" / split
        outputs[split] = [base / "selected.json", base / "test.json", base / "test_equity.parquet"]
    return outputs


def _progress_printer(total: int):
    """Shards done / total with an ETA, on the caller's stderr, at most every 2 s."""
    import time

    if total <= 1:
        return None
    state = {"done": 0, "t0": time.monotonic(), "last": 0.0}

    def on_job(rule: str, write) -> None:
        if rule != "sweep_shard":
            return
        state["done"] += 1
        now = time.monotonic()
        if now - state["last"] < 2.0 and state["done"] < total:
            return
        state["last"] = now
        elapsed = now - state["t0"]
        eta = elapsed / state["done"] * (total - state["done"])
        write(f"sweep: {state['done']}/{total} shards done, ETA {eta:.0f}s\n")

    return on_job


def describe(opts) -> int:
    """--schema [COMMAND] / --list-strategies: self-description for agents, as JSON on stdout."""
    import json

    from quantlab.contract.params import COMMANDS

    if opts.list_strategies:
        from quantlab.strategies import describe_strategies

        print(json.dumps(describe_strategies(), indent=2))
        return 0
    if opts.schema and opts.schema not in COMMANDS:
        print(f"ERROR: --schema takes one of {', '.join(COMMANDS)}, got {opts.schema!r}", file=sys.stderr)
        return 2
    from quantlab.contract.schema import described_request_schema

    print(json.dumps(described_request_schema(opts.schema or None), indent=2))
    return 0


def report_command(req) -> dict:
    from quantlab.commands.run import rebuild_report
    from quantlab.contract.paths import resolve_input_path

    run_dir = resolve_input_path(req.params["run_dir"], "run_dir")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run_dir}")
    from quantlab.registry.runs import is_run_dir

    if not is_run_dir(run_dir) and any(is_run_dir(child) for child in run_dir.iterdir() if child.is_dir()):
        # a root of runs: one self-contained HTML research report over all of them
        from quantlab.registry.html_report import write_html_report

        html = write_html_report(run_dir)
        return {"mode": "report", "report_only": True, "run_id": None, "artifacts_path": str(run_dir),
                "report_path": str(html), "summary": None}
    if (run_dir / "session_metadata.json").is_file():  # a forward session
        from quantlab.commands.forward import rebuild_session_report

        path = rebuild_session_report(run_dir)
    else:
        path = rebuild_report(run_dir)
    return {"mode": "report", "report_only": True, "run_id": run_dir.name, "artifacts_path": str(run_dir),
            "report_path": str(path), "summary": None}


# ----------------------------------------------------------------------------------- output
def print_human(result: dict) -> None:
    if result.get("report_only"):
        kind = "research report" if result["report_path"].endswith(".html") else "report rebuilt"
        print(f"{kind}: {result['report_path']}")
        return
    if result.get("dry_run"):
        print("dry run: nothing executed")
        print("stale steps: " + (", ".join(result["stale_steps"]) or "none"))
        for out in result["stale_outputs"]:
            print(f"  would make {out}")
        return
    s = result.get("summary") or {}

    from quantlab.artifacts.io import format_value as fmt

    print(f"run {result['run_id']}")
    print("  " + "  ".join(f"{k} {fmt(s.get(k))}" for k in
                           ("total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate")))
    print(f"  artifacts: {result['artifacts_path']}")
    print(f"  report:    {result['report_path']}")
    if result.get("runs_index_md"):
        print(f"  index:     {result['runs_index_md']}")


def main(argv: list[str]) -> int:
    from quantlab.cli import build_parser, request_from_cli

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    from quantlab.cli import UsageError

    try:
        opts = build_parser().parse_args(argv)
    except UsageError as exc:
        return _usage_failure(argv, str(exc))
    if opts.version:
        print(__version__)
        return 0
    if opts.check:
        from quantlab.cli import health_check

        return health_check()
    if opts.schema is not None or opts.list_strategies:
        return describe(opts)

    from quantlab.cli import INSPECTION_FLAGS

    if opts.json_request is None and any(getattr(opts, f, None) is not None for f in INSPECTION_FLAGS):
        from quantlab.inspect_cli import handle

        return handle(opts)

    from quantlab.contract.envelope import dumps, failure_envelope, success_envelope
    from quantlab.contract.signals import SignalEmitter

    machine = opts.json_request is not None
    webhook = opts.signal_webhook or (_peek_params(opts.json_request).get("signal_webhook") if machine else None)
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

            mode = _peek_command(opts.json_request)
            emitter.mode = mode
            emitter.request_id = _peek_request_id(opts.json_request)
            if not opts.dry_run:
                emitter.started()
            req = parse_json_request(opts.json_request)
        else:
            req = request_from_cli(opts)
            emitter.mode = req.command
            if not opts.dry_run:
                emitter.started()
        emitter.request_id = req.request_id
        # params.force (like --force) changes how the request executes, not what it computes
        opts.force = bool(opts.force or (req.params or {}).pop("force", False))
        if req.warnings:
            print("WARNING: " + _one_line("; ".join(req.warnings)), file=sys.stderr)
        if req.command == "report":
            result = report_command(req)
        elif req.command == "run":
            result = run_command(req, opts)
        elif req.command == "sweep":
            result = sweep_command(req, opts)
        elif req.command == "forward":
            result = forward_command(req, opts)
        elif req.command == "portfolio":
            result = portfolio_command(req, opts)
        else:
            raise ConfigError(f"unknown command '{req.command}'")
        _settle()
    except (QuantLabError, Terminated, Exception) as exc:
        _settle()
        info = _error_info(exc, verbose=opts.verbose)
        code, error_type, message = info["exit_code"], info["error_type"], info["message"]
        print(f"ERROR: {message}", file=sys.stderr)
        if not opts.dry_run:
            emitter.failed(exit_code=code, error_type=error_type, message=message)
        if machine:
            print(dumps(failure_envelope(request_id=emitter.request_id, exit_code=code,
                                         error_type=error_type, message=message)), flush=True)
        return code
    late = [w for w in (result.get("warnings") or []) if w not in req.warnings]
    if late:  # found while the workflow ran (zero trades, skipped combinations, ...)
        print("WARNING: " + _one_line("; ".join(late)), file=sys.stderr)
        req.warnings = list(req.warnings) + late
    if not result.get("dry_run"):
        fields = {k: result[k] for k in ("run_id", "artifacts_path", "report_path", "summary",
                                          "runs_index_root", "runs_index_json", "runs_index_csv",
                                          "runs_index_md") if k in result}
        emitter.completed(**fields)
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


def _usage_failure(argv: list[str], message: str) -> int:
    """An argument argparse refused: one ERROR line, exit 2; under --json-request also the failure
    envelope and SESSION_STARTED/SESSION_FAILED (to the --signal-file found in argv, if any)."""
    _settle()
    print(f"ERROR: {message}", file=sys.stderr)
    raw = _argv_value(argv, "--json-request")
    if raw is None:
        return 2
    from quantlab.contract.envelope import dumps, failure_envelope
    from quantlab.contract.signals import SignalEmitter

    request_id = _peek_request_id(raw)
    if "--dry-run" not in argv:
        emitter = SignalEmitter(_argv_value(argv, "--signal-file"), mode=_peek_command(raw), request_id=request_id)
        emitter.started()
        emitter.failed(exit_code=2, error_type="ConfigError", message=message)
    print(dumps(failure_envelope(request_id=request_id, exit_code=2, error_type="ConfigError",
                                 message=message)), flush=True)
    return 2


def _argv_value(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` (``--flag V`` or ``--flag=V``) in raw argv, for when argparse failed."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def _peek_command(raw: str) -> str:
    import json

    try:
        data = json.loads(raw)
        cmd = data.get("command") if isinstance(data, dict) else None
        return cmd if isinstance(cmd, str) and cmd in ("run", "sweep", "forward", "portfolio") else "unknown"
    except (ValueError, RecursionError):
        return "unknown"


def _peek_params(raw: str) -> dict:
    import json

    try:
        data = json.loads(raw)
        params = data.get("params") if isinstance(data, dict) else None
        return params if isinstance(params, dict) else {}
    except (ValueError, RecursionError):
        return {}


def _peek_request_id(raw: str):
    import json

    try:
        data = json.loads(raw)
        rid = data.get("request_id") if isinstance(data, dict) else None
        return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
    except (ValueError, RecursionError):
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
