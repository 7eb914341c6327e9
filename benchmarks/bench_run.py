"""End-to-end benchmark of a `run` request against the floor any Snakemake-driven command pays.

    .venv/bin/python benchmarks/bench_run.py [--repeat 7]

Measured side by side in one run, each a fresh process, median of --repeat:

* `python -c "import snakemake.api"`                 the floor (Snakemake's own import)
* `main.py --json-request <run>` cold                 new outputs root each time: nothing cached
* `main.py --json-request <run>` identical rerun      same outputs root: every intermediate cached
* the same backtest as one plain Python process       load, signals, simulate, metrics and the same
                                                      artifacts, no workflow around it
Targets (issue #2): cold run <= 1.6x the floor, identical rerun <= 1.3x.
The request is a one-year daily run on the bundled S&P 500 data (rsi_ma_cross_v2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
REQUEST = {"schema_version": "1.0", "request_id": "bench", "command": "run",
           "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}}

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


def median_of(repeat: int, fn) -> tuple[float, list[float]]:
    samples = [fn(i) for i in range(repeat)]
    return statistics.median(samples), samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-"))
    raw = json.dumps(REQUEST)

    def env_for(name: str) -> dict:
        return {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / name)}

    main_cmd = [PY, str(ROOT / "main.py"), "--json-request", raw]
    timed([PY, "-c", "import snakemake.api"])  # warm the page cache once for everybody
    timed(main_cmd, env_for("warmup"))
    rows = []
    floor, _ = median_of(args.repeat, lambda i: timed([PY, "-c", "import snakemake.api"]))
    cold, _ = median_of(args.repeat, lambda i: timed(main_cmd, env_for(f"cold{i}")))
    timed(main_cmd, env_for("rerun"))
    rerun, _ = median_of(args.repeat, lambda i: timed(main_cmd, env_for("rerun")))

    def plain_once(i: int) -> float:
        out = tmp / f"plain{i}"
        out.mkdir()
        return timed([PY, "-c", PLAIN, str(ROOT / "src"), str(out)])

    plain, _ = median_of(args.repeat, plain_once)
    rows = [
        ("python -c 'import snakemake.api' (floor)", floor, None),
        ("run request, cold (nothing cached)", cold, 1.6),
        ("run request, identical rerun", rerun, 1.3),
        ("same backtest, plain Python, no workflow", plain, None),
    ]
    print(f"\nEnd-to-end `run` (SPX 2017, daily, rsi_ma_cross_v2), fresh processes, median of {args.repeat}")
    print(f"{'what':<46} {'wall s':>8} {'x floor':>8} {'target':>8}")
    for name, value, target in rows:
        ratio = value / floor
        tgt = f"<= {target}x" if target else ""
        ok = "" if target is None else ("  ok" if ratio <= target else "  MISSED")
        print(f"{name:<46} {value:8.3f} {ratio:8.2f} {tgt:>8}{ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
