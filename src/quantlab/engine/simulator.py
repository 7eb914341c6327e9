"""The one simulator: signals in, equity, positions and closed trades out.

:func:`simulate` validates its inputs, works out the per-bar slippage and calls
``kernels.simulate_kernel`` (pure Python or numba, see :mod:`quantlab.engine.jit`). Everything
downstream — metrics, trades.csv, the equity curve — comes from its :class:`SimResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from quantlab._lazy import np

from quantlab.engine import jit, kernels, risk
from quantlab.errors import ConfigError, DataError, StrategyError

SLIPPAGE_MODES = ("fixed", "atr")
FILL_MODES = ("next_open", "close")
ATR_WINDOW = 14


@dataclass(frozen=True)
class Signals:
    """What a strategy decides at each bar's close.

    ``entries[t]``: go long (with ``allow_short``: go long, covering a short first).
    ``exits[t]``: leave the long (with ``allow_short``: go short, selling the long first).
    ``cooldown``: bars whose signals are ignored after each filled trade's signal bar.
    """

    entries: np.ndarray
    exits: np.ndarray
    cooldown: int = 0


@dataclass(frozen=True)
class EngineConfig:
    fee: float = 0.002  # fraction of traded notional, per side
    slippage_mode: str = "fixed"  # "fixed" | "atr"
    slippage_bps: float = 8.0  # fixed mode
    k_atr: float = 0.05  # atr mode: slippage fraction = k_atr * ATR(14)[signal bar] / close[signal bar]
    fill: str = "next_open"  # "next_open" | "close"
    allow_short: bool = False
    initial_cash: float = 10_000.0
    # risk controls (engine.risk: all off and all in by default = the engine without them)
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    stop_loss_atr: float = 0.0
    take_profit_atr: float = 0.0
    trailing_stop_atr: float = 0.0
    max_bars_held: int = 0
    position_size: float = 1.0
    size_mode: str = "percent_equity"
    target_volatility: float = 0.0

    def __post_init__(self):
        def number(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
            value = getattr(self, name)
            if type(value) is not float and (  # the common case first: no ABC checks
                    isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
                bound = "(" if lo_open else "["
                raise ConfigError(f"{name}={value!r} is out of range {bound}{lo:g}, {hi:g}]")
            object.__setattr__(self, name, value)

        number("fee", 0.0, 0.5)
        number("slippage_bps", 0.0, kernels.MAX_SLIPPAGE * 10_000.0)
        number("k_atr", 0.0, 100.0)
        number("initial_cash", 0.0, 1e15, lo_open=True)
        if self.slippage_mode not in SLIPPAGE_MODES:
            raise ConfigError(f"slippage_mode={self.slippage_mode!r} is invalid; use one of: fixed, atr")
        if self.fill not in FILL_MODES:
            raise ConfigError(f"fill={self.fill!r} is invalid; use one of: next_open, close")
        if not isinstance(self.allow_short, (bool, np.bool_)):
            raise ConfigError(f"allow_short must be a boolean, got {self.allow_short!r}")
        object.__setattr__(self, "allow_short", bool(self.allow_short))
        risk.validate(self)


@dataclass(frozen=True)
class TradeLog:
    """Closed round trips as parallel arrays (one row per trade, in order of exit)."""

    entry_idx: np.ndarray  # int64: bar of the entry fill (absolute position in the input arrays)
    exit_idx: np.ndarray  # int64: bar of the exit fill
    side: np.ndarray  # int8: +1 long, -1 short
    entry_price: np.ndarray  # float64: fill price, slippage included
    exit_price: np.ndarray  # float64
    qty: np.ndarray  # float64: units traded (> 0)
    entry_fee: np.ndarray  # float64: currency
    exit_fee: np.ndarray  # float64
    pnl: np.ndarray  # float64: net of both fees, currency
    ret: np.ndarray  # float64: pnl / (qty * entry_price)
    bars_held: np.ndarray  # int64: exit_idx - entry_idx
    exit_reason: np.ndarray | None = None  # int8: index into risk.EXIT_REASONS
    ambiguous: np.ndarray | None = None  # int8: 1 if the exit bar touched both stop and take-profit

    def __len__(self) -> int:
        return len(self.pnl)

    def as_columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SimResult:
    equity: np.ndarray  # float64[n-start]: mark-to-market value at each bar's close
    position: np.ndarray  # int8[n-start]: position held at the end of each bar (-1, 0, 1)
    returns: np.ndarray  # float64[n-start]: per-bar net returns; first = equity[0]/initial_cash - 1
    trades: TradeLog
    open_position: int  # position still open after the last bar (marked, not closed, not charged)
    start: int = 0  # absolute index of equity[0]
    margin_call: int | None = None  # absolute bar where a short wiped the account out (see kernels)


def trade_capacity(n: int, allow_short: bool, risk_on: bool = False) -> int:
    """Room needed for every closed trade of an ``n``-bar simulation.

    Long-only, an entry and its exit are signals on two different bars, so at most n//2 round
    trips close; with shorts a reversal can close one trade on every bar, and with risk controls
    (stops, time exits) at most one trade closes per bar too.
    """
    return n + 2 if allow_short or risk_on else n // 2 + 2


def slippage_fractions(open_, high, low, close, cfg: EngineConfig) -> tuple[np.ndarray, float]:
    """Per-bar slippage fraction (``atr`` mode) or an empty array plus the constant (``fixed``).

    ``atr``: ``k_atr * ATR(14)[t] / close[t]`` at the signal bar; before ATR(14) is defined
    (first 13 bars) the running mean of the true ranges so far stands in for it. Either way the
    fraction is capped at ``kernels.MAX_SLIPPAGE`` (0.25, the 2500 bps ceiling of ``fixed``), so
    a fill price is always between 0.75 and 1.25 times the bar price: never <= 0.
    """
    if cfg.slippage_mode == "fixed":
        return np.empty(0), cfg.slippage_bps / 10_000.0
    from quantlab.engine.indicators import atr

    values = atr(high, low, close, ATR_WINDOW, fill_warmup=True)
    return np.minimum(cfg.k_atr * values / close, kernels.MAX_SLIPPAGE), 0.0


def price_array(name: str, values, n: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} prices must be a 1-D array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise DataError(f"{name} prices have {len(arr)} bars, close has {n}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise DataError(f"{name} prices must be finite and > 0")
    return arr


def _signal_array(name: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise StrategyError(f"signal {name} has shape {arr.shape}, expected ({n},)")
    if arr.dtype != np.bool_:
        raise StrategyError(f"signal {name} must be a boolean array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def simulate(open_, high, low, close, signals: Signals, cfg: EngineConfig | None = None, *,
             start: int = 0, periods_per_year: float | None = None) -> SimResult:
    """Simulate ``signals`` on the bars (see ``kernels.simulate_kernel`` for the exact rules).

    ``start``: bars before it are warm-up history (indicators only; their signals are ignored).
    ``periods_per_year``: needed by ``size_mode="volatility_target"`` only (annualisation).
    Raises ``DataError`` for bad prices or no bar left after warm-up, ``StrategyError`` for
    malformed signals, ``ConfigError`` for a bad config.
    """
    cfg = cfg or EngineConfig()
    close = price_array("close", close, None)
    n = len(close)
    open_ = price_array("open", open_, n)
    if cfg.slippage_mode == "atr" or risk.uses_stops(cfg):
        high = price_array("high", high, n)
        low = price_array("low", low, n)
    if isinstance(start, bool) or int(start) != start or start < 0:
        raise ConfigError(f"start must be a non-negative integer, got {start!r}")
    start = int(start)
    if start >= n:
        raise DataError(f"no bar left to trade: {n} bars, {start} needed for warm-up")
    entries = _signal_array("entries", signals.entries, n)
    exits = _signal_array("exits", signals.exits, n)
    cooldown = signals.cooldown
    if isinstance(cooldown, bool) or int(cooldown) != cooldown or cooldown < 0:
        raise StrategyError(f"cooldown must be a non-negative integer, got {cooldown!r}")
    atr, slip_const = np.empty(0), cfg.slippage_bps / 10_000.0  # the kernel caps k_atr * ATR / close
    if cfg.slippage_mode == "atr":
        from quantlab.engine.indicators import atr as atr_indicator

        atr, slip_const = atr_indicator(high, low, close, ATR_WINDOW, fill_warmup=True), 0.0

    r_high, r_low, atr_sig, vol = risk.series(high, low, close, [cfg], periods_per_year)

    m = n - start
    cap = trade_capacity(n, cfg.allow_short, not risk.is_default(cfg))
    (n_trades, open_position, margin_bar), outs = jit.call(
        kernels.simulate_kernel, m,
        open_, r_high, r_low, close, entries, exits, atr, cfg.k_atr, float(slip_const),
        start, int(cooldown), cfg.fee, cfg.fill == "close", cfg.allow_short, cfg.initial_cash,
        np.array(risk.row(cfg)), atr_sig, vol,
        jit.Out(m), jit.Out(m, np.int8), jit.Out(m),
        jit.Out(cap, np.int64), jit.Out(cap, np.int64), jit.Out(cap, np.int8),
        jit.Out(cap), jit.Out(cap), jit.Out(cap), jit.Out(cap), jit.Out(cap), jit.Out(cap), jit.Out(cap),
        jit.Out(cap, np.int8), jit.Out(cap, np.int8),
        convert=False,
    )
    if n_trades > cap:  # cannot happen (see trade_capacity); never return a truncated log
        raise StrategyError(f"trade buffer overflow: {n_trades} trades for {cap} slots")
    equity = np.asarray(outs[0], dtype=np.float64)
    position = np.asarray(outs[1], dtype=np.int8)
    returns = np.asarray(outs[2], dtype=np.float64)
    dtypes = (np.int64, np.int64, np.int8) + (np.float64,) * 7 + (np.int8, np.int8)
    cols = [np.array(buf[:n_trades], dtype=dtype) for buf, dtype in zip(outs[3:], dtypes)]
    entry_idx, exit_idx = cols[0], cols[1]
    trades = TradeLog(*cols[:10], bars_held=exit_idx - entry_idx, exit_reason=cols[10], ambiguous=cols[11])
    return SimResult(equity=equity, position=position, returns=returns, trades=trades,
                     open_position=int(open_position), start=start,
                     margin_call=int(margin_bar) if margin_bar >= 0 else None)
