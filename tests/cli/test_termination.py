"""SIGTERM/SIGINT mid-step and just after the success envelope (issues #19.5, #19.6).

Deterministic: the test-only hook QUANTLAB_TEST_PAUSE_AT=<point>:<path> (quantlab/testhooks.py)
makes the process write <path>.reached and wait for <path>; the test polls for .reached with a
bounded timeout, sends the signal, then creates <path>."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import strict_json

RUN = {"schema_version": "1.0", "request_id": "req-term", "command": "run",
       "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}}
SWEEP = {"schema_version": "1.0", "request_id": "req-term", "command": "sweep",
         "params": {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
                    "param_grid": {"fast": [5, 10], "slow": [30, 50]}}}
PAPER = {**RUN, "params": {**RUN["params"], "paper": True}}


def _interrupted(ql, payload: dict, point: str, signum: int):
    gate = ql.tmp / "gate"
    sig = ql.tmp / "signals.jsonl"
    sig.touch()
    env = {**ql.env, "QUANTLAB_TEST_PAUSE_AT": f"{point}:{gate}"}
    proc = subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ql.tmp)
    try:
        deadline = time.monotonic() + 90
        while not Path(f"{gate}.reached").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pause point was never reached"
            time.sleep(0.02)
        proc.send_signal(signum)
        gate.touch()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    signals = [strict_json(line) for line in sig.read_text().splitlines()]
    return proc.returncode, out, err, signals


def _assert_terminated(ql, rc, out, err, signals, name):
    assert rc == 1, err
    lines = out.splitlines()
    assert len(lines) == 1
    env = strict_json(lines[0])
    assert env["status"] == "error" and env["exit_code"] == 1
    assert env["error"]["error_type"] == "Terminated", env
    assert env["error"]["message"] == f"terminated by signal {name}"
    assert signals[-1]["event"] == "SESSION_FAILED" and signals[-1]["error_type"] == "Terminated"
    assert signals[-1]["message"] == f"terminated by signal {name}"
    assert "Traceback" not in err and "worker died" not in err
    assert [line for line in err.splitlines() if line.startswith("ERROR: ")] == [
        f"ERROR: terminated by signal {name}"]
    assert not list(ql.outputs.rglob(".tmp_*")), "a staging dir was left behind"


@pytest.mark.parametrize("signum,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_mid_step_of_a_run_is_reported_as_terminated(ql, signum, name):
    _assert_terminated(ql, *_interrupted(ql, RUN, "step_load_data", signum), name)


def test_sigterm_mid_step_of_a_sweep_is_reported_as_terminated(ql):
    _assert_terminated(ql, *_interrupted(ql, SWEEP, "sweep.step_sweep_shard", signal.SIGTERM), "SIGTERM")


def test_sigterm_mid_step_of_a_paper_session_is_reported_as_terminated(ql):
    rc, out, err, signals = _interrupted(ql, PAPER, "step_simulate", signal.SIGTERM)
    assert rc == 1 and strict_json(out)["error"]["error_type"] == "Terminated", err
    assert signals[-1]["error_type"] == "Terminated"
    (session,) = (ql.outputs / "paper_sessions").iterdir()
    status = strict_json((session / "session_status.json").read_text())
    assert status["status"] == "failed"
    assert status["error"]["error_type"] == "Terminated"
    assert status["error"]["message"] == "terminated by signal SIGTERM"


@pytest.mark.parametrize("warm", [False, True], ids=["workflow", "fast-path"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_after_the_success_envelope_keeps_the_success(ql, signum, warm):
    if warm:  # every intermediate cached: the request runs without Snakemake
        assert ql.request(RUN).returncode == 0
    rc, out, err, signals = _interrupted(ql, RUN, "after_envelope", signum)
    assert rc == 0, err
    assert strict_json(out)["status"] == "success"
    assert signals[-1]["event"] == "SESSION_COMPLETED"
    assert "Traceback" not in err and "Terminated" not in err and "ERROR" not in err


def test_pause_hook_is_inert_without_its_variable(monkeypatch, tmp_path):
    from quantlab import testhooks

    monkeypatch.delenv(testhooks.ENV_PAUSE_AT, raising=False)
    testhooks.pause_at("step_load_data")
    monkeypatch.setenv(testhooks.ENV_PAUSE_AT, f"other_step:{tmp_path / 'gate'}")
    testhooks.pause_at("step_load_data")
    assert not os.listdir(tmp_path)
    (tmp_path / "gate").touch()
    monkeypatch.setenv(testhooks.ENV_PAUSE_AT, f"step_sweep_shard:{tmp_path / 'gate'}")
    testhooks.pause_at("sweep.step_sweep_shard")  # gate already open: returns at once
    assert (tmp_path / "gate.reached").exists()
