"""buy_and_hold: the benchmark. Buys at the first tradable bar and never sells."""

from __future__ import annotations

from quantlab._lazy import np

from quantlab.engine.simulator import Signals
from quantlab.strategies.base import Strategy


class BuyAndHold(Strategy):
    name = "buy_and_hold"
    description = "Benchmark: buy at the first tradable bar, hold to the end."
    params = ()

    def compute(self, open_, high, low, close, params):
        n = len(close)
        # an entry on every bar: the engine takes the first one it may (after warm-up), and the
        # rest are no-ops because it is already long
        return Signals(np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
