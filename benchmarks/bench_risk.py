"""Risk-controls benchmark: a stop_loss x take_profit x sma_crossover grid, QuantLab vs vectorbt.

    .venv/bin/python benchmarks/bench_risk.py [--bars 2500,100000] [--pairs 10] [--rounds 3]
        [--threads 2] [--no-peers]

One grid per bar count, the same bars for everyone (``make_bars``, seed 42): ``--pairs``
sma_crossover (fast, slow) pairs (``bench_sweep.sma_grid``) x stop_loss {0, 1, 2, 5 %} x
take_profit {0, 3, 8 %}, plus trailing stops {2, 5 %} x take_profit {0, 3 %}; ``fill: close``, no
fees, no slippage, long-only, all cash in (the conventions vectorbt's ``from_signals`` shares).

* Throughput, interleaved round by round in fresh processes: QuantLab's grid engine with the
  stops and the same grid with every stop off (warm: best of 5 after a first call, numba
  kernels forced, ``--threads`` as bench_sweep's headline; target: stops >= 50 % of the no-stop
  combos/s), and vectorbt 1.2.0 (``peers/vectorbt_risk.py``: best of 2 warm calls after a
  JIT-compiling first one; target: QuantLab >= 20x its combos/s, as issue #13 asks; see
  docs/engine.md for measured ratios: they move with the machine's load).
* Parity with vectorbt, combo by combo: |total_return difference| <= 1e-9 and identical trade
  counts (both count the trade still open at the end).
* backtesting.py 0.6.6 (``peers/backtestingpy_risk.py``, ``buy(sl=, tp=)``) on the stop-loss x
  take-profit combos of the first two pairs: agreement as information (it trades whole units
  and counts closed trades only; it has no built-in trailing stop).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from _common import Check, Stats, finish, interleave, make_bars, paired_ratio, ratio_check  # noqa: E402
from bench_sweep import PEERS, PEERS_PY, ensure_peers_venv, run_json, sma_grid  # noqa: E402

BENCH = "risk"
STOPS = ([(sl, tp, 0.0) for sl in (0.0, 0.01, 0.02, 0.05) for tp in (0.0, 0.03, 0.08)]
         + [(0.0, tp, tr) for tr in (0.02, 0.05) for tp in (0.0, 0.03)])


def risk_grid(pairs: int) -> list[dict]:
    return [{**p, "stop_loss": sl, "take_profit": tp, "trailing_stop": tr}
            for p in sma_grid(pairs) for sl, tp, tr in STOPS]


def bench_config():
    from quantlab.engine import EngineConfig

    return EngineConfig(fee=0.0, slippage_bps=0.0, fill="close", allow_short=False, initial_cash=10_000.0)


def child(data: str, combos_file: str, threads: int = 2) -> None:
    """Fresh-process entry: warm grid time of QuantLab on these combos (numba kernels, as any
    grid past the pure-Python threshold runs), and its results."""
    import os
    import time

    os.environ["QUANTLAB_JIT"] = "always"

    import numpy as np

    from quantlab.engine.sweep import evaluate_grid

    d = np.load(data)
    bars = (d["open"], d["high"], d["low"], d["close"])
    combos = json.load(open(combos_file))

    def once():
        return evaluate_grid(*bars, "sma_crossover", combos, bench_config(), start=0, periods_per_year=252.0,
                             threads=threads)

    result = once()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"warm_s": best, "total_return": result["total_return"].tolist(),
                      "trades": result["trades"].tolist(),
                      "exits_end_of_data": result["exits_end_of_data"].tolist()}))


def measure(n_bars: int, args, peers: bool, tmp: Path) -> list[Check]:
    """Every figure of one bar count (see the module docstring)."""
    import numpy as np

    o, h, lo, c = make_bars(n_bars)
    data = tmp / f"bars_{n_bars}.npz"
    np.savez(data, open=o, high=h, low=lo, close=c)
    combos = risk_grid(args.pairs)
    files = {"stops": tmp / "stops.json", "nostop": tmp / "nostop.json"}
    files["stops"].write_text(json.dumps(combos))
    files["nostop"].write_text(json.dumps([{**x, "stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0}
                                           for x in combos]))
    print(f"\n{len(combos)} combos ({args.pairs} sma pairs x {len(STOPS)} stop settings) on {n_bars:,} bars; "
          f"fill=close, no fees, long-only, threads={args.threads}", flush=True)
    outputs: dict[str, dict] = {}

    def ours(name):
        def run(_r):
            out, _, err = run_json([sys.executable, __file__, "--child", str(data), str(files[name]),
                                    "--threads", str(args.threads)])
            if out is None:
                raise SystemExit(f"QuantLab child failed: {err}")
            outputs[name] = out
            return out["warm_s"]
        return run

    def vbt(_r):
        out, _, err = run_json([str(PEERS_PY), str(PEERS / "vectorbt_risk.py"), str(data), str(files["stops"]),
                                "--repeat", "2"], timeout=1800)
        if out is None:
            raise SystemExit(f"vectorbt peer failed: {err}")
        outputs["vbt"] = out
        return out["warm_s"]

    variants = {"stops": ours("stops"), "nostop": ours("nostop")}
    if peers:
        variants["vbt"] = vbt
    stats = interleave(variants, args.rounds)
    k = len(combos)
    for name, st in stats.items():
        rate = Stats([k / x for x in st.samples])
        print(f"{name:<8} warm {st.show('.4f')} s  = {rate.show('.0f')} combos/s")
    tag = f"{n_bars:,} bars: "
    checks = [
        Check(BENCH, tag + f"grid combos/s with stops (threads={args.threads})", k / stats["stops"].median,
              " combos/s", spread=(k / stats["stops"].hi, k / stats["stops"].lo)),
        ratio_check(BENCH, tag + "stops / no-stop grid throughput", paired_ratio(stats["nostop"], stats["stops"]),
                    ">=", 0.5, "same combos, every stop off"),
    ]
    if not peers:
        return checks
    ours_tr = np.array(outputs["stops"]["total_return"])
    ours_trades = np.array(outputs["stops"]["trades"])
    checks.append(ratio_check(BENCH, tag + "QuantLab / vectorbt combos/s (stops grid)",
                              paired_ratio(stats["vbt"], stats["stops"]), ">=", 20.0,
                              "vectorbt 1.2.0 warm, best of 2"))
    v = outputs["vbt"]
    checks.append(Check(BENCH, tag + "vectorbt parity: max |d total_return|",
                        float(np.abs(np.array(v["total_return"]) - ours_tr).max()), "", "<=", 1e-9))
    checks.append(Check(BENCH, tag + "vectorbt parity: combos with another trade count",
                        float(np.count_nonzero(np.array(v["trades"]) != ours_trades)), "", "<=", 0.0))
    sub = [i for i, x in enumerate(combos) if x["trailing_stop"] == 0][: 2 * 12]
    sub_file = tmp / "bt.json"
    sub_file.write_text(json.dumps([combos[i] for i in sub]))
    bt, _, err = run_json([str(PEERS_PY), str(PEERS / "backtestingpy_risk.py"), str(data), str(sub_file)],
                          timeout=1800)
    if bt is None:
        raise SystemExit(f"backtesting.py peer failed: {err}")
    closed = ours_trades[sub] - np.array(outputs["stops"]["exits_end_of_data"])[sub]
    checks.append(Check(BENCH, tag + "backtesting.py: max |d total_return| (whole units)",
                        float(np.abs(np.array(bt["total_return"]) - ours_tr[sub]).max()),
                        detail=f"{len(sub)} sl x tp combos"))
    checks.append(Check(BENCH, tag + "backtesting.py: combos with another closed-trade count",
                        float(np.count_nonzero(np.array(bt["trades"]) != closed))))
    return checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", default="2500,100000", help="comma-separated bar counts")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="QuantLab's grid threads (bench_sweep's: 2)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("DATA", "COMBOS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, threads=args.threads)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-risk-"))
    peers = not args.no_peers and ensure_peers_venv()
    checks: list[Check] = []
    for n in (int(x) for x in args.bars.split(",")):
        checks += measure(n, args, peers, tmp)
    return finish(checks)


if __name__ == "__main__":
    sys.exit(main())
