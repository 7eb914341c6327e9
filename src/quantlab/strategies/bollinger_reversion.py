"""bollinger_reversion: buy a close that falls through the lower band, sell at the mean."""

from __future__ import annotations

from quantlab.engine import indicators as ind
from quantlab.engine.simulator import Signals
from quantlab.strategies.base import Param, Strategy


class BollingerReversion(Strategy):
    name = "bollinger_reversion"
    description = ("Buy when the close crosses below the lower Bollinger band (SMA - num_std x std); "
                   "sell when it crosses back above the middle band (SMA).")
    params = (
        Param("window", int, 20, 2, 1000, "Bars of the middle band (simple mean) and of the std."),
        Param("num_std", float, 2.0, 0.0, 10.0, "Width of the bands in population standard deviations."),
    )

    def warmup_bars(self, params: dict) -> int:
        return self.resolve_params(params)["window"]

    def compute(self, open_, high, low, close, params):
        middle, std = ind.rolling_mean_std(close, params["window"], ddof=0)
        lower = middle - params["num_std"] * std
        return Signals(ind.crossed_below(close, lower), ind.crossed_above(close, middle))
