"""Peer: an sma_crossover x stop grid in vectorbt 1.2.0, ``Portfolio.from_signals`` with stops.

    .venv-peers/bin/python benchmarks/peers/vectorbt_risk.py DATA.npz COMBOS.json [--repeat 2]

Run by ``benchmarks/bench_risk.py`` and ``tests/unit/test_risk_parity.py`` in its own process
(vectorbt lives in ``.venv-peers``). ``COMBOS.json``: a list of ``{fast, slow, stop_loss,
take_profit, trailing_stop}`` (0 = off; stop_loss and trailing_stop never both set: vectorbt has
one stop-loss, trailing or not). Conventions aligned with QuantLab's ``fill: close``, no fees, no
slippage, long-only, all cash in: crosses from vectorbt's MA indicator, the bars' open/high/low
given so stops trigger intrabar; ``sl_stop`` (``sl_trail`` for a trailing stop) and ``tp_stop``
per column; vectorbt's defaults otherwise (stop entry price = the entry bar's close, a stop fills
at its price, or at the open when the bar opens beyond it; stop-loss checked before take-profit).

Prints one JSON line: the first (JIT included) and best warm time of the whole grid (signals,
portfolio, total return, trade count), and per combo total_return and trades (the trade still
open at the end counted, as QuantLab does).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
import vectorbt as vbt


def grid(bars: dict, combos: list[dict]):
    close = pd.Series(bars["close"])
    fast = [int(c["fast"]) for c in combos]
    slow = [int(c["slow"]) for c in combos]
    fast_ma = vbt.MA.run(close, window=fast, short_name="fast")
    slow_ma = vbt.MA.run(close, window=slow, short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma.ma.values)
    exits = fast_ma.ma_crossed_below(slow_ma.ma.values)

    def per_column(values):
        return np.array([[np.nan if v == 0 else v for v in values]])

    sl = [c["stop_loss"] or c["trailing_stop"] for c in combos]
    trail = np.array([[bool(c["trailing_stop"]) for c in combos]])
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, open=pd.Series(bars["open"]), high=pd.Series(bars["high"]),
        low=pd.Series(bars["low"]), sl_stop=per_column(sl), sl_trail=trail,
        tp_stop=per_column([c["take_profit"] for c in combos]), fees=0.0, init_cash=10_000.0, size=np.inf,
        direction="longonly", freq="1D")
    return np.asarray(pf.total_return(), dtype=np.float64), np.asarray(pf.trades.count(), dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("combos")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    data = np.load(args.data)
    bars = {k: data[k] for k in ("open", "high", "low", "close")}
    combos = json.load(open(args.combos))
    t = time.perf_counter()
    total_return, trades = grid(bars, combos)
    first_s = time.perf_counter() - t
    warm = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        grid(bars, combos)
        warm.append(time.perf_counter() - t)
    print(json.dumps({"peer": f"vectorbt {vbt.__version__}", "first_s": first_s,
                      "warm_s": min(warm) if warm else None, "combos": len(combos),
                      "total_return": total_return.tolist(), "trades": trades.tolist()}))


if __name__ == "__main__":
    main()
