"""donchian_breakout: buy a close above the recent highs, sell a close below the recent lows."""

from __future__ import annotations

from quantlab.engine import indicators as ind
from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError
from quantlab.strategies.base import Param, Strategy


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    description = ("Buy when the close exceeds the highest high of the previous entry_window bars; "
                   "sell when it falls below the lowest low of the previous exit_window bars.")
    params = (
        Param("entry_window", int, 20, 1, 1000, "Bars of the breakout channel (highs)."),
        Param("exit_window", int, 10, 1, 1000, "Bars of the exit channel (lows)."),
    )
    constraints = ("exit_window <= entry_window",)

    def check(self, params: dict) -> None:
        if params["exit_window"] > params["entry_window"]:
            raise ConfigError(f"strategy 'donchian_breakout' needs exit_window <= entry_window, got "
                              f"exit_window={params['exit_window']} entry_window={params['entry_window']}")

    def warmup_bars(self, params: dict) -> int:
        params = self.resolve_params(params)
        return max(params["entry_window"], params["exit_window"])

    def compute(self, open_, high, low, close, params):
        upper = ind.shift(ind.rolling_max(high, params["entry_window"]), 1)  # previous bars only
        lower = ind.shift(ind.rolling_min(low, params["exit_window"]), 1)
        return Signals(close > upper, close < lower)  # nan (undefined) compares False
