"""quantlab.registry.paper on hand-written session directories: summaries, staleness (heartbeat
age), health, alerts, the sessions index, QUANTLAB_NOW and --paper-stale-minutes validation."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import strict_json
from quantlab.errors import ConfigError
from quantlab.registry import paper

NOW = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def session(root: Path, sid: str, status: str, *, age_min: float = 0.5, created_min: float | None = None,
            error: dict | None = None, **extra) -> Path:
    """A session dir as the paper runner writes it; heartbeat ``age_min`` minutes before NOW."""
    d = root / sid
    d.mkdir(parents=True)
    beat = NOW - timedelta(minutes=age_min)
    created = NOW - timedelta(minutes=created_min if created_min is not None else age_min + 1)
    terminal = status in ("completed", "failed")
    st = {"session_id": sid, "status": status, "created_at": iso(created), "started_at": iso(created),
          "updated_at": iso(beat), "heartbeat_at": iso(beat), "finished_at": iso(beat) if terminal else None,
          "duration_seconds": 12.5 if terminal else None, "terminal": terminal, "pid": 4242, "host": "vm",
          "request_id": f"req-{sid}", "error": error}
    st.update(extra)
    (d / "session_status.json").write_text(json.dumps(st))
    return d


def add_results(d: Path) -> None:
    (d / "config.json").write_text(json.dumps({"ticker": "SPX", "strategy": "rsi_ma_cross_v2"}))
    (d / "metrics.json").write_text(json.dumps({"summary": {"total_return": 0.1, "sharpe_simple": 1.2,
                                                            "max_drawdown": -0.05, "trades": 4, "win_rate": 0.5}}))
    (d / "report.json").write_text(json.dumps({"machine_contract": {"contract_type": "quantlab.paper.result"}}))


@pytest.fixture
def root(tmp_path) -> Path:
    """completed, failed, fresh running, running with a 2 h old heartbeat, an empty dir."""
    r = tmp_path / "paper_sessions"
    add_results(session(r, "s_done", "completed", age_min=30))
    session(r, "s_failed", "failed", age_min=20,
            error={"error_type": "DataError", "message": "no data for NOPE", "exit_code": 3})
    session(r, "s_live", "running", age_min=0.1)
    session(r, "s_dead", "running", age_min=120)
    (r / "s_empty").mkdir()
    (r / ".hidden").mkdir()
    (r / "paper_sessions_index.csv").write_text("old")  # files in the root are not sessions
    return r


# ------------------------------------------------------------------------------ inputs
@pytest.mark.parametrize("text,value", [("60", 60), ("0.5", 0.5), (" 15 ", 15), ("1e1", 10)])
def test_stale_minutes_valid(text, value):
    assert paper.parse_stale_minutes(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "abc", "", "nan", "inf"])
def test_stale_minutes_invalid(text):
    with pytest.raises(ConfigError, match="--paper-stale-minutes must be a number > 0"):
        paper.parse_stale_minutes(text)


def test_now_honours_quantlab_now(monkeypatch):
    monkeypatch.setenv("QUANTLAB_NOW", "2026-11-25T09:00:00Z")
    assert paper.now_utc() == NOW
    monkeypatch.setenv("QUANTLAB_NOW", "2026-11-25T10:00:00+01:00")
    assert paper.now_utc() == NOW
    monkeypatch.setenv("QUANTLAB_NOW", "soon")
    with pytest.raises(ConfigError, match="QUANTLAB_NOW must be an ISO 8601 time"):
        paper.now_utc()
    monkeypatch.delenv("QUANTLAB_NOW")
    assert abs((paper.now_utc() - datetime.now(timezone.utc)).total_seconds()) < 5


def test_root_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="root not found"):
        paper.list_sessions(tmp_path / "nope", NOW)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        paper.alerts_snapshot(tmp_path / "f", NOW)
    assert paper.list_sessions(tmp_path, NOW) == []


# ------------------------------------------------------------------------------ one session
def test_summary_of_a_completed_session(root):
    s = paper.session_summary(root / "s_done", NOW, 60)
    assert s["status"] == "completed" and s["valid"] and s["terminal"] and not s["active"] and not s["stale"]
    assert s["ticker"] == "SPX" and s["sharpe_simple"] == 1.2 and s["trades"] == 4
    assert s["report_present"] and s["report_contract_type"] == "quantlab.paper.result"
    assert s["age_minutes"] == 30.0 and s["activity_at"] == s["heartbeat_at"] and s["problems"] == []
    json.dumps(s, allow_nan=False)


def test_summary_of_a_failed_session(root):
    s = paper.session_summary(root / "s_failed", NOW, 60)
    assert (s["error_type"], s["error_message"], s["exit_code"]) == ("DataError", "no data for NOPE", 3)
    assert not s["stale"]


def test_stale_is_heartbeat_age_over_the_threshold(root):
    assert paper.session_summary(root / "s_dead", NOW, 60)["stale"] is True
    assert paper.session_summary(root / "s_dead", NOW, 121)["stale"] is False
    assert paper.session_summary(root / "s_live", NOW, 0.05)["stale"] is True
    assert paper.session_summary(root / "s_live", NOW, 1)["stale"] is False
    assert paper.session_summary(root / "s_done", NOW, 1)["stale"] is False  # terminal: never stale


def test_stale_falls_back_on_updated_at_then_created_at(tmp_path):
    d = session(tmp_path, "s_init", "initializing", age_min=90, heartbeat_at=None)
    s = paper.session_summary(d, NOW, 60)
    assert s["activity_at"] == s["updated_at"] and s["stale"]
    d2 = session(tmp_path, "s_old", "running", created_min=200, heartbeat_at=None, updated_at=None, started_at=None)
    s2 = paper.session_summary(d2, NOW, 60)
    assert s2["activity_at"] == s2["created_at"] and s2["age_minutes"] == 200.0 and s2["stale"]
    d3 = session(tmp_path, "s_notime", "running", heartbeat_at="garbage", updated_at=None, started_at=None,
                 created_at=None)
    s3 = paper.session_summary(d3, NOW, 60)
    assert s3["activity_at"] is None and s3["age_minutes"] is None and s3["stale"]


def test_naive_times_are_utc_and_future_heartbeats_are_not_stale(tmp_path):
    d = session(tmp_path, "s_naive", "running", heartbeat_at="2026-11-25T08:30:00")
    assert paper.session_summary(d, NOW, 60)["age_minutes"] == 30.0
    d2 = session(tmp_path, "s_future", "running", heartbeat_at="2026-11-25T09:10:00Z")
    s = paper.session_summary(d2, NOW, 1)
    assert s["age_minutes"] == 0.0 and not s["stale"]


@pytest.mark.parametrize("content,problem", [
    (None, "session_status.json: missing"),
    ('{"status": "runn', "session_status.json: invalid JSON"),
    ("[1]", "session_status.json: not a JSON object"),
    ('{"session_id": "x"}', "session_status.json: no status"),
])
def test_invalid_sessions(tmp_path, content, problem):
    d = tmp_path / "s_bad"
    d.mkdir()
    if content is not None:
        (d / "session_status.json").write_text(content)
    s = paper.session_summary(d, NOW, 60)
    assert s["status"] == "invalid" and not s["valid"] and not s["stale"]
    assert s["problems"][0].startswith(problem)


def test_corrupt_side_files_are_problems_not_crashes(root):
    (root / "s_done" / "metrics.json").write_text("{")
    s = paper.session_summary(root / "s_done", NOW, 60)
    assert s["valid"] and s["sharpe_simple"] is None
    assert s["problems"] == ["metrics.json: invalid JSON (Expecting property name enclosed in double quotes at "
                             "line 1 column 2)"]


def test_show_session_requires_a_session_dir(root, tmp_path):
    assert paper.show_session(root / "s_done", NOW)["session_id"] == "s_done"
    with pytest.raises(ConfigError, match="not a paper session directory"):
        paper.show_session(root / "s_empty", NOW)
    with pytest.raises(ConfigError, match="not found"):
        paper.show_session(root / "nope", NOW)


# ------------------------------------------------------------------------------ a root
def test_list_sessions_newest_first_invalid_last(root):
    ids = [s["session_id"] for s in paper.list_sessions(root, NOW, 60)]
    assert ids == ["s_live", "s_failed", "s_done", "s_dead", "s_empty"]


def test_alerts_snapshot(root):
    snap = paper.alerts_snapshot(root, NOW, 60)
    assert snap["alert_status"] == "critical" and snap["has_alerts"]
    assert [(a["alert_code"], a["session_id"]) for a in snap["alerts"]] == [
        ("PAPER_SESSION_FAILED", "s_failed"), ("PAPER_SESSION_INVALID", "s_empty"), ("PAPER_SESSION_STALE", "s_dead")]
    assert [a["severity"] for a in snap["alerts"]] == ["critical", "warning", "warning"]
    assert snap["alert_counts"] == {"critical": 1, "warning": 2}
    assert snap["status_counts"] == {"completed": 1, "failed": 1, "initializing": 0, "invalid": 1, "running": 2}
    assert (snap["total_sessions"], snap["active_sessions"], snap["stale_sessions"], snap["invalid_sessions"]) == \
        (5, 2, 1, 1)
    assert snap["generated_at"] == "2026-11-25T09:00:00Z" and snap["stale_after_minutes"] == 60
    assert snap["latest_success_session_id"] == "s_done" and snap["latest_alert_session_id"] == "s_failed"
    stale = snap["alerts"][2]
    assert stale["age_minutes"] == 120.0 and "120.0 minutes" in stale["message"]
    strict_json(json.dumps(snap, allow_nan=False))


def test_alert_levels(tmp_path):
    assert paper.alerts_snapshot(tmp_path, NOW)["alert_status"] == "ok"
    session(tmp_path, "ok1", "completed")
    session(tmp_path, "live", "running")
    snap = paper.alerts_snapshot(tmp_path, NOW)
    assert snap["alert_status"] == "ok" and snap["alerts"] == [] and snap["latest_alert_session_id"] is None
    session(tmp_path, "dead", "initializing", age_min=61)
    assert paper.alerts_snapshot(tmp_path, NOW)["alert_status"] == "warning"
    assert paper.alerts_snapshot(tmp_path, NOW, 90)["alert_status"] == "ok"


def test_legacy_and_unknown_statuses(tmp_path):
    session(tmp_path, "old_ok", "success")
    session(tmp_path, "old_abort", "aborted")
    session(tmp_path, "weird", "paused")
    codes = {a["session_id"]: a["alert_code"] for a in paper.alerts_snapshot(tmp_path, NOW)["alerts"]}
    assert codes == {"old_abort": "PAPER_SESSION_ABORTED", "weird": "PAPER_SESSION_UNKNOWN_STATUS"}


def test_health(root):
    h = paper.health(root, NOW, 60)
    assert h["total_sessions"] == 5 and h["alert_status"] == "critical"
    assert h["latest_session"] == {"session_id": "s_live", "status": "running", "at": iso(NOW - timedelta(minutes=0.1))}
    assert h["latest_failure"]["session_id"] == "s_failed" and h["latest_failure"]["error_type"] == "DataError"
    assert [s["session_id"] for s in h["active_sessions"]] == ["s_live", "s_dead"]
    assert [s["session_id"] for s in h["stale_sessions"]] == ["s_dead"]
    assert h["invalid_sessions"] == [{"path": str(root / "s_empty"), "problems": ["session_status.json: missing"]}]


def test_write_index(root):
    paths = paper.write_index(root, NOW)
    csv_path, json_path = Path(paths["paper_sessions_index_csv"]), Path(paths["paper_sessions_index_json"])
    assert csv_path == root / "paper_sessions_index.csv" and json_path == root / "paper_sessions_index.json"
    data = strict_json(json_path.read_text())
    assert data["n_sessions"] == 5 and data["generated_at"] == "2026-11-25T09:00:00Z"
    assert [s["session_id"] for s in data["sessions"]] == ["s_live", "s_failed", "s_done", "s_dead", "s_empty"]
    assert list(data["sessions"][0]) == paper.INDEX_COLUMNS
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in data["sessions"]]
    done = next(r for r in rows if r["session_id"] == "s_done")
    assert done["terminal"] == "true" and done["trades"] == "4" and done["ticker"] == "SPX"
    assert next(r for r in rows if r["session_id"] == "s_empty")["problems"] == "session_status.json: missing"
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    # the index files are not sessions themselves
    assert paper.write_index(root, NOW) == paths and strict_json(json_path.read_text())["n_sessions"] == 5
