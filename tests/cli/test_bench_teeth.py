"""`make bench` can fail: with a delay injected into the planner (the test-only hook
``QUANTLAB_TEST_DELAY_AT=planned:<s>``, src/quantlab/testhooks.py), the real `run` benchmark
(benchmarks/bench_run.py, one interleaved round, no 1M-bar run) reports its cold-run and rerun
targets MISSED and exits 1. Nothing here asserts a speed: only that a regression is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_delay_injected_into_the_planner_fails_the_run_benchmark(tmp_path):
    sink = tmp_path / "rows.jsonl"
    env = {**os.environ, "QUANTLAB_TEST_DELAY_AT": "planned:1.5", "QUANTLAB_BENCH_RESULTS": str(sink)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_run.py"), "--repeat", "1", "--no-big"],
                          cwd=ROOT / "benchmarks", env=env, capture_output=True, text=True, timeout=600)
    rows = {r["name"]: r for r in map(json.loads, sink.read_text().splitlines())}
    assert done.returncode == 1, done.stdout + done.stderr
    # every `main.py` request pays the 1.5 s delay; the floor does not
    assert rows["cold run / floor"]["status"] == "MISSED"
    assert rows["identical rerun / floor"]["status"] == "MISSED"
    assert "target(s) missed" in done.stdout


def test_the_delay_hook_sleeps_only_at_its_point(monkeypatch):
    import time

    from quantlab import testhooks

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setenv(testhooks.ENV_DELAY_AT, "planned:0.25,step_sweep_shard:2")
    testhooks.pause("read_marker")
    assert slept == []
    testhooks.pause("planned")
    testhooks.pause("sweep.step_sweep_shard")  # a step point matches without its module prefix
    assert slept == [0.25, 2.0]
    monkeypatch.delenv(testhooks.ENV_DELAY_AT)
    testhooks.pause("planned")
    assert slept == [0.25, 2.0]
