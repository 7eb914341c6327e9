"""sma_crossover: long while the fast simple moving average is above the slow one."""

from __future__ import annotations

from quantlab.engine import indicators as ind
from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError
from quantlab.strategies.base import Param, Strategy


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
