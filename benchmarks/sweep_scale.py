"""Sweep scale rows of ``bench_sweep.py``: end-to-end ``main.py`` sweeps on the bundled S&P 500
daily bars (1999-2019, ~5,000 bars), 1,000 -> 100,000 sma_crossover combinations, against the
floor (``import snakemake.api``) and against vectorbt on the same bars and grid.

Interleaved rounds of fresh processes (``_common.interleave``); per round:

* ``floor``            python -c "import snakemake.api"
* ``cold 1k / 10k``    main.py sweep, new outputs root (nothing cached)
* ``rerun 10k``        the identical 10k sweep again on an outputs root that has it
* ``cold 100k``        (``--scale-max 100000``) with the peak RSS of its whole process tree
                       (/proc, sampled every 10 ms: the sum over the tree's live processes)
* ``vectorbt 1k``      ``peers/vectorbt_grid.py`` on the same bars and 1,000-combination grid as a
                       cold QuantLab sweep: its warm time (imported and JIT-compiled, in-process,
                       as in a notebook) and its cold process wall; twice: on the bundled SPX bars
                       and on the 100,000-bar random walk of the engine rows

Targets (issue #15): 10k cold <= 1.5 s; identical 10k rerun <= 0.6x the floor; 100k cold
<= 10 s and <= 1.5 GB peak RSS; a cold QuantLab sweep at 1k combos at least as fast as a warm
vectorbt (ratio vectorbt warm / QuantLab cold >= 1) on both series (on the bundled 5,000 bars
since session 6: 1.41x [1.02..1.43]); a cold vectorbt process slower than a cold QuantLab sweep
on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Check, Stats, interleave, paired_ratio, ratio_check, timed

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BENCH = "sweep"
WINDOW = ("1999-01-01", "2019-01-01")
COSTS = {"fee": 0.001, "slippage_bps": 0.0, "fill": "close", "initial_cash": 10_000.0}


def grid_axes(n: int) -> tuple[list[int], list[int]]:
    """An sma_crossover grid of ~``n`` combinations, every one valid (fast < slow)."""
    f = int(n ** 0.5)
    s = n // f
    return list(range(2, 2 + f)), list(range(2 + f, 2 + f + s))


def request(n: int) -> dict:
    fast, slow = grid_axes(n)
    return {"schema_version": "1.0", "command": "sweep", "params": {
        "ticker": "SPX", "start": WINDOW[0], "end": WINDOW[1], "strategy": "sma_crossover", **COSTS,
        "param_grid": {"fast": fast, "slow": slow}}}


def sweep_cmd(n: int) -> list[str]:
    return [PY, str(ROOT / "main.py"), "--json-request", json.dumps(request(n))]


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants now (Linux /proc; 0 for a process gone)."""
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total


def tree_peak(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS of the process tree in MB, sampled every 10 ms) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak / 2 ** 20


def spx_npz(tmp: Path) -> Path:
    """The bundled S&P 500 bars of the window, as the peers read them."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from quantlab.data import DataRequest, load_bars

    bars = load_bars(DataRequest(ticker="SPX", start=WINDOW[0], end=WINDOW[1], source="sample"))
    path = tmp / "spx.npz"
    np.savez(path, open=bars.open, high=bars.high, low=bars.low, close=bars.close)
    return path


VB_LABELS = {"spx": "1,000 combos on SPX (5,031 bars)", "rw100k": "1,000 combos on 100,000 bars"}


def vectorbt_cases(tmp: Path, env):
    """(tag, bars .npz, QuantLab cold variant) of the two vectorbt comparisons at 1,000 combinations:
    the bundled S&P 500 bars, and the 100,000-bar random walk of the engine rows (``make_bars``)."""
    import numpy as np

    from _common import make_bars

    spx = spx_npz(tmp)
    yield "spx", spx, lambda r: timed(sweep_cmd(1_000), env(f"vbq_spx_{r}"))
    o, h, lo, c = make_bars(100_000)
    rw = tmp / "rw100k.npz"
    np.savez(rw, open=o, high=h, low=lo, close=c)
    parquet = _bars_parquet(o, h, lo, c, tmp / "rw100k.parquet")
    req = request(1_000)
    req["params"].update(ticker="BENCH", data_path=str(parquet), start="1970-01-01",
                         end=str(np.datetime64("1970-01-01") + np.timedelta64(len(c), "D")))
    cmd = [PY, str(ROOT / "main.py"), "--json-request", json.dumps(req)]
    yield "rw100k", rw, lambda r: timed(cmd, env(f"vbq_rw_{r}"))


def _bars_parquet(o, h, lo, c, path: Path) -> Path:
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from quantlab.columnar import parquet_bytes, table_from_numpy

    stamps = np.datetime64("1970-01-01", "ns") + np.arange(len(c)).astype("timedelta64[D]").astype("timedelta64[ns]")
    path.write_bytes(parquet_bytes(table_from_numpy(
        {"timestamp": stamps, "open": o, "high": h, "low": lo, "close": c, "volume": np.zeros(len(c))})))
    return path


def _vectorbt_variant(peers_py: Path, peers_dir: Path, data: Path, tmp: Path, warm_out: list):
    fast, slow = grid_axes(1_000)
    cpath = tmp / "combos1k.json"
    cpath.write_text(json.dumps([{"fast": f, "slow": s} for f in fast for s in slow]))

    def once(r: int) -> float:
        t0 = time.perf_counter()
        out = subprocess.run([str(peers_py), str(peers_dir / "vectorbt_grid.py"), str(data), str(cpath),
                              "--fee", str(COSTS["fee"]), "--cash", str(COSTS["initial_cash"]), "--repeat", "2"],
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"vectorbt failed: {out.stderr[-1500:]}")
        warm_out.append(json.loads(out.stdout.strip().splitlines()[-1])["warm_s"])
        return wall
    return once


def run(rounds: int, scale_max: int, peers_py: Path | None, peers_dir: Path) -> list[Check]:
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-scale-"))

    def env(name: str) -> dict:
        return {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / name)}

    timed([PY, "-c", "import snakemake.api"])
    timed(sweep_cmd(10_000), env("rerun10k"))  # the rerun's outputs root holds the sweep
    variants = {
        "floor": lambda r: timed([PY, "-c", "import snakemake.api"]),
        "cold1k": lambda r: timed(sweep_cmd(1_000), env(f"c1k_{r}")),
        "cold10k": lambda r: timed(sweep_cmd(10_000), env(f"c10k_{r}")),
        "rerun10k": lambda r: timed(sweep_cmd(10_000), env("rerun10k")),
    }
    rss: list[float] = []
    if scale_max >= 100_000:
        def cold_big(r: int) -> float:
            wall, peak = tree_peak(sweep_cmd(scale_max), env(f"c100k_{r}"))
            rss.append(peak)
            return wall
        variants["cold100k"] = cold_big
    vb_warm: dict[str, list[float]] = {}
    if peers_py is not None:
        for tag, data, ql_cmd in vectorbt_cases(tmp, env):
            variants[f"ql_{tag}"] = ql_cmd
            variants[f"vb_{tag}"] = _vectorbt_variant(peers_py, peers_dir, data, tmp, vb_warm.setdefault(tag, []))
    print(f"[scale] {rounds} interleaved rounds of: {', '.join(variants)} ...", flush=True)
    stats = interleave(variants, rounds)
    floor = stats["floor"]
    print(f"\nSweeps end to end on bundled SPX daily bars ({WINDOW[0]}..{WINDOW[1]}), sma_crossover, "
          f"{rounds} interleaved rounds of fresh processes (machine shared and loaded), median [min..max]")
    for name, label in (("floor", "import snakemake.api (floor)"), ("cold1k", "1,000 combos, cold"),
                        ("cold10k", "10,000 combos, cold"), ("rerun10k", "10,000 combos, identical rerun"),
                        ("cold100k", f"{scale_max:,} combos, cold")):
        if name in stats:
            print(f"  {label:<40} {stats[name].show()} s")
    checks = [
        Check(BENCH, "scale: 1,000 combos end to end, cold, s", stats["cold1k"].median, "s",
              spread=(stats["cold1k"].lo, stats["cold1k"].hi)),
        Check(BENCH, "scale: 10,000 combos end to end, cold, s", stats["cold10k"].median, "s", "<=", 1.5,
              spread=(stats["cold10k"].lo, stats["cold10k"].hi)),
        ratio_check(BENCH, "scale: identical 10,000-combo rerun / floor", paired_ratio(stats["rerun10k"], floor),
                    "<=", 0.6),
    ]
    if "cold100k" in stats:
        big = stats["cold100k"]
        checks += [Check(BENCH, f"scale: {scale_max:,} combos end to end, cold, s", big.median, "s", "<=", 10.0,
                         spread=(big.lo, big.hi)),
                   Check(BENCH, f"scale: {scale_max:,} combos, peak RSS of the process tree, MB", Stats(rss).median,
                         "MB", "<=", 1536.0, spread=(min(rss), max(rss)))]
    for tag, warm_samples in vb_warm.items():
        warm, label = Stats(warm_samples), VB_LABELS[tag]
        print(f"  {'vectorbt ' + label + ', warm (in-process)':<52} {warm.show()} s")
        print(f"  {'QuantLab ' + label + ', cold end to end':<52} {stats['ql_' + tag].show()} s")
        print(f"  {'vectorbt ' + label + ', cold process':<52} {stats['vb_' + tag].show()} s")
        target = 1.0  # the comparison, on both series (the bundled one was information until session 6)
        checks += [
            Check(BENCH, f"scale: vectorbt warm, {label}, s", warm.median, "s", spread=(warm.lo, warm.hi)),
            ratio_check(BENCH, f"scale: vectorbt warm / QuantLab cold end to end, {label}",
                        paired_ratio(warm, stats["ql_" + tag]), ">=" if target else None, target),
            ratio_check(BENCH, f"scale: vectorbt cold process / QuantLab cold, {label}",
                        paired_ratio(stats["vb_" + tag], stats["ql_" + tag]), ">=", 1.0),
        ]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return checks
