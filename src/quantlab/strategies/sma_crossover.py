"""sma_crossover: long while the fast simple moving average is above the slow one."""

from __future__ import annotations

import math

from quantlab.engine import indicators as ind
from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError
from quantlab.strategies.base import Param, Strategy

NAN = math.nan


class SmaCrossover(Strategy):
    name = "sma_crossover"
    description = "Buy when SMA(fast) crosses above SMA(slow); sell when it crosses below."
    params = (
        Param("fast", int, 10, 1, 1000, "Bars of the fast simple moving average."),
        Param("slow", int, 50, 2, 1000, "Bars of the slow simple moving average."),
    )
    constraints = ("fast < slow",)

    def check(self, params: dict) -> None:
        if params["fast"] >= params["slow"]:
            raise ConfigError(f"strategy 'sma_crossover' needs fast < slow, got fast={params['fast']} "
                              f"slow={params['slow']}")

    def warmup_bars(self, params: dict) -> int:
        return self.resolve_params(params)["slow"]  # slow SMA defined at slow-1, a cross needs one more

    def compute(self, open_, high, low, close, params):
        fast = ind.sma(close, params["fast"])
        slow = ind.sma(close, params["slow"])
        return Signals(ind.crossed_above(fast, slow), ind.crossed_below(fast, slow))

    def grid_path(self, close, params):
        """Fused: both SMAs from one cumulative sum shared by every combo, crosses in the kernel."""
        import numpy as np

        from quantlab.engine.sweep import GridBlock, GridPath, grid_column

        fast = grid_column(self, params, "fast", True, 1)
        slow = grid_column(self, params, "slow", True, 1)
        n = len(close)
        csum = np.cumsum(close - close[0])  # exactly indicators.sma's sums
        idx = np.arange(n)
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(close[1:], close[:-1], out=change[1:])
        runlen = idx - np.maximum.accumulate(np.where(change, idx, 0)) + 1
        return GridPath(grid_signals, [GridBlock(f_vec=csum, i_vec=runlen.astype(np.int64), p_i1=fast, p_i2=slow)])


def fused_sma(t, window, run, base, close, f_vec):
    """SMA(``window``) at bar ``t`` exactly as ``indicators.sma`` gives it, from ``f_vec`` =
    ``cumsum(close - close[0])`` (base + window sum / window), or exactly the value when the
    window holds one repeated value (``run``: how many values up to ``t`` equal ``close[t]``
    consecutively); ``nan`` before the window is full."""
    if t < window - 1:
        return NAN
    if window == 1 or run >= window:
        return close[t]
    if t == window - 1:
        return base + f_vec[t] / window
    return base + (f_vec[t] - f_vec[t - window]) / window


def grid_signals(c, start, close, f_vec, i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit):
    """Combo ``c``'s crosses of SMA(``p_i1[c]``) and SMA(``p_i2[c]``) (:func:`fused_sma`), exactly
    ``compute``'s."""
    n = len(close)
    w_fast = p_i1[c]
    w_slow = p_i2[c]
    base = close[0]
    prev_le = False  # fast <= slow at the previous bar (both defined)
    prev_ge = False
    t_first = start - 1 if start > 0 else 0  # the bar before start: only its SMAs count
    for t in range(t_first, n):
        run = i_vec[t]
        a = fused_sma(t, w_fast, run, base, close, f_vec)
        b = fused_sma(t, w_slow, run, base, close, f_vec)
        sig_enter[t] = a > b and prev_le  # nan compares False, like crossed_above
        sig_exit[t] = a < b and prev_ge
        prev_le = a <= b
        prev_ge = a >= b
