"""Expression strategies at sweep speed: a 1,000-combination `expr` crossover grid vs the same
grid with the built-in `sma_crossover`, end to end through main.py.

    .venv/bin/python benchmarks/bench_expr.py [--repeat 3]

Both are inline `command: "sweep"` requests on the bundled S&P 500 bars (ticker SPX, every bar
of 1999-2018, 5,031 bars) over the same `param_grid` (fast 2..41 x slow 50..290 step 10: 1,000
pairs, fast < slow), default costs. Measured in interleaved rounds of fresh processes, each with
a new outputs root (nothing cached); the ratio expr / sma_crossover is taken within a round and
reported as median [min..max]. `sma_crossover` runs the fused grid kernel; `expr` runs the
generic path (signals per combination, indicators memoised by the expression cache).
Target (issue #14): expr <= 1.5x sma_crossover. The leaderboards must agree (checked once).

Needs `command: "sweep"` to accept `strategy_params` and grid keys named by them (the
experiment hook described in docs/expressions.md); without it the expr request fails with exit 2
and the benchmark stops there.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Check, finish, interleave, paired_ratio, ratio_check, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BENCH = "expr"
GRID = {"fast": list(range(2, 42)), "slow": list(range(50, 300, 10))}
CROSS = {"entry": "crossed_above(sma(close, fast), sma(close, slow))",
         "exit": "crossed_below(sma(close, fast), sma(close, slow))", "fast": 10, "slow": 50}


def request(strategy: str) -> str:
    params = {"ticker": "SPX", "start": "1999-01-01", "end": "2019-01-01", "strategy": strategy,
              "param_grid": GRID}
    if strategy == "expr":
        params["strategy_params"] = CROSS
    return json.dumps({"schema_version": "1.0", "request_id": "bench", "command": "sweep", "params": params})


def leaderboard(outputs: Path) -> dict:
    (path,) = outputs.glob("runs/*/leaderboard.csv")
    with path.open() as fh:
        return {(r["fast"], r["slow"]): (r["total_return"], r["trades"]) for r in csv.DictReader(fh)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    args = ap.parse_args()
    assert len(GRID["fast"]) * len(GRID["slow"]) == 1_000
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-expr-"))

    def once(strategy: str, tag: str) -> float:
        env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / f"{strategy}-{tag}")}
        return timed([PY, str(ROOT / "main.py"), "--json-request", request(strategy)], env)

    once("sma_crossover", "warm")  # page cache, numba's on-disk cache
    once("expr", "warm")
    same = leaderboard(tmp / "sma_crossover-warm") == leaderboard(tmp / "expr-warm")
    stats = interleave({"sma_crossover": lambda r: once("sma_crossover", str(r)),
                        "expr": lambda r: once("expr", str(r))}, args.repeat)
    ratio = paired_ratio(stats["expr"], stats["sma_crossover"])
    print(f"\n1,000-combination crossover grid, SPX 1999-2018, end to end through main.py: {args.repeat} "
          "interleaved rounds of fresh processes, seconds, median [min..max]")
    print(f"  sma_crossover (fused kernel)        {stats['sma_crossover'].show()} s")
    print(f"  expr (generic path, expr cache)     {stats['expr'].show()} s")
    print(f"  expr / sma_crossover                {ratio.show('.2f')}")
    print(f"  leaderboards identical              {same}")
    checks = [
        Check(BENCH, "sma_crossover 1,000-combo sweep, s", stats["sma_crossover"].median, "s",
              spread=(stats["sma_crossover"].lo, stats["sma_crossover"].hi)),
        Check(BENCH, "expr 1,000-combo sweep, s", stats["expr"].median, "s",
              spread=(stats["expr"].lo, stats["expr"].hi)),
        ratio_check(BENCH, "expr sweep / sma_crossover sweep", ratio, "<=", 1.5),
        Check(BENCH, "leaderboards identical (1 = yes)", float(same), "", ">=", 1.0),
    ]
    return finish(checks)


if __name__ == "__main__":
    sys.exit(main())
