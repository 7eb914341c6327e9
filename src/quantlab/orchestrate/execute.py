"""The one executor: claim (done by the planner) -> lock -> fast path or Snakemake -> outcome -> cleanup.

Every workflow command (run and paper, sweep, forward, portfolio and basket) goes through
:func:`execute`. Imports stay inside the functions: this module is on the cold ``run`` path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from quantlab.orchestrate.plan import Plan


def execute(plan: Plan, opts) -> dict:
    """Run ``plan`` (or, with ``opts.dry_run``, only ask Snakemake what would run)."""
    from quantlab.commands.common import KeyLocks
    from quantlab.contract.paths import internal_root
    from quantlab.store_layout import absolute
    from quantlab.testhooks import pause

    pause("planned")
    internal = internal_root()
    own_locks = plan.locks is None
    locks = KeyLocks(internal / "locks") if own_locks else plan.locks
    try:
        if opts.dry_run:
            return dry_run(plan, internal, force=opts.force)
        outputs = absolute(internal, plan.keyed_outputs)
        stale = opts.force or any(not all(p.exists() for p in paths) for paths in outputs.values())
        try:
            with _step_worker(plan, stale):
                missing = lock_keys(locks, outputs, force=opts.force)
                plan.on_locked()
                if not missing and plan.fast_path is not None:
                    # every content-addressed intermediate is up to date: only the per-request steps
                    # remain, so run them directly instead of paying Snakemake's start-up
                    plan.fast_path()
                else:
                    plan.before_workflow()
                    run_workflow(plan, internal, opts)
                if own_locks:
                    locks.release_all()
            from quantlab.artifacts.io import read_json

            pause("read_marker")
            return plan.on_success(read_json(internal / plan.target))
        except BaseException as exc:
            if plan.on_failure is not None:
                plan.on_failure(exc)
            else:
                keep_failed_log(plan.log_path, internal, plan.run_id)
            plan.discard()
            raise
    finally:
        locks.release_all()
        if plan.worker is not None:  # forked early, never started (a dry run)
            plan.worker.abandon()


def keep_failed_log(log_path: Path | None, internal: Path, run_id: str) -> None:
    from quantlab.commands.common import keep_failed_logs

    keep_failed_logs(internal, run_id, log_path)


def _step_worker(plan: Plan, stale: bool):
    """Fork the pre-warmed step worker when the workflow will run here (see commands/worker.py)."""
    import contextlib

    early, plan.worker = plan.worker, None
    if plan.prefetch is None or not plan.local or not stale or os.environ.get("QUANTLAB_STEP_WORKER", "1") == "0":
        if early is not None:
            early.abandon()
        return contextlib.nullcontext()
    if early is not None:  # forked before planning: now its log and prefetch
        early.start(str(plan.log_path), plan.prefetch)
        return early
    from quantlab.commands.worker import StepWorker

    try:
        return StepWorker(log_path=str(plan.log_path), prefetch=plan.prefetch)
    except OSError:
        return contextlib.nullcontext()


def intact(path: Path) -> bool:
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


def lock_keys(locks, outputs: dict, force: bool = False) -> list[str]:
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
        if all(p.exists() and intact(p) for p in paths):
            locks.acquire(key, exclusive=False)
            continue
        locks.acquire(key, exclusive=True)
        if all(p.exists() and intact(p) for p in paths):  # produced by a concurrent request meanwhile
            locks.acquire(key, exclusive=False)
            continue
        for p in paths:
            if p.exists() and not intact(p):
                print(f"WARNING: damaged cache file {p} is rebuilt", file=sys.stderr)
                p.unlink(missing_ok=True)
        missing.append(key)
    return missing


def run_workflow(plan: Plan, internal: Path, opts) -> None:
    """Execute the request's DAG (in-process, or through the Snakemake CLI for an executor plugin
    or a profile); a failed job becomes its recorded contract error."""
    from quantlab.snakemake_runner import read_failure

    config = {**plan.config, "log_dir": "/".join(Path(plan.target).parts[:2]) + "/logs"}  # per-job logs
    if plan.local:
        from quantlab.snakemake_runner import execute as smk_execute

        outcome = smk_execute(config=config, workdir=internal, targets=[plan.target], cores=opts.cores,
                              log_path=plan.log_path, verbose=opts.verbose, progress=plan.progress,
                              force=opts.force)
    else:
        from quantlab.snakemake_runner import execute_cli

        outcome = execute_cli(config=config, workdir=internal, targets=[plan.target], executor=plan.executor,
                              profile=plan.profile, jobs=opts.jobs, log_path=plan.log_path,
                              extra_args=["--forceall"] if opts.force else None)
    if not outcome.ok:
        raise mapped_error(*read_failure(outcome))
    _drop_job_logs(internal, config["log_dir"])


def _drop_job_logs(internal: Path, log_dir: str) -> None:
    """A successful request leaves no per-job logs behind (nothing to diagnose). Older versions
    kept every job's (mostly empty) log as ``logs/<rule>/<key>.json``: those are collected too."""
    import shutil

    shutil.rmtree(internal / log_dir, ignore_errors=True)
    try:
        legacy = [e.path for e in os.scandir(internal / "logs") if e.is_dir() and e.name != "failed"]
    except OSError:
        legacy = []
    for path in legacy:
        shutil.rmtree(path, ignore_errors=True)


def mapped_error(code: int, error_type: str, message: str):
    from quantlab.errors import ConfigError, DataError, QuantLabError, StrategyError

    cls = {2: ConfigError, 3: DataError, 4: StrategyError}.get(code, QuantLabError)
    err = cls(message)
    err.error_type = error_type
    return err


def dry_run(plan: Plan, internal: Path, force: bool = False) -> dict:
    from quantlab.errors import QuantLabError
    from quantlab.snakemake_runner import execute as smk_execute

    outcome = smk_execute(config=plan.config, workdir=internal, targets=[plan.target], dry_run=True,
                          log_path=internal / "logs" / "dry-run.log", force=force)
    if not outcome.ok:
        raise QuantLabError(f"dry run failed: {outcome.error}")
    stale = sorted({os.path.relpath(p, internal) if os.path.isabs(p) else p for p in outcome.updated_files})
    return {"run_id": None, "mode": plan.mode, "dry_run": True, "stale_outputs": stale,
            "stale_steps": sorted(set(outcome.jobs)), "summary": None, "artifacts_path": None,
            "report_path": None}
