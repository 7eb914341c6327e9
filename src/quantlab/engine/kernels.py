"""The hot loops of QuantLab, written once as plain Python over indexable sequences.

Every function here is in numba's ``nopython`` subset: scalar arithmetic, ``range`` loops,
indexing and ``len`` only — no allocation, no Python objects, no imports but ``math``. The same
source runs in two modes, chosen by :mod:`quantlab.engine.jit`:

* pure Python on ``list`` copies of the inputs (small workloads: no numba import at all);
* ``numba.njit(cache=True, nogil=True)`` of the very same function on numpy arrays, without
  numba's reference counting (``jit.NO_REFCOUNT``: nothing here allocates).

Outputs are written into caller-provided buffers (``out``-style arguments), so a sweep can reuse
them combo after combo. Only ``+ - * /``, comparisons and ``abs`` are used, never fused or
reassociated (no ``fastmath``), so both modes give bit-identical results.

Conventions: ``nan`` marks an undefined indicator value; windows count bars; index 0 is the oldest
bar. Nothing here validates its inputs: the callers in ``indicators`` and ``simulate`` do.
"""

from __future__ import annotations

import math

NAN = math.nan
# Ceiling of a slippage fraction: buys fill at most 1.25x the bar price, sells at least 0.75x.
# Below 0.5 so that a short opened at a bar's close is still marked above zero at that close
# even with the maximum fee (a fresh leg never needs a margin call at its own fill).
MAX_SLIPPAGE = 0.25


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


# --------------------------------------------------------------------------- risk controls
# Engine parameters of a leg (``EngineConfig``'s risk fields), one row of ``RISK_FIELDS`` floats
# per simulation (``risk[r + RK_*]``, ``r`` = row * RISK_FIELDS); 0 = off for every stop.
RISK_FIELDS = 10
RK_STOP_LOSS = 0  # fraction below (long) / above (short) the entry fill price
RK_TAKE_PROFIT = 1  # fraction above (long) / below (short) the entry fill price
RK_TRAILING_STOP = 2  # fraction below the highest high (long) / above the lowest low (short) since entry
RK_STOP_LOSS_ATR = 3  # the same three as multiples of ATR(14) at the signal bar
RK_TAKE_PROFIT_ATR = 4
RK_TRAILING_STOP_ATR = 5
RK_MAX_BARS = 6  # time exit: a leg is closed at the latest ``max_bars`` bars after its entry fill
RK_POSITION_SIZE = 7  # fraction of equity committed per entry (1 = all in)
RK_SIZE_MODE = 8  # SIZE_* below
RK_TARGET_VOL = 9  # volatility_target: annualised target volatility
SIZE_PERCENT_EQUITY = 0
SIZE_FIXED_CASH = 1
SIZE_VOLATILITY_TARGET = 2

# Why a leg closed (``tr_reason``; ``EXIT_NONE``: no stop fired on the bar).
EXIT_NONE = -1
EXIT_SIGNAL = 0
EXIT_STOP_LOSS = 1
EXIT_TAKE_PROFIT = 2
EXIT_TRAILING_STOP = 3
EXIT_MAX_BARS = 4
EXIT_END_OF_DATA = 5
EXIT_MARGIN_CALL = 6
N_EXIT_REASONS = 7


def risk_levels(risk, r, side, entry_price, atr_t):
    """Stop-loss and take-profit levels of a leg just opened at ``entry_price`` (nan: off) and
    its trailing distance in price units (ATR variant; 0: fractional or off). ``atr_t``: ATR(14)
    at the signal bar. A fraction wins over its ATR variant (the config allows only one)."""
    sl = NAN
    tp = NAN
    frac = risk[r + RK_STOP_LOSS]
    k = risk[r + RK_STOP_LOSS_ATR]
    if frac > 0.0:
        if side == 1:
            sl = entry_price * (1.0 - frac)
        else:
            sl = entry_price * (1.0 + frac)
    elif k > 0.0:
        sl = entry_price - side * k * atr_t
    frac = risk[r + RK_TAKE_PROFIT]
    k = risk[r + RK_TAKE_PROFIT_ATR]
    if frac > 0.0:
        if side == 1:
            tp = entry_price * (1.0 + frac)
        else:
            tp = entry_price * (1.0 - frac)
    elif k > 0.0:
        tp = entry_price + side * k * atr_t
    trail_abs = 0.0
    k = risk[r + RK_TRAILING_STOP_ATR]
    if k > 0.0 and not risk[r + RK_TRAILING_STOP] > 0.0:
        trail_abs = k * atr_t
    return sl, tp, trail_abs


def stop_hit(side, o, h, l, sl, tp, trail_ref, trail_frac, trail_abs):
    """Whether a stop of the open leg fires on a bar (``o``, ``h``, ``l``): ``(reason, price,
    ambiguous)``, ``reason`` ``EXIT_NONE`` if none does.

    The loss side is the tighter of the stop-loss ``sl`` and the trailing stop (``trail_ref``,
    the best price since entry before this bar, less ``trail_frac`` or ``trail_abs``; a tie is a
    stop-loss). It is checked first: a bar that opens beyond it fills at the open, one whose range
    reaches it at its level. Then the take-profit ``tp`` the same way. ``ambiguous``: the bar's
    range touched both sides (the loss side is assumed first, the conservative reading).
    """
    stop = sl
    reason = EXIT_STOP_LOSS
    if trail_frac > 0.0 or trail_abs > 0.0:
        if side == 1:
            if trail_frac > 0.0:
                level = trail_ref * (1.0 - trail_frac)
            else:
                level = trail_ref - trail_abs
            tighter = level > stop
        else:
            if trail_frac > 0.0:
                level = trail_ref * (1.0 + trail_frac)
            else:
                level = trail_ref + trail_abs
            tighter = level < stop
        if stop != stop or tighter:
            stop = level
            reason = EXIT_TRAILING_STOP
    if side == 1:
        if l <= stop:
            if o <= stop:
                return reason, o, h >= tp
            return reason, stop, h >= tp
        if h >= tp:
            if o >= tp:
                return EXIT_TAKE_PROFIT, o, False
            return EXIT_TAKE_PROFIT, tp, False
    else:
        if h >= stop:
            if o >= stop:
                return reason, o, l <= tp
            return reason, stop, l <= tp
        if l <= tp:
            if o <= tp:
                return EXIT_TAKE_PROFIT, o, False
            return EXIT_TAKE_PROFIT, tp, False
    return EXIT_NONE, 0.0, False


def trail_update(side, ref, h, l):
    """The trailing reference after a bar: the highest high (long) / lowest low (short) so far."""
    if side == 1:
        if h > ref:
            return h
    elif l < ref:
        return l
    return ref


def time_exit_due(max_bars, t, entry_idx, fill_close):
    """Whether a leg filled at bar ``entry_idx`` must close on a signal at bar ``t``: its exit
    fill (``t``, or ``t + 1`` for next-open fills) is ``max_bars`` bars after the entry fill."""
    if fill_close:
        return t - entry_idx >= max_bars
    return t + 1 - entry_idx >= max_bars


def entry_budget(risk, r, cash, initial_cash, vol_t):
    """Cash committed to a new leg: ``position_size`` x cash (``percent_equity``; all of it at
    1.0), ``position_size`` x initial cash capped at the cash (``fixed_cash``), or cash x
    min(``position_size``, target / ``vol_t``) (``volatility_target``; nothing while the trailing
    volatility ``vol_t`` is undefined)."""
    mode = risk[r + RK_SIZE_MODE]
    f = risk[r + RK_POSITION_SIZE]
    if mode == SIZE_FIXED_CASH:
        budget = f * initial_cash
        if budget > cash:
            budget = cash
        return budget
    if mode == SIZE_VOLATILITY_TARGET:
        if vol_t != vol_t:
            return 0.0
        if vol_t > 0.0:
            w = risk[r + RK_TARGET_VOL] / vol_t
            if w < f:
                f = w
    return f * cash


def close_leg(pos, cash, qty, entry_price, entry_fee, buy_price, sell_price, fee):
    """Close the open leg (``pos`` 1 long, -1 short) at the slipped prices: the one place a
    closing fill, its fee and the trade's pnl are computed (``simulate_kernel`` and
    ``sweep_kernel`` both call it).

    Returns ``(cash, exit_price, exit_fee, pnl, wiped)``. A long sells at ``sell_price``, a
    short buys back at ``buy_price``; the fee is ``fee * qty * exit_price``. A cover that leaves
    cash <= 0 wipes the account out (``wiped``): cash is floored at 0 and the shortfall written
    off the trade's pnl (the account's loss, not the larger market loss).
    """
    wiped = False
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
        if cash <= 0.0:  # the cover cost all the account had: wiped out
            pnl -= cash
            cash = 0.0
            wiped = True
    return cash, exit_price, exit_fee, pnl, wiped


def open_leg(target, cash, budget, buy_price, sell_price, fee):
    """Open a leg (``target`` 1 long, -1 short) committing ``budget`` (0 < budget <= cash): the
    one place an opening fill is computed. ``qty = budget / (fill_price * (1 + fee))``, so
    notional + fee = budget (all the cash when ``budget == cash``: cash is then exactly 0 after
    a long). Returns ``(cash, qty, entry_price, entry_fee)``."""
    if target == 1:
        entry_price = buy_price
    else:
        entry_price = sell_price
    qty = budget / (entry_price * (1.0 + fee))
    entry_fee = qty * entry_price * fee
    if target == 1:
        if budget == cash:
            cash = 0.0
        else:
            cash -= qty * entry_price + entry_fee
    else:
        cash += qty * entry_price - entry_fee
    return cash, qty, entry_price, entry_fee


def open_trade_pnl(pos, qty, entry_price, entry_fee, c):
    """Pnl of the leg still open after the last bar, marked to the last close ``c`` (no exit
    fill, no exit fee, no slippage)."""
    if pos == 1:
        return qty * (c - entry_price) - entry_fee
    return qty * (entry_price - c) - entry_fee


def slippage_at(atr, t, c_t, k_atr, slip_const):
    """The slippage fraction of a fill signalled at bar ``t`` (close ``c_t``):
    ``min(k_atr * atr[t] / c_t, MAX_SLIPPAGE)`` if ``atr`` is non-empty, else ``slip_const``."""
    if len(atr) > 0:
        s = k_atr * atr[t] / c_t
        if s > MAX_SLIPPAGE:
            s = MAX_SLIPPAGE
        return s
    return slip_const


def book_trade(record, i, n_win, n_loss, entry_idx, exit_idx, side, entry_price, exit_price, qty, entry_fee,
               exit_fee, pnl, reason, ambiguous, rec, tr_ret, tr_win, tr_loss, counts, kc):
    """Book trade ``i`` of :func:`trade_loop`; returns the new ``(n_trades, n_win, n_loss)``.

    If there is room: its return ``pnl / (qty * entry_price)`` in ``tr_ret[i]`` and the count of
    wins (pnl > 0) and losses (pnl < 0). ``record`` (a single run): the whole row in ``rec``,
    the tuple of :func:`simulate_kernel`'s other ``tr_*`` buffers (entry and exit bar, side,
    entry and exit price, qty, entry and exit fee, pnl, reason, ambiguous). Otherwise (a grid combo): the pnl in ``tr_win``/``tr_loss`` and one more
    exit of its reason in ``counts[kc + reason]``.
    """
    if i < len(tr_ret):
        tr_ret[i] = pnl / (qty * entry_price)
        if record:
            rec[0][i] = entry_idx
            rec[1][i] = exit_idx
            rec[2][i] = side
            rec[3][i] = entry_price
            rec[4][i] = exit_price
            rec[5][i] = qty
            rec[6][i] = entry_fee
            rec[7][i] = exit_fee
            rec[8][i] = pnl
            rec[9][i] = reason
            rec[10][i] = 1 if ambiguous else 0
        if pnl > 0.0:
            if not record:
                tr_win[n_win] = pnl
            n_win += 1
        elif pnl < 0.0:
            if not record:
                tr_loss[n_loss] = pnl
            n_loss += 1
    if not record:
        counts[kc + reason] += 1.0
    return i + 1, n_win, n_loss


def exit_rules_of(risk, r):
    """Whether row ``r`` of ``risk`` sets a stop or a time exit (``trade_loop``'s ``exit_rules``)."""
    for f in (RK_STOP_LOSS, RK_TAKE_PROFIT, RK_TRAILING_STOP, RK_STOP_LOSS_ATR, RK_TAKE_PROFIT_ATR,
              RK_TRAILING_STOP_ATR, RK_MAX_BARS):
        if risk[r + f] > 0.0:
            return True
    return False


def trade_loop(
    record, open_, high, low, close, entries, exits, atr, k_atr, slip_const,
    start, cooldown, fee, fill_close, allow_short, initial_cash, risk, r, atr_sig, vol,
    returns, equity, position, counts, kc, rec, tr_ret, tr_win, tr_loss, exit_rules,
):
    """THE trading loop: one signal stream simulated bar by bar (the rules: :func:`simulate_kernel`).

    Both kernels run it: :func:`simulate_kernel` once with ``record`` (keeping ``equity`` and
    ``position`` per bar and every trade's row in ``rec`` and ``tr_ret``, see :func:`book_trade`),
    :func:`sweep_kernel` once per combo without (keeping the per-bar ``returns``, each trade's
    return and pnl, the exit counts in ``counts[kc + EXIT_*]`` and the drawdown, exposure and
    negative-bar tallies). Buffers a mode does not write may be any array of their type.

    Slippage: ``min(k_atr * atr[t] / close[t], MAX_SLIPPAGE)`` at the signal bar if ``atr`` is
    non-empty, else ``slip_const``. Risk controls: ``risk[r + RK_*]``; ``exit_rules`` None: the
    stops and the time exit are off whatever ``risk`` says (numba compiles a loop without those
    steps for a None there: :func:`exit_rules_of` says when a caller may pass it).

    Returns ``(n_trades, n_win, n_loss, pos, final_equity, max_dd, max_under, n_neg, n_exposed,
    margin_calls, margin_bar, n_ambiguous, holding, dd_top)``: ``pos`` the position still open
    after the last bar (booked as a trade marked to the last close, reason ``EXIT_END_OF_DATA``);
    ``max_dd``, ``max_under`` (the longest stretch under water, from peak bar ``dd_top``),
    ``n_neg``, ``n_exposed`` are tallied in grid mode only (0 when ``record``); ``margin_bar``: the fill bar of the first margin call (-1: none).
    """
    n = len(close)
    use_vol = len(vol) > 0
    use_atr_sig = len(atr_sig) > 0
    stops = False
    max_bars = 0
    if exit_rules is not None:  # a None argument: numba prunes this branch, then the steps it would enable
        stops = risk[r + RK_STOP_LOSS] > 0.0 or risk[r + RK_TAKE_PROFIT] > 0.0 \
            or risk[r + RK_TRAILING_STOP] > 0.0 or risk[r + RK_STOP_LOSS_ATR] > 0.0 \
            or risk[r + RK_TAKE_PROFIT_ATR] > 0.0 or risk[r + RK_TRAILING_STOP_ATR] > 0.0
        max_bars = int(risk[r + RK_MAX_BARS])
    trail_frac = risk[r + RK_TRAILING_STOP]
    cash = initial_cash
    qty = 0.0
    pos = 0
    entry_price = 0.0
    entry_fee = 0.0
    entry_idx = 0
    holding = 0
    last_top = start - 1  # last bar at or above the running peak (start - 1: the initial cash)
    max_under = 0  # longest stretch of bars below the running peak
    dd_top = start - 1  # its peak bar
    sl = NAN
    tp = NAN
    trail_ref = 0.0
    trail_abs = 0.0
    hold_enter = False  # after a stop/time exit: ignore the entry signal until it has been off
    hold_leave = False
    n_trades = 0
    n_win = 0
    n_loss = 0
    n_ambiguous = 0
    blocked_until = start - 1
    prev_equity = initial_cash
    peak = initial_cash
    trough = initial_cash  # lowest equity since the running peak was set
    max_dd = 0.0
    n_neg = 0
    n_exposed = 0
    margin_calls = 0
    margin_bar = -1
    for t in range(start, n):
        c_t = close[t]
        if stops and pos != 0:  # step S
            reason, stop_price, ambiguous = stop_hit(pos, open_[t], high[t], low[t], sl, tp, trail_ref,
                                                     trail_frac, trail_abs)
            if reason != EXIT_NONE:
                s = slippage_at(atr, t, c_t, k_atr, slip_const)
                cash, exit_price, exit_fee, pnl, wiped = close_leg(
                    pos, cash, qty, entry_price, entry_fee, stop_price * (1.0 + s), stop_price * (1.0 - s), fee)
                if wiped:
                    margin_calls += 1
                    if margin_bar < 0:
                        margin_bar = t
                if ambiguous:
                    n_ambiguous += 1
                holding += t - entry_idx
                n_trades, n_win, n_loss = book_trade(
                    record, n_trades, n_win, n_loss, entry_idx, t, pos, entry_price, exit_price, qty, entry_fee,
                    exit_fee, pnl, reason, ambiguous, rec, tr_ret, tr_win, tr_loss, counts, kc)
                pos = 0
                qty = 0.0
                hold_enter = True
                hold_leave = True
            else:
                trail_ref = trail_update(pos, trail_ref, high[t], low[t])
        if hold_enter and not entries[t]:
            hold_enter = False
        if hold_leave and not exits[t]:
            hold_leave = False
        forced = pos == -1 and cash - qty * c_t <= 0.0  # margin call: step 0
        timed = max_bars > 0 and pos != 0 and not forced and time_exit_due(max_bars, t, entry_idx, fill_close)
        equity_before = cash + pos * qty * c_t
        pos_before = pos
        if forced or timed or t > blocked_until:
            target = pos
            enter = entries[t] and not hold_enter
            leave = exits[t] and not hold_leave
            if forced or timed:
                target = 0
            elif allow_short:
                if enter and not leave:
                    target = 1
                elif leave and not enter:
                    target = -1
            elif pos == 0:
                if enter:
                    target = 1
            elif leave:
                target = 0
            if target != pos and (forced or fill_close or t + 1 < n):
                if forced or fill_close:
                    fill_idx = t
                    price = c_t
                else:
                    fill_idx = t + 1
                    price = open_[t + 1]
                s = slippage_at(atr, t, c_t, k_atr, slip_const)
                buy_price = price * (1.0 + s)
                sell_price = price * (1.0 - s)
                if pos != 0:
                    cash, exit_price, exit_fee, pnl, wiped = close_leg(
                        pos, cash, qty, entry_price, entry_fee, buy_price, sell_price, fee)
                    if wiped:
                        margin_calls += 1
                        if margin_bar < 0:
                            margin_bar = fill_idx
                    reason = EXIT_SIGNAL
                    if forced:
                        reason = EXIT_MARGIN_CALL
                    elif timed:
                        reason = EXIT_MAX_BARS
                        hold_enter = True
                        hold_leave = True
                    holding += fill_idx - entry_idx
                    n_trades, n_win, n_loss = book_trade(
                        record, n_trades, n_win, n_loss, entry_idx, fill_idx, pos, entry_price, exit_price, qty,
                        entry_fee, exit_fee, pnl, reason, False, rec, tr_ret, tr_win, tr_loss, counts, kc)
                    pos = 0
                    qty = 0.0
                if target != 0 and cash > 0.0:
                    vol_t = NAN
                    if use_vol:
                        vol_t = vol[t]
                    budget = entry_budget(risk, r, cash, initial_cash, vol_t)
                    if budget > 0.0:
                        cash, qty, entry_price, entry_fee = open_leg(target, cash, budget, buy_price, sell_price,
                                                                     fee)
                        pos = target
                        entry_idx = fill_idx
                        hold_enter = False
                        hold_leave = False
                        if stops:
                            atr_t = 0.0
                            if use_atr_sig:
                                atr_t = atr_sig[t]
                            sl, tp, trail_abs = risk_levels(risk, r, pos, entry_price, atr_t)
                            trail_ref = entry_price
                if not forced and not timed:
                    blocked_until = t + cooldown
        if forced:
            equity_before = 0.0  # what is left after the margin call
        if fill_close:
            eq = cash + pos * qty * c_t
            held = pos
        else:
            eq = equity_before
            held = pos_before
        if prev_equity > 0.0:  # a flat bar gives +0.0 in each branch (x / x is exactly 1, x - x is +0.0)
            ret = eq / prev_equity - 1.0
        elif prev_equity < 0.0:
            ret = (eq - prev_equity) / -prev_equity
        else:
            ret = 0.0
        i = t - start
        returns[i] = ret
        prev_equity = eq
        if record:
            equity[i] = eq
            position[i] = held
            continue
        if held != 0:
            n_exposed += 1
        if ret < 0.0:
            n_neg += 1
        # drawdown eq / running peak - 1 (the peak starts at initial_cash > 0 and never
        # falls): rounding is monotonic, so per peak only the lowest equity can be the min
        if eq >= peak:  # the stretch under water (if any) ends: its length is known now
            if t - last_top - 1 > max_under:
                max_under = t - last_top - 1
                dd_top = last_top
            last_top = t
            if eq > peak:
                if trough < peak:
                    dd = trough / peak - 1.0
                    if dd < max_dd:
                        max_dd = dd
                peak = eq
                trough = eq
        elif eq < trough:
            trough = eq
    if not record:
        if trough < peak:
            dd = trough / peak - 1.0
            if dd < max_dd:
                max_dd = dd
        if n - 1 - last_top > max_under:  # still under water at the end
            max_under = n - 1 - last_top
            dd_top = last_top
    if pos != 0:
        # the position still open after the last bar: one more trade, marked to the last
        # close (no exit fill, no exit fee, no slippage); the caller knows it is open from pos
        c_t = close[n - 1]
        pnl = open_trade_pnl(pos, qty, entry_price, entry_fee, c_t)
        holding += n - 1 - entry_idx
        n_trades, n_win, n_loss = book_trade(
            record, n_trades, n_win, n_loss, entry_idx, n - 1, pos, entry_price, c_t, qty, entry_fee, 0.0, pnl,
            EXIT_END_OF_DATA, False, rec, tr_ret, tr_win, tr_loss, counts, kc)
    return (n_trades, n_win, n_loss, pos, prev_equity, max_dd, max_under, n_neg, n_exposed, margin_calls, margin_bar,
            n_ambiguous, holding, dd_top)


def simulate_kernel(
    open_, high, low, close, entries, exits, atr, k_atr, slip_const,
    start, cooldown, fee, fill_close, allow_short, initial_cash, risk, atr_sig, vol,
    equity, position, returns,
    tr_entry_idx, tr_exit_idx, tr_side, tr_entry_price, tr_exit_price,
    tr_qty, tr_entry_fee, tr_exit_fee, tr_pnl, tr_ret, tr_reason, tr_ambiguous,
):
    """Bar-by-bar simulation of one signal stream, with the risk controls of ``risk``: the
    shared :func:`trade_loop` in its recording mode (``sweep_kernel`` runs the same loop).

    Returns ``(n_trades, open_position, margin_bar)``; ``margin_bar`` is the bar of the first
    margin call (-1: none).

    Per bar ``t`` from ``start`` on (bars before ``start`` are warm-up: never traded):

    S. Stops (``risk``: stop-loss, take-profit, trailing stop, see :func:`stop_hit`): an open
       leg is checked against bar ``t``'s open, high and low. Stops are live from the entry
       fill: a leg filled at ``open[t]`` (``next_open``) is checked on bar ``t`` itself, one
       filled at ``close[t]`` from bar ``t + 1``. A stop fills at its level, or at the open when
       the bar opens beyond it, slipped like any fill (``s`` below), fee charged. The trailing
       reference then takes in the bar's high (long) / low (short). ``high``/``low``/
       ``atr_sig`` may be empty when no stop is set; ``atr_sig`` (ATR(14) per bar) is read at
       the entry's signal bar for the ``*_atr`` stops.
    0. Margin call: a short whose mark ``cash - qty * close[t]`` is <= 0 is bought back at
       ``close[t] * (1 + s)`` (fee charged) before any signal of the bar. The account cannot
       owe: cash ends at exactly 0, the shortfall is written off (the trade's pnl is the
       account's loss, not the larger market loss), and with no cash nothing opens again. Any
       cover of a short that leaves cash <= 0 is floored and counted the same way.
    1. If ``t`` is past the cooldown, the signals at ``t``'s close give a target position:
       long-only: flat & entry -> long, long & exit -> flat; with ``allow_short``: entry without
       exit -> long, exit without entry -> short (both at once cancel out). After an exit by a
       stop or by time, a signal already on at that bar is ignored until it has been off for a
       bar (a fresh signal re-enters, a still-true one does not). Time exit: a leg whose exit
       fill would come ``max_bars`` bars after its entry fill is closed then whatever the
       signals and the cooldown say (``position`` flat, never reversed).
    2. A change of position fills at ``close[t]`` (``fill_close``) or ``open[t+1]`` (not at all
       on the last bar). Buys fill at ``price*(1+s)``, sells at ``price*(1-s)``, ``s`` =
       ``min(k_atr * atr[t] / close[t], MAX_SLIPPAGE)`` if ``atr`` (ATR(14) per bar, the
       running mean of the true ranges before bar 14) is non-empty, else ``slip_const`` (the
       caller caps it at ``MAX_SLIPPAGE``): fill prices stay > 0 and fees >= 0. Every fill pays
       ``fee * qty * fill_price``. A reversal closes the old leg and opens the new one at the same
       bar (two fills, two fees). Opening a leg commits :func:`entry_budget` (all the cash by
       default; ``vol`` is the trailing volatility per bar, empty unless sizing needs it):
       ``qty = budget / (fill_price * (1 + fee))``. Signals at the ``cooldown`` bars after a
       filled signal are ignored (stop and time exits start no cooldown).
    3. ``equity[t-start]`` = cash + signed qty * close[t] (a next-open order is not filled yet);
       ``position[t-start]`` = position held at the end of bar t; ``returns[t-start]`` = equity
       over the previous equity (``initial_cash`` for the first bar) minus 1 (0 after an
       equity of exactly 0). Equity never goes below 0 (step 0), so no return is below -1.
       A leg is only opened with positive cash.

    Round trips go to the ``tr_*`` buffers (fill bar indices, side, fill prices, qty, fees,
    net pnl, pnl / entry notional, ``EXIT_*`` reason, 1 if the exit bar touched both the stop
    and the take-profit); the buffers need room for every trade:
    ``len(close)//2 + 2`` long-only, ``len(close) + 2`` with ``allow_short`` or stops (see
    ``simulator.trade_capacity``). A position still open after the last bar is marked to
    market, neither closed nor charged, and logged as the last trade: exit bar ``n - 1``, exit
    price ``close[n - 1]``, no exit fee, reason ``EXIT_END_OF_DATA`` (it counts in
    ``n_trades``; the returned ``open_position`` says it is open).
    """
    args = (True, open_, high, low, close, entries, exits, atr, k_atr, slip_const,
            start, cooldown, fee, fill_close, allow_short, initial_cash, risk, 0, atr_sig, vol,
            returns, equity, position, tr_pnl, 0,
            (tr_entry_idx, tr_exit_idx, tr_side, tr_entry_price, tr_exit_price, tr_qty, tr_entry_fee,
             tr_exit_fee, tr_pnl, tr_reason, tr_ambiguous), tr_ret, tr_pnl, tr_pnl)
    if exit_rules_of(risk, 0):
        out = trade_loop(*args, True)
    else:  # the loop compiled without the stop and time-exit steps (~1.35x the bars per second)
        out = trade_loop(*args, None)
    return out[0], out[3], out[10]


# ------------------------------------------------------------------------------------ sweeps
# Kernels of ``quantlab.engine.sweep``: many combos of one strategy, each simulated and scored
# with nothing kept but a few per-combo sums. ``sweep_kernel`` calls ``pairwise_sum`` and
# ``grid_signals``: run it under numba with ``jit.jitted_calling(sweep_kernel, pairwise_sum)``,
# or with a strategy's fused signals through ``jit.specialised``.

SWEEP_STATS = 32  # values per combo in ``sweep_kernel``'s ``stats`` output, in this order:
ST_FINAL_EQUITY = 0  # equity after the last bar
ST_SUM_RETURNS = 1  # numpy-order sum of the per-bar returns
ST_SUM_SQ_DEV = 2  # numpy-order sum of (return - mean)**2 (0 with fewer than 2 bars)
ST_NEGATIVE_BARS = 3  # bars with a negative return
ST_SUM_SQ_DOWN = 4  # numpy-order sum of min(return, 0)**2
ST_MAX_DRAWDOWN = 5  # min(0, min over bars of equity / running peak - 1), initial cash in the peak
ST_TRADES = 6  # trades (closed, plus one still open at the end)
ST_WINS = 7  # trades with pnl > 0
ST_LOSSES = 8  # trades with pnl < 0
ST_GROSS_PROFIT = 9  # numpy-order sum of the positive pnls
ST_LOSS_SUM = 10  # numpy-order sum of the negative pnls (<= 0)
ST_SUM_TRADE_RETURNS = 11  # numpy-order sum of the trade returns
ST_EXPOSED_BARS = 12  # bars whose recorded position is not flat
ST_MARGIN_CALLS = 13  # shorts liquidated because the account was wiped out (0 or 1)
ST_EXITS_SIGNAL = 14  # trades by exit reason, in ``EXIT_*`` order (ST_EXITS_SIGNAL + reason)
ST_EXITS_STOP_LOSS = 15
ST_EXITS_TAKE_PROFIT = 16
ST_EXITS_TRAILING_STOP = 17
ST_EXITS_MAX_BARS = 18
ST_EXITS_END_OF_DATA = 19
ST_EXITS_MARGIN_CALL = 20
ST_AMBIGUOUS_BARS = 21  # bars whose range touched both the stop and the take-profit (stop assumed)
ST_BEST_TRADE = 22  # largest trade return (NaN without a trade)
ST_WORST_TRADE = 23  # smallest trade return (NaN without a trade)
ST_HOLDING_BARS = 24  # sum over trades of exit bar - entry bar (fill bars; the open one ends at n - 1)
ST_SUM_SQ_TRADE_DEV = 25  # numpy-order sum of (trade return - mean trade return)**2 (0 under 2 trades)
ST_MAX_DD_BARS = 26  # longest run of bars whose equity is below its running peak (initial cash included)
# the series statistics (``series_stats``; NaN / 0 when the kernel gets no benchmark returns):
ST_VAR_95 = 27  # the (1 - VAR_LEVEL) quantile of the per-bar returns, numpy's 'linear' method
ST_TAIL_SUM = 28  # sum of the returns <= ST_VAR_95, in bar order
ST_TAIL_BARS = 29  # how many returns are <= ST_VAR_95
ST_SUM_XY = 30  # sum of bench_dx * return, in 8 interleaved partial sums
ST_MAX_DD_TOP = 31  # the peak bar of the first longest stretch under water (-1: the initial cash; bar 0 = start)

VAR_LEVEL = 0.95  # var_95 / cvar_95: the (1 - VAR_LEVEL) left tail of the per-bar returns

PIVOT_MARGIN = 8  # series_stats' pivot: this many ranks below the quantile's, plus
PIVOT_SHARE = 8  # the quantile's rank over this
PAIRWISE_STACK = 256  # int slots of ``pairwise_sum``'s stack (3 per level); floats: a third


def sum_terms(x, mean, squares):
    """What :func:`pairwise_sums` adds up for a value ``x``: ``(x, 0.0)``, or with ``squares``
    ``(x - mean) ** 2`` and ``min(x, 0) ** 2`` (as ``np.minimum(x, 0.0) ** 2``: NaN stays NaN)."""
    if not squares:
        return x, 0.0
    d = x - mean
    if not (x < 0.0 or x != x):
        x = 0.0
    return d * d, x * x


def add_terms(r, q, x, mean, squares):
    """``(r, q)`` plus the two :func:`sum_terms` of ``x``."""
    u, v = sum_terms(x, mean, squares)
    return r + u, q + v


def leaf_sums(a, l0, k, mean, squares):
    """numpy's sum of ``k <= 128`` values from ``a[l0]`` (a leaf of :func:`pairwise_sums`):
    fewer than 8 in a row; else 8 interleaved partial sums combined as
    ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the remainder in a row. Two sums at once, of
    the two :func:`sum_terms` of each value."""
    if k < 8:
        res = -0.0
        res2 = -0.0
        for i in range(l0, l0 + k):
            res, res2 = add_terms(res, res2, a[i], mean, squares)
        return res, res2
    r0, q0 = sum_terms(a[l0], mean, squares)
    r1, q1 = sum_terms(a[l0 + 1], mean, squares)
    r2, q2 = sum_terms(a[l0 + 2], mean, squares)
    r3, q3 = sum_terms(a[l0 + 3], mean, squares)
    r4, q4 = sum_terms(a[l0 + 4], mean, squares)
    r5, q5 = sum_terms(a[l0 + 5], mean, squares)
    r6, q6 = sum_terms(a[l0 + 6], mean, squares)
    r7, q7 = sum_terms(a[l0 + 7], mean, squares)
    end = l0 + k - k % 8
    i = l0 + 8
    while i < end:
        r0, q0 = add_terms(r0, q0, a[i], mean, squares)
        r1, q1 = add_terms(r1, q1, a[i + 1], mean, squares)
        r2, q2 = add_terms(r2, q2, a[i + 2], mean, squares)
        r3, q3 = add_terms(r3, q3, a[i + 3], mean, squares)
        r4, q4 = add_terms(r4, q4, a[i + 4], mean, squares)
        r5, q5 = add_terms(r5, q5, a[i + 5], mean, squares)
        r6, q6 = add_terms(r6, q6, a[i + 6], mean, squares)
        r7, q7 = add_terms(r7, q7, a[i + 7], mean, squares)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    res2 = ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))
    while i < l0 + k:
        res, res2 = add_terms(res, res2, a[i], mean, squares)
        i += 1
    return res, res2


def pairwise_sums(a, lo, n, mean, squares, stack_i, stack_f):
    """``a[lo:lo+n]`` summed in exactly numpy's order, so the result is bit-identical to
    ``np.sum`` / ``np.add.reduce`` of that contiguous float64 slice (and ``mean`` = this / n);
    with ``squares``, in one pass, the same order's sums of ``(a - mean) ** 2`` and of
    ``np.minimum(a, 0.0) ** 2`` (what numpy gives on those arrays). Returns the two sums
    (the second 0.0 without ``squares``).

    numpy sums pairwise: runs of up to 128 values as :func:`leaf_sums` adds them; more are
    split at n/2 rounded down to a multiple of 8 and the two halves added. The recursion runs
    here on an explicit stack (numba cannot cache recursive functions): ``stack_i`` holds
    (lo, n, state) triples, ``stack_f`` the partial sums (two per pending half);
    ``PAIRWISE_STACK`` int slots and ``PAIRWISE_STACK // 3`` float slots suffice for any length
    below 2**40 (depth <= 34).
    """
    stack_i[0] = lo
    stack_i[1] = n
    stack_i[2] = 0
    sp = 1
    fp = 0
    while sp > 0:
        b = 3 * (sp - 1)
        l0 = stack_i[b]
        k = stack_i[b + 1]
        if k <= 128:
            res, res2 = leaf_sums(a, l0, k, mean, squares)
            stack_f[fp] = res
            stack_f[fp + 1] = res2
            fp += 2
            sp -= 1
            continue
        half = k // 2
        half -= half % 8
        state = stack_i[b + 2]
        if state == 2:  # both halves done: left + right
            fp -= 2
            stack_f[fp - 2] = stack_f[fp - 2] + stack_f[fp]
            stack_f[fp - 1] = stack_f[fp - 1] + stack_f[fp + 1]
            sp -= 1
            continue
        stack_i[b + 2] = state + 1
        if state == 0:
            stack_i[b + 3] = l0
            stack_i[b + 4] = half
        else:
            stack_i[b + 3] = l0 + half
            stack_i[b + 4] = k - half
        stack_i[b + 5] = 0
        sp += 1
    return stack_f[0], stack_f[1]


def pairwise_sum(a, lo, n, stack_i, stack_f):
    """``a[lo:lo+n]`` summed in exactly numpy's order (see :func:`pairwise_sums`)."""
    return pairwise_sums(a, lo, n, 0.0, False, stack_i, stack_f)[0]


def sum_sq_dev(a, n, mean, stack_i, stack_f):
    """Sum of ``(a[i] - mean) ** 2`` over ``a[:n]`` in numpy's order."""
    return pairwise_sums(a, 0, n, mean, True, stack_i, stack_f)[0]


def no_grid_signals(c, start, close, f_vec, i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit):
    """The ``grid_signals`` of a kernel without a fused path (mode 0 never calls it)."""
    return


grid_signals = no_grid_signals  # rebound per strategy by ``jit.specialised`` (see sweep_kernel)


def sweep_kernel(
    mode, lo, hi,
    open_, high, low, close, atr, atr_sig, vol, start, fill_close, allow_short, initial_cash, bench_dx,
    entries, exits, f_vec, i_vec, tab_a, tab_b,
    p_i1, p_i2, p_f1, p_f2, cooldowns, fees, slip_consts, k_atrs, risks,
    stats, ret_out,
    ret_buf, scratch, tr_ret, tr_win, tr_loss, stack_i, stack_f, sig_enter, sig_exit, cand,
):
    """Simulate and score combos ``lo .. hi-1`` of one strategy; per-combo sums go to ``stats``.

    Per combo ``c`` the signals come from ``mode``:

    * 0: ``entries``/``exits`` (one combo's precomputed signals: ``hi == lo + 1``);
    * otherwise (a strategy's fused grid path): ``grid_signals(c, start, close, f_vec, i_vec,
      tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit)`` writes combo ``c``'s signals
      (bars ``start - 1`` .. ``n - 1`` at least) into ``sig_enter``/``sig_exit`` (per-thread,
      one byte per bar, cache-resident), then the simulation loop reads them. ``grid_signals``
      is the strategy's own function (``Strategy.grid_path``), bound into this kernel's globals
      by ``jit.specialised``; the data arguments mean what that strategy says (shared vectors
      and tables, per-combo integers and floats).

    Costs per combo: ``fees[c]``; slippage ``min(k_atrs[c] * atr[t] / close[t], MAX_SLIPPAGE)``
    if ``atr`` is non-empty, else ``slip_consts[c]``; ``cooldowns[c]`` bars. Risk controls per
    combo: row ``c`` of ``risks`` (``RISK_FIELDS`` floats, ``RK_*``), with the shared bars
    ``high``/``low``, ``atr_sig`` (ATR(14), for the ``*_atr`` stops) and ``vol`` (trailing
    volatility, for ``volatility_target`` sizing), each empty when no combo needs it. The
    simulation is :func:`trade_loop`, the very loop ``simulate_kernel`` runs (same equity,
    returns, positions, trades); instead of keeping them, it accumulates what
    ``metrics.compute_metrics`` needs (see the ``ST_*`` indices) in
    ``stats[c * SWEEP_STATS + ST_*]``, with numpy's summation order.

    Scratch, reused combo after combo (one set per thread): ``ret_buf``, ``scratch``: >=
    ``len(close) - start`` floats (``scratch``, whose last slot keeps ``series_stats``' pivot between
    combos, also stands in for the equity curve, which grid
    mode never writes); ``tr_ret``, ``tr_win``, ``tr_loss``: ``trade_capacity`` floats;
    ``stack_i``, ``stack_f``: ``pairwise_sum``'s stacks; ``sig_enter``, ``sig_exit``:
    ``len(close)`` booleans.

    ``ret_out``: a (combos, ``len(close) - start``) float32 array receiving each combo's per-bar
    net returns in row ``c`` (the series the sums are made of), or a (0, 0) array: not kept.
    """
    m = len(close) - start
    keep_returns = ret_out.shape[0] > 0
    for c in range(lo, hi):
        k = c * SWEEP_STATS
        for j in range(N_EXIT_REASONS):
            stats[k + ST_EXITS_SIGNAL + j] = 0.0
        enter_at = entries
        exit_at = exits
        if mode != 0:
            enter_at = sig_enter
            exit_at = sig_exit
            grid_signals(c, start, close, f_vec, i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit)
        # the shared loop in grid mode; the single-run buffers it never writes get stand-ins
        args = (False, open_, high, low, close, enter_at, exit_at, atr, k_atrs[c], slip_consts[c],
                start, cooldowns[c], fees[c], fill_close, allow_short, initial_cash, risks, c * RISK_FIELDS, atr_sig,
                vol, ret_buf, scratch, stack_i, stats, k + ST_EXITS_SIGNAL,
                (stack_i, stack_i, stack_i, tr_ret, tr_ret, tr_ret, tr_ret, tr_ret, tr_ret, stack_i, stack_i), tr_ret,
                tr_win, tr_loss)
        if exit_rules_of(risks, c * RISK_FIELDS):
            out = trade_loop(*args, True)
        else:  # a combo without stops or a time exit: the loop compiled without those steps
            out = trade_loop(*args, None)
        (n_trades, n_win, n_loss, _, final_equity, max_dd, max_under, n_neg, n_exposed, margin_calls, _m,
         n_ambiguous, holding, dd_top) = out
        total = pairwise_sum(ret_buf, 0, m, stack_i, stack_f)
        if keep_returns:
            for i in range(m):
                ret_out[c, i] = ret_buf[i]
        stats[k + ST_FINAL_EQUITY] = final_equity
        stats[k + ST_SUM_RETURNS] = total
        sq_dev, sq_down = pairwise_sums(ret_buf, 0, m, total / m, True, stack_i, stack_f)  # one pass, both
        if m < 2:
            sq_dev = 0.0
        if n_neg == 0:
            sq_down = 0.0
        stats[k + ST_SUM_SQ_DEV] = sq_dev
        stats[k + ST_NEGATIVE_BARS] = n_neg
        stats[k + ST_SUM_SQ_DOWN] = sq_down
        stats[k + ST_MAX_DRAWDOWN] = max_dd
        stats[k + ST_TRADES] = n_trades
        stats[k + ST_WINS] = n_win
        stats[k + ST_LOSSES] = n_loss
        stats[k + ST_GROSS_PROFIT] = pairwise_sum(tr_win, 0, n_win, stack_i, stack_f)
        stats[k + ST_LOSS_SUM] = pairwise_sum(tr_loss, 0, n_loss, stack_i, stack_f)
        stats[k + ST_SUM_TRADE_RETURNS] = pairwise_sum(tr_ret, 0, n_trades, stack_i, stack_f)
        stats[k + ST_EXPOSED_BARS] = n_exposed
        stats[k + ST_MARGIN_CALLS] = margin_calls
        stats[k + ST_AMBIGUOUS_BARS] = n_ambiguous
        best = math.nan
        worst = math.nan
        sq_trade = 0.0
        if n_trades > 0:
            best = tr_ret[0]
            worst = tr_ret[0]
            for i in range(1, n_trades):
                r_i = tr_ret[i]
                if r_i > best:
                    best = r_i
                if r_i < worst:
                    worst = r_i
            if n_trades >= 2:
                sq_trade = sum_sq_dev(tr_ret, n_trades, stats[k + ST_SUM_TRADE_RETURNS] / n_trades, stack_i, stack_f)
        stats[k + ST_BEST_TRADE] = best
        stats[k + ST_WORST_TRADE] = worst
        stats[k + ST_HOLDING_BARS] = holding
        stats[k + ST_SUM_SQ_TRADE_DEV] = sq_trade
        stats[k + ST_MAX_DD_BARS] = max_under
        stats[k + ST_MAX_DD_TOP] = dd_top - start
        series_stats(ret_buf, m, total, bench_dx, cand, scratch, stats, k)


def select_kth(a, lo, hi, kth):
    """Quickselect: reorder ``a[lo:hi]`` so that ``a[kth]`` holds the value of rank ``kth``, with
    values <= it before and >= it after; returns it (``lo <= kth < hi``)."""
    hi -= 1
    while hi > lo:
        mid = (lo + hi) // 2  # median of three as the pivot
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return a[kth]


def gather(x, cand, n_cand, n_zero):
    """One tail candidate of :func:`series_stats`: ``x`` appended to ``cand``, or counted when it
    is +0.0 (a flat bar); returns the new ``(n_cand, n_zero)``."""
    if x == 0.0 and math.copysign(1.0, x) > 0.0:
        return n_cand, n_zero + 1
    cand[n_cand] = x
    return n_cand + 1, n_zero


def stored_rank(rank, n_below, n_zero):
    """Where rank ``rank`` of the candidates is among those stored: the candidates are the stored
    values plus ``n_zero`` zeros (+0.0) not stored, ``n_below`` stored values being < 0 (0 when
    ``n_zero`` is 0). -1: the value of that rank is one of the zeros."""
    if n_zero > 0 and rank >= n_below:
        if rank < n_below + n_zero:
            return -1
        return rank - n_zero
    return rank


def series_stats(ret, m, total, bench_dx, cand, scratch, stats, k):
    """The series statistics of one run's per-bar returns ``ret[:m]`` (numpy-order sum
    ``total``) into ``stats[k + ST_VAR_95 .. ST_SUM_XY]``: for a grid's combos at the end of
    ``sweep_kernel``, for a single run through ``jit.call`` (``series_metrics.run_series_stats``),
    so both get the same numbers by construction.

    One pass over the returns accumulates ``sum(bench_dx * r)`` and gathers the candidates of
    the left tail, the returns <= ``cand[m]`` (a threshold: a rank a little above the quantile's
    in the previous combo, as combos come in grid order; every return when too few are under
    it); quickselect on a copy of those >= a pivot (``scratch[m - 1]``: a rank a little below the
    quantile's in the previous combo; all of them when that would leave out a rank needed) gives
    the two order statistics around numpy's index ``(m - 1) * (1 - VAR_LEVEL)``, interpolated as
    ``np.quantile`` ('linear') does, bit for bit. Flat bars' returns (+0.0, often most of a rarely
    invested strategy's) are counted, not gathered: an order statistic that falls among them is 0
    without a quickselect; the tail sum runs over the candidates in bar order (the same whatever
    the threshold). Then ``cand[m]`` and ``scratch[m - 1]`` are set for the next combo. The pass
    is bound by its four chains of dependent additions (~1.4 us for 5,000 bars): ~2.5-3 us per
    combo in all (benchmarks/bench_series.py).

    ``bench_dx``: the benchmark's returns minus their mean (shared by every combo); empty: the
    statistics are not wanted (NaN). ``cand``: >= m + 1 floats kept between calls (``cand[m]``
    NaN at first), ``scratch``: >= m floats, ``scratch[m - 1]`` kept between calls too (any
    value is correct: NaN, none).
    """
    if len(bench_dx) == 0:
        stats[k + ST_VAR_95] = NAN
        stats[k + ST_TAIL_SUM] = NAN
        stats[k + ST_TAIL_BARS] = 0.0
        stats[k + ST_SUM_XY] = NAN
        return
    limit = cand[m]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n_cand = 0
    n_zero = 0  # candidates equal to +0.0 (flat bars), counted, not gathered
    for q in range(m // 4):  # four partial sums (no long chain of dependent additions) and the candidates
        i = 4 * q
        s0 += bench_dx[i] * ret[i]
        s1 += bench_dx[i + 1] * ret[i + 1]
        s2 += bench_dx[i + 2] * ret[i + 2]
        s3 += bench_dx[i + 3] * ret[i + 3]
        for j in range(i, i + 4):
            if ret[j] <= limit:
                n_cand, n_zero = gather(ret[j], cand, n_cand, n_zero)
    for i in range(m - m % 4, m):
        s0 += bench_dx[i] * ret[i]
        if ret[i] <= limit:
            n_cand, n_zero = gather(ret[i], cand, n_cand, n_zero)
    stats[k + ST_SUM_XY] = (s0 + s1) + (s2 + s3)

    var = NAN
    n_tail = 0
    tail = NAN
    if total == total:  # a NaN return makes numpy's quantile NaN
        virtual = (m - 1) * (1.0 - VAR_LEVEL)
        prev = float(math.floor(virtual))
        if virtual >= m - 1:  # numpy: both neighbours are the last value, gamma from index -1
            prev = -1.0
            lo_i = m - 1
        else:
            lo_i = int(prev)
        hi_i = lo_i + 1 if prev >= 0.0 else lo_i
        gamma = virtual - prev
        every = n_cand + n_zero <= hi_i
        if every:  # too few below the threshold: every return is a candidate
            n_cand = 0
            n_zero = 0
            for i in range(m):
                n_cand, n_zero = gather(ret[i], cand, n_cand, n_zero)
        hint = scratch[m - 1]  # the previous combo's pivot, left there (any value is correct, NaN: none)
        nb = 0  # stored values below the pivot, left out of the selection
        if n_zero == 0 and hint == hint:
            for i in range(n_cand):  # the values >= the pivot to the front, branch-free
                x = cand[i]
                scratch[nb] = x
                nb += int(x >= hint)
            nb = n_cand - nb
            if nb > lo_i:  # the pivot is above a rank needed: select among all of them after all
                nb = 0
        if nb == 0:
            for i in range(n_cand):
                scratch[i] = cand[i]
        n_st = n_cand - nb  # the stored values in scratch: stored ranks nb .. n_cand - 1
        n_below = 0  # gathered values < 0: they rank before the zeros
        if n_zero > 0:
            for i in range(n_cand):
                if cand[i] < 0.0:
                    n_below += 1
        hs = stored_rank(hi_i, n_below, n_zero)
        if hs >= 0:
            hs -= nb
        b = 0.0
        if hs >= 0:  # one quickselect: what ranks before hs is <= b, what ranks after is >= b
            b = select_kth(scratch, 0, n_st, hs)
        a = b
        if lo_i != hi_i:  # lo_i = hi_i - 1
            ls = stored_rank(lo_i, n_below, n_zero)
            if ls < 0:
                a = 0.0
            elif hs == ls - nb + 1:  # the largest stored value before hs
                a = scratch[0]
                for i in range(1, hs):
                    if scratch[i] > a:
                        a = scratch[i]
            else:  # b is a zero, a the largest value below 0
                a = select_kth(scratch, 0, n_st, ls)
        diff = b - a
        if gamma >= 0.5:
            var = b - diff * (1.0 - gamma)
        else:
            var = a + diff * gamma
        tail = 0.0  # never -0.0, so adding +0.0 for a value above var leaves it as it is
        for i in range(n_cand):
            x = cand[i]
            tail += x if x <= var else 0.0
            n_tail += int(x <= var)
        if 0.0 <= var:  # the zeros are in the tail (adding them leaves the sum as it is)
            n_tail += n_zero
        nxt = hi_i + 8 + hi_i // 8  # the next combo's threshold: a rank a little above this one's,
        if n_cand + n_zero > nxt + hi_i // 8:  # unless this one's gathered a good number of candidates
            ns = stored_rank(nxt, n_below, n_zero)
            if ns < 0:
                cand[m] = 0.0
            elif 0 <= hs < ns - nb:  # past b: in the part the quickselect left unsorted above it
                cand[m] = select_kth(scratch, hs + 1, n_st, ns - nb)
            else:
                cand[m] = select_kth(scratch, 0, n_st, ns - nb)
        elif every:
            cand[m] = math.inf
        pr = lo_i - PIVOT_MARGIN - hi_i // PIVOT_SHARE - nb  # the next combo's pivot: a rank a little below lo_i
        if n_zero == 0 and 0 <= pr < hs:  # in the part below b
            hint = select_kth(scratch, 0, hs, pr)
        scratch[m - 1] = hint
    stats[k + ST_VAR_95] = var
    stats[k + ST_TAIL_SUM] = tail
    stats[k + ST_TAIL_BARS] = n_tail


TAIL_SAMPLE = 65_536  # run_stats' threshold sample: at most this many returns, evenly strided
TAIL_SAMPLE_SLACK = 0.5  # its threshold / pivot ranks: the quantile's share x (1 +- this), +- PIVOT_MARGIN
RS_BENCH_MEAN = 0  # run_stats' ``bench`` output: the benchmark returns' mean
RS_BENCH_SXX = 1  # and their sum of squared deviations (numpy order)
RUN_BENCH = 2


def drawdown_pass(ret, equity, initial_cash, stats):
    """One pass over a run's bars: the returns below 0, the deepest fall below the running peak
    (``initial_cash`` included) and the longest run of bars under it (the first of equal ones,
    and the bar before it) into ``stats[ST_NEGATIVE_BARS, ST_MAX_DRAWDOWN, ST_MAX_DD_BARS,
    ST_MAX_DD_TOP]``, as numpy gives them: a NaN equity makes the peak NaN from there on (every
    later bar under water, its drawdown 0), a NaN drawdown makes ``max_drawdown`` NaN."""
    m = len(equity)
    peak = initial_cash
    worst = 0.0
    undefined = False
    n_neg = 0
    run = 0
    best = 0
    top = -1
    for i in range(m):
        if ret[i] < 0.0:
            n_neg += 1
        e = equity[i]
        if e != e:
            peak = NAN
        elif e > peak:
            peak = e
        if e >= peak:
            run = 0
        else:
            run += 1
            if run > best:
                best = run
                top = i - run
        if peak > 0.0:
            dd = e / peak - 1.0
            if dd != dd:
                undefined = True
            elif dd < worst:
                worst = dd
    stats[ST_NEGATIVE_BARS] = n_neg
    stats[ST_MAX_DRAWDOWN] = NAN if undefined else worst
    stats[ST_MAX_DD_BARS] = best
    stats[ST_MAX_DD_TOP] = top


def tail_hints(ret, m, cand, scratch):
    """``series_stats``' threshold ``cand[m]`` and pivot ``scratch[m - 1]`` for one run, from a
    sample of at most ``TAIL_SAMPLE`` evenly strided returns (quickselect in ``scratch``): ranks
    a little above and below the quantile's in the sample. Any values are correct; good ones
    spare ``series_stats`` gathering and selecting among every return."""
    stride = m // TAIL_SAMPLE + 1
    n_s = (m + stride - 1) // stride
    for j in range(n_s):
        scratch[j] = ret[j * stride]
    share = 1.0 - VAR_LEVEL
    hi = int(n_s * share * (1.0 + TAIL_SAMPLE_SLACK)) + PIVOT_MARGIN
    lo = int(n_s * share * (1.0 - TAIL_SAMPLE_SLACK)) - PIVOT_MARGIN
    limit = math.inf
    if hi < n_s:
        limit = select_kth(scratch, 0, n_s, hi)
    hint = NAN
    if 0 <= lo < n_s:
        hint = select_kth(scratch, 0, min(hi, n_s), lo)
    cand[m] = limit
    scratch[m - 1] = hint


def run_stats(ret, equity, initial_cash, bench, bench_dx, cand, scratch, stack_i, stack_f, stats, bench_out):
    """One run's per-bar statistics, bit for bit what ``RunStats.from_result`` computes with
    numpy (``metric_registry.per_bar_stats``), in a few passes and no temporary array: the
    numpy-order sums of the returns, of their squared deviations and of their squared downside
    (``ST_SUM_RETURNS``, ``ST_SUM_SQ_DEV``, ``ST_SUM_SQ_DOWN``), :func:`drawdown_pass`, the
    benchmark's per-bar returns (``bench``: its closes; 0 on the first bar) minus their mean
    into ``bench_dx`` with that mean and their sum of squared deviations in ``bench_out``
    (``RS_*``), and :func:`series_stats` (hinted by :func:`tail_hints`). ``stats``:
    ``SWEEP_STATS`` floats (the slots above are written); ``cand``: ``m + 1`` floats,
    ``scratch`` and ``bench_dx``: ``m``; ``m = len(ret) >= 1``."""
    m = len(ret)
    # numpy's sum is +0.0 plus the pairwise sum (the same but for -0.0, which becomes +0.0)
    total = pairwise_sum(ret, 0, m, stack_i, stack_f) + 0.0
    sq_dev, sq_down = pairwise_sums(ret, 0, m, total / m, True, stack_i, stack_f)
    stats[ST_SUM_RETURNS] = total
    stats[ST_SUM_SQ_DEV] = sq_dev + 0.0 if m >= 2 else 0.0
    stats[ST_SUM_SQ_DOWN] = sq_down + 0.0
    drawdown_pass(ret, equity, initial_cash, stats)
    bench_dx[0] = 0.0
    for i in range(1, m):
        bench_dx[i] = bench[i] / bench[i - 1] - 1.0
    b_mean = (pairwise_sum(bench_dx, 0, m, stack_i, stack_f) + 0.0) / m
    bench_out[RS_BENCH_MEAN] = b_mean
    bench_out[RS_BENCH_SXX] = pairwise_sums(bench_dx, 0, m, b_mean, True, stack_i, stack_f)[0] + 0.0
    for i in range(m):
        bench_dx[i] = bench_dx[i] - b_mean
    cand[m] = NAN
    scratch[m - 1] = NAN
    if total == total:  # else series_stats leaves the quantile NaN without gathering
        tail_hints(ret, m, cand, scratch)
    series_stats(ret, m, total, bench_dx, cand, scratch, stats, 0)
