"""The benchmark harness has teeth: interleaved rounds, paired ratios, and a non-zero exit on a
missed target (benchmarks/_common.py). The benchmarks themselves run with `make bench`, never here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from _common import Check, Stats, finish, interleave, paired_ratio, ratio_check  # noqa: E402


def test_interleave_rotates_the_order_each_round():
    calls = []
    variants = {name: (lambda r, name=name: calls.append((r, name)) or 1.0) for name in "abc"}
    stats = interleave(variants, rounds=3)
    assert [n for _, n in calls] == list("abc" "bca" "cab")
    assert all(len(s.samples) == 3 for s in stats.values())


def test_paired_ratio_is_taken_within_a_round():
    # drift: round 2 is twice as slow for everybody; the paired ratio does not see it
    ratio = paired_ratio(Stats([1.5, 3.0, 1.5]), Stats([1.0, 2.0, 1.0]))
    assert ratio.samples == [1.5, 1.5, 1.5] and ratio.show(".2f") == "1.50 [1.50..1.50]"


def test_a_missed_target_fails_and_is_recorded(tmp_path, monkeypatch, capsys):
    sink = tmp_path / "results.jsonl"
    monkeypatch.setenv("QUANTLAB_BENCH_RESULTS", str(sink))
    ok = ratio_check("run", "cold / floor", Stats([1.4, 1.5, 1.55]), "<=", 1.6)
    assert finish([ok, Check("run", "info only", 3.0)]) == 0
    slow = ratio_check("run", "cold / floor", Stats([1.7, 2.1, 1.65]), "<=", 1.6)
    assert finish([ok, slow]) == 1
    assert "MISSED" in capsys.readouterr().out
    rows = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "info", "ok", "MISSED"]
    assert rows[-1]["value"] == 1.7 and rows[-1]["spread"] == [1.65, 2.1]


def test_parity_target_catches_a_disagreement():
    assert Check("sweep", "parity", 2e-9, "", "<=", 1e-9).status == "MISSED"
    assert Check("sweep", "parity", 3e-14, "", "<=", 1e-9).status == "ok"
    assert Check("sweep", "speed", 19.0, "x", ">=", 20.0).status == "MISSED"


def test_a_forced_regression_fails_the_interleaved_comparison(tmp_path):
    """An injected sleep in one variant, measured in fresh processes, misses a 1.5x target."""
    from _common import timed

    fast = [sys.executable, "-c", "pass"]
    slow = [sys.executable, "-c", "import time; time.sleep(0.4)"]
    stats = interleave({"floor": lambda r: timed(fast), "request": lambda r: timed(slow)}, rounds=3)
    check = ratio_check("t", "request / floor", paired_ratio(stats["request"], stats["floor"]), "<=", 1.5)
    assert check.status == "MISSED"
    code = subprocess.run([sys.executable, "-c", (
        "import sys; sys.path.insert(0, sys.argv[1]); from _common import Check, finish; "
        "sys.exit(finish([Check('t', 'x', 2.0, 'x', '<=', 1.5)]))"), str(BENCH)], capture_output=True)
    assert code.returncode == 1
