"""Sweep scale rows of ``bench_sweep.py``: end-to-end ``main.py`` sweeps on the bundled S&P 500
daily bars (1999-2019, ~5,000 bars), 1,000 -> 100,000 sma_crossover combinations, against the
floor (``import snakemake.api``) and against vectorbt on the same bars and grid.

Interleaved rounds of fresh processes (``_common.interleave``); per round:

* ``floor``            python -c "import snakemake.api"
* ``cold 1k / 10k``    main.py sweep, new outputs root (nothing cached)
* ``rerun 10k``        the identical 10k sweep again on an outputs root that has it
* ``cold 100k``        (``--scale-max 100000``) with the peak RSS of its whole process tree
                       (psutil, sampled every 10 ms: the sum over the tree's live processes)
* ``vectorbt 1k``      ``peers/vectorbt_grid.py``: its warm time (imported and JIT-compiled,
                       in-process, as in a notebook) and its cold process wall

Targets (issue #15): 10k cold <= 1.5 s; identical 10k rerun <= 0.6x the floor; 100k cold
<= 10 s and <= 1.5 GB peak RSS; a cold QuantLab sweep at 1k combos at least as fast as a warm
vectorbt (ratio vectorbt warm / QuantLab cold >= 1).
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


def tree_peak(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS of the process tree in MB) of one command."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
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
    vb_warm: list[float] = []
    if peers_py is not None:
        fast, slow = grid_axes(1_000)
        combos = [{"fast": f, "slow": s} for f in fast for s in slow]
        cpath = tmp / "combos1k.json"
        cpath.write_text(json.dumps(combos))
        data = spx_npz(tmp)

        def vectorbt(r: int) -> float:
            t0 = time.perf_counter()
            out = subprocess.run([str(peers_py), str(peers_dir / "vectorbt_grid.py"), str(data), str(cpath),
                                  "--fee", str(COSTS["fee"]), "--cash", str(COSTS["initial_cash"]), "--repeat", "2"],
                                 capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if out.returncode != 0:
                raise SystemExit(f"vectorbt failed: {out.stderr[-1500:]}")
            vb_warm.append(json.loads(out.stdout.strip().splitlines()[-1])["warm_s"])
            return wall
        variants["vb1k"] = vectorbt
    print(f"[scale] {rounds} interleaved rounds of: {', '.join(variants)} ...", flush=True)
    stats = interleave(variants, rounds)
    floor = stats["floor"]
    print(f"\nSweeps end to end on bundled SPX daily bars ({WINDOW[0]}..{WINDOW[1]}), sma_crossover, "
          f"{rounds} interleaved rounds of fresh processes (machine shared and loaded), median [min..max]")
    for name, label in (("floor", "import snakemake.api (floor)"), ("cold1k", "1,000 combos, cold"),
                        ("cold10k", "10,000 combos, cold"), ("rerun10k", "10,000 combos, identical rerun"),
                        ("cold100k", f"{scale_max:,} combos, cold"), ("vb1k", "vectorbt 1,000 combos, cold process")):
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
    if vb_warm:
        warm = Stats(vb_warm)
        print(f"  {'vectorbt 1,000 combos, warm (in-process)':<40} {warm.show()} s")
        checks += [
            Check(BENCH, "scale: vectorbt warm, 1,000 combos, s", warm.median, "s", spread=(warm.lo, warm.hi)),
            ratio_check(BENCH, "scale: vectorbt warm / QuantLab cold end to end, 1,000 combos",
                        paired_ratio(warm, stats["cold1k"]), ">=", 1.0),
            ratio_check(BENCH, "scale: vectorbt cold process / QuantLab cold, 1,000 combos",
                        paired_ratio(stats["vb1k"], stats["cold1k"]), ">=", 1.0),
        ]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return checks
