"""Peer: the sma_crossover grid in vectorbt 1.2.0, ``Portfolio.from_signals`` broadcast over it.

    .venv-peers/bin/python benchmarks/peers/vectorbt_grid.py DATA.npz COMBOS.json [--fee 0.001]
        [--cash 10000] [--repeat 2]

Run by ``benchmarks/bench_sweep.py`` in its own process (vectorbt lives in ``.venv-peers``, never in
the project's venv). Conventions aligned with QuantLab's: long-only, the signal bar's close is the
fill price, ``fee`` per side of traded notional, all cash in (``size=inf``: vectorbt sizes the
order so notional + fee = cash), no slippage; crosses from vectorbt's own MA indicator
(``MA.run`` over every window at once, ``ma_crossed_above/below``) as a vectorbt user writes it.
The default numba engine (``vectorbt-rust`` is not installed).

Prints one JSON line: import time, the first (cold: JIT compilation included) and best warm time
of the whole grid (indicators, signals, portfolio, total return and closed-trade count of every
combo), peak RSS of this process, and the per-combo total_return and trades.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import vectorbt as vbt  # noqa: E402

IMPORT_S = time.perf_counter() - T0


def grid(close: pd.Series, fast: list[int], slow: list[int], fee: float, cash: float):
    fast_ma = vbt.MA.run(close, window=fast, short_name="fast")
    slow_ma = vbt.MA.run(close, window=slow, short_name="slow")
    # one column per combo: compare column i of fast with column i of slow
    entries = fast_ma.ma_crossed_above(slow_ma.ma.values)
    exits = fast_ma.ma_crossed_below(slow_ma.ma.values)
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=fee, init_cash=cash, size=np.inf,
                                    direction="longonly", freq="1D")
    total_return = np.asarray(pf.total_return(), dtype=np.float64)
    # every trade, the one still open at the end included (QuantLab counts it, marked to the last close)
    trades = np.asarray(pf.trades.count(), dtype=np.int64)
    return total_return, trades


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("combos")
    ap.add_argument("--fee", type=float, default=0.001)
    ap.add_argument("--cash", type=float, default=10_000.0)
    ap.add_argument("--repeat", type=int, default=2, help="warm runs after the first (best is reported)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    close = pd.Series(np.load(args.data)["close"])
    combos = json.load(open(args.combos))
    fast = [int(c["fast"]) for c in combos]
    slow = [int(c["slow"]) for c in combos]

    t = time.perf_counter()
    total_return, trades = grid(close, fast, slow, args.fee, args.cash)
    first_s = time.perf_counter() - t
    warm = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        grid(close, fast, slow, args.fee, args.cash)
        warm.append(time.perf_counter() - t)
    print(json.dumps({
        "peer": f"vectorbt {vbt.__version__}",
        "import_s": IMPORT_S,
        "first_s": first_s,
        "to_first_result_s": IMPORT_S + first_s,
        "warm_s": min(warm) if warm else None,
        "combos": len(combos),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "total_return": total_return.tolist(),
        "trades": trades.tolist(),
    }))


if __name__ == "__main__":
    main()
