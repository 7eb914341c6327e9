"""Engine benchmark: simulation-kernel throughput in both execution modes, and cold start cost.

    .venv/bin/python benchmarks/bench_engine.py [--bars 1000000] [--python-bars 100000] [--repeat 5]

Setup as in docs/architecture.md (benchmark conventions): a seeded random walk, sma_crossover 10/50 signals
precomputed, long-only, fill at the signal bar's close, fee 0.1% per side, no slippage.
Prints, best of ``--repeat`` warm runs:

* the numba kernel alone (buffers preallocated, the way a sweep calls it) and the whole
  ``simulate()`` call (validation, buffer allocation, trade-log slicing) on ``--bars`` bars;
* the same pure-Python kernel on ``--python-bars`` bars (list inputs, as the dispatcher runs it);
* the cold cost in fresh subprocesses: import + first numba result (on-disk cache warm), and a
  small ``run``-sized pipeline in ``auto`` mode, which must not import numba at all.
Target: >= 100 M bars/s for the numba kernel (exit status 1 when missed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402

from quantlab.engine import EngineConfig, jit, kernels, risk, simulate, trade_capacity  # noqa: E402
from quantlab.strategies import get_strategy  # noqa: E402

CFG = EngineConfig(fee=0.001, slippage_bps=0.0, fill="close")


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Check, finish, make_bars  # noqa: E402  (shared synthetic OHLC, verdicts)


def kernel_args(open_, close, signals, start, as_lists: bool):
    n = len(close)
    m = n - start
    cap = trade_capacity(n, CFG.allow_short)
    no_risk = risk.row(CFG)  # every risk control off (the engine's default)
    if as_lists:
        ins = [open_.tolist(), [], [], close.tolist(), signals.entries.tolist(), signals.exits.tolist(), []]
        outs = [[0.0] * m, [0] * m, [0.0] * m] + [[0] * cap] * 3 + [[0.0] * cap for _ in range(7)]
        outs += [[0] * cap, [0] * cap]
        risk_args = [no_risk, [], []]
    else:
        ins = [open_, np.empty(0), np.empty(0), close, signals.entries, signals.exits, np.empty(0)]
        outs = [np.empty(m), np.empty(m, np.int8), np.empty(m)]
        outs += [np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int8)]
        outs += [np.empty(cap) for _ in range(7)]
        outs += [np.empty(cap, np.int8), np.empty(cap, np.int8)]
        risk_args = [np.array(no_risk), np.empty(0), np.empty(0)]
    scalars = [0.0, 0.0, start, signals.cooldown, CFG.fee, CFG.fill == "close", CFG.allow_short, CFG.initial_cash]
    return ins + scalars + risk_args + outs


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fmt_rate(bars: int, seconds: float) -> str:
    return f"{bars / seconds / 1e6:8.1f} M bars/s  ({seconds * 1e3:8.2f} ms for {bars:,} bars)"


COLD_JIT = """
import os, time
t0 = time.perf_counter()
os.environ["QUANTLAB_JIT"] = "always"
import numpy as np
from quantlab.engine import EngineConfig, Signals, simulate
t1 = time.perf_counter()
c = 100.0 + np.arange(1000.0)
r = simulate(c, c, c, c, Signals(c % 7 == 0, c % 11 == 0), EngineConfig())
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

COLD_AUTO_RUN = """
import sys, time
t0 = time.perf_counter()
import numpy as np
from quantlab.strategies import get_strategy
from quantlab.engine import EngineConfig, simulate
from quantlab.metrics import compute_metrics, periods_per_year
rng = np.random.default_rng(0)
n = int(sys.argv[1])
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
s = get_strategy("rsi_ma_cross_v2")
p = s.resolve_params({})
sig = s.signals(close, close * 1.01, close * 0.99, close, p)
r = simulate(close, close * 1.01, close * 0.99, close, sig, EngineConfig(slippage_mode="atr"), start=s.warmup_bars(p))
m = compute_metrics(r, close, start=s.warmup_bars(p), periods_per_year=periods_per_year(True, "1d"), initial_cash=1e4)
print(time.perf_counter() - t0, int("numba" in sys.modules))
"""


def fresh(code: str, *args: str, env_extra: dict | None = None) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), **(env_extra or {})}
    env.pop("QUANTLAB_JIT", None)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, out.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--python-bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    os.environ["QUANTLAB_JIT"] = "always"
    strategy = get_strategy("sma_crossover")
    params = strategy.resolve_params({"fast": 10, "slow": 50})
    start = strategy.warmup_bars(params)
    open_, high, low, close = make_bars(args.bars)
    signals = strategy.signals(open_, high, low, close, params)
    print(f"sma_crossover 10/50 on {args.bars:,} bars: {int(signals.entries.sum()):,} entries, "
          f"{int(signals.exits.sum()):,} exits; fill=close, fee=0.1%, long-only")

    fn = jit.jitted(kernels.simulate_kernel)
    nb_args = kernel_args(open_, close, signals, start, as_lists=False)
    fn(*nb_args)  # warm
    t_kernel = best_of(lambda: fn(*nb_args), args.repeat)
    t_sim = best_of(lambda: simulate(open_, high, low, close, signals, CFG, start=start), args.repeat)
    result = simulate(open_, high, low, close, signals, CFG, start=start)
    print(f"numba kernel         : {fmt_rate(args.bars - start, t_kernel)}   [target >= 100 M bars/s]")
    print(f"numba simulate()     : {fmt_rate(args.bars - start, t_sim)}   "
          f"({len(result.trades):,} trades, final equity {result.equity[-1]:.4g})")

    pn = args.python_bars
    py_args = kernel_args(open_[:pn], close[:pn], type(signals)(signals.entries[:pn], signals.exits[:pn]),
                          start, as_lists=True)
    t_py = best_of(lambda: kernels.simulate_kernel(*py_args), max(1, min(args.repeat, 3)))
    os.environ["QUANTLAB_JIT"] = "never"
    sub = type(signals)(signals.entries[:pn], signals.exits[:pn])
    t_py_sim = best_of(lambda: simulate(open_[:pn], high[:pn], low[:pn], close[:pn], sub, CFG, start=start),
                       max(1, min(args.repeat, 3)))
    print(f"python kernel (lists): {fmt_rate(pn - start, t_py)}")
    print(f"python simulate()    : {fmt_rate(pn - start, t_py_sim)}   (tolist + kernel + np.array)")
    print(f"numba / python kernel speed-up: {t_py / (pn - start) / (t_kernel / (args.bars - start)):.0f}x")

    fresh(COLD_JIT)  # make sure the on-disk cache exists before timing a cold start
    runs = [fresh(COLD_JIT) for _ in range(3)]
    wall, out = min(runs, key=lambda r: r[0])
    t_import, t_first = (float(x) for x in out.split())
    print(f"cold process, QUANTLAB_JIT=always: import {t_import * 1e3:.0f} ms + numba import and cached "
          f"kernel load to first result {t_first * 1e3:.0f} ms (process wall {wall * 1e3:.0f} ms)")
    for n in (250, 5000):
        runs = [fresh(COLD_AUTO_RUN, str(n)) for _ in range(3)]
        wall, out = min(runs, key=lambda r: r[0])
        t_inside, numba_used = out.split()
        print(f"cold process, auto, rsi_ma_cross_v2 + atr slippage + metrics on {n:,} bars: "
              f"{float(t_inside) * 1e3:.0f} ms after interpreter start (process wall {wall * 1e3:.0f} ms), "
              f"numba imported: {'yes' if numba_used == '1' else 'no'}")
    return finish([
        Check("engine", "numba simulation kernel, M bars/s (best of repeat)", (args.bars - start) / t_kernel / 1e6,
              "", ">=", 100.0),
        Check("engine", "numba simulate() call, M bars/s", (args.bars - start) / t_sim / 1e6),
        Check("engine", "pure-Python kernel, M bars/s", (pn - start) / t_py / 1e6),
        Check("engine", "cold process to first numba result, s", t_import + t_first, "s"),
    ])

if __name__ == "__main__":
    sys.exit(main())
