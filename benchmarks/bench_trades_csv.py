"""trades.csv benchmark: formatting a 1M-bar run's trade log (~62,500 trades, ~10 MB of text).

    .venv/bin/python benchmarks/bench_trades_csv.py [--rounds 3]

Variants, interleaved (each round runs each once in a fresh process, order rotated by the round):
``python`` = ``artifacts.trades_csv.trades_csv_text`` (one ``%`` per row) encoded; ``kernel`` =
``trades_csv_parts`` under ``QUANTLAB_JIT=always`` (the numba kernel of
``artifacts/trades_csv_kernel.py``, loaded from numba's on-disk cache on a one-trade log first, as
the run warm-up does). The log: 1M one-minute random-walk bars, a trade opened every 16 bars and
closed 8 later (the engine, under numba). Each process checks the kernel's bytes are the Python
path's, then times one formatting: CPU (``time.process_time``) and wall. Target: the kernel <= 20 ms
of CPU (the step worker's budget for trades.csv in a 1M-bar run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE))

from _common import Check, Stats, finish, interleave, make_bars, paired_ratio, ratio_check  # noqa: E402

BARS = 1_000_000


def trade_log() -> dict:
    import numpy as np

    from quantlab.engine import EngineConfig, simulate
    from quantlab.engine.simulator import Signals

    open_, high, low, close = make_bars(BARS)
    phase = np.arange(BARS) % 16
    res = simulate(open_, high, low, close, Signals(phase == 0, phase == 8), EngineConfig(), start=0)
    col = {name: np.asarray(v) for name, v in res.trades.as_columns().items()}
    index = np.datetime64("2020-01-01", "ns") + np.arange(BARS) * np.timedelta64(60, "s")
    col["entry_time"], col["exit_time"] = index[col["entry_idx"]], index[col["exit_idx"]]
    col["open"] = np.zeros(len(col["side"]), dtype=np.int8)
    col["open"][-1] = res.open_position != 0
    return col


def inner(variant: str) -> None:
    """One measurement in this process: print {"wall", "cpu", "trades", "bytes"} as JSON."""
    os.environ["QUANTLAB_JIT"] = "always"  # the log's simulation, the warm-up and the kernel
    from quantlab.artifacts import trades_csv

    col = trade_log()
    trades_csv.warm_kernel()
    expected = trades_csv.trades_csv_text(col).encode()
    if variant == "kernel":
        if b"".join(bytes(p) for p in trades_csv.trades_csv_parts(col)) != expected:
            raise SystemExit("the kernel's trades.csv differs from the Python path's")
        run = lambda: trades_csv.trades_csv_parts(col)  # noqa: E731
    else:
        run = lambda: trades_csv.trades_csv_text(col).encode()  # noqa: E731
    del expected
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"wall": wall, "cpu": cpu, "trades": len(col["side"])}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inner", choices=["python", "kernel"])
    args = ap.parse_args()
    if args.inner:
        inner(args.inner)
        return 0
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("PYTHONDONTWRITEBYTECODE")
    results: dict[str, list[dict]] = {"python": [], "kernel": []}

    def measure(variant: str):
        def one(_round: int) -> float:
            out = subprocess.run([sys.executable, __file__, "--inner", variant], capture_output=True, text=True,
                                 env=env)
            if out.returncode:
                raise SystemExit(f"{variant} failed:\n{out.stderr[-2000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results[variant].append(row)
            return row["cpu"]
        return one

    cpu = interleave({name: measure(name) for name in results}, args.rounds)
    wall = {name: Stats([r["wall"] for r in rows]) for name, rows in results.items()}
    trades = results["kernel"][0]["trades"]
    for name in results:
        print(f"{name:<8} CPU {cpu[name].show('.4f')} s   wall {wall[name].show('.4f')} s   ({trades} trades)")
    k = cpu["kernel"]
    checks = [
        Check("trades_csv", f"trades.csv kernel, {trades} trades: CPU", 1000 * k.median, " ms", "<=", 20.0,
              (1000 * k.lo, 1000 * k.hi)),
        Check("trades_csv", f"trades.csv Python path, {trades} trades: CPU", 1000 * cpu["python"].median, " ms",
              spread=(1000 * cpu["python"].lo, 1000 * cpu["python"].hi)),
        ratio_check("trades_csv", "trades.csv kernel / Python path: CPU", paired_ratio(k, cpu["python"])),
    ]
    return finish(checks)


if __name__ == "__main__":
    raise SystemExit(main())
