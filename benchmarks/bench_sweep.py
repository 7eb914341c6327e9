"""Sweep benchmark: a 200-combo sma_crossover grid, QuantLab's sweep engine vs vectorbt vs backtesting.py.

    .venv/bin/python benchmarks/bench_sweep.py [--bars 2500,100000] [--repeat 5] [--no-peers]
        [--bt-limit-large 10] [--bt-timeout 900]

Same data for everyone (a seeded random-walk OHLC, written once to a temporary ``.npz``), the
same grid (``sma_grid(200)``: fast in 5..50, slow in 20..200, fast < slow, 200 pairs evenly
spread) and the same conventions (docs/architecture.md, benchmark conventions): fill at the signal bar's
close, fee 0.1% per side, long-only, no slippage, all cash in.

Every engine runs in its own processes, so peak RSS (``ru_maxrss``) is its own:

* ours: ``evaluate_grid`` (threads=2 and threads=1), warm = best of ``--repeat`` after a first
  call in the same process; cold = wall time of a fresh process that imports QuantLab, builds
  the grid and evaluates it once (numba's on-disk cache warm, as on any machine after the first
  run);
* vectorbt 1.2.0 (``peers/vectorbt_grid.py``, ``Portfolio.from_signals`` broadcast over the grid):
  its own warm time (best of 2 after a first, JIT-compiling call), and the wall of a fresh process
  doing the grid once;
* backtesting.py 0.6.6 (``peers/backtestingpy_grid.py``, ``Backtest.optimize``): at 100,000 bars
  only the first ``--bt-limit-large`` combos (the full grid takes minutes), killed after
  ``--bt-timeout`` s; its combos/s is measured on that subset and said so.

Peers live in ``.venv-peers`` (created here with ``python3.11 -m venv`` + the pinned packages if it
is missing), never in the project's venv. Agreement: max |difference| of total_return and of the
closed-trade count, ours vs each peer, combo by combo (vectorbt ~1e-15; backtesting.py ~1e-11,
since it trades whole units).

For the end-to-end measurement through ``main.py`` (to be added): ``ours_grid_timing(n_bars,
combos)`` is the in-process part, importable from here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

PEERS_VENV = Path(os.environ.get("QUANTLAB_PEERS_VENV") or ROOT / ".venv-peers")  # e.g. a worktree uses main's
PEERS_PY = PEERS_VENV / "bin" / "python"
PEER_PINS = ("vectorbt==1.2.0", "backtesting==0.6.6")
PEERS = ROOT / "benchmarks" / "peers"
BENCH = "sweep"
FEE = 0.001
CASH = 10_000.0


# ------------------------------------------------------------------------------ data, grid
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Check, Stats, finish, interleave, make_bars, paired_ratio, ratio_check  # noqa: E402


def sma_grid(size: int = 200) -> list[dict]:
    """``size`` (fast, slow) pairs evenly spread over fast 5..50, slow 20..200, fast < slow."""
    pairs = [(f, s) for f in range(5, 51) for s in range(20, 201) if f < s]
    step = (len(pairs) - 1) / max(size - 1, 1)
    return [{"fast": pairs[round(i * step)][0], "slow": pairs[round(i * step)][1]} for i in range(size)]


def bench_config():
    from quantlab.engine import EngineConfig

    return EngineConfig(fee=FEE, slippage_bps=0.0, fill="close", allow_short=False, initial_cash=CASH)


# ------------------------------------------------------------------------------ ours
def ours_grid_timing(n_bars: int, combos=200, *, threads=(2, 1), repeat: int = 5, bars=None) -> dict:
    """Time QuantLab's ``evaluate_grid`` on an sma_crossover grid, in this process.

    ``combos``: a list of ``{"fast", "slow"}`` dicts, or a grid size for :func:`sma_grid`;
    ``bars``: (open, high, low, close), else :func:`make_bars` (``n_bars``, seed 42). Returns
    ``first_s`` (the first call: numba dispatch/cache load included), ``warm_s`` {threads: best of
    ``repeat``}, ``combos_per_s`` {threads: ...} and ``result`` (the metric arrays). For the
    coming end-to-end benchmark through ``main.py``: this is the engine's share of it.
    """
    from quantlab.engine.sweep import evaluate_grid

    if isinstance(combos, int):
        combos = sma_grid(combos)
    bars = bars if bars is not None else make_bars(n_bars)
    cfg = bench_config()
    threads = (threads,) if isinstance(threads, int) else tuple(threads)

    def once(t):
        return evaluate_grid(*bars, "sma_crossover", combos, cfg, start=0, periods_per_year=252.0, threads=t)

    t0 = time.perf_counter()
    result = once(threads[0])
    first_s = time.perf_counter() - t0
    warm = {}
    for t in threads:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            once(t)
            best = min(best, time.perf_counter() - t0)
        warm[t] = best
    return {"first_s": first_s, "warm_s": warm, "combos_per_s": {t: len(combos) / s for t, s in warm.items()},
            "combos": len(combos), "result": result}


def ours_end_to_end(bars, combos: list[dict], tmp: Path) -> tuple[float, dict]:
    """Wall time of the same sweep as one cold ``main.py --json-request`` process (Snakemake,
    data ingest from a Parquet file, shards, leaderboard, artifacts, index; nothing cached),
    and its leaderboard's total_return/trades by (fast, slow)."""
    import csv

    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy

    o, h, lo, c = bars
    n = len(c)
    stamps = np.datetime64("1970-01-01", "ns") + np.arange(n).astype("timedelta64[D]").astype("timedelta64[ns]")
    data = tmp / f"e2e_{n}.parquet"
    data.write_bytes(parquet_bytes(table_from_numpy(
        {"timestamp": stamps, "open": o, "high": h, "low": lo, "close": c, "volume": np.zeros(n)})))
    end = str((stamps[-1] + np.timedelta64(1, "D")).astype("datetime64[D]"))
    request = {"schema_version": "1.0", "command": "sweep", "params": {
        "ticker": "BENCH", "data_path": str(data), "start": "1970-01-01", "end": end, "strategy": "sma_crossover",
        "fee": FEE, "slippage_bps": 0.0, "fill": "close", "initial_cash": CASH, "objective": "sharpe_simple",
        "parameter_sets": [{"label": f"{p['fast']}_{p['slow']}", "parameters": p} for p in combos]}}
    env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / f"e2e_outputs_{n}")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--json-request", json.dumps(request)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"main.py sweep failed: {proc.stderr[-2000:]}")
    run_dir = Path(json.loads(proc.stdout)["artifacts_path"])
    with open(run_dir / "leaderboard.csv") as fh:
        rows = {(int(r["fast"]), int(r["slow"])): (float(r["total_return"]), int(r["trades"])) for r in csv.DictReader(fh)}
    return wall, rows


def _child_ours(args) -> None:
    """Subprocess entry: load the shared data, run ours, print one JSON line."""
    import resource

    import numpy as np

    d = np.load(args.data)
    bars = (d["open"], d["high"], d["low"], d["close"])
    combos = json.load(open(args.combos_file))
    if args.cold:
        from quantlab.engine.sweep import evaluate_grid

        r = evaluate_grid(*bars, "sma_crossover", combos, bench_config(), start=0, periods_per_year=252.0,
                          threads=2)
        out = {"total_return": r["total_return"].tolist(), "trades": r["trades"].tolist()}
    else:
        t = ours_grid_timing(len(bars[3]), combos, threads=(2, 1), repeat=args.repeat, bars=bars)
        out = {"first_s": t["first_s"], "warm_s": {str(k): v for k, v in t["warm_s"].items()},
               "total_return": t["result"]["total_return"].tolist(), "trades": t["result"]["trades"].tolist()}
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


# ------------------------------------------------------------------------------ processes
def run_json(cmd: list[str], timeout: float | None = None) -> tuple[dict | None, float, str]:
    """Run ``cmd``; (its last stdout line as JSON or None, wall seconds, error text)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None, wall, f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"
    return json.loads(lines[-1]), wall, ""


def ensure_peers_venv() -> bool:
    """``.venv-peers`` with the pinned peers; created (and said so) when missing."""
    check = [str(PEERS_PY), "-c", "import vectorbt, backtesting"]
    if PEERS_PY.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return True
    python = shutil.which("python3.11") or sys.executable
    print(f"[peers] {PEERS_VENV} missing or incomplete: creating it ({python} -m venv) and installing "
          f"{' '.join(PEER_PINS)} (a few minutes, once)", flush=True)
    if not PEERS_PY.exists():
        subprocess.run([python, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = subprocess.run([str(PEERS_PY), "-m", "pip", "install", "-q", *PEER_PINS])
    ok = pip.returncode == 0 and subprocess.run(check, capture_output=True).returncode == 0
    if not ok:
        print("[peers] installation failed: peers skipped", flush=True)
    return ok


# ------------------------------------------------------------------------------ report
def agreement(ours: dict, peer: dict) -> tuple[float, int, int]:
    """(max |Δ total_return|, max |Δ trades|, combos compared) over the combos the peer ran."""
    k = len(peer["total_return"])
    dtr = max(abs(a - b) for a, b in zip(ours["total_return"][:k], peer["total_return"]))
    dtr_trades = max(abs(a - b) for a, b in zip(ours["trades"][:k], peer["trades"]))
    return dtr, dtr_trades, k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", default="2500,100000")
    ap.add_argument("--combos", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5, help="warm calls per process (best is kept)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of fresh processes")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--bt-limit-large", type=int, default=10,
                    help="backtesting.py: combos run on grids above 10,000 bars (all below)")
    ap.add_argument("--bt-timeout", type=float, default=900.0)
    ap.add_argument("--scale-max", type=int, default=100_000,
                    help="largest end-to-end sweep of the scale rows (sweep_scale.py); 0: no scale rows")
    ap.add_argument("--scale-rounds", type=int, default=3)
    ap.add_argument("--only-scale", action="store_true", help="only the scale rows")
    ap.add_argument("--child", choices=["ours"], help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--combos-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child_ours(args)
        return 0

    import numpy as np

    peers = not args.no_peers and ensure_peers_venv()
    combos = sma_grid(args.combos)
    rows = []
    notes = []
    checks: list[Check] = []
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-sweep-"))
    if args.scale_max:
        import sweep_scale

        checks += sweep_scale.run(args.scale_rounds, args.scale_max, PEERS_PY if peers else None, PEERS)
    try:
        for n in ([] if args.only_scale else [int(x) for x in args.bars.split(",")]):
            data = tmp / f"bars_{n}.npz"
            o, h, lo, c = make_bars(n)
            np.savez(data, open=o, high=h, low=lo, close=c)
            cpath = tmp / "combos.json"
            cpath.write_text(json.dumps(combos))
            me = [sys.executable, str(Path(__file__).resolve()), "--child", "ours", "--data", str(data),
                  "--combos-file", str(cpath), "--repeat", str(args.repeat)]
            vb_cmd = [str(PEERS_PY), str(PEERS / "vectorbt_grid.py"), str(data), str(cpath),
                      "--fee", str(FEE), "--cash", str(CASH)]
            got: dict[str, list] = {}

            def variant(name, cmd, key=None):
                def once(r: int) -> float:
                    out, wall, err = run_json(cmd)
                    if out is None:
                        raise SystemExit(f"{name} at {n:,} bars failed: {err}")
                    got.setdefault(name, []).append(out)
                    return out[key] if key else wall
                return once

            def e2e(r: int) -> float:
                (tmp / f"e2e_{n}_round{r}").mkdir()
                wall, e2e_rows = ours_end_to_end((o, h, lo, c), combos, tmp / f"e2e_{n}_round{r}")
                got.setdefault("e2e", []).append(e2e_rows)
                return wall

            variants = {"ours": variant("ours", me), "ours_cold": variant("ours_cold", me + ["--cold"]), "e2e": e2e}
            if peers:
                variants["vb"] = variant("vectorbt", vb_cmd + ["--repeat", "2"], key="warm_s")
                variants["vb_cold"] = variant("vectorbt_cold", vb_cmd + ["--repeat", "0"])
            print(f"[{n:,} bars] {args.rounds} interleaved rounds of: {', '.join(variants)} ...", flush=True)
            stats = interleave(variants, args.rounds)
            ours_runs = got["ours"]
            ours = ours_runs[-1]
            warm2 = Stats([x["warm_s"]["2"] for x in ours_runs])
            warm1 = Stats([x["warm_s"]["1"] for x in ours_runs])
            rss = statistics.median(x["rss_mb"] for x in ours_runs)
            for t, warm in (("2", warm2), ("1", warm1)):
                rows.append({"bars": n, "engine": f"quantlab evaluate_grid, threads={t}", "warm_s": warm.median,
                             "cps": len(combos) / warm.median,
                             "cold_s": stats["ours_cold"].median if t == "2" else None,
                             "rss_mb": rss if t == "2" else None, "dtr": None, "dtrades": None})
            e2e_rows = got["e2e"][-1]
            mine = [e2e_rows[(p["fast"], p["slow"])] for p in combos]
            dtr = float(np.max(np.abs(np.array([g[0] for g in mine]) - np.array(ours["total_return"]))))
            dtrades = int(np.max(np.abs(np.array([g[1] for g in mine]) - np.array(ours["trades"]))))
            rows.append({"bars": n, "engine": "quantlab main.py sweep, end to end", "warm_s": stats["e2e"].median,
                         "cps": len(combos) / stats["e2e"].median, "cold_s": stats["e2e"].median, "rss_mb": None,
                         "dtr": dtr, "dtrades": dtrades})
            checks.append(Check(BENCH, f"{n:,} bars: main.py sweep vs in-process engine, max abs dTR", dtr, "",
                                "<=", 1e-9))
            checks.append(Check(BENCH, f"{n:,} bars: main.py sweep vs in-process engine, max abs dTrades",
                                dtrades, "", "<=", 0))
            checks.append(Check(BENCH, f"{n:,} bars: main.py sweep end to end, cold, s", stats["e2e"].median, "s",
                                spread=(stats["e2e"].lo, stats["e2e"].hi)))
            if peers:
                vb = got["vectorbt"][-1]
                vdtr, vdtrades, _ = agreement(ours, vb)
                rows.append({"bars": n, "engine": "vectorbt 1.2.0 from_signals", "warm_s": stats["vb"].median,
                             "cps": len(combos) / stats["vb"].median, "rss_mb": vb["rss_mb"],
                             "cold_s": stats["vb_cold"].median, "dtr": vdtr, "dtrades": vdtrades})
                speed = paired_ratio(stats["vb"], warm2)
                checks += [
                    Check(BENCH, f"{n:,} bars: parity with vectorbt, max abs dTR", vdtr, "", "<=", 1e-9),
                    Check(BENCH, f"{n:,} bars: parity with vectorbt, max abs dTrades", vdtrades, "", "<=", 0),
                    ratio_check(BENCH, f"{n:,} bars: grid engine combos/s / vectorbt warm", speed,
                                ">=", 20.0 if n >= 100_000 else None),
                    Check(BENCH, f"{n:,} bars: grid engine peak RSS / vectorbt's", rss / vb["rss_mb"], "x",
                          "<=" if n >= 100_000 else None, 0.1 if n >= 100_000 else None),
                    ratio_check(BENCH, f"{n:,} bars: vectorbt cold process / main.py sweep end to end",
                                paired_ratio(stats["vb_cold"], stats["e2e"]), ">=", 1.0,
                                detail="aim 5x"),
                ]
            if not peers:
                continue
            limit = 0 if n <= 10_000 else args.bt_limit_large
            print(f"[{n:,} bars] backtesting.py ({'all' if not limit else limit} combos, once) ...", flush=True)
            bt_cmd = [str(PEERS_PY), str(PEERS / "backtestingpy_grid.py"), str(data), str(cpath),
                      "--fee", str(FEE)]
            if limit:
                bt_cmd += ["--limit", str(limit)]
            bt, bt_wall, err = run_json(bt_cmd, timeout=args.bt_timeout)
            if bt is None:
                notes.append(f"backtesting.py at {n:,} bars: {err}")
                checks.append(Check(BENCH, f"{n:,} bars: backtesting.py peer ran", 0, "", ">=", 1,
                                    detail="a failing peer is a failed benchmark"))
            else:
                dtr, dtrades, k = agreement(ours, bt)
                label = "backtesting.py 0.6.6 optimize" + (f" ({k}/{len(combos)} combos)" if limit else "")
                rows.append({"bars": n, "engine": label, "warm_s": bt["warm_s"] * len(combos) / k,
                             "cps": k / bt["warm_s"], "cold_s": bt_wall if not limit else None,
                             "rss_mb": bt["rss_mb"], "dtr": dtr, "dtrades": dtrades})
                checks += [Check(BENCH, f"{n:,} bars: parity with backtesting.py, max abs dTR", dtr, "", "<=", 1e-9),
                           Check(BENCH, f"{n:,} bars: backtesting.py closed trades vs ours, max abs dTrades",
                                 dtrades, detail="it counts closed trades only; we also count the one open "
                                 "at the end (at most 1 apart)")]
                if limit:
                    notes.append(f"backtesting.py at {n:,} bars ran {k} of {len(combos)} combos "
                                 f"({bt['warm_s']:.1f} s; 'warm s' extrapolates to {len(combos)}); "
                                 f"its process wall {bt_wall:.1f} s covers only those")
                notes.append(f"backtesting.py at {n:,} bars: its forked optimize workers peaked at "
                             f"{bt.get('children_rss_mb', 0):.0f} MB RSS each (not in the RSS column)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{len(combos)}-combo sma_crossover sweep, {os.cpu_count()} cores; fill at close, fee {FEE:.1%}/side, "
          f"long-only; medians of {args.rounds} interleaved rounds")
    head = (f"{'bars':>8}  {'engine':<44} {'warm s':>9} {'combos/s':>10} {'x vbt':>6} {'cold proc s':>11} "
            f"{'peak RSS MB':>11} {'max|dTR|':>9} {'max|dTrades|':>12}")
    print(head)
    print("-" * len(head))

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    for r in rows:
        vb = next((x for x in rows if x["bars"] == r["bars"] and x["engine"].startswith("vectorbt")), None)
        ratio = r["cps"] / vb["cps"] if vb else None
        print(f"{r['bars']:>8,}  {r['engine']:<44} {r['warm_s']:>9.4f} {r['cps']:>10,.1f} {fmt(ratio, '.1f'):>6} "
              f"{fmt(r['cold_s'], '.2f'):>11} {fmt(r['rss_mb'], '.0f'):>11} {fmt(r['dtr'], '.1e'):>9} "
              f"{fmt(r['dtrades'], 'd'):>12}")
    for note in notes:
        print("note:", note)
    return finish(checks)

if __name__ == "__main__":
    sys.exit(main())
