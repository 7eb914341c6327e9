"""Peer: the sma_crossover grid with backtesting.py 0.6.6's ``Backtest.optimize``.

    .venv-peers/bin/python benchmarks/peers/backtestingpy_grid.py DATA.npz COMBOS.json [--fee 0.001]
        [--cash 1e13] [--limit N]

Run by ``benchmarks/bench_sweep.py`` in its own process (backtesting.py lives in ``.venv-peers``).
Conventions aligned with QuantLab's: ``trade_on_close=True`` (fill at the signal bar's close),
``commission=fee`` per side, long-only, no spread. backtesting.py trades whole units only, so the
cash is huge (1e13 by default: ~1e11 units at price ~100) and each entry buys
``floor(cash / (close * (1 + fee)))`` units: QuantLab's all-in fractional quantity to ~1e-11.
The data get one extra bar, a copy of the last (see ``main``). Crosses: the SMAs are this
script's own cumulative-sum rolling mean computed in ``init`` through ``self.I``, crossing as in
QuantLab (``fast > slow`` now, ``fast <= slow`` on the previous bar).

``optimize`` runs the grid (its own process pool, ``fork``, one worker per core) over the combos
(``--limit`` keeps the first N: a 100,000-bar grid takes minutes); ``maximize`` is a callable that
runs in this process on each combo's stats, in grid order, and records total return and
closed-trade count, matched to the combos through the returned heatmap (``optimize`` drops the
stats of a combo without a closed trade: those are re-run alone, untimed). Prints one JSON line:
import time, a one-combo warm-up optimize, the timed optimize, peak RSS (this process; the
pool's forked workers are reported apart), per-combo results.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402

IMPORT_S = time.perf_counter() - T0


def sma(values, window):
    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        c = np.cumsum(x - x[0])
        s = c[window - 1:].copy()
        s[1:] -= c[:-window]
        out[window - 1:] = x[0] + s / window
    return out


class SmaCross(Strategy):
    fast = 10
    slow = 50
    fee = 0.001

    def init(self):
        self.f = self.I(sma, self.data.Close, self.fast)
        self.s = self.I(sma, self.data.Close, self.slow)

    def next(self):
        if len(self.f) < 2:
            return
        f0, f1, s0, s1 = self.f[-2], self.f[-1], self.s[-2], self.s[-1]
        if not self.position:
            if f1 > s1 and f0 <= s0:
                self.enter(self.data.Close[-1])
        elif f1 < s1 and f0 >= s0:
            self.position.close()

    def enter(self, price):
        units = math.floor(self.equity / (price * (1.0 + self.fee)))
        if units > 0:
            self.buy(size=units)


def bars_frame(path: str) -> pd.DataFrame:
    """The bars of ``path`` (.npz) as backtesting.py's frame, plus one extra bar, a copy of the
    last: backtesting.py fills a trade_on_close order while processing the bar after its signal
    (at the signal bar's close), so an order placed on the last real bar would never fill, where
    QuantLab fills it at that close. The copy's own orders never fill, and its equity (marked at
    the same close) is the final equity."""
    d = np.load(path)
    cols = {name: np.append(d[key], d[key][-1]) for name, key in
            (("Open", "open"), ("High", "high"), ("Low", "low"), ("Close", "close"))}
    return pd.DataFrame(cols, index=pd.date_range("2000-01-01", periods=len(cols["Close"]), freq="min"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("combos")
    ap.add_argument("--fee", type=float, default=0.001)
    ap.add_argument("--cash", type=float, default=1e13)
    ap.add_argument("--limit", type=int, default=0, help="only the first N combos (0: all)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    df = bars_frame(args.data)
    combos = json.load(open(args.combos))
    if args.limit:
        combos = combos[: args.limit]
    pairs = {(int(c["fast"]), int(c["slow"])) for c in combos}
    fasts = sorted({f for f, _ in pairs})
    slows = sorted({s for _, s in pairs})
    SmaCross.fee = args.fee
    bt = Backtest(df, SmaCross, cash=args.cash, commission=args.fee, trade_on_close=True)
    seen: dict = {}
    recorded: list = []

    def record(stats) -> float:  # called in this process, in grid order, for combos with trades
        recorded.append((float(stats["Equity Final [$]"]) / args.cash - 1.0, int(stats["# Trades"])))
        return float(stats["Return [%]"])

    def run_optimize(limit_pairs):
        recorded.clear()
        _, heatmap = bt.optimize(fast=fasts, slow=slows, maximize=record, return_heatmap=True,
                                 constraint=lambda p: (p.fast, p.slow) in limit_pairs)
        # the heatmap lists the grid in evaluation order, NaN where optimize dropped the stats
        keys = [key for key, value in heatmap.items() if not math.isnan(value)]
        assert len(keys) == len(recorded)
        for key, result in zip(keys, recorded):
            seen[(int(key[0]), int(key[1]))] = result

    t = time.perf_counter()
    run_optimize({min(pairs)})  # warm-up: pool, pandas paths (no JIT here)
    first_s = time.perf_counter() - t
    seen.clear()
    t = time.perf_counter()
    run_optimize(pairs)
    warm_s = time.perf_counter() - t
    total_return, trades = [], []
    for c in combos:
        key = (int(c["fast"]), int(c["slow"]))
        if key not in seen:  # no closed trade: optimize kept no stats
            stats = bt.run(fast=key[0], slow=key[1])
            seen[key] = (float(stats["Equity Final [$]"]) / args.cash - 1.0, int(stats["# Trades"]))
        total_return.append(seen[key][0])
        trades.append(seen[key][1])
    print(json.dumps({
        "peer": "backtesting.py 0.6.6",
        "import_s": IMPORT_S,
        "first_s": first_s,
        "to_first_result_s": IMPORT_S + first_s,
        "warm_s": warm_s,
        "combos": len(combos),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
        "total_return": total_return,
        "trades": trades,
    }))


if __name__ == "__main__":
    main()
