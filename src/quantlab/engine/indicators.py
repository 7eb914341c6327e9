"""Technical indicators over float64 numpy arrays (index 0 = oldest bar; ``nan`` = undefined).

Leading undefined values (e.g. another indicator's warm-up, as in MACD's signal line = EMA of
EMA differences) are skipped: the indicator starts at the first defined bar, so its own warm-up
counts from there, instead of the whole output turning ``nan``.

Vectorised numpy where numpy does it in one pass (``sma``, ``shift``, crossings); the recursive
ones (EWM, RSI, ATR, rolling extremes, rolling std) are kernels from
:mod:`quantlab.engine.kernels`, run in pure Python or numba by :mod:`quantlab.engine.jit`.
No pandas, no numba import here.
"""

from __future__ import annotations

from quantlab._lazy import np

from quantlab.engine import jit, kernels


def _as_float(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _first_valid(*arrays: np.ndarray) -> int:
    """Index of the first bar where every array is defined (not NaN); ``len`` when none is."""
    first = 0
    for a in arrays:
        defined = np.flatnonzero(~np.isnan(a))
        first = max(first, int(defined[0]) if len(defined) else len(a))
    return first


def _padded(n: int, first: int, suffix: np.ndarray) -> np.ndarray:
    """``suffix`` (an indicator of bars ``first..n-1``) placed after ``first`` undefined bars."""
    out = np.full(n, np.nan)
    out[first:] = suffix
    return out


def _check_window(window: int, name: str = "window") -> int:
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"{name} must be a positive integer, got {window!r}")
    return int(window)


def sma(x, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` values; ``nan`` for the first ``window - 1``.

    Computed from a cumulative sum of deviations from ``x[0]`` (smaller sums, smaller rounding);
    windows whose values are all equal return that value exactly, so a flat stretch never
    produces rounding-noise crossings.
    """
    x = _as_float(x)
    window = _check_window(window)
    n = len(x)
    first = _first_valid(x)
    if first:  # leading undefined values (another indicator's warm-up): start after them
        return _padded(n, first, sma(x[first:], window))
    out = np.full(n, np.nan)
    if n < window:
        return out
    base = x[0]
    csum = np.cumsum(x - base)
    sums = csum[window - 1:].copy()
    sums[1:] -= csum[:-window]
    out[window - 1:] = base + sums / window
    if window > 1:
        # exact value where the window holds one repeated value
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(x[1:], x[:-1], out=change[1:])
        last_change = np.maximum.accumulate(np.where(change, np.arange(n), 0))
        flat = np.arange(n) - last_change >= window - 1
        flat[: window - 1] = False
        out[flat] = x[flat]
    else:
        out[:] = x
    return out


def ewm(x, alpha: float, min_periods: int = 1) -> np.ndarray:
    """EWM mean with ``adjust=False``; ``nan`` while fewer than ``min_periods`` observations."""
    x = _as_float(x)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    n = len(x)
    first = _first_valid(x)
    if first:
        return _padded(n, first, ewm(x[first:], alpha, min_periods))
    _, (out,) = jit.call(kernels.ewm_kernel, n, x, float(alpha), int(min_periods), jit.Out(n))
    return out


def ema(x, span: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (span + 1), defined from bar ``span - 1``."""
    span = _check_window(span, "span")
    return ewm(x, 2.0 / (span + 1.0), span)


def wilder(x, window: int) -> np.ndarray:
    """Wilder's smoothing, alpha = 1 / window, defined from bar ``window - 1``."""
    window = _check_window(window)
    return ewm(x, 1.0 / window, window)


def rsi(close, window: int = 14) -> np.ndarray:
    """Wilder's RSI (0-100); ``nan`` for the first ``window - 1`` bars. See ``kernels.rsi_kernel``."""
    close = _as_float(close)
    window = _check_window(window)
    n = len(close)
    first = _first_valid(close)
    if first:
        return _padded(n, first, rsi(close[first:], window))
    _, (out,) = jit.call(kernels.rsi_kernel, n, close, window, jit.Out(n))
    return out


def atr(high, low, close, window: int = 14, *, fill_warmup: bool = False) -> np.ndarray:
    """Wilder's average true range; ``nan`` before bar ``window - 1`` unless ``fill_warmup``
    (then the running mean of the true ranges so far). See ``kernels.atr_kernel``."""
    high, low, close = _as_float(high), _as_float(low), _as_float(close)
    window = _check_window(window)
    n = len(close)
    if not len(high) == len(low) == n:
        raise ValueError("high, low and close must have the same length")
    first = _first_valid(high, low, close)
    if first:
        return _padded(n, first, atr(high[first:], low[first:], close[first:], window, fill_warmup=fill_warmup))
    _, (out,) = jit.call(kernels.atr_kernel, n, high, low, close, window, bool(fill_warmup), jit.Out(n))
    return out


def rolling_max(x, window: int) -> np.ndarray:
    """Highest value of the last ``window`` bars (this one included); ``nan`` before ``window - 1``."""
    return _rolling_extreme(x, window, True)


def rolling_min(x, window: int) -> np.ndarray:
    """Lowest value of the last ``window`` bars (this one included); ``nan`` before ``window - 1``."""
    return _rolling_extreme(x, window, False)


def _rolling_extreme(x, window: int, find_max: bool) -> np.ndarray:
    x = _as_float(x)
    window = _check_window(window)
    n = len(x)
    first = _first_valid(x)
    if first:
        return _padded(n, first, _rolling_extreme(x[first:], window, find_max))
    _, (_queue, out) = jit.call(
        kernels.rolling_extreme_kernel, n, x, window, find_max, jit.Out(n, np.int64), jit.Out(n)
    )
    return out


def rolling_mean_std(x, window: int, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and standard deviation (population by default); ``nan`` before ``window - 1``."""
    x = _as_float(x)
    window = _check_window(window)
    if ddof not in (0, 1) or window - ddof < 1:
        raise ValueError("ddof must be 0 or 1 and smaller than the window")
    n = len(x)
    first = _first_valid(x)
    if first:
        mean, std = rolling_mean_std(x[first:], window, ddof)
        return _padded(n, first, mean), _padded(n, first, std)
    _, (mean, std) = jit.call(
        kernels.rolling_mean_std_kernel, 2 * n, x, window, int(ddof), jit.Out(n), jit.Out(n)
    )
    return mean, std


def shift(x, periods: int = 1, fill=float("nan")) -> np.ndarray:
    """``x`` delayed by ``periods`` bars (``out[t] = x[t - periods]``), ``fill`` where undefined."""
    x = np.asarray(x)
    out = np.empty_like(x, dtype=np.result_type(x, np.asarray(fill)))
    if periods <= 0:
        raise ValueError("periods must be positive")
    out[:periods] = fill
    out[periods:] = x[:-periods] if periods < len(x) else x[:0]
    return out


def crossed_above(a, b) -> np.ndarray:
    """True at t when a[t] > b[t] and a[t-1] <= b[t-1]; False where any of them is undefined."""
    return _crossed(a, b, np.greater, np.less_equal)


def crossed_below(a, b) -> np.ndarray:
    """True at t when a[t] < b[t] and a[t-1] >= b[t-1]; False where any of them is undefined."""
    return _crossed(a, b, np.less, np.greater_equal)


def _crossed(a, b, now, before) -> np.ndarray:
    """``now(a[t], b[t]) & before(a[t-1], b[t-1])``, False at t = 0 (nan compares False)."""
    a = _as_float(a)
    b = np.broadcast_to(_as_float(b), a.shape)
    out = np.zeros(len(a), dtype=bool)
    if len(a) > 1:
        with np.errstate(invalid="ignore"):
            out[1:] = now(a[1:], b[1:]) & before(a[:-1], b[:-1])
    return out


# --- used by the expression strategies (strategies/expr); definitions documented in docs/expressions.md


def _after(lead: int, n: int, values: np.ndarray) -> np.ndarray:
    """``values`` (computed on the last ``n - lead`` bars) padded with ``nan`` to length ``n``."""
    out = np.full(n, np.nan)
    out[lead:] = values
    return out


def wma(x, window: int) -> np.ndarray:
    """Linearly weighted moving average: weights 1..window, the newest bar weighs most;
    ``nan`` for the first ``window - 1`` bars."""
    x = _as_float(x)
    window = _check_window(window)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        weights = np.arange(1, window + 1, dtype=np.float64)
        out[window - 1:] = np.lib.stride_tricks.sliding_window_view(x, window) @ weights / weights.sum()
    return out


def roc(x, window: int) -> np.ndarray:
    """Rate of change in percent: ``100 * (x[t] / x[t - window] - 1)``; ``nan`` for the first
    ``window`` bars and where ``x[t - window] == 0``."""
    x = _as_float(x)
    window = _check_window(window)
    before = shift(x, window)
    out = np.full(len(x), np.nan)
    ok = before != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = 100.0 * (x[ok] / before[ok] - 1.0)
    return out


def macd(x, fast: int = 12, slow: int = 26) -> np.ndarray:
    """MACD line: ``ema(x, fast) - ema(x, slow)``; ``nan`` for the first ``max(fast, slow) - 1`` bars."""
    return ema(x, fast) - ema(x, slow)


def macd_signal(x, fast: int = 12, slow: int = 26, signal: int = 9) -> np.ndarray:
    """Signal line: ``ema(macd(x, fast, slow), signal)``, the EMA started at the MACD line's first
    defined bar; ``nan`` for the first ``max(fast, slow) - 1 + signal - 1`` bars."""
    line = macd(x, fast, slow)
    lead = max(_check_window(fast, "fast"), _check_window(slow, "slow")) - 1
    n = len(line)
    if lead >= n:
        return np.full(n, np.nan)
    return _after(lead, n, ema(line[lead:], signal))


def bb_middle(x, window: int) -> np.ndarray:
    """Middle Bollinger band: the rolling mean of ``rolling_mean_std`` (as bollinger_reversion)."""
    return rolling_mean_std(x, window, ddof=0)[0]


def bb_upper(x, window: int, num_std: float = 2.0) -> np.ndarray:
    """Upper Bollinger band: ``mean + num_std * std`` (population std, as bollinger_reversion)."""
    middle, std = rolling_mean_std(x, window, ddof=0)
    return middle + num_std * std


def bb_lower(x, window: int, num_std: float = 2.0) -> np.ndarray:
    """Lower Bollinger band: ``mean - num_std * std`` (population std, as bollinger_reversion)."""
    middle, std = rolling_mean_std(x, window, ddof=0)
    return middle - num_std * std
