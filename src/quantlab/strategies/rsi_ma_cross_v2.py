"""rsi_ma_cross_v2: the original QuantLab strategy (the default).

Enter when the close crosses above its ``ma_window``-bar simple mean while Wilder's
RSI(``rsi_window``) is below ``rsi_buy_max``; exit when the close crosses below the mean or the
RSI rises above ``rsi_sell_min``; after each trade, ignore ``cooldown_days`` bars of signals.
Signal definitions are the original's (``ta``-library RSI, cross on the signal bar's close);
the fixes are elsewhere: warm-up is what the indicators need (not a fixed 99 bars of an unused
MA100), and the engine does the stateful part (position, cooldown) once for every strategy.
"""

from __future__ import annotations

import math

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

    def grid_path(self, close, params):
        """Fused: RSI rows per distinct ``rsi_window``, MA rows per distinct ``ma_window``, each
        computed once per block and shared by every combo using it; entries/exits in the kernel.
        Blocks of combos keep the tables under ``engine.sweep.TABLE_BUDGET_BYTES``."""
        from quantlab.engine import sweep

        rsi_w = sweep.grid_column(self, params, "rsi_window", True, 1)
        ma_w = sweep.grid_column(self, params, "ma_window", True, 1)
        buy = sweep.grid_column(self, params, "rsi_buy_max", False, -math.inf)
        sell = sweep.grid_column(self, params, "rsi_sell_min", False, -math.inf)
        cool = sweep.grid_column(self, params, "cooldown_days", True, 0)
        max_rows = max(2, sweep.TABLE_BUDGET_BYTES // (8 * len(close)))
        order = np.lexsort((ma_w, rsi_w))  # combos sharing indicators run together
        blocks = []
        cur, r_set, m_set = [], set(), set()
        for i in order.tolist():
            r, m = int(rsi_w[i]), int(ma_w[i])
            if cur and len(r_set | {r}) + len(m_set | {m}) > max_rows:
                blocks.append(cur)
                cur, r_set, m_set = [], set(), set()
            cur.append(i)
            r_set.add(r)
            m_set.add(m)
        blocks.append(cur)

        def tables():  # one block's tables at a time
            for block in blocks:
                sel = np.array(block, dtype=np.int64)
                r_uni, r_idx = np.unique(rsi_w[sel], return_inverse=True)
                m_uni, m_idx = np.unique(ma_w[sel], return_inverse=True)
                yield sweep.GridBlock(combos=sel, tab_a=np.stack([ind.rsi(close, int(w)) for w in r_uni]),
                                      tab_b=np.stack([ind.sma(close, int(w)) for w in m_uni]),
                                      p_i1=r_idx, p_i2=m_idx, p_f1=buy[sel], p_f2=sell[sel], cooldowns=cool[sel])

        return sweep.GridPath(grid_signals, tables())


def grid_signals(c, start, close, f_vec, i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit):
    """Combo ``c``'s signals, exactly ``compute``'s: RSI row ``tab_a[p_i1[c]]``, MA row
    ``tab_b[p_i2[c]]``, ``rsi_buy_max`` = ``p_f1[c]``, ``rsi_sell_min`` = ``p_f2[c]``."""
    n = len(close)
    rsi_row = tab_a[p_i1[c]]
    ma_row = tab_b[p_i2[c]]
    buy_max = p_f1[c]
    sell_min = p_f2[c]
    for t in range(start, n):
        enter = False
        leave = False
        if t >= 1:
            r = rsi_row[t]
            ma = ma_row[t]
            ma_prev = ma_row[t - 1]
            if r == r and ma == ma and ma_prev == ma_prev:
                c_t = close[t]
                c_prev = close[t - 1]
                enter = c_t > ma and c_prev <= ma_prev and r < buy_max
                leave = (c_t < ma and c_prev >= ma_prev) or r > sell_min
        sig_enter[t] = enter
        sig_exit[t] = leave
