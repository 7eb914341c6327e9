"""rsi_ma_cross_v2: the original QuantLab strategy (the default).

Enter when the close crosses above its ``ma_window``-bar simple mean while Wilder's
RSI(``rsi_window``) is below ``rsi_buy_max``; exit when the close crosses below the mean or the
RSI rises above ``rsi_sell_min``; after each trade, ignore ``cooldown_days`` bars of signals.
Signal definitions are the original's (``ta``-library RSI, cross on the signal bar's close);
the fixes are elsewhere: warm-up is what the indicators need (not a fixed 99 bars of an unused
MA100), and the engine does the stateful part (position, cooldown) once for every strategy.
"""

from __future__ import annotations

from quantlab._lazy import np

from quantlab.engine import indicators as ind
from quantlab.engine.simulator import Signals
from quantlab.strategies.base import Param, Strategy


class RsiMaCrossV2(Strategy):
    name = "rsi_ma_cross_v2"
    description = ("Buy when the close crosses above its moving average with RSI below rsi_buy_max; "
                   "sell when it crosses below, or when RSI exceeds rsi_sell_min.")
    params = (
        Param("rsi_buy_max", float, 60.0, 0.0, 100.0, "Enter only while RSI is below this."),
        Param("rsi_sell_min", float, 75.0, 0.0, 100.0, "Exit when RSI rises above this."),
        Param("cooldown_days", int, 0, 0, 1000, "Bars of no action after each trade."),
        Param("ma_window", int, 20, 2, 1000, "Bars of the simple moving average of close."),
        Param("rsi_window", int, 14, 2, 1000, "Bars of Wilder's RSI."),
    )

    def warmup_bars(self, params: dict) -> int:
        # MA needs ma_window-1 bars and the cross one more; RSI is defined from rsi_window-1
        params = self.resolve_params(params)
        return max(params["ma_window"], params["rsi_window"] - 1)

    def compute(self, open_, high, low, close, params):
        rsi = ind.rsi(close, params["rsi_window"])
        ma = ind.sma(close, params["ma_window"])
        defined = ~np.isnan(rsi) & ~np.isnan(ma) & ~np.isnan(ind.shift(ma, 1))
        with np.errstate(invalid="ignore"):
            entries = ind.crossed_above(close, ma) & (rsi < params["rsi_buy_max"]) & defined
            exits = (ind.crossed_below(close, ma) | (rsi > params["rsi_sell_min"])) & defined
        return Signals(entries, exits, params["cooldown_days"])
