"""A sweep's step worker forked before its request is validated and planned (``main.py``).

The worker (commands/worker.py, ``deferred``) imports numpy, pyarrow and the engine and, for an
inline grid big enough for numba, starts numba's runtime while the parent validates the request
and plans it (~0.1-0.25 s); the executor then hands it its log and prefetch
(``StepWorker.start``) or, when the request runs no step here, SIGKILLs it
(``StepWorker.abandon``). An identical rerun takes the fast path and needs no worker: forking one
anyway would spend ~0.2 s of CPU on imports thrown away, so a sweep request that completed here
before (the same params: one tiny file per distinct request under ``<internal>/SEEN``, written
on success) is planned first and gets a worker the usual way, after planning, if it turns out to
need one. The hint only decides *when* the worker is forked, never what is computed: a wrong
guess costs time, not results.
"""

from __future__ import annotations

import os
from pathlib import Path

SEEN = "seen/sweep"  # under the internal root


def seen_file(params: dict) -> Path:
    """The hint file of a sweep request's params (as the request gave them)."""
    import hashlib
    import json

    from quantlab.contract.paths import internal_root

    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return internal_root() / SEEN / hashlib.sha1(text.encode()).hexdigest()[:20]


def early_sweep_worker(params: dict, opts):
    """A deferred step worker for a sweep request, or None: for a dry run, an executor or
    profile (the steps run elsewhere), ``QUANTLAB_STEP_WORKER=0``, or a request that completed
    here before (likely an identical rerun) unless forced. Records the hint file on ``opts``
    (``sweep_seen``) for :func:`remember`."""
    executor = params.get("executor") or opts.executor
    if (opts.dry_run or (executor and executor != "local") or params.get("profile") or opts.profile
            or os.environ.get("QUANTLAB_STEP_WORKER", "1") == "0"):
        return None
    try:
        opts.sweep_seen = seen_file(params)
        if opts.sweep_seen.exists() and not (opts.force or params.get("force")):
            return None
    except (OSError, TypeError, ValueError):
        opts.sweep_seen = None
    from quantlab.commands.sweep.plan import likely_jit
    from quantlab.commands.worker import StepWorker

    try:
        return StepWorker(deferred=True, warm_numba=likely_jit(params))
    except OSError:
        return None


def remember(opts) -> None:
    """The request completed: its next identical request forks no early worker."""
    path = getattr(opts, "sweep_seen", None)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"completed\n")  # not empty: the store holds no empty file but locks
    except OSError:
        pass
