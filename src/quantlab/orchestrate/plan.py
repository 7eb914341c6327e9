"""The one shape every workflow command's plan takes for :func:`quantlab.orchestrate.execute.execute`.

A command's planner (``commands/run/plan.py`` ``plan_run``, ``commands/sweep/plan.py``
``plan_sweep`` ...) validates the request, computes content keys and claims the run id; its builder in
:mod:`quantlab.orchestrate.plans` wraps the result in a :class:`Plan`: the Snakemake config and
target, the keyed store outputs (from :mod:`quantlab.store_layout`), where the Snakemake log goes,
what the step worker prefetches, an optional fast path, and the hooks of a paper session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def _noop(*_args: Any) -> None:
    return None


@dataclass
class Plan:
    run_id: str                              # the request's bookkeeping key (failed logs go under it)
    mode: str                                # the envelope's mode of a dry run
    config: dict                             # Snakemake config
    target: str                              # final workflow output, relative to the internal root
    log_path: Path                           # the Snakemake log of this request
    keyed_outputs: dict[str, list[str]] = field(default_factory=dict)  # content key -> store files
    prefetch: tuple | None = None            # step-worker warm-up (name, args[, first]); None: no worker
    fast_path: Callable[[], None] | None = None  # every key up to date: the tail steps, in-process
    discard: Callable[[], None] = _noop      # remove what a failed request staged
    executor: str | None = None              # a Snakemake executor plugin (not local): the CLI runs it
    profile: str | None = None               # a Snakemake profile directory
    progress: Callable | None = None         # on_job(rule, write) progress printer
    locks: Any = None                        # KeyLocks the planner already holds (kept to the end)
    on_locked: Callable[[], None] = _noop    # keys locked, before any step runs
    before_workflow: Callable[[], None] = _noop  # Snakemake is about to run (not on the fast path)
    on_success: Callable[[dict], dict] = lambda result: result  # the marker read back -> result
    on_failure: Callable[[BaseException], None] | None = None  # replaces keeping the Snakemake log
    worker: Any = None                       # a StepWorker forked before planning (deferred), if any

    @property
    def local(self) -> bool:
        return not ((self.executor and self.executor != "local") or self.profile)
