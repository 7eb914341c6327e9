"""Bars-scaling rows of ``bench_run.py`` (``--bars-scale``): a cold ``run`` request on synthetic
1-minute bars of 10,000 -> 10,000,000 bars, end to end through ``main.py``, against the floor
(``import snakemake.api``) and against its own kernels' time (signals + simulate in a warm process).

Interleaved rounds of fresh processes (``_common.interleave``); per round and size:

* ``floor``       python -c "import snakemake.api"
* ``cold N``      main.py run, new outputs root (nothing cached), with the peak RSS of its process
                  tree (``sweep_scale.tree_peak``) and its CPU time (user + sys of the tree, from
                  RUSAGE_CHILDREN: the figure to compare on a loaded machine)
* ``kernels N``   bench_run.KERNELS on the same bars: the strategy's signals + simulate, numba warm

Every figure is information (docs/scaling.md's "Cost vs size" table); the issue-#15 target on the
1,000,000-bar run is checked by bench_run.py's own rows. Rounds default to 1: the 10M-bar run
alone takes tens of seconds and a few GB.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import Check, Stats, interleave, paired_ratio, ratio_check, timed
from sweep_scale import tree_peak

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BENCH = "run"
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
FIRST_DAY = np.datetime64("2000-01-01", "D")
BARS_PER_DAY = 1_440  # the synthetic source's 1m calendar for a stock ticker runs round the clock


def window(n: int) -> dict:
    """Synthetic 1m request params of about ``n`` bars (whole days; the exact count is reported)."""
    days = -(-n // BARS_PER_DAY)
    return {"ticker": "SYN", "source": "synthetic", "interval": "1m",
            "start": str(FIRST_DAY), "end": str(FIRST_DAY + np.timedelta64(days, "D"))}


def run(rounds: int, sizes: list[int], kernels_src: str) -> list[Check]:
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-bench-bars-"))

    def env(name: str) -> dict:
        return {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / name)}

    def cmd(n: int) -> list[str]:
        req = {"schema_version": "1.0", "request_id": f"bars-{n}", "command": "run", "params": window(n)}
        return [PY, str(ROOT / "main.py"), "--json-request", json.dumps(req)]

    timed([PY, "-c", "import snakemake.api"])
    timed(cmd(sizes[0]), env("warmup"))  # numba's on-disk cache filled, as after any first run
    rss: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    count: dict[int, int] = {}

    def cold(n: int):
        def once(r: int) -> float:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, peak = tree_peak(cmd(n), env(f"cold{n}_{r}"))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run and every process it waited for
            cpu[n].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            rss[n].append(peak)
            return wall
        return once

    def kernels(n: int):
        def once(r: int) -> float:
            w = window(n)
            out = subprocess.run([PY, "-c", kernels_src, str(ROOT / "src"), *(w[k] for k in (
                "ticker", "source", "interval", "start", "end"))], capture_output=True, text=True, check=True)
            seconds, bars = out.stdout.split()
            count[n] = int(bars)
            return float(seconds)
        return once

    variants = {"floor": lambda r: timed([PY, "-c", "import snakemake.api"])}
    for n in sizes:
        variants[f"cold{n}"] = cold(n)
        variants[f"kernels{n}"] = kernels(n)
    print(f"[bars] {rounds} interleaved round(s) of: {', '.join(variants)} ...", flush=True)
    stats = interleave(variants, rounds)
    floor = stats["floor"]
    print(f"\nCold `run` (rsi_ma_cross_v2) on synthetic 1m bars, {rounds} interleaved round(s) of fresh "
          "processes, median [min..max]; floor = import snakemake.api")
    print(f"  {'floor':<12} {floor.show()} s")
    checks = [Check(BENCH, "bars: import snakemake.api (the floor), s", floor.median, "s",
                    spread=(floor.lo, floor.hi))]
    for n in sizes:
        c, k, mem, used = stats[f"cold{n}"], stats[f"kernels{n}"], Stats(rss[n]), Stats(cpu[n])
        budget = Stats([1.5 * f + x for f, x in zip(floor.samples, k.samples)])
        label = f"{count[n]:,} bars"
        print(f"  {label:<12} cold {c.show()} s (CPU {used.show('.2f')} s) = {paired_ratio(c, floor).show('.2f')} "
              "x floor; kernels "
              f"{k.show()} s; x (1.5 floor + kernels) {paired_ratio(c, budget).show('.2f')}; "
              f"peak RSS {mem.show('.0f')} MB")
        checks += [
            Check(BENCH, f"bars: {label}, cold run end to end, s", c.median, "s", spread=(c.lo, c.hi)),
            Check(BENCH, f"bars: {label}, cold run's CPU (user + sys, process tree), s", used.median, "s",
                  spread=(used.lo, used.hi)),
            ratio_check(BENCH, f"bars: {label}, cold run / floor", paired_ratio(c, floor)),
            Check(BENCH, f"bars: {label}, its kernels (signals + simulate), s", k.median, "s", spread=(k.lo, k.hi)),
            ratio_check(BENCH, f"bars: {label}, cold run / (1.5x floor + its kernels)", paired_ratio(c, budget)),
            Check(BENCH, f"bars: {label}, peak RSS of the process tree, MB", mem.median, "MB",
                  spread=(mem.lo, mem.hi)),
        ]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return checks
