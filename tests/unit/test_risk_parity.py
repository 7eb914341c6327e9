"""Stops against vectorbt 1.2.0 ``Portfolio.from_signals(sl_stop=, tp_stop=, sl_trail=)``, side by
side on the same bars (``fill: close``, no fees): total returns within 1e-9 and the same trade
counts over a grid of stop values. Skipped when the peers' venv (``.venv-peers``, created by
``benchmarks/bench_sweep.py``) is missing; benchmarks/bench_risk.py runs the bigger grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_risk import bench_config, risk_grid  # noqa: E402
from bench_sweep import PEERS, PEERS_PY  # noqa: E402
from _common import make_bars  # noqa: E402


def _peers_ok() -> bool:
    return PEERS_PY.exists() and subprocess.run([str(PEERS_PY), "-c", "import vectorbt"],
                                                capture_output=True).returncode == 0


@pytest.mark.skipif(not _peers_ok(), reason="no .venv-peers with vectorbt (benchmarks/bench_sweep.py creates it)")
def test_stops_match_vectorbt_from_signals(tmp_path):
    from quantlab.engine.sweep import evaluate_grid

    o, h, l, c = make_bars(3000, seed=5)
    data = tmp_path / "bars.npz"
    np.savez(data, open=o, high=h, low=l, close=c)
    combos = risk_grid(3)
    (tmp_path / "combos.json").write_text(json.dumps(combos))
    proc = subprocess.run([str(PEERS_PY), str(PEERS / "vectorbt_risk.py"), str(data), str(tmp_path / "combos.json"),
                           "--repeat", "0"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peer = json.loads(proc.stdout.splitlines()[-1])
    ours = evaluate_grid(o, h, l, c, "sma_crossover", combos, bench_config(), start=0, periods_per_year=252.0)
    assert ours["exits_stop_loss"].sum() > 0 and ours["exits_take_profit"].sum() > 0
    assert ours["exits_trailing_stop"].sum() > 0
    assert np.abs(np.array(peer["total_return"]) - ours["total_return"]).max() <= 1e-9
    assert np.array_equal(np.array(peer["trades"]), ours["trades"])
