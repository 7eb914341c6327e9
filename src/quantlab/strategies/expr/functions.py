"""The function table of the expression language: signature, look-back and implementation.

Argument kinds: ``series`` (a price series or any numeric expression over bars; a number is
broadcast), ``window`` (a constant whole number of bars, ``1 <= w <= MAX_WINDOW`` and at most
the number of bars), ``number`` (a constant number). ``lookback(leads, consts)`` is the number
of leading bars the result is undefined (``nan``), given the leading undefined bars of each
series argument: nested look-backs add up. Indicator definitions are
:mod:`quantlab.engine.indicators`'; an indicator applied to a series with ``L`` undefined leading
bars is computed on the bars after them (so ``ema(sma(close, 10), 5)`` starts where the SMA does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from quantlab._lazy import np

from quantlab.engine import indicators as ind

MAX_WINDOW = 100_000
SERIES = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Function:
    name: str
    params: str  # argument names, comma-separated
    args: tuple[str, ...]  # their kinds: series | window | number
    defaults: tuple  # defaults of the trailing optional arguments
    returns: str  # series | condition
    lookback: Callable  # (series leads, windows) -> leading undefined bars
    run: Callable  # (bars, series leads, series arrays, constants) -> float or bool array
    definition: str

    @property
    def min_args(self) -> int:
        return len(self.args) - len(self.defaults)

    def signature(self) -> str:
        names = self.params.split(",")
        req = names[: self.min_args]
        opt = [f"{k}={d:g}" for k, d in zip(names[self.min_args:], self.defaults)]
        return f"{self.name}({', '.join([*req, *opt])})"

    def describe(self) -> dict:
        return {"name": self.name, "signature": self.signature(),
                "args": [{"name": n, "kind": k} for n, k in zip(self.params.split(","), self.args)],
                "returns": self.returns, "definition": self.definition}


def _on_defined(fn):
    """``fn(x, *consts)`` computed on ``x`` after its ``lead`` undefined bars, padded with nan."""
    def run(bars, leads, xs, consts):
        lead, x = leads[0], xs[0]
        n = len(x)
        if lead == 0:
            return fn(x, *consts)
        if lead >= n:
            return np.full(n, np.nan)
        return ind._after(lead, n, fn(x[lead:], *consts))
    return run


def _win(leads, consts):
    return leads[0] + int(consts[0]) - 1


def _shifted(leads, consts):
    return leads[0] + int(consts[0])


def _same(leads, consts):
    return max(leads) if leads else 0


def _crossed(leads, consts):
    return max(leads) + 1


def _macd_lb(leads, consts):
    return leads[0] + max(int(consts[0]), int(consts[1])) - 1


def _macd_signal_lb(leads, consts):
    return _macd_lb(leads, consts) + int(consts[2]) - 1


def _channel(use_high: bool):
    def run(bars, leads, xs, consts):
        return ind.rolling_max(bars["high"], consts[0]) if use_high else ind.rolling_min(bars["low"], consts[0])
    return run


def _atr(bars, leads, xs, consts):
    return ind.atr(bars["high"], bars["low"], bars["close"], consts[0])


def _elementwise(fn):  # (fn is a lambda where it calls numpy: importing this module must not import numpy)
    def run(bars, leads, xs, consts):
        return fn(*xs)
    return run


S, W, N = "series", "window", "number"

_TABLE = (
    Function("sma", "x,w", (S, W), (), S, _win, _on_defined(ind.sma),
             "simple mean of the last w values (engine.indicators.sma)"),
    Function("ema", "x,w", (S, W), (), S, _win, _on_defined(ind.ema),
             "exponential mean, alpha = 2/(w+1), adjust=False, started at the first value, "
             "defined from its w-th value (engine.indicators.ema)"),
    Function("wma", "x,w", (S, W), (), S, _win, _on_defined(ind.wma),
             "linearly weighted mean of the last w values, weights 1..w, newest heaviest (engine.indicators.wma)"),
    Function("std", "x,w", (S, W), (), S, _win, _on_defined(lambda x, w: ind.rolling_mean_std(x, w, ddof=0)[1]),
             "population standard deviation (ddof=0) of the last w values (engine.indicators.rolling_mean_std)"),
    Function("highest", "x,w", (S, W), (), S, _win, _on_defined(ind.rolling_max),
             "largest of the last w values, this bar included (engine.indicators.rolling_max)"),
    Function("lowest", "x,w", (S, W), (), S, _win, _on_defined(ind.rolling_min),
             "smallest of the last w values, this bar included (engine.indicators.rolling_min)"),
    Function("rsi", "x,w", (S, W), (14,), S, _win, _on_defined(ind.rsi),
             "Wilder's RSI (0-100), as rsi_ma_cross_v2 (engine.indicators.rsi)"),
    Function("roc", "x,w", (S, W), (), S, _shifted, _on_defined(ind.roc),
             "100 * (x[t] / x[t-w] - 1); undefined where x[t-w] == 0 (engine.indicators.roc)"),
    Function("macd", "x,fast,slow", (S, W, W), (12, 26), S, _macd_lb, _on_defined(ind.macd),
             "ema(x, fast) - ema(x, slow) (engine.indicators.macd)"),
    Function("macd_signal", "x,fast,slow,signal", (S, W, W, W), (12, 26, 9), S, _macd_signal_lb, _on_defined(ind.macd_signal),
             "ema(macd(x, fast, slow), signal), started at the MACD line's first defined bar "
             "(engine.indicators.macd_signal)"),
    Function("bb_middle", "x,w", (S, W), (), S, _win, _on_defined(ind.bb_middle),
             "rolling mean of the last w values, as bollinger_reversion's middle band (engine.indicators.bb_middle)"),
    Function("bb_upper", "x,w,k", (S, W, N), (2.0,), S, _win, _on_defined(ind.bb_upper),
             "bb_middle(x, w) + k * std(x, w) (engine.indicators.bb_upper)"),
    Function("bb_lower", "x,w,k", (S, W, N), (2.0,), S, _win, _on_defined(ind.bb_lower),
             "bb_middle(x, w) - k * std(x, w), as bollinger_reversion's lower band (engine.indicators.bb_lower)"),
    Function("atr", "w", (W,), (14,), S, lambda leads, c: int(c[0]) - 1, _atr,
             "Wilder's average true range of high, low, close (engine.indicators.atr)"),
    Function("donchian_upper", "w", (W,), (), S, lambda leads, c: int(c[0]) - 1, _channel(True),
             "highest high of the last w bars, this bar included: highest(high, w)"),
    Function("donchian_lower", "w", (W,), (), S, lambda leads, c: int(c[0]) - 1, _channel(False),
             "lowest low of the last w bars, this bar included: lowest(low, w)"),
    Function("shift", "x,w", (S, W), (), S, _shifted, lambda bars, leads, xs, cs: ind.shift(xs[0], cs[0]),
             "x delayed by w bars: shift(x, w)[t] = x[t-w] (engine.indicators.shift)"),
    Function("crossed_above", "a,b", (S, S), (), "condition", _crossed, _elementwise(ind.crossed_above),
             "a[t] > b[t] and a[t-1] <= b[t-1]; false where any is undefined (engine.indicators.crossed_above)"),
    Function("crossed_below", "a,b", (S, S), (), "condition", _crossed, _elementwise(ind.crossed_below),
             "a[t] < b[t] and a[t-1] >= b[t-1]; false where any is undefined (engine.indicators.crossed_below)"),
    Function("abs", "x", (S,), (), S, _same, _elementwise(lambda x: np.abs(x)), "absolute value"),
    Function("min", "a,b", (S, S), (), S, _same, _elementwise(lambda a, b: np.minimum(a, b)), "element-wise smaller of a and b (nan if either is nan)"),
    Function("max", "a,b", (S, S), (), S, _same, _elementwise(lambda a, b: np.maximum(a, b)), "element-wise larger of a and b (nan if either is nan)"),
)

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
