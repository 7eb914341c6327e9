"""Concurrent requests on one project, and requests killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_every_json_parses, run_request, strict_json


def _spawn(ql, payload, sig: Path) -> subprocess.Popen:
    sig.touch()
    return subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ql.env, cwd=ql.tmp)


@pytest.mark.slow
def test_eight_simultaneous_runs_all_succeed_and_are_indexed(ql):
    # a mix: 4 identical requests (they share every intermediate) and 4 distinct ones
    payloads = [run_request() for _ in range(4)] + [run_request(fee=0.001 * i) for i in range(1, 5)]
    procs = [_spawn(ql, p, ql.tmp / f"sig{i}.jsonl") for i, p in enumerate(payloads)]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    run_ids = []
    for i, ((out, err), code) in enumerate(results):
        assert code == 0, err
        env = strict_json(out.strip())
        run_ids.append(env["run_id"])
        lines = (ql.tmp / f"sig{i}.jsonl").read_text().splitlines()
        assert [json.loads(x)["event"] for x in lines] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert len(set(run_ids)) == 8, "every request gets its own run directory"
    index = strict_json((ql.runs_dir() / "runs_index.json").read_text())
    assert sorted(r["run_id"] for r in index["runs"]) == sorted(run_ids)
    metrics = {(ql.runs_dir() / rid / "metrics.json").read_bytes() for rid in run_ids[:4]}
    assert len(metrics) == 1, "identical concurrent requests give identical metrics"
    assert_every_json_parses(ql.outputs)


@pytest.mark.slow
def test_identical_warm_runs_started_together_each_report_their_own_out_dir(ql):
    """Three identical warm runs, one claim second (fixed clock), out_dir race_a|b|c: each
    request's envelope, signal and report.json name its own directory and request."""
    ql.env["QUANTLAB_TEST_NOW"] = "2031-02-03T04:05:06Z"
    assert ql.request(run_request()).returncode == 0  # warm
    for round_ in range(3):
        dirs = {k: ql.tmp / f"race_{k}_{round_}" for k in "abc"}
        procs = {k: _spawn(ql, {**run_request(out_dir=str(d)), "request_id": f"{k}-{round_}"},
                           ql.tmp / f"sig_{k}_{round_}.jsonl") for k, d in dirs.items()}
        for k, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            env = strict_json(out.strip())
            run_dir = Path(env["artifacts_path"])
            assert run_dir.parent == dirs[k]
            report = strict_json((run_dir / "report.json").read_text())
            assert report["machine_contract"]["request_id"] == f"{k}-{round_}"
            last = json.loads((ql.tmp / f"sig_{k}_{round_}.jsonl").read_text().splitlines()[-1])
            assert last["artifacts_path"] == str(run_dir) and last["runs_index_root"] == str(dirs[k])
    assert_every_json_parses(ql.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.15, 0.5, 0.9])
def test_sigkill_mid_run_does_not_break_the_next_request(ql, delay):
    sig = ql.tmp / "killed.jsonl"
    proc = _spawn(ql, run_request(start="2010-01-01", end="2018-01-01"), sig)
    time.sleep(delay)
    proc.kill()
    # no child may keep the caller's pipes open: EOF must come right after the kill
    out, err = proc.communicate(timeout=10)
    lines = sig.read_text().splitlines()
    if lines:
        assert json.loads(lines[-1])["event"] in ("SESSION_STARTED", "SESSION_COMPLETED")
    again = ql.request(run_request(start="2010-01-01", end="2018-01-01"))
    assert again.returncode == 0, again.stderr
    # nothing half-written is visible: every run dir has its report, the index parses
    for d in ql.runs_dir().iterdir():
        if d.is_dir() and not d.name.startswith("."):
            assert (d / "report.json").is_file(), d
    index = strict_json((ql.runs_dir() / "runs_index.json").read_text())
    assert again.envelope["run_id"] in [r["run_id"] for r in index["runs"]]


def test_sigterm_signals_failure_and_leaves_no_run_dir(ql):
    sig = ql.tmp / "term.jsonl"
    proc = _spawn(ql, run_request(start="2005-01-01", end="2018-01-01"), sig)
    deadline = time.time() + 20
    while time.time() < deadline and not sig.read_text():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    events = [json.loads(x) for x in sig.read_text().splitlines()]
    if proc.returncode == 0:  # finished before the signal arrived
        assert events[-1]["event"] == "SESSION_COMPLETED"
        return
    assert proc.returncode == 1
    assert events[-1]["event"] == "SESSION_FAILED" and events[-1]["error_type"] == "Terminated"
    assert json.loads(out)["status"] == "error"
    runs = ql.runs_dir()
    assert not runs.exists() or [p for p in runs.iterdir() if p.is_dir()] == []


def _processes_with_env(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker.encode() in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_sigkill_leaves_no_process_behind(ql):
    """The forked step worker dies with main.py and never holds the caller's pipes."""
    marker = f"QUANTLAB_TEST_MARKER={ql.tmp.name}"
    ql.env["QUANTLAB_TEST_MARKER"] = ql.tmp.name
    sig = ql.tmp / "k.jsonl"
    proc = _spawn(ql, run_request(start="2000-01-01", end="2018-01-01", strategy="sma_crossover"), sig)
    deadline = time.time() + 20
    while time.time() < deadline and not sig.read_text():
        time.sleep(0.01)
    time.sleep(0.25)  # inside the workflow: the worker has been forked
    proc.kill()
    out, err = proc.communicate(timeout=10)  # EOF on both pipes right away
    deadline = time.time() + 5
    while time.time() < deadline and _processes_with_env(marker):
        time.sleep(0.05)
    assert _processes_with_env(marker) == []
