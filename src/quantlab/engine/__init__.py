"""Backtest engine: numpy arrays in, results out. Knows nothing of files, CLI or Snakemake.

Importing it is cheap: numpy only. numba is imported lazily by :mod:`quantlab.engine.jit`
when a workload is big enough (or ``QUANTLAB_JIT=always``).
"""

from quantlab.engine.simulator import (
    EngineConfig,
    Signals,
    SimResult,
    TradeLog,
    simulate,
    slippage_fractions,
    trade_capacity,
)

__all__ = [
    "EngineConfig",
    "Signals",
    "SimResult",
    "TradeLog",
    "simulate",
    "slippage_fractions",
    "trade_capacity",
]
