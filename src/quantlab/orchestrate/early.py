"""A step worker forked before its request is validated and planned (``main.py``): a sweep's,
and a big run's (a window of at least ``engine.jit.COLD_THRESHOLD`` bars, whose numba start-up
and chain are the request's critical path; a small run keeps the worker forked after planning).

The worker (commands/worker.py, ``deferred``) imports numpy, pyarrow and the engine and, for an
inline grid big enough for numba or a big run, starts numba's runtime while the parent validates the request
and plans it (~0.1-0.25 s); the executor then hands it its log and prefetch
(``StepWorker.start``) or, when the request runs no step here, SIGKILLs it
(``StepWorker.abandon``). An identical rerun takes the fast path and needs no worker: forking one
anyway would spend ~0.2 s of CPU on imports thrown away, so a request that completed here
before (the same params: one tiny file per distinct request under ``<internal>/seen/<command>``,
written on success) is planned first and gets a worker the usual way, after planning, if it turns out to
need one. The hint only decides *when* the worker is forked, never what is computed: a wrong
guess costs time, not results.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SEEN = "seen"  # under the internal root: seen/<command>/<hash of the params>
_PENDING: list = []  # (command, params, worker, hint) forked by fork_from_argv, for early_worker


def fork_from_argv(argv: list[str]) -> None:
    """``main.py``'s first step for a machine request: decide on the early worker from the raw
    argv and fork it before the CLI's own imports and argument parsing (~30 ms sooner on a big
    run's critical path); :func:`pending_worker` hands it over when ``main.py`` reaches it, and
    :func:`drop_pending` ends it when the request never gets there (a usage error, ``--version``).
    Flags are read as written (the parser allows no abbreviations); a wrong guess costs time only."""
    from types import SimpleNamespace

    from quantlab.contract.lifecycle import argv_value, peek_command, peek_params

    raw = argv_value(argv, "--json-request")
    command = peek_command(raw) if raw is not None else None
    if command not in ("run", "sweep"):
        return
    params = peek_params(raw)
    flags = SimpleNamespace(dry_run="--dry-run" in argv, executor=argv_value(argv, "--executor"),
                            profile=argv_value(argv, "--profile"), force="--force" in argv)
    worker = early_worker(command, params, flags)
    _PENDING.append((command, params, worker, getattr(flags, "seen_hint", None)))


def pending_worker(command: str, params: dict, opts):
    """:func:`early_worker` for a machine request: the worker :func:`fork_from_argv` decided on
    for the same command and params (and its hint), or a new decision."""
    if _PENDING:
        forked_for, forked_params, worker, hint = _PENDING.pop()
        if (forked_for, forked_params) == (command, params):
            opts.seen_hint = hint
            return worker
        if worker is not None:
            worker.abandon()
    return early_worker(command, params, opts)


def drop_pending() -> None:
    """End a worker :func:`fork_from_argv` forked that no request took."""
    while _PENDING:
        worker = _PENDING.pop()[2]
        if worker is not None:
            worker.abandon()


def seen_file(params: dict, command: str = "sweep") -> Path:
    """The hint file of a request's params (as the request gave them)."""
    import hashlib
    import json

    from quantlab.contract.paths import internal_root

    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return internal_root() / SEEN / command / hashlib.sha1(text.encode()).hexdigest()[:20]


def early_worker(command: str, params: dict, opts):
    """A deferred step worker for a sweep or a big run, or None: for another command or a small
    run, a dry run, an executor or profile (the steps run elsewhere), ``QUANTLAB_STEP_WORKER=0``,
    or a request that completed here before (likely an identical rerun) unless forced. Records
    the hint file on ``opts`` (``seen_hint``) for :func:`remember`."""
    if command == "sweep":
        from quantlab.commands.sweep.plan import likely_jit

        warm_numba = likely_jit(params)
    elif command == "run":
        if not likely_big_run(params):
            return None
        warm_numba = True
    else:
        return None
    executor = params.get("executor") or opts.executor
    if (opts.dry_run or (executor and executor != "local") or params.get("profile") or opts.profile
            or os.environ.get("QUANTLAB_STEP_WORKER", "1") == "0"):
        return None
    try:
        opts.seen_hint = seen_file(params, command)
        if opts.seen_hint.exists() and not (opts.force or params.get("force")):
            return None
    except (OSError, TypeError, ValueError):
        opts.seen_hint = None
    from quantlab.commands.worker import StepWorker

    try:
        return StepWorker(deferred=True, warm_numba=warm_numba, command=command)
    except OSError:
        return None


def take_worker(opts, command: str | None = None, params: dict | None = None):
    """The early worker ``main.py`` forked for this request (or decided against), now the
    plan's; when ``main.py`` did not decide (a request from CLI flags) and ``command`` is given,
    :func:`early_worker` decides here, before planning."""
    if hasattr(opts, "early_worker"):
        worker = opts.early_worker
    else:
        worker = early_worker(command, params, opts) if command else None
    opts.early_worker = None
    return worker


@contextlib.contextmanager
def abandoned_on_error(worker):
    """A failure inside the block (a request that fails planning) ends ``worker`` (if any)."""
    try:
        yield
    except BaseException:
        if worker is not None:
            worker.abandon()
        raise


def likely_big_run(params: dict) -> bool:
    """Whether a run request's window (read from its params, before planning) holds enough bars
    for its kernels to go through numba (``commands.warmup.big_run``); False when it cannot tell."""
    from quantlab.commands.warmup import big_run

    try:
        return big_run({"interval": params.get("interval") or "1d", "start": params["start"],
                        "end": params["end"]})
    except Exception:  # noqa: BLE001 - a bad request is the planner's to report
        return False


def remember(opts) -> None:
    """The request completed: its next identical request forks no early worker."""
    path = getattr(opts, "seen_hint", None)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"completed\n")  # not empty: the store holds no empty file but locks
    except OSError:
        pass
