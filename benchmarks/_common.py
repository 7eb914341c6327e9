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
