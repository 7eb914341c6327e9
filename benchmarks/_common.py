"""Helpers shared by the benchmark scripts: fresh-process timing, interleaved rounds, verdicts.

This machine kind is noisy (2 shared cores). Measuring variant A in one block and variant B in
the next puts the machine's drift into the ratio, so every comparison here is *interleaved*:
round r runs each variant once, in a fresh process, in an order rotated by r; ratios are taken
within a round (paired) and reported as median [min..max] over the rounds.

A benchmark states its targets as :class:`Check` rows. ``finish(checks)`` prints them with
``ok``/``MISSED`` and returns the exit status (1 on any miss), and appends them as JSON lines to
``$QUANTLAB_BENCH_RESULTS`` when set, so ``run_all.py`` can print one table, write
``benchmarks/RESULTS.md`` and refresh the README's table from measured numbers only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Callable


def timed(cmd: list[str], env: dict | None = None) -> float:
    """Wall time of one command in a fresh process; a failing command aborts the benchmark."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd[:4])}...\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


@dataclass
class Stats:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def lo(self) -> float:
        return min(self.samples)

    @property
    def hi(self) -> float:
        return max(self.samples)

    def show(self, spec: str = ".3f") -> str:
        return f"{self.median:{spec}} [{self.lo:{spec}}..{self.hi:{spec}}]"


def interleave(variants: dict[str, Callable[[int], float]], rounds: int) -> dict[str, Stats]:
    """Run every variant once per round, order rotated each round; each call gets the round
    index and returns seconds. Returns the per-variant samples."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(variants[name](r))
    return {name: Stats(values) for name, values in samples.items()}


def paired_ratio(num: Stats, den: Stats) -> Stats:
    """Round-by-round ratios num/den (the rounds ran side by side, so their drift cancels)."""
    return Stats([a / b for a, b in zip(num.samples, den.samples)])


@dataclass
class Check:
    """One measured figure and, optionally, its target (``op`` is ``<=`` or ``>=``)."""
    bench: str
    name: str
    value: float
    unit: str = ""
    op: str | None = None
    target: float | None = None
    spread: tuple[float, float] | None = None     # min..max of the value over the rounds
    detail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.op is None or self.target is None:
            return "info"
        ok = self.value <= self.target if self.op == "<=" else self.value >= self.target
        return "ok" if ok else "MISSED"

    def value_text(self) -> str:
        spec = ".2e" if self.value and (abs(self.value) < 1e-3 or abs(self.value) >= 1e6) else ".3g"
        text = f"{self.value:{spec}}{self.unit}"
        if self.spread:
            text += f" [{self.spread[0]:{spec}}..{self.spread[1]:{spec}}]"
        return text

    def target_text(self) -> str:
        return "" if self.op is None or self.target is None else f"{self.op} {self.target:g}{self.unit}"


def ratio_check(bench: str, name: str, ratio: Stats, op: str | None = None, target: float | None = None,
                detail: str = "") -> Check:
    return Check(bench, name, ratio.median, "x", op, target, (ratio.lo, ratio.hi), detail)


def finish(checks: list[Check]) -> int:
    """Print the verdict lines, record them for run_all.py, and return the exit status."""
    print()
    for c in checks:
        mark = {"ok": "  ok", "MISSED": "  MISSED", "info": ""}[c.status]
        target = f"(target {c.target_text()})" if c.target_text() else ""
        print(f"{c.name:<58} {c.value_text():>28} {target:>18}{mark}")
    sink = os.environ.get("QUANTLAB_BENCH_RESULTS")
    if sink:
        with open(sink, "a", encoding="utf-8") as fh:
            for c in checks:
                fh.write(json.dumps({**asdict(c), "status": c.status}) + "\n")
    missed = [c for c in checks if c.status == "MISSED"]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(c.name for c in missed))
    return 1 if missed else 0


def make_bars(n: int, seed: int = 42):
    """Seeded random-walk OHLC shared by the engine and sweep benchmarks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.005)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.005)
    return open_, high, low, close
