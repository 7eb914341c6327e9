"""Step-worker warm-ups (commands/worker.py): work the pre-forked worker does while the parent
imports Snakemake and builds the DAG, so the steps find it done.

A ``run`` whose window holds enough bars to go through numba (``engine.jit.COLD_THRESHOLD``)
would otherwise pay numba's import and first dispatch (~0.4-0.6 s) inside ``step_signals`` and
``step_simulate``, after Snakemake's start-up instead of beside it. :func:`prefetch_run` loads
the strategy's indicator kernels and the simulation kernel from numba's on-disk cache on a tiny
series first: those kernels then count as warm and run under numba at any size, with the same
results as the pure-Python path (tests/unit/test_engine_jit.py).
"""

from __future__ import annotations

import contextlib
import functools
import os

# bars per calendar day by interval: an upper bound (intraday bars around the clock)
BARS_PER_DAY = {"1m": 1440, "2m": 720, "5m": 288, "15m": 96, "30m": 48, "60m": 24, "90m": 16, "1h": 24,
                "1d": 1, "5d": 0.2, "1wk": 1 / 7, "1mo": 1 / 30, "3mo": 1 / 90}


def estimate_bars(interval: str, start: str, end: str) -> int:
    """An upper bound of the bars in ``[start, end)`` at ``interval`` (calendar time, no data read)."""
    from quantlab.dates import parse_date

    days = max((parse_date(end, "end") - parse_date(start, "start")).days, 1)
    return max(int(days * BARS_PER_DAY.get(interval, 1)), 1)


def big_run(spec: dict) -> bool:
    """Whether a run's window (a data spec) is big enough that its kernels go through numba."""
    from quantlab.engine.jit import COLD_THRESHOLD

    try:
        return estimate_bars(spec["interval"], spec["start"], spec["end"]) >= COLD_THRESHOLD
    except Exception:  # a bad date is the planner's to report
        return False


@contextlib.contextmanager
def forced_jit():
    """``QUANTLAB_JIT=always`` for the duration (while the worker warms: only the data step may
    run beside it, and loading data never asks for numba)."""
    previous = os.environ.get("QUANTLAB_JIT")
    os.environ["QUANTLAB_JIT"] = "always"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("QUANTLAB_JIT", None)
        else:
            os.environ["QUANTLAB_JIT"] = previous


def prefetch_run(data_spec: dict, signals_spec: dict, engine: dict, warm_numba: bool,
                 speculate: tuple | None = None) -> None:
    """Worker warm-up of a ``run``: bundled data parsed into the loader's memo, for a big window
    the strategy's and the simulator's numba kernels loaded, then, with ``speculate`` =
    ``(internal root, content keys, sim spec)``, the chain's steps computed ahead
    (commands/speculate.py), the kernels loading on a thread while the data step computes."""
    from quantlab.commands.run.steps import prefetch_data

    prefetch_data(data_spec)
    warm = functools.partial(_warm_kept, signals_spec, engine) if warm_numba else None
    if speculate is None:
        if warm is not None:
            warm()
        return
    from quantlab.commands.speculate import speculate_run

    internal, keys, sim_spec = speculate
    speculate_run(internal, keys, data_spec, signals_spec, sim_spec, warm=warm)


def _warm_kept(signals_spec: dict, engine: dict) -> None:
    """:func:`warm_run_kernels` with the collector off, then what it made frozen (numba's import,
    when the plan came before the worker could start it, and the kernels: ~50 ms of CPU of
    collections otherwise, commands/imports_ahead.py)."""
    from quantlab.commands.imports_ahead import kept_for_good

    with kept_for_good():
        warm_run_kernels(signals_spec, engine)


def warm_run_kernels(signals_spec: dict, engine: dict) -> None:
    """Load the strategy's indicator kernels, the simulation, score and trades.csv kernels
    (numba's on-disk cache) by running them on a tiny series: they then count as warm and run
    under numba at any size."""
    import numpy as np

    from quantlab.artifacts.trades_csv import warm_kernel
    from quantlab.bar_stats import bar_stats
    from quantlab.commands.run.steps import engine_config
    from quantlab.engine import simulate
    from quantlab.strategies import get_strategy

    strategy = get_strategy(signals_spec["strategy"])
    params = dict(signals_spec["strategy_params"])
    n = int(strategy.warmup_bars(params)) + 64
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 0.01, n)))
    extra = {"volume": np.ones(n)} if getattr(strategy, "uses_volume", False) else {}
    with forced_jit():
        sig = strategy.signals(close, close * 1.01, close * 0.99, close, params, **extra)
        simulate(close, close * 1.01, close * 0.99, close, sig, engine_config(engine), start=0)
        close.setflags(write=False)  # as the score step reads its columns (steps._load_sim)
        bar_stats(close, close, 1.0, close)  # the score step's kernel (kernels.run_stats)
        warm_kernel()


def warm_numba_runtime() -> None:
    """numba imported and its runtime started (the first dispatch of a cached kernel, ~0.1 s of
    CPU beside ~0.17 s of import): what every kernel's first call pays once per process,
    whatever the strategy. An early sweep worker does it while the parent plans."""
    import numpy as np

    from quantlab.engine import jit, kernels

    try:
        fn = jit.jitted(kernels.pairwise_sum)
        fn(np.ones(4), 0, 4, np.zeros(64, dtype=np.int64), np.zeros(64))
    except Exception:  # noqa: BLE001 - numba missing or broken: the steps run in Python
        pass
