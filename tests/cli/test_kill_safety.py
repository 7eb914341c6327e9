"""Kills that land at a known point (test hook QUANTLAB_TEST_PAUSE_AT, see quantlab/testhooks.py),
never after a sleep: every test asserts the kill landed mid-request (return code -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EVENT_WAIT_S, assert_every_json_parses, run_request, strict_json

RUN_STEPS = ["step_load_data", "step_signals", "step_simulate", "step_score", "step_plot", "step_publish",
             "step_refresh_index"]


def spawn(ql, payload: dict, sig: Path, pause: str, gate: Path, **env) -> subprocess.Popen:
    sig.touch()
    return subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ql.tmp,
                            env={**ql.env, "QUANTLAB_TEST_PAUSE_AT": f"{pause}:{gate}", **env})


def wait_reached(gate: Path, proc: subprocess.Popen, limit: float = 60) -> int:
    """Wait (bounded) for the paused step; returns the pid that reached it."""
    reached = Path(f"{gate}.reached")
    deadline = time.monotonic() + limit
    while not (reached.exists() and reached.read_text()):
        assert proc.poll() is None, f"the request ended before the hook: {proc.communicate()[1][-800:]}"
        assert time.monotonic() < deadline, f"{reached} never appeared"
        time.sleep(0.005)
    return int(reached.read_text())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def assert_outputs_consistent(ql) -> None:
    """Every run dir is complete, no staging dir is left, every *.json under outputs parses."""
    runs = ql.runs_dir()
    assert [p.name for p in runs.glob(".tmp_*")] == []
    for d in runs.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            assert (d / "report.json").is_file(), f"{d} has no report.json"
    assert_every_json_parses(ql.outputs)


@pytest.mark.parametrize("step", RUN_STEPS)
def test_sigkill_at_each_run_step_then_the_same_request_succeeds(ql, step):
    payload = run_request(strategy="sma_crossover")
    gate = ql.tmp / "gate"
    sig = ql.tmp / "killed.jsonl"
    proc = spawn(ql, payload, sig, step, gate)
    wait_reached(gate, proc)
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -9  # the kill landed inside the request, at `step`
    assert [json.loads(line)["event"] for line in sig.read_text().splitlines()] == ["SESSION_STARTED"]
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    assert res.signals[-1]["event"] == "SESSION_COMPLETED"
    report = strict_json(Path(res.envelope["report_path"]).read_text())
    assert report["machine_contract"]["summary"] == res.envelope["summary"]
    assert_outputs_consistent(ql)


SWEEP_STEPS = ["step_load_data", "sweep.step_sweep_shard", "sweep.step_merge_leaderboard",
               "sweep.step_publish_sweep", "step_refresh_index"]


def test_sigkill_at_each_sweep_step_then_the_same_sweep_succeeds(ql):
    """One sweep killed at each of its steps in turn (each kill asserted to land: -9); after each
    kill the same sweep reruns to success, and nothing half-written is ever visible."""
    payload = {"schema_version": "1.0", "request_id": "sweep-kill", "command": "sweep", "params": {
        "ticker": "SPX", "start": "2012-01-01", "end": "2016-01-01", "strategy": "sma_crossover",
        "param_grid": {"fast": [5, 10, 20], "slow": [50, 100]}}}
    landed = []
    for i, step in enumerate(SWEEP_STEPS):
        payload["params"]["fee"] = 0.001 * (i + 1)  # a fresh sweep each time: every step runs again
        gate = ql.tmp / f"gate_{i}"
        proc = spawn(ql, payload, ql.tmp / f"killed_{i}.jsonl", step, gate)
        wait_reached(gate, proc)
        proc.kill()
        proc.communicate(timeout=10)
        assert proc.returncode == -9, step
        landed.append(step)
        res = ql.request(payload)
        assert res.returncode == 0, res.stderr
        assert res.signals[-1]["event"] == "SESSION_COMPLETED"
        assert_outputs_consistent(ql)
    print(f"\nFIGURES faults: {len(landed)} SIGKILLs inside sweep steps ({', '.join(landed)}) and "
          f"{len(RUN_STEPS)} inside run steps (test_sigkill_at_each_run_step...), each asserted to land "
          "(-9); every rerun exit 0, no run dir without report.json, every *.json parses")


def test_the_step_worker_dies_with_a_killed_request(ql):
    """SIGKILL of main.py while its forked step worker is inside a step: the worker must die
    with it (PR_SET_PDEATHSIG) and never hold the caller's pipes open."""
    gate = ql.tmp / "gate"
    proc = spawn(ql, run_request(strategy="sma_crossover"), ql.tmp / "k.jsonl", "step_simulate", gate,
                 QUANTLAB_TEST_PAUSE_TIMEOUT="300")
    worker = wait_reached(gate, proc)
    assert worker != proc.pid and alive(worker)  # the step runs in the forked worker
    proc.kill()
    proc.communicate(timeout=10)  # EOF on both pipes: nobody else holds them
    assert proc.returncode == -9
    deadline = time.monotonic() + EVENT_WAIT_S
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    still = alive(worker)
    if still:
        os.kill(worker, signal.SIGKILL)
    assert not still, "the step worker outlived the killed request"


def children(pid: int) -> list[int]:
    """Live child pids of ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
def test_the_snakemake_cli_child_dies_with_a_killed_request(ql):
    """Executor plugins and profiles run through a ``snakemake`` CLI child (snakemake_runner.execute_cli);
    SIGKILL of main.py while a cluster job is inside a step must take that child down too."""
    gate = ql.tmp / "gate"
    payload = {"schema_version": "1.0", "request_id": "cli-kill", "command": "sweep", "params": {
        "ticker": "SPX", "start": "2012-01-01", "end": "2016-01-01", "strategy": "sma_crossover",
        "param_grid": {"fast": [5, 10], "slow": [50, 100]}, "shards": 1, "profile": "local-cluster"}}
    proc = spawn(ql, payload, ql.tmp / "k.jsonl", "step_sweep_shard", gate, QUANTLAB_TEST_PAUSE_TIMEOUT="300")
    job = wait_reached(gate, proc, limit=120)
    cli = [pid for pid in children(proc.pid)
           if any(arg.endswith(b"/snakemake") for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))]
    assert len(cli) == 1, cli
    try:
        proc.kill()
        proc.communicate(timeout=10)
        assert proc.returncode == -9
        deadline = time.monotonic() + EVENT_WAIT_S
        while alive(cli[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not alive(cli[0]), "the snakemake CLI child outlived the killed request"
    finally:
        for pid in (cli[0], job):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
