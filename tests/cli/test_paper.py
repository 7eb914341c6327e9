"""Paper sessions: `run` with paper=true, its lifecycle and its contract."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import run_request, strict_json

SEVEN = {"session_metadata.json", "session_status.json", "config.json", "metrics.json", "report.json",
         "trades.csv", "run_report.md"}


def test_paper_session_success(ql):
    res = ql.request(run_request(paper=True))
    assert res.returncode == 0, res.stderr
    env = res.envelope
    session = Path(env["artifacts_path"])
    assert session.parent == ql.outputs / "paper_sessions"
    assert "_paper_" in env["run_id"] and session.name == env["run_id"]
    assert SEVEN <= {p.name for p in session.iterdir()}
    status = strict_json((session / "session_status.json").read_text())
    assert status["status"] == "completed" and status["terminal"] is True and status["error"] is None
    assert status["started_at"] and status["finished_at"] and status["request_id"] == "req-test"
    report = strict_json((session / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["contract_type"] == "quantlab.paper.result" and mc["command"] == "run"
    assert mc["run_id"] == env["run_id"] == mc["session_id"]
    for name in mc["artifacts"].values():
        assert (session / name).is_file(), name
    # signals keep mode "run"; paper sessions do not refresh the runs registry
    done = res.signals[-1]
    assert done["event"] == "SESSION_COMPLETED" and done["mode"] == "run"
    assert done["artifacts_path"] == str(session) and done["summary"] == mc["summary"]
    assert "runs_index_json" not in done
    assert not (ql.outputs / "runs").exists()
    # the same request without paper gives the same numbers
    plain = ql.request(run_request())
    assert plain.envelope["summary"] == env["summary"]


def test_paper_cli_flag(ql):
    res = ql.cli("--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01", "--paper")
    assert res.returncode == 0, res.stderr
    sessions = list((ql.outputs / "paper_sessions").iterdir())
    assert len(sessions) == 1
    assert strict_json((sessions[0] / "session_status.json").read_text())["status"] == "completed"


def test_failed_paper_session_keeps_its_record(ql):
    res = ql.request(run_request(paper=True, ticker="NOPE-XYZ", source="sample"))
    assert res.returncode == 3
    assert res.signals[-1]["event"] == "SESSION_FAILED" and res.signals[-1]["exit_code"] == 3
    sessions = list((ql.outputs / "paper_sessions").iterdir())
    assert len(sessions) == 1
    status = strict_json((sessions[0] / "session_status.json").read_text())
    assert status["status"] == "failed" and status["terminal"] is True
    assert status["error"]["exit_code"] == 3 and "NOPE-XYZ" in status["error"]["message"]
    assert strict_json((sessions[0] / "session_metadata.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_killed_paper_session_stays_running_with_a_stale_heartbeat(ql):
    sig = ql.tmp / "k.jsonl"
    sig.touch()
    env = {**ql.env, "QUANTLAB_HEARTBEAT_SECONDS": "0.2"}
    payload = run_request(paper=True, start="2000-01-01", end="2018-01-01", strategy="sma_crossover")
    proc = subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ql.tmp)
    root = ql.outputs / "paper_sessions"
    deadline = time.time() + 20
    status_file = None
    while time.time() < deadline:
        found = list(root.glob("*/session_status.json")) if root.exists() else []
        if found and strict_json(found[0].read_text()).get("status") == "running":
            status_file = found[0]
            break
        time.sleep(0.01)
    if status_file is None:
        proc.kill()
        pytest.skip("the session finished before it could be observed running")
    proc.kill()
    proc.communicate(timeout=10)
    before = strict_json(status_file.read_text())
    time.sleep(1.0)
    after = strict_json(status_file.read_text())
    if before["status"] == "completed":
        pytest.skip("the session completed before the kill")
    assert after["status"] == "running" and after["terminal"] is False
    assert after["heartbeat_at"] == before["heartbeat_at"]  # nobody beats any more: detectable as stale
    alerts = ql.cli("--paper-sessions-alerts", str(root), "--paper-stale-minutes", "0.01")
    assert alerts.returncode == 0, alerts.stderr
    snapshot = json.loads(alerts.stdout)
    codes = {a["session_id"]: a["alert_code"] for a in snapshot["alerts"]}
    assert codes[after["session_id"]] == "PAPER_SESSION_STALE" and snapshot["stale_sessions"] == 1
    assert json.loads(sig.read_text().splitlines()[-1])["event"] == "SESSION_STARTED"
