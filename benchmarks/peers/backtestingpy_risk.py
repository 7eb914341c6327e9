"""Peer: sma_crossover with a stop-loss and a take-profit in backtesting.py 0.6.6 (``buy(sl=, tp=)``).

    .venv-peers/bin/python benchmarks/peers/backtestingpy_risk.py DATA.npz COMBOS.json [--cash 1e13]

Run by ``benchmarks/bench_risk.py`` in its own process. ``COMBOS.json``: ``{fast, slow, stop_loss,
take_profit}`` (0 = off; trailing stops are left out: backtesting.py has none built in).
Conventions aligned with QuantLab's ``fill: close``, no fees: ``trade_on_close=True``, the stop
and target prices set at the entry (the signal bar's close, the fill price) as
``close x (1 - stop_loss)`` and ``close x (1 + take_profit)``, crosses as in QuantLab. Where they
differ (said in docs/engine.md): backtesting.py trades whole units (a huge cash makes that
~1e-11), counts closed trades only, and its contingent orders fill on the bar after the signal
bar is processed (the data get one extra bar, a copy of the last, as in backtestingpy_grid.py).

Prints one JSON line: per combo total_return and closed-trade count.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings

from backtesting import Backtest

from backtestingpy_grid import SmaCross, bars_frame


class SmaCrossStops(SmaCross):
    """backtestingpy_grid's crosses, no fee, with the stop and target prices on each entry."""

    fee = 0.0
    stop_loss = 0.0
    take_profit = 0.0

    def enter(self, price):
        units = math.floor(self.equity / price)
        sl = price * (1.0 - self.stop_loss) if self.stop_loss else None
        tp = price * (1.0 + self.take_profit) if self.take_profit else None
        if units > 0:
            self.buy(size=units, sl=sl, tp=tp)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("combos")
    ap.add_argument("--cash", type=float, default=1e13)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    df = bars_frame(args.data)
    bt = Backtest(df, SmaCrossStops, cash=args.cash, commission=0.0, trade_on_close=True)
    total_return, trades = [], []
    for c in json.load(open(args.combos)):
        stats = bt.run(fast=int(c["fast"]), slow=int(c["slow"]), stop_loss=float(c["stop_loss"]),
                       take_profit=float(c["take_profit"]))
        total_return.append(float(stats["Equity Final [$]"]) / args.cash - 1.0)
        trades.append(int(stats["# Trades"]))
    print(json.dumps({"peer": "backtesting.py 0.6.6", "total_return": total_return, "trades": trades}))


if __name__ == "__main__":
    main()
