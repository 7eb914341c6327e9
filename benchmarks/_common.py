"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import subprocess
import time


def timed(cmd: list[str], env: dict | None = None) -> float:
    """Wall time of one command in a fresh process; a failing command aborts the benchmark."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd[:4])}...\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def make_bars(n: int, seed: int = 42):
    """Seeded random-walk OHLC shared by the engine and sweep benchmarks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.005)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.005)
    return open_, high, low, close
