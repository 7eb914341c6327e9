"""End-to-end benchmark of a `run` request against the floor any Snakemake-driven command pays.

    .venv/bin/python benchmarks/bench_run.py [--repeat 7]

Measured in interleaved rounds (each round runs every variant once, order rotated), each a
fresh process; ratios are taken within a round and reported as median [min..max]:

* `python -c "import snakemake.api"`                 the floor (Snakemake's own import)
* `main.py --json-request <run>` cold                 new outputs root each time: nothing cached
* `main.py --json-request <run>` identical rerun      same outputs root: every intermediate cached
* the same backtest as one plain Python process       load, signals, simulate, metrics and the same
                                                      artifacts, no workflow around it
* the cold run with the ordinary interpreter exit     QUANTLAB_FAST_EXIT=0 (information: what the
                                                      exit without teardown saves, contract/exit.py)
* a 1,000,000-bar run, cold                           synthetic 1-minute bars (~1.0M), new outputs root
* its kernels' own time                               a fresh process loads the same bars, warms numba,
                                                      then times the strategy's signals + simulate
* with `--html`: the cold request with `params.html_report: true` (report.html written before
  the response; Bokeh imported only then)         what the optional page costs a request
Targets (issue #15): cold run <= 1.25x the floor, identical rerun <= 0.5x, the 1M-bar run <= 1.5x
the floor + its kernels' time (per round); exit status 1 when one is missed.
``--bars-scale [SIZES]`` adds the cold run at 10,000 -> 10,000,000 synthetic bars (run_scale.py: the
rows of docs/scaling.md's "Cost vs size" table; ``--bars-rounds``, default 1; ``--only-bars``).
The small request is a one-year daily run on the bundled S&P 500 data (rsi_ma_cross_v2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Check, Stats, finish, interleave, paired_ratio, ratio_check, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BENCH = "run"
REQUEST = {"schema_version": "1.0", "request_id": "bench", "command": "run",
           "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}}
BIG = {"ticker": "SYN", "source": "synthetic", "interval": "1m", "start": "2020-01-01", "end": "2021-11-26"}
BIG_REQUEST = {"schema_version": "1.0", "request_id": "bench-big", "command": "run", "params": BIG}

KERNELS = r"""
import sys, time, os
sys.path.insert(0, sys.argv[1])
from quantlab.data import DataRequest, load_bars
from quantlab.strategies import get_strategy
from quantlab.engine import EngineConfig, simulate
big = dict(zip(("ticker", "source", "interval", "start", "end"), sys.argv[2:7]))
s = get_strategy("rsi_ma_cross_v2"); p = s.resolve_params({})
bars = load_bars(DataRequest(lookback_bars=s.warmup_bars(p), **big))
os.environ["QUANTLAB_JIT"] = "always"
sig = s.signals(bars.open, bars.high, bars.low, bars.close, p)           # numba loaded and warm
simulate(bars.open, bars.high, bars.low, bars.close, sig, EngineConfig(), start=s.warmup_bars(p))
t = time.perf_counter()
sig = s.signals(bars.open, bars.high, bars.low, bars.close, p)
simulate(bars.open, bars.high, bars.low, bars.close, sig, EngineConfig(), start=s.warmup_bars(p))
print(time.perf_counter() - t, len(bars))
"""

PLAIN = r"""
import sys, json, os
sys.path.insert(0, sys.argv[1])
from quantlab.data import DataRequest, load_bars, is_crypto
from quantlab.strategies import get_strategy
from quantlab.engine import EngineConfig, simulate
from quantlab.metrics import compute_metrics, periods_per_year
from quantlab.columnar import table_from_numpy, parquet_bytes
from quantlab.artifacts.plots import equity_png
import numpy as np
out = sys.argv[2]
s = get_strategy("rsi_ma_cross_v2"); p = s.resolve_params({})
bars = load_bars(DataRequest(ticker="SPX", start="2017-01-01", end="2018-01-01", source="sample",
                             lookback_bars=s.warmup_bars(p)))
start = bars.index_of("2017-01-01")
sig = s.signals(bars.open, bars.high, bars.low, bars.close, p)
cfg = EngineConfig()
res = simulate(bars.open, bars.high, bars.low, bars.close, sig, cfg, start=start)
m = compute_metrics(res, bars.close[start:], start=0, periods_per_year=periods_per_year(False, "1d"),
                    initial_cash=cfg.initial_cash)
open(os.path.join(out, "metrics.json"), "w").write(json.dumps(m))
open(os.path.join(out, "equity.parquet"), "wb").write(parquet_bytes(table_from_numpy(
    {"timestamp": bars.index[start:], "equity": res.equity})))
bench = cfg.initial_cash * bars.close[start:] / bars.close[start]
open(os.path.join(out, "equity.png"), "wb").write(equity_png(["a", "b"], res.equity, bench, "plain"))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds")
    ap.add_argument("--html", action="store_true", help="add the cold request with params.html_report")
    ap.add_argument("--bars-scale", nargs="?", const="10000,100000,1000000,10000000", default="",
                    help="add cold runs at these bar counts (synthetic 1m; default sizes 10k..10M)")
    ap.add_argument("--bars-rounds", type=int, default=1, help="interleaved rounds of the bars rows")
    ap.add_argument("--only-bars", action="store_true", help="only the bars rows (implies --bars-scale)")
    ap.add_argument("--no-big", action="store_true", help="leave out the 1,000,000-bar run (a quick check)")
    args = ap.parse_args()
    bar_checks: list[Check] = []
    if args.bars_scale or args.only_bars:
        import run_scale

        sizes = [int(x) for x in (args.bars_scale or ",".join(map(str, run_scale.SIZES))).split(",")]
        bar_checks = run_scale.run(args.bars_rounds, sizes, KERNELS)
        if args.only_bars:
            return finish(bar_checks)
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-"))
    raw = json.dumps(REQUEST)

    def env_for(name: str) -> dict:
        return {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / name)}

    main_cmd = [PY, str(ROOT / "main.py"), "--json-request", raw]
    timed([PY, "-c", "import snakemake.api"])  # warm the page cache once for everybody
    timed(main_cmd, env_for("warmup"))
    timed(main_cmd, env_for("rerun"))  # the rerun variant's outputs root: everything cached

    def plain_once(i: int) -> float:
        out = tmp / f"plain{i}"
        out.mkdir()
        return timed([PY, "-c", PLAIN, str(ROOT / "src"), str(out)])

    big_cmd = [PY, str(ROOT / "main.py"), "--json-request", json.dumps(BIG_REQUEST)]
    kernel_bars: list[int] = []
    if not args.no_big:
        timed(big_cmd, env_for("big_warmup"))  # numba's on-disk cache filled, as on any machine after a first run

    def kernels_once(i: int) -> float:
        out = subprocess.run([PY, "-c", KERNELS, str(ROOT / "src"), *(BIG[k] for k in (
            "ticker", "source", "interval", "start", "end"))], capture_output=True, text=True, check=True)
        seconds, bars = out.stdout.split()
        kernel_bars.append(int(bars))
        return float(seconds)

    html_cmd = [PY, str(ROOT / "main.py"), "--json-request",
                json.dumps({**REQUEST, "params": {**REQUEST["params"], "html_report": True}})]
    variants = {
        "floor": lambda i: timed([PY, "-c", "import snakemake.api"]),
        "cold": lambda i: timed(main_cmd, env_for(f"cold{i}")),
        "rerun": lambda i: timed(main_cmd, env_for("rerun")),
        "plain": plain_once,
        "teardown": lambda i: timed(main_cmd, {**env_for(f"teardown{i}"), "QUANTLAB_FAST_EXIT": "0"}),
        "big": lambda i: timed(big_cmd, env_for(f"big{i}")),
        "kernels": kernels_once,
    }
    if args.no_big:
        del variants["big"], variants["kernels"]
    if args.html:
        variants["cold_html"] = lambda i: timed(html_cmd, env_for(f"html{i}"))
    stats = interleave(variants, args.repeat)
    floor = stats["floor"]
    print(f"\nEnd-to-end `run` (SPX 2017, daily, rsi_ma_cross_v2): {args.repeat} interleaved rounds of fresh "
          "processes; seconds and ratios to the floor within each round, median [min..max]")
    for name, label in (("floor", "python -c 'import snakemake.api' (floor)"),
                        ("cold", "run request, cold (nothing cached)"),
                        ("rerun", "run request, identical rerun"),
                        ("plain", "same backtest, plain Python, no workflow"),
                        ("teardown", "run request, cold, ordinary interpreter exit"),
                        ("big", "{bars:,}-bar run (synthetic 1m), cold"),
                        ("kernels", "  its kernels' own time (signals + simulate)"),
                        ("cold_html", "run request, cold, html_report: true")):
        if name not in stats:
            continue
        label = label.format(bars=kernel_bars[0] if kernel_bars else 0)
        print(f"  {label:<46} {stats[name].show()} s   x floor {paired_ratio(stats[name], floor).show('.2f')}")
    checks = [
        Check(BENCH, "import snakemake.api (the floor), s", floor.median, "s", spread=(floor.lo, floor.hi)),
        ratio_check(BENCH, "cold run / floor", paired_ratio(stats["cold"], floor), "<=", 1.25),
        ratio_check(BENCH, "identical rerun / floor", paired_ratio(stats["rerun"], floor), "<=", 0.5),
        ratio_check(BENCH, "plain Python backtest / floor", paired_ratio(stats["plain"], floor)),
        ratio_check(BENCH, "cold run, ordinary exit (no fast exit) / floor", paired_ratio(stats["teardown"], floor)),
    ]
    if not args.no_big:
        budget = Stats([1.5 * f + k for f, k in zip(floor.samples, stats["kernels"].samples)])
        checks += [
            Check(BENCH, f"{kernel_bars[0]:,}-bar run's kernels (signals + simulate), s", stats["kernels"].median, "s",
                  spread=(stats["kernels"].lo, stats["kernels"].hi)),
            ratio_check(BENCH, f"{kernel_bars[0]:,}-bar run / (1.5x floor + its kernels)",
                        paired_ratio(stats["big"], budget), "<=", 1.0),
        ]
    if args.html:
        checks.append(ratio_check(BENCH, "cold run with html_report / cold run",
                                  paired_ratio(stats["cold_html"], stats["cold"])))
    return finish(checks + bar_checks)


if __name__ == "__main__":
    sys.exit(main())
