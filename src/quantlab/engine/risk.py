"""Risk controls of the engine: stops, targets, trailing stops, time exits and position sizing.

The parameters are fields of :class:`~quantlab.engine.simulator.EngineConfig` (valid for every
strategy); this module names them once (:data:`RISK_KEYS`, :data:`DEFAULTS`), validates them,
packs them into the kernels' ``risk`` rows (``kernels.RK_*``) and builds the per-bar series they
read (ATR(14) for the ``*_atr`` variants, the trailing volatility for ``volatility_target``).
The trading rules themselves live in ``kernels`` (``stop_hit``, ``risk_levels``,
``entry_budget``), shared by single runs and grids; docs/engine.md states the conventions.
"""

from __future__ import annotations

import math
import numbers

from quantlab._lazy import np

from quantlab.engine import kernels
from quantlab.errors import ConfigError

SIZE_MODES = ("percent_equity", "fixed_cash", "volatility_target")
VOL_WINDOW = 20  # returns in the trailing volatility of volatility_target sizing
# every risk parameter with its default (all off, all in: today's engine)
DEFAULTS = {
    "stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0,
    "stop_loss_atr": 0.0, "take_profit_atr": 0.0, "trailing_stop_atr": 0.0,
    "max_bars_held": 0, "position_size": 1.0, "size_mode": "percent_equity", "target_volatility": 0.0,
}
RISK_KEYS = tuple(DEFAULTS)
# ranges: (lowest, highest); 0 is "off" for every stop and for max_bars_held
RANGES = {"stop_loss": (0.0, 0.99), "take_profit": (0.0, 100.0), "trailing_stop": (0.0, 0.99),
          "stop_loss_atr": (0.0, 100.0), "take_profit_atr": (0.0, 100.0), "trailing_stop_atr": (0.0, 100.0),
          "max_bars_held": (0, 10_000_000), "position_size": (0.0, 1.0), "target_volatility": (0.0, 10.0)}
DESCRIPTIONS = {
    "stop_loss": "Stop-loss as a fraction of the entry fill price (below it for longs, above for shorts); 0 = off.",
    "take_profit": "Take-profit as a fraction of the entry fill price (above it for longs, below for shorts); 0 = off.",
    "trailing_stop": "Trailing stop as a fraction below the highest high (long) / above the lowest low (short) "
                     "since entry; 0 = off.",
    "stop_loss_atr": "Stop-loss as a multiple of ATR(14) at the signal bar (instead of stop_loss); 0 = off.",
    "take_profit_atr": "Take-profit as a multiple of ATR(14) at the signal bar (instead of take_profit); 0 = off.",
    "trailing_stop_atr": "Trailing stop as a multiple of ATR(14) at the signal bar (instead of trailing_stop); "
                         "0 = off.",
    "max_bars_held": "Time exit: close a position at the latest this many bars after its entry fill; 0 = off.",
    "position_size": "Fraction of equity committed per entry (1 = all in); fixed_cash: fraction of the initial "
                     "cash; volatility_target: the cap.",
    "size_mode": "percent_equity (position_size x equity), fixed_cash (position_size x initial cash) or "
                 "volatility_target (equity x min(position_size, target_volatility / trailing volatility)).",
    "target_volatility": "volatility_target sizing: annualised target volatility (e.g. 0.15), against the "
                         f"annualised std of the last {VOL_WINDOW} bar returns.",
}
ATR_PAIRS = (("stop_loss", "stop_loss_atr"), ("take_profit", "take_profit_atr"),
             ("trailing_stop", "trailing_stop_atr"))
STOP_KEYS = tuple(k for pair in ATR_PAIRS for k in pair)
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_bars", "end_of_data", "margin_call")
assert len(EXIT_REASONS) == kernels.N_EXIT_REASONS


def validate(cfg) -> None:
    """Check and normalise the risk fields of an ``EngineConfig`` (``ConfigError``, one line)."""
    for key, (lo, hi) in RANGES.items():
        value = getattr(cfg, key)
        if type(value) not in (float, int) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < lo or value > hi:
            raise ConfigError(f"{key}={value!r} is out of range [{lo:g}, {hi:g}]")
        if key == "max_bars_held":
            if value != int(value):
                raise ConfigError(f"max_bars_held must be a whole number of bars, got {value!r}")
            value = int(value)
        object.__setattr__(cfg, key, value)
    if cfg.size_mode not in SIZE_MODES:
        raise ConfigError(f"size_mode={cfg.size_mode!r} is invalid; use one of: {', '.join(SIZE_MODES)}")
    if cfg.position_size <= 0:
        raise ConfigError(f"position_size={cfg.position_size!r} is out of range (0, 1]")
    if cfg.size_mode == "volatility_target" and cfg.target_volatility <= 0:
        raise ConfigError("size_mode volatility_target needs target_volatility > 0 (annualised, e.g. 0.15)")
    for frac, multiple in ATR_PAIRS:
        if getattr(cfg, frac) > 0 and getattr(cfg, multiple) > 0:
            raise ConfigError(f"set {frac} or {multiple}, not both")


def is_default(cfg) -> bool:
    """Every risk control off and all-in sizing: the engine as it was before them."""
    return all(getattr(cfg, k) == v for k, v in DEFAULTS.items())


def uses_stops(cfg) -> bool:
    return any(getattr(cfg, k) > 0 for k in STOP_KEYS)


def uses_atr(cfg) -> bool:
    return any(getattr(cfg, k) > 0 for k in ("stop_loss_atr", "take_profit_atr", "trailing_stop_atr"))


def row(cfg) -> list[float]:
    """The kernels' ``risk`` row of a config (``kernels.RK_*`` order)."""
    out = [0.0] * kernels.RISK_FIELDS
    for key, slot in (("stop_loss", kernels.RK_STOP_LOSS), ("take_profit", kernels.RK_TAKE_PROFIT),
                      ("trailing_stop", kernels.RK_TRAILING_STOP), ("stop_loss_atr", kernels.RK_STOP_LOSS_ATR),
                      ("take_profit_atr", kernels.RK_TAKE_PROFIT_ATR),
                      ("trailing_stop_atr", kernels.RK_TRAILING_STOP_ATR), ("max_bars_held", kernels.RK_MAX_BARS),
                      ("position_size", kernels.RK_POSITION_SIZE), ("target_volatility", kernels.RK_TARGET_VOL)):
        out[slot] = float(getattr(cfg, key))
    out[kernels.RK_SIZE_MODE] = float(SIZE_MODES.index(cfg.size_mode))
    return out


def trailing_volatility(close, periods_per_year) -> np.ndarray:
    """Annualised std (ddof 1) of the last ``VOL_WINDOW`` close-to-close returns at each bar
    (nan until that many returns exist): what ``volatility_target`` sizing reads at the signal bar."""
    if periods_per_year is None:
        raise ConfigError("size_mode volatility_target needs the bars' periods_per_year")
    from quantlab.engine.indicators import rolling_mean_std

    close = np.asarray(close, dtype=np.float64)
    rets = np.full(len(close), np.nan)
    rets[1:] = close[1:] / close[:-1] - 1.0
    return rolling_mean_std(rets, VOL_WINDOW, ddof=1)[1] * math.sqrt(float(periods_per_year))


def series(high, low, close, cfgs, periods_per_year, atr=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(high, low, atr_sig, vol)`` for the kernels, each empty unless one of ``cfgs`` needs it
    (``atr``: the slippage ATR(14) if already computed; the same series)."""
    empty = np.empty(0)
    stops = any(uses_stops(c) for c in cfgs)
    atr_sig = empty
    if any(uses_atr(c) for c in cfgs):
        if atr is None or len(atr) == 0:
            from quantlab.engine.indicators import atr as atr_indicator
            from quantlab.engine.simulator import ATR_WINDOW

            atr = atr_indicator(high, low, close, ATR_WINDOW, fill_warmup=True)
        atr_sig = atr
    vol = empty
    if any(c.size_mode == "volatility_target" for c in cfgs):
        vol = trailing_volatility(close, periods_per_year)
    if not stops:
        return empty, empty, atr_sig, vol
    return high, low, atr_sig, vol
