"""`make bench`: every benchmark, one after the other, in one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    code = 0
    for script in ("bench_run.py", "bench_invocation.py", "bench_engine.py", "bench_sweep.py"):
        print(f"\n=== {script} ===", flush=True)
        code |= subprocess.call([sys.executable, str(HERE / script), *sys.argv[1:]])
    sys.exit(code)
