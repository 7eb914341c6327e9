"""numba is imported without scipy.linalg and without cffi (engine/jit.py ``import_numba``):
numba's BLAS probe would import scipy.linalg (~0.2 s of CPU) on the worker's path to a sweep's
first shard, its cffi typing cffi and an FFI (~0.03 s), and no QuantLab kernel uses BLAS or
cffi; the kernels still compile and give the pure-Python path's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_grid_kernels_run_under_numba_without_scipy_linalg():
    code = """
import json, sys
import numpy as np
from quantlab.engine import EngineConfig
from quantlab.engine.sweep import evaluate_grid
close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 300)))
combos = [{"fast": 5, "slow": 20}, {"fast": 8, "slow": 40}]
out = {}
for mode in ("always", "never"):
    import os; os.environ["QUANTLAB_JIT"] = mode
    m = evaluate_grid(close, close * 1.01, close * 0.99, close, "sma_crossover", combos, EngineConfig(),
                      start=0, periods_per_year=252.0, threads=1)
    out[mode] = [float(v) for v in m["total_return"]]
print(json.dumps({"numba": "numba" in sys.modules, "linalg": "scipy.linalg" in sys.modules,
                  "blas_stub_left": "scipy.linalg.cython_blas" in sys.modules,
                  "cffi": sys.modules.get("cffi", "absent") is not None and "cffi" in sys.modules, **out}))
import cffi  # the stub is gone: cffi imports as usual afterwards

"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["numba"] and not report["linalg"] and not report["blas_stub_left"] and not report["cffi"]
    assert report["always"] == report["never"]
