"""Performance metrics of one simulation, all JSON-safe (Python int/float or None, never NaN/inf).

Everything is computed from the engine's single :class:`~quantlab.engine.SimResult` (equity,
positions, per-bar net returns, closed trades), annualised with the bar frequency of the
instrument (:func:`periods_per_year`), never a fixed sqrt(252). numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from quantlab.errors import ConfigError, DataError

METRIC_KEYS = (
    "total_return", "cagr", "sharpe_simple", "sortino", "max_drawdown", "calmar", "volatility_ann",
    "trades", "win_rate", "profit_factor", "exposure", "avg_trade_return", "bars", "benchmark_return",
)

# bars per day of each intraday interval: (24/7 markets, exchange hours = 6.5 h)
_INTRADAY_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60}
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")

_CRYPTO_QUOTES = ("USD", "USDT", "USDC", "BUSD", "DAI", "EUR", "GBP", "JPY", "BTC", "ETH")


def periods_per_year(ticker_is_crypto: bool, interval: str) -> float:
    """Bars per year: 365 trading days for 24/7 markets, 252 otherwise, scaled by the interval.

    Intraday bars per day: 24 h x 60 / minutes for 24/7 markets, 6.5 h x 60 / minutes otherwise
    (1h -> x24 or x6.5). ``5d`` and ``1wk``: days / 5 for exchanges (50.4) and days / 7 for 24/7
    (52.14); ``1mo`` 12, ``3mo`` 4.
    """
    days = 365.0 if ticker_is_crypto else 252.0
    if interval in _INTRADAY_MINUTES:
        minutes_per_day = 24 * 60 if ticker_is_crypto else 6.5 * 60
        return days * minutes_per_day / _INTRADAY_MINUTES[interval]
    if interval == "1d":
        return days
    if interval == "5d":
        return days / 5.0
    if interval == "1wk":
        return days / 7.0 if ticker_is_crypto else days / 5.0
    if interval == "1mo":
        return 12.0
    if interval == "3mo":
        return 4.0
    raise ConfigError(f"unknown interval {interval!r}; valid intervals: {', '.join(INTERVALS)}")


_DAY = 86_400
# median bar spacing (seconds) each interval accepts: intraday +-50 %, daily up to 4 days (long
# weekends, holidays), weekly 4..10 days, monthly 25..35, quarterly 80..100
_SPACING = {**{k: (m * 30, m * 90) for k, m in _INTRADAY_MINUTES.items()}, "1d": (_DAY // 2, 4 * _DAY),
            "5d": (4 * _DAY, 10 * _DAY), "1wk": (4 * _DAY, 10 * _DAY), "1mo": (25 * _DAY, 35 * _DAY),
            "3mo": (80 * _DAY, 100 * _DAY)}
_NOMINAL = (("1m", 60), ("2m", 120), ("5m", 300), ("15m", 900), ("30m", 1800), ("1h", 3600), ("90m", 5400),
            ("1d", _DAY), ("1wk", 7 * _DAY), ("1mo", 30 * _DAY), ("3mo", 91 * _DAY))


def _spacing_text(seconds: float) -> str:
    for unit, size in (("d", _DAY), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def bar_calendar(index, interval: str) -> dict:
    """Bar interval and periods per year from the bars' own timestamps (UTC, oldest first).

    * The market is 24/7 (365 days a year) when some bars fall on a Saturday and some on a
      Sunday, else an exchange calendar (252 days): the ticker's name plays no part.
    * The median spacing of consecutive bars must fit ``interval`` (see ``_SPACING``): hourly
      bars declared ``1d`` raise ``DataError`` naming both. Fewer than 2 bars cannot be checked.

    Returns ``{"interval", "periods_per_year", "calendar": "24/7" | "exchange",
    "median_spacing_seconds" (None below 2 bars)}``.
    """
    if interval not in _SPACING:
        raise ConfigError(f"unknown interval {interval!r}; valid intervals: {', '.join(INTERVALS)}")
    seconds = np.asarray(index).astype("datetime64[s]").astype(np.int64)
    weekday = (seconds // _DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    all_week = bool((weekday == 5).any() and (weekday == 6).any())
    spacing = None
    if len(seconds) >= 2:
        spacing = float(np.median(np.diff(seconds)))
        lo, hi = _SPACING[interval]
        if not lo <= spacing <= hi:
            nearest = min(_NOMINAL, key=lambda item: abs(math.log(max(spacing, 1.0) / item[1])))[0]
            raise DataError(f"the bars are {_spacing_text(spacing)} apart (median), which is interval "
                            f"{nearest}, but the request says interval {interval}: set interval {nearest}")
    return {"interval": interval, "periods_per_year": periods_per_year(all_week, interval),
            "calendar": "24/7" if all_week else "exchange", "median_spacing_seconds": spacing}


def looks_like_crypto(ticker: str) -> bool:
    """Heuristic for Yahoo-style crypto pairs (``BTC-USD``, ``ETH-EUR``, ``SOL-USDT``): 24/7 markets."""
    base, sep, quote = str(ticker).upper().rpartition("-")
    return bool(sep) and bool(base) and not base.startswith("^") and quote in _CRYPTO_QUOTES


def _finite(x) -> float | None:
    """Python float, or None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _growth_rate(final_ratio: float, years: float) -> float | None:
    """(final_ratio ** (1/years)) - 1, None when it overflows or is undefined."""
    if years <= 0 or not math.isfinite(final_ratio):
        return None
    if final_ratio <= 0:
        return -1.0
    try:
        return math.expm1(math.log(final_ratio) / years)
    except OverflowError:
        return None


def compute_metrics(result, close: np.ndarray, *, start: int, periods_per_year: float,
                    initial_cash: float) -> dict:
    """The metrics payload of one simulation (keys in ``METRIC_KEYS`` order).

    ``close`` is the full close array given to the simulation and ``start`` its warm-up length,
    so ``benchmark_return`` is buy-and-hold over exactly the simulated bars. Per-bar returns are
    the engine's net returns (flat bars count as 0). One rule for degenerate input: a ratio
    whose denominator is zero or undefined is None (``null`` in JSON, NaN in the grid engine's
    arrays), never a made-up number: ``sharpe_simple`` is None with fewer than 2 bars or zero
    variance (to rounding: std <= 1e-12 x |mean|), ``sortino`` without a negative return,
    ``calmar`` without a drawdown, ``profit_factor`` without a losing trade, trade metrics
    without a closed trade. ``volatility_ann`` is 0.0 then (a measured zero, not a ratio).
    """
    with np.errstate(all="ignore"):  # overflow on absurd curves ends as None, never a warning
        return _compute(result, close, start, periods_per_year, initial_cash)


def _compute(result, close, start, periods_per_year, initial_cash) -> dict:
    equity = np.asarray(result.equity, dtype=np.float64)
    returns = np.asarray(result.returns, dtype=np.float64)
    position = np.asarray(result.position)
    close = np.asarray(close, dtype=np.float64)
    bars = len(equity)
    if bars == 0:
        raise ConfigError("no bars to score")
    if len(close) - start != bars:
        raise ConfigError(f"close has {len(close)} bars but the result covers {bars} from bar {start}")
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ConfigError(f"periods_per_year must be positive, got {periods_per_year!r}")
    initial_cash = float(initial_cash)
    ann = math.sqrt(ppy)

    final_ratio = float(equity[-1]) / initial_cash
    total_return = final_ratio - 1.0
    cagr = _growth_rate(final_ratio, bars / ppy)

    mean = float(returns.mean())
    if bars >= 2:
        std = float(returns.std(ddof=1))
    else:
        std = 0.0
    if std <= 1e-12 * abs(mean):  # constant returns: zero variance up to rounding
        std = 0.0
    sharpe = mean / std * ann if std > 0 else None
    volatility = std * ann

    downside = np.minimum(returns, 0.0)
    if (downside < 0).any():
        downside_dev = math.sqrt(float(np.mean(downside * downside)))
        sortino = mean / downside_dev * ann if downside_dev > 0 else None
    else:
        sortino = None

    peaks = np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    drawdowns = np.where(peaks > 0, equity / peaks - 1.0, 0.0)
    max_drawdown = min(float(drawdowns.min()), 0.0)
    calmar = cagr / abs(max_drawdown) if (cagr is not None and max_drawdown < 0) else None

    pnl = np.asarray(result.trades.pnl, dtype=np.float64)
    trade_returns = np.asarray(result.trades.ret, dtype=np.float64)
    n_trades = int(len(pnl))
    if n_trades:
        win_rate = float(np.count_nonzero(pnl > 0)) / n_trades
        gross_loss = -float(pnl[pnl < 0].sum())
        gross_profit = float(pnl[pnl > 0].sum())
        profit_factor = gross_profit / gross_loss if gross_loss > 0 else None
        avg_trade_return = float(trade_returns.mean())
    else:
        win_rate = profit_factor = avg_trade_return = None

    exposure = float(np.count_nonzero(position)) / bars
    benchmark_return = float(close[-1]) / float(close[start]) - 1.0

    values = {
        "total_return": total_return,
        "cagr": cagr,
        "sharpe_simple": sharpe,
        "sortino": sortino,
        "max_drawdown": max_drawdown,
        "calmar": calmar,
        "volatility_ann": volatility,
        "trades": n_trades,
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "exposure": exposure,
        "avg_trade_return": avg_trade_return,
        "bars": int(bars),
        "benchmark_return": benchmark_return,
    }
    return {k: (v if isinstance(v, int) else _finite(v)) for k, v in values.items()}
