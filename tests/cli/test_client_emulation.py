"""Step-by-step emulation of a Stepbit client (spec section 8): what the real client does with a
request, in its order, trusting only what it trusts.

1. create the signal file empty; 2. run main.py with --json-request and --signal-file under the
client's timeout; 3. parse stdout as exactly one strict-JSON envelope line; 4. decide the outcome
from the LAST signal line alone, and check it agrees with the exit code and the envelope; 5. on
success, open report.json at the signalled path and read machine_contract (summary, warnings);
on failure, show the one-line error to the agent.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conftest import strict_json

CLIENT_TIMEOUT = 180


@dataclass
class Outcome:
    ok: bool
    exit_code: int
    envelope: dict
    last_signal: dict
    machine_contract: dict = field(default_factory=dict)
    error: str | None = None
    stderr: str = ""


def client_call(ql, payload: dict) -> Outcome:
    signal_file = ql.tmp / f"client_{len(list(ql.tmp.glob('client_*')))}.jsonl"
    signal_file.write_text("")                                                       # step 1
    proc = subprocess.run(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(signal_file)),
                          capture_output=True, text=True, env=ql.env, timeout=CLIENT_TIMEOUT, cwd=ql.tmp)  # 2
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout                                              # step 3
    envelope = strict_json(lines[0])
    last = strict_json(signal_file.read_text().splitlines()[-1])                     # step 4
    ok = last["event"] == "SESSION_COMPLETED"
    assert ok == (proc.returncode == 0) == (envelope["status"] == "success"), (proc.returncode, last, envelope)
    assert last["event"] in ("SESSION_COMPLETED", "SESSION_FAILED")
    if not ok:
        assert last["exit_code"] == proc.returncode == envelope["exit_code"]
        assert len(proc.stderr.strip().splitlines()) <= 5, proc.stderr
        return Outcome(False, proc.returncode, envelope, last, error=last["message"], stderr=proc.stderr)
    report_path = Path(last["report_path"])                                          # step 5
    assert report_path.is_absolute() and os.path.dirname(report_path) == last["artifacts_path"]
    report = strict_json(report_path.read_text())
    mc = report["machine_contract"]
    assert last["summary"] == mc["summary"] == envelope["summary"]
    assert isinstance(mc["summary"]["trades"], int)
    assert len(proc.stderr.strip().splitlines()) <= 5, proc.stderr  # pasted into a prompt: short
    return Outcome(True, 0, envelope, last, machine_contract=mc, stderr=proc.stderr)


def _payload(command: str, **params) -> dict:
    return {"schema_version": "1.0", "request_id": f"client-{command}", "command": command, "params": params}


def test_client_sees_a_data_insufficient_run_as_a_data_failure(ql):
    out = client_call(ql, _payload("run", ticker="^GSPC", start="1999-01-04", end="1999-01-20"))
    assert not out.ok and out.exit_code == 3
    assert out.envelope["error"]["code"] == "DATA_ERROR"
    assert out.error == ("insufficient data for ^GSPC 1999-01-04..1999-01-20: 11 bars available, "
                         "strategy rsi_ma_cross_v2 needs 21 (20 warm-up + 1)")


def test_client_sweep_with_impossible_combinations_completes_and_reports_the_skips(ql):
    out = client_call(ql, _payload("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01",
                                   strategy="sma_crossover",
                                   param_grid={"fast": [5, 20, 41, 59], "slow": [40, 100, 235]}))
    assert out.ok, out.stderr
    mc = out.machine_contract
    assert (mc["combinations_total"], mc["combinations_skipped"], mc["combinations_evaluated"]) == (12, 2, 10)
    assert {(e["params"]["fast"], e["params"]["slow"]) for e in mc["skipped_examples"]} == {(41, 40), (59, 40)}
    assert any("2 of 12 combinations skipped" in w for w in mc["warnings"])
    assert out.envelope["warnings"] == mc["warnings"]


def test_client_sweep_with_only_impossible_combinations_is_a_bad_request(ql):
    out = client_call(ql, _payload("sweep", ticker="SPX", start="2017-01-01", end="2018-01-01",
                                   strategy="sma_crossover", param_grid={"fast": [41, 59], "slow": [40]}))
    assert not out.ok and out.exit_code == 2 and "no valid combination" in out.error
