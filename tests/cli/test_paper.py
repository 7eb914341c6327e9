"""Paper sessions: `run` with paper=true, its lifecycle and its contract."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest


from conftest import EVENT_WAIT_S, run_request, strict_json

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


def _wait_for(path: Path, proc: subprocess.Popen, limit: float = 60) -> None:
    """Wait (bounded) until ``path`` exists; fail at once if the request exits first."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None, f"the request ended early: {proc.communicate()[1][-800:]}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.realclock
def test_heartbeat_beats_while_a_step_runs_and_stops_with_a_kill(ql):
    """The session is held inside its simulate step (test hook), so it is surely running: its
    heartbeat must advance there; after SIGKILL it stays `running` and is reported stale."""
    sig = ql.tmp / "k.jsonl"
    sig.touch()
    gate = ql.tmp / "gate"
    env = {**ql.env, "QUANTLAB_HEARTBEAT_SECONDS": "0.05", "QUANTLAB_TEST_PAUSE_AT": f"step_simulate:{gate}"}
    payload = run_request(paper=True, strategy="sma_crossover")
    proc = subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ql.tmp)
    try:
        _wait_for(Path(f"{gate}.reached"), proc)
        root = ql.outputs / "paper_sessions"
        (status_file,) = root.glob("*/session_status.json")
        deadline = time.monotonic() + EVENT_WAIT_S  # 3 beats at 0.05 s: far inside this even on a loaded machine
        while strict_json(status_file.read_text()).get("heartbeat_count", 0) < 3:
            assert time.monotonic() < deadline, "no heartbeat while the session runs"
            time.sleep(0.01)
        before = strict_json(status_file.read_text())
        assert before["status"] == "running" and before["terminal"] is False
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -9  # the kill landed mid-session
    after = strict_json(status_file.read_text())
    assert after["status"] == "running" and after["terminal"] is False
    stale_now = (datetime.fromisoformat(after["heartbeat_at"].replace("Z", "+00:00"))
                 + timedelta(minutes=5)).isoformat()
    ql.env["QUANTLAB_NOW"] = stale_now  # "now" = 5 minutes after the last beat, whatever the clock says
    alerts = ql.cli("--paper-sessions-alerts", str(root), "--paper-stale-minutes", "1")
    assert alerts.returncode == 0, alerts.stderr
    snapshot = json.loads(alerts.stdout)
    codes = {a["session_id"]: a["alert_code"] for a in snapshot["alerts"]}
    assert codes[after["session_id"]] == "PAPER_SESSION_STALE" and snapshot["stale_sessions"] == 1
    assert json.loads(sig.read_text().splitlines()[-1])["event"] == "SESSION_STARTED"
