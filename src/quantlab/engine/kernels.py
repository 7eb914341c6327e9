"""The hot loops of QuantLab, written once as plain Python over indexable sequences.

Every function here is in numba's ``nopython`` subset: scalar arithmetic, ``range`` loops,
indexing and ``len`` only — no allocation, no Python objects, no imports but ``math``. The same
source runs in two modes, chosen by :mod:`quantlab.engine.jit`:

* pure Python on ``list`` copies of the inputs (small workloads: no numba import at all);
* ``numba.njit(cache=True, nogil=True)`` of the very same function on numpy arrays.

Outputs are written into caller-provided buffers (``out``-style arguments), so a sweep can reuse
them combo after combo. Only ``+ - * /``, comparisons and ``abs`` are used, never fused or
reassociated (no ``fastmath``), so both modes give bit-identical results.

Conventions: ``nan`` marks an undefined indicator value; windows count bars; index 0 is the oldest
bar. Nothing here validates its inputs: the callers in ``indicators`` and ``simulate`` do.
"""

from __future__ import annotations

import math

NAN = math.nan


def ewm_kernel(x, alpha, min_periods, out):
    """Exponentially weighted mean, ``adjust=False``: y[0] = x[0], y[t] = (1-a)*y[t-1] + a*x[t].

    ``out[t]`` is ``nan`` for the first ``min_periods - 1`` bars (fewer observations than
    ``min_periods``), like pandas' ``ewm(alpha=a, adjust=False, min_periods=m).mean()``.
    """
    n = len(x)
    keep = 1.0 - alpha
    y = 0.0
    for t in range(n):
        if t == 0:
            y = x[0]
        else:
            y = keep * y + alpha * x[t]
        if t + 1 < min_periods:
            out[t] = NAN
        else:
            out[t] = y


def rsi_kernel(close, window, out):
    """Wilder's RSI in one pass, the definition of the original ``rsi_ma_cross_v2`` (``ta`` library).

    delta[t] = close[t] - close[t-1], with delta[0] = 0 (the undefined first difference counts as
    a zero move); up = max(delta, 0), down = max(-delta, 0); both averaged with an EWM of
    alpha = 1/window, adjust=False, min_periods=window (so ``out[t]`` is ``nan`` for
    ``t < window - 1``); RSI = 100 - 100 / (1 + up_avg / down_avg), and 100 when down_avg == 0.
    """
    n = len(close)
    alpha = 1.0 / window
    keep = 1.0 - alpha
    up_avg = 0.0
    down_avg = 0.0
    for t in range(n):
        if t == 0:
            up_avg = 0.0
            down_avg = 0.0
        else:
            delta = close[t] - close[t - 1]
            up = 0.0
            down = 0.0
            if delta > 0.0:
                up = delta
            elif delta < 0.0:
                down = -delta
            up_avg = keep * up_avg + alpha * up
            down_avg = keep * down_avg + alpha * down
        if t + 1 < window:
            out[t] = NAN
        elif down_avg == 0.0:
            out[t] = 100.0
        else:
            out[t] = 100.0 - 100.0 / (1.0 + up_avg / down_avg)


def atr_kernel(high, low, close, window, fill_warmup, out):
    """Average true range, Wilder style (the original's definition).

    TR[0] = high[0] - low[0]; TR[t] = max(high-low, |high-close[t-1]|, |low-close[t-1]|);
    ATR[window-1] = mean(TR[0..window-1]); ATR[t] = (ATR[t-1] * (window-1) + TR[t]) / window.
    Bars before ``window - 1`` are ``nan``, or, with ``fill_warmup``, the running mean of the true
    ranges seen so far (causal: used for ATR slippage on bars the full ATR does not cover yet).
    """
    n = len(close)
    total = 0.0
    atr = 0.0
    for t in range(n):
        tr = high[t] - low[t]
        if t > 0:
            prev = close[t - 1]
            a = abs(high[t] - prev)
            b = abs(low[t] - prev)
            if a > tr:
                tr = a
            if b > tr:
                tr = b
        if t < window:
            total += tr
            if t == window - 1:
                atr = total / window
                out[t] = atr
            elif fill_warmup:
                out[t] = total / (t + 1)
            else:
                out[t] = NAN
        else:
            atr = (atr * (window - 1) + tr) / window
            out[t] = atr


def rolling_extreme_kernel(x, window, find_max, queue, out):
    """Rolling max (``find_max``) or min of ``x[t-window+1 .. t]``; ``nan`` for ``t < window - 1``.

    Monotonic-queue algorithm, O(n) whatever the window: ``queue`` is a caller-provided int
    buffer of at least ``len(x)`` slots holding candidate indices.
    """
    n = len(x)
    head = 0
    tail = 0  # queue[head:tail] holds indices whose values decrease (max) or increase (min)
    for t in range(n):
        v = x[t]
        if find_max:
            while tail > head and x[queue[tail - 1]] <= v:
                tail -= 1
        else:
            while tail > head and x[queue[tail - 1]] >= v:
                tail -= 1
        queue[tail] = t
        tail += 1
        if queue[head] <= t - window:
            head += 1
        if t + 1 < window:
            out[t] = NAN
        else:
            out[t] = x[queue[head]]


def rolling_mean_std_kernel(x, window, ddof, mean_out, std_out):
    """Rolling mean and standard deviation (``ddof`` 0 or 1) over ``window`` bars.

    Sums of deviations from a reference value are updated bar by bar and recomputed from scratch
    every ``window`` bars (the reference moves to the current value then), so rounding error stays
    bounded by one window's worth whatever the series length, at O(2n) cost. A window of one
    repeated value gives exactly that value and a zero std. ``nan`` for ``t < window - 1``.
    """
    n = len(x)
    ref = 0.0
    s1 = 0.0
    s2 = 0.0
    same = 0  # how many values up to t equal x[t], consecutively
    for t in range(n):
        if t > 0 and x[t] == x[t - 1]:
            same += 1
        else:
            same = 1
        if t + 1 < window:
            mean_out[t] = NAN
            std_out[t] = NAN
            continue
        if (t + 1 - window) % window == 0:
            ref = x[t]
            s1 = 0.0
            s2 = 0.0
            for j in range(t + 1 - window, t + 1):
                d = x[j] - ref
                s1 += d
                s2 += d * d
        else:
            d_in = x[t] - ref
            d_out = x[t - window] - ref
            s1 += d_in - d_out
            s2 += d_in * d_in - d_out * d_out
        if same >= window:
            mean_out[t] = x[t]
            std_out[t] = 0.0
            continue
        m = s1 / window
        mean_out[t] = ref + m
        var = (s2 - s1 * m) / (window - ddof)
        if var < 0.0:
            var = 0.0
        std_out[t] = math.sqrt(var)


def simulate_kernel(
    open_, close, entries, exits, slip, slip_const,
    start, cooldown, fee, fill_close, allow_short, initial_cash,
    equity, position, returns,
    tr_entry_idx, tr_exit_idx, tr_side, tr_entry_price, tr_exit_price,
    tr_qty, tr_entry_fee, tr_exit_fee, tr_pnl, tr_ret,
):
    """Bar-by-bar, all-in simulation of one signal stream. Returns ``(n_trades, open_position)``.

    Per bar ``t`` from ``start`` on (bars before ``start`` are warm-up: never traded):

    1. If ``t`` is past the cooldown, the signals at ``t``'s close give a target position:
       long-only: flat & entry -> long, long & exit -> flat; with ``allow_short``: entry without
       exit -> long, exit without entry -> short (both at once cancel out).
    2. A change of position fills at ``close[t]`` (``fill_close``) or ``open[t+1]`` (not at all
       on the last bar). Buys fill at ``price*(1+s)``, sells at ``price*(1-s)``, ``s`` =
       ``slip[t]`` if ``slip`` is non-empty else ``slip_const``. Every fill pays
       ``fee * qty * fill_price``. A reversal closes the old leg and opens the new one at the same
       bar (two fills, two fees). Opening a leg commits all the cash: ``qty = cash /
       (fill_price * (1 + fee))``, so notional + fee = cash. Signals at the ``cooldown`` bars
       after a filled signal are ignored.
    3. ``equity[t-start]`` = cash + signed qty * close[t] (a next-open order is not filled yet);
       ``position[t-start]`` = position held at the end of bar t; ``returns[t-start]`` = equity
       over the previous equity (``initial_cash`` for the first bar) minus 1 (a short gone
       wrong can leave equity <= 0: then the change over |previous|, or 0 after exactly 0).
       There are no margin calls; a leg is only opened with positive cash.

    Closed round trips go to the ``tr_*`` buffers (fill bar indices, side, fill prices, qty, fees,
    net pnl, pnl / entry notional); the buffers need room for every closed trade:
    ``len(close)//2 + 2`` long-only, ``len(close) + 2`` with ``allow_short``. A position still open
    after the last bar is marked to market, neither closed nor charged.
    """
    n = len(close)
    capacity = len(tr_pnl)
    use_slip_array = len(slip) > 0
    cash = initial_cash
    qty = 0.0
    pos = 0
    entry_price = 0.0
    entry_fee = 0.0
    entry_idx = 0
    n_trades = 0
    blocked_until = start - 1
    prev_equity = initial_cash
    for t in range(start, n):
        c = close[t]
        equity_before = cash + pos * qty * c
        pos_before = pos
        if t > blocked_until:
            target = pos
            enter = entries[t]
            leave = exits[t]
            if allow_short:
                if enter and not leave:
                    target = 1
                elif leave and not enter:
                    target = -1
            elif pos == 0:
                if enter:
                    target = 1
            elif leave:
                target = 0
            if target != pos and (fill_close or t + 1 < n):
                if fill_close:
                    fill_idx = t
                    price = c
                else:
                    fill_idx = t + 1
                    price = open_[t + 1]
                if use_slip_array:
                    s = slip[t]
                else:
                    s = slip_const
                buy_price = price * (1.0 + s)
                sell_price = price * (1.0 - s)
                if pos != 0:
                    if pos == 1:
                        exit_price = sell_price
                        notional = qty * exit_price
                        exit_fee = notional * fee
                        cash += notional - exit_fee
                        pnl = qty * (exit_price - entry_price) - entry_fee - exit_fee
                    else:
                        exit_price = buy_price
                        notional = qty * exit_price
                        exit_fee = notional * fee
                        cash -= notional + exit_fee
                        pnl = qty * (entry_price - exit_price) - entry_fee - exit_fee
                    if n_trades < capacity:
                        tr_entry_idx[n_trades] = entry_idx
                        tr_exit_idx[n_trades] = fill_idx
                        tr_side[n_trades] = pos
                        tr_entry_price[n_trades] = entry_price
                        tr_exit_price[n_trades] = exit_price
                        tr_qty[n_trades] = qty
                        tr_entry_fee[n_trades] = entry_fee
                        tr_exit_fee[n_trades] = exit_fee
                        tr_pnl[n_trades] = pnl
                        tr_ret[n_trades] = pnl / (qty * entry_price)
                    n_trades += 1
                    pos = 0
                    qty = 0.0
                if target != 0 and cash > 0.0:
                    if target == 1:
                        entry_price = buy_price
                    else:
                        entry_price = sell_price
                    qty = cash / (entry_price * (1.0 + fee))
                    entry_fee = qty * entry_price * fee
                    if target == 1:
                        cash = 0.0
                    else:
                        cash += qty * entry_price - entry_fee
                    pos = target
                    entry_idx = fill_idx
                blocked_until = t + cooldown
        i = t - start
        if fill_close:
            eq = cash + pos * qty * c
            position[i] = pos
        else:
            eq = equity_before
            position[i] = pos_before
        equity[i] = eq
        if prev_equity > 0.0:
            returns[i] = eq / prev_equity - 1.0
        elif prev_equity < 0.0:
            returns[i] = (eq - prev_equity) / -prev_equity
        else:
            returns[i] = 0.0
        prev_equity = eq
    return n_trades, pos
