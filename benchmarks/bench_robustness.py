"""Robustness-statistics benchmark: ``robustness_report`` on a sweep-sized returns matrix.

    .venv/bin/python benchmarks/bench_robustness.py [--combos 10000] [--bars 5031] [--repeat 1]
    .venv/bin/python benchmarks/bench_robustness.py --sweep [--rounds 3]

Input: seeded synthetic per-bar returns, float32, ``--bars`` x ``--combos`` (the bundled S&P 500
history has 5,031 bars; 10,000 combinations is the issue-#12 target), with a common market
factor so combinations are correlated as real grids are. Prints the wall and CPU seconds of the
call (best of ``--repeat``; the matrix is built once, outside the timing), the seconds spent
building the matrix, and the peak RSS of the process (matrix included: 4 bytes x bars x combos).
Targets: <= 2 s of CPU for the whole report (CPU, not wall: the code is single-threaded and this
machine kind is shared, so wall time measures the neighbours) and peak RSS <= 1 GB (exit
status 1 when missed).

``--sweep``: the end-to-end cost in a sweep. A 10,000-combination ``sma_crossover`` grid
(fast 1..100 x slow 101..200) on the bundled S&P 500 1999-2018 (5,031 bars) through
``main.py --json-request``, with ``robustness`` on (the default) and off, interleaved
(``_common.interleave``: fresh process and fresh outputs directory each time, so every shard is
computed), one pair per round. Targets: the paired wall-time ratio on/off <= 1.25 and the peak RSS
of any process of the sweep (``RUSAGE_CHILDREN``) <= 1 GB.
The machine is shared: run it once, not in a loop.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import Check, Stats, finish, interleave, paired_ratio, ratio_check, timed  # noqa: E402
from quantlab.robustness import robustness_report  # noqa: E402


def synthetic_returns(bars: int, combos: int, seed: int = 7) -> np.ndarray:
    """float32 (bars, combos): 0.5 x market factor + 0.5 x idiosyncratic noise, 1% daily vol."""
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(bars).astype(np.float32)
    out = np.empty((bars, combos), dtype=np.float32)
    step = 1000
    for lo in range(0, combos, step):
        k = min(step, combos - lo)
        noise = rng.standard_normal((bars, k), dtype=np.float32)
        out[:, lo:lo + k] = 0.01 * (0.5 * market[:, None] + 0.5 * noise)
    return out


def sweep_overhead(rounds: int) -> int:
    """Robustness on vs off in a 10,000-combination sweep of the bundled SPX, interleaved."""
    import json
    import os
    import tempfile

    root = Path(__file__).resolve().parents[1]
    grid = {"fast": list(range(1, 101)), "slow": list(range(101, 201))}
    tmp = Path(tempfile.mkdtemp(prefix="bench_robustness_"))
    cpu: dict[str, list[float]] = {"on": [], "off": []}

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def variant(on: bool):
        def run(r: int) -> float:
            params = dict(ticker="SPX", start="1999-01-01", end="2019-01-01", strategy="sma_crossover",
                          param_grid=grid, robustness=on)
            request = {"schema_version": "1.0", "request_id": f"bench-{r}", "command": "sweep", "params": params}
            env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / f"{'on' if on else 'off'}_{r}")}
            c0 = children_cpu()
            wall = timed([sys.executable, str(root / "main.py"), "--json-request", json.dumps(request)], env)
            cpu["on" if on else "off"].append(children_cpu() - c0)  # user + sys of the whole sweep
            return wall
        return run

    try:
        stats = interleave({"on": variant(True), "off": variant(False)}, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # ~220 MB of shard returns per sweep
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    ratio = paired_ratio(stats["on"], stats["off"])
    print(f"sweep 10,000 combos x 5,031 bars: robustness on {stats['on'].show()} s, "
          f"off {stats['off'].show()} s, on/off {ratio.show()} over {rounds} round(s)")
    cpu_stats = {k: Stats(v) for k, v in cpu.items()}
    cpu_ratio = paired_ratio(cpu_stats["on"], cpu_stats["off"])
    print(f"CPU (user + sys): on {cpu_stats['on'].show()} s, off {cpu_stats['off'].show()} s, "
          f"on/off {cpu_ratio.show()} (information: less sensitive to a busy machine than wall time)")
    print(f"peak RSS of a sweep process: {peak_mb:.0f} MB")
    return finish([
        Check("robustness", "sweep 10k combos, robustness on", stats["on"].median, "s",
              spread=(stats["on"].lo, stats["on"].hi)),
        Check("robustness", "sweep 10k combos, robustness off", stats["off"].median, "s",
              spread=(stats["off"].lo, stats["off"].hi)),
        ratio_check("robustness", "sweep 10k combos wall, robustness on / off", ratio, "<=", 1.25),
        Check("robustness", "sweep 10k combos CPU, robustness on / off", cpu_ratio.median, "x",
              spread=(cpu_ratio.lo, cpu_ratio.hi)),
        Check("robustness", "sweep peak RSS (any process)", peak_mb, "MB", "<=", 1024.0),
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--combos", type=int, default=10_000)
    ap.add_argument("--bars", type=int, default=5031)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sweep", action="store_true", help="robustness on vs off in a 10,000-combo sweep")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.sweep:
        return sweep_overhead(args.rounds)

    t0 = time.perf_counter()
    mat = synthetic_returns(args.bars, args.combos)
    build = time.perf_counter() - t0
    best = best_cpu = float("inf")
    report = None
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        report = robustness_report(mat, periods_per_year=252.0, seed=1)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"matrix {args.bars} x {args.combos} float32 built in {build:.2f} s "
          f"({mat.nbytes / 2**20:.0f} MB)")
    print(f"robustness_report: {best:.3f} s wall, {best_cpu:.3f} s CPU (best of {args.repeat}); "
          f"pbo splits {report['pbo']['splits']} of {report['pbo']['splits_total']}; "
          f"verdict {report['verdict']}")
    print(f"peak RSS: {peak_mb:.0f} MB")
    return finish([
        Check("robustness", f"robustness_report {args.bars} x {args.combos} CPU", best_cpu, "s", "<=", 2.0),
        Check("robustness", f"robustness_report {args.bars} x {args.combos} wall", best, "s"),
        Check("robustness", "peak RSS (matrix included)", peak_mb, "MB", "<=", 1024.0),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
