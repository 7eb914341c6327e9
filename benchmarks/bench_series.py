"""Series-metrics benchmark: what the seven series metrics cost a 10,000-combination grid.

    .venv/bin/python benchmarks/bench_series.py [--rounds 3] [--combos 10000] [--threads 2]

The grid of ``bench_robustness.py --sweep`` (``sma_crossover``, fast 1..100 x slow 101..200) on
the bundled S&P 500 1999-2018 (5,031 bars), through ``engine.sweep.evaluate_grid`` as a sweep's
shards call it, with the series metrics (var_95, cvar_95, alpha, beta, tracking_error,
information_ratio, max_drawdown_duration_days: ``kernels.series_stats`` per combo) and without
(``series=False``), interleaved: each round runs each variant once in a fresh process (numba's
on-disk cache warm), in an order rotated by the round. A process warms the kernel on one combo
(under numba), then times the whole grid: wall and CPU (``time.process_time``: every thread of the process).
Ratios are paired within a round. Targets: series on / off <= 1.10 in CPU and in wall time (the
grid's compute alone, so the ratio is stricter than a whole sweep's, whose planning, process
starts and files dilute it). The machine is shared: run it once, not in a loop.
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

from _common import Check, Stats, finish, interleave, paired_ratio, ratio_check  # noqa: E402

GRID = {"fast": range(1, 101), "slow": range(101, 201)}


def inner(series: bool, combos: int, threads: int) -> None:
    """One measurement in this process: print {"wall", "cpu"} of the grid as JSON."""
    import numpy as np

    from quantlab.data import load_bars
    from quantlab.data.loader import DataRequest
    from quantlab.engine.simulator import EngineConfig
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.strategies import get_strategy

    bars = load_bars(DataRequest("SPX", "1999-01-01", "2019-01-01", source="sample"))
    strategy = get_strategy("sma_crossover")
    grid = [strategy.resolve_params({"fast": f, "slow": s}) for f in GRID["fast"] for s in GRID["slow"]][:combos]
    cfg = EngineConfig(fee=0.001)
    args = (bars.open, bars.high, bars.low, bars.close, "sma_crossover")
    kw = dict(start=200, periods_per_year=252.0, threads=threads, timestamps=bars.index, series=series)
    os.environ["QUANTLAB_JIT"] = "always"  # the warm-up's one combo under numba too
    evaluate_grid(*args, grid[:1], cfg, **kw)  # numba's import and cache load, outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    out = evaluate_grid(*args, grid, cfg, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert np.isnan(out["var_95"]).all() != series, "the series switch did not take"
    print(json.dumps({"wall": wall, "cpu": cpu, "bars": len(bars), "combos": len(grid)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--combos", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inner", choices=("on", "off"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.inner == "on", args.combos, args.threads)
        return 0
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    shape = {}

    def variant(name: str):
        def run(r: int) -> float:
            proc = subprocess.run([sys.executable, __file__, "--inner", name, "--combos", str(args.combos),
                                   "--threads", str(args.threads)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"bench_series --inner {name} failed:\n{proc.stderr[-2000:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            cpu[name].append(got["cpu"])
            shape.update(bars=got["bars"], combos=got["combos"])
            return got["wall"]
        return run

    wall = interleave({"on": variant("on"), "off": variant("off")}, args.rounds)
    cpu_stats = {k: Stats(v) for k, v in cpu.items()}
    wall_ratio = paired_ratio(wall["on"], wall["off"])
    cpu_ratio = paired_ratio(cpu_stats["on"], cpu_stats["off"])
    label = f"grid {shape['combos']:,} combos x {shape['bars']:,} bars"
    print(f"{label}, {args.threads} threads, {args.rounds} round(s): series on {wall['on'].show()} s wall "
          f"{cpu_stats['on'].show()} s CPU; off {wall['off'].show()} s wall {cpu_stats['off'].show()} s CPU")
    return finish([
        Check("series", f"{label}, series metrics on (wall)", wall["on"].median, "s",
              spread=(wall["on"].lo, wall["on"].hi)),
        Check("series", f"{label}, series metrics off (wall)", wall["off"].median, "s",
              spread=(wall["off"].lo, wall["off"].hi)),
        ratio_check("series", "series metrics on / off, CPU", cpu_ratio, "<=", 1.10),
        ratio_check("series", "series metrics on / off, wall", wall_ratio, "<=", 1.10),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
