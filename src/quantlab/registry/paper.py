"""Paper-session inspection: list, show, health, alerts and the sessions index, read-only.

A sessions root holds one directory per session (``<root>/<session_id>/``). Every non-hidden
child directory is looked at: a directory without a readable ``session_status.json`` (or whose
status file has no ``status``) is an *invalid* session, reported, never a crash.

Times are ISO 8601; ``Z``/offsets are honoured, naive times (the original tool's) are read as
UTC. "Now" is the current UTC time, or ``QUANTLAB_NOW`` (an ISO time) when set, so snapshots
are reproducible in tests.

A session is *active* while its status is ``initializing`` or ``running``; an active session is
*stale* when its activity time (``heartbeat_at``, else ``updated_at``, else ``started_at``,
else ``created_at``) is more than ``stale_minutes`` old, or missing: the writer refreshes the
heartbeat every few seconds, so a stale session is one whose process died or hung.

Alerts: ``PAPER_SESSION_FAILED`` (critical), ``PAPER_SESSION_STALE`` (warning),
``PAPER_SESSION_INVALID`` (warning), and for the original tool's statuses
``PAPER_SESSION_ABORTED`` (warning) and ``PAPER_SESSION_UNKNOWN_STATUS`` (warning).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import atomic_write_json, atomic_write_text, json_safe
from quantlab.errors import ConfigError
from quantlab.metric_registry import summary_names
from quantlab.registry.runs import format_time, parse_time, read_json_checked, read_object

STATUSES = ("initializing", "running", "completed", "failed")
ACTIVE = ("initializing", "running")
# "success" and "aborted" are the original tool's terminal statuses (legacy session dirs).
TERMINAL = ("completed", "failed", "success", "aborted")
SESSION_FILES = ("session_status.json", "session_metadata.json", "config.json", "metrics.json", "report.json")
SEVERITY_ORDER = {"critical": 0, "warning": 1}


def index_columns() -> list[str]:
    return ["session_id", "status", "terminal", "created_at", "started_at", "updated_at", "heartbeat_at",
            "finished_at", "duration_seconds", "request_id", "pid", "host", "error_type", "exit_code",
            "ticker", "strategy", *summary_names(), "report_contract_type", "problems", "path"]


# ------------------------------------------------------------------------------ inputs
def now_utc() -> datetime:
    """``QUANTLAB_NOW`` when set (ISO 8601; naive = UTC), else the current UTC time."""
    raw = os.environ.get("QUANTLAB_NOW")
    if raw:
        dt = parse_time(raw)
        if dt is None:
            raise ConfigError(f"QUANTLAB_NOW must be an ISO 8601 time like 2026-11-25T07:01:02Z, got {raw!r}")
        return dt
    return datetime.now(timezone.utc)


def parse_stale_minutes(value: Any) -> float:
    """``--paper-stale-minutes``: a finite number > 0 (ints stay ints in the output)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"--paper-stale-minutes must be a number > 0, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"--paper-stale-minutes must be a number > 0, got {value!r}")
    return int(number) if number.is_integer() else number


def require_root(root: str | os.PathLike) -> Path:
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise ConfigError(f"paper sessions root not found: {root}")
    if not root.is_dir():
        raise ConfigError(f"paper sessions root is not a directory: {root}")
    return root


def _session_dirs(root: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except PermissionError:
        raise ConfigError(f"paper sessions root is not readable: {root}") from None
    return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]


# ------------------------------------------------------------------------------ one session
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def session_summary(session_dir: Path, now: datetime, stale_minutes: float = 60) -> dict:
    """The normalised view of one session directory (stable keys, JSON-safe)."""
    session_dir = Path(session_dir)
    problems: list[str] = []
    status_data, status_problem = read_json_checked(session_dir / "session_status.json")
    if status_problem:
        problems.append(status_problem)
    if status_data is not None and not isinstance(status_data, dict):
        if not status_problem:
            problems.append("session_status.json: not a JSON object")
        status_data = None
    if status_data is None and not status_problem:
        problems.append("session_status.json: missing")
    meta = read_object(session_dir / "session_metadata.json", problems)
    config = read_object(session_dir / "config.json", problems)
    metrics = read_object(session_dir / "metrics.json", problems)
    report = read_object(session_dir / "report.json", problems)
    st = status_data or {}
    raw_status = st.get("status")
    valid = isinstance(raw_status, str) and bool(raw_status)
    if status_data is not None and not valid:
        problems.append("session_status.json: no status")
    status = raw_status if valid else "invalid"
    error = st.get("error") if isinstance(st.get("error"), dict) else {}
    times = {k: _str(st.get(k)) for k in ("created_at", "started_at", "updated_at", "heartbeat_at", "finished_at")}
    if times["created_at"] is None:
        times["created_at"] = _str(meta.get("created_at"))
    activity_key = next((k for k in ("heartbeat_at", "updated_at", "started_at", "created_at")
                         if parse_time(times[k]) is not None), None)
    activity = parse_time(times[activity_key]) if activity_key else None
    age_minutes = None
    if activity is not None:
        age_minutes = round(max((now - activity).total_seconds(), 0.0) / 60.0, 1)
    active = status in ACTIVE
    stale = active and (activity is None or (now - activity).total_seconds() > stale_minutes * 60.0)
    summary = metrics.get("summary") if isinstance(metrics.get("summary"), dict) else {}
    mc = report.get("machine_contract") if isinstance(report.get("machine_contract"), dict) else {}
    kpis = {}
    for key in summary_names():
        value = summary.get(key)
        kpis[key] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return json_safe({
        "session_id": _str(st.get("session_id")) or _str(meta.get("session_id")) or session_dir.name,
        "status": status,
        "valid": valid,
        "terminal": status in TERMINAL,
        "active": active,
        "stale": stale,
        **times,
        "activity_at": times[activity_key] if activity_key else None,
        "age_minutes": age_minutes,
        "duration_seconds": st.get("duration_seconds"),
        "pid": st.get("pid"),
        "host": st.get("host"),
        "request_id": st.get("request_id", meta.get("request_id")),
        "error_type": _str(error.get("error_type")) or _str(st.get("error_type")),
        "error_message": _str(error.get("message")) or _str(st.get("message")),
        "exit_code": error.get("exit_code"),
        "ticker": config.get("ticker"),
        "strategy": config.get("strategy"),
        **kpis,
        "report_present": (session_dir / "report.json").is_file(),
        "report_contract_type": mc.get("contract_type"),
        "problems": problems,
        "path": str(session_dir),
    })


def show_session(path: str | os.PathLike, now: datetime, stale_minutes: float = 60) -> dict:
    session_dir = Path(os.path.abspath(path))
    if not session_dir.exists():
        raise ConfigError(f"paper session directory not found: {session_dir}")
    if not session_dir.is_dir():
        raise ConfigError(f"not a directory: {session_dir}")
    if not any((session_dir / name).is_file() for name in ("session_status.json", "session_metadata.json",
                                                            "report.json")):
        raise ConfigError(f"not a paper session directory (no session_status.json): {session_dir}")
    return session_summary(session_dir, now, stale_minutes)


# ------------------------------------------------------------------------------ a root of sessions
def _created_key(s: dict) -> tuple:
    from quantlab.contract.runid import recency_key

    return recency_key(parse_time(s.get("created_at")), s["session_id"])


def list_sessions(root: str | os.PathLike, now: datetime, stale_minutes: float = 60) -> list[dict]:
    """Every session under ``root`` (invalid ones included), newest first."""
    root = require_root(root)
    sessions = [session_summary(d, now, stale_minutes) for d in _session_dirs(root)]
    sessions.sort(key=_created_key, reverse=True)
    return sessions


def _status_counts(sessions: list[dict]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    counts.update(Counter(s["status"] for s in sessions))
    return dict(sorted(counts.items()))


def _latest(sessions: list[dict], statuses: tuple[str, ...] | None = None) -> dict | None:
    pool = [s for s in sessions if s["valid"] and (statuses is None or s["status"] in statuses)]
    if not pool:
        return None
    return max(pool, key=lambda s: (parse_time(s["activity_at"]) or datetime.min.replace(tzinfo=timezone.utc),
                                    s["session_id"]))


def _alerts(sessions: list[dict], stale_minutes: float) -> list[dict]:
    alerts = []
    for s in sessions:
        code = severity = message = None
        if not s["valid"]:
            code, severity = "PAPER_SESSION_INVALID", "warning"
            message = "; ".join(s["problems"]) or "no readable session_status.json"
        elif s["status"] == "failed":
            code, severity = "PAPER_SESSION_FAILED", "critical"
            message = s["error_message"] or "session failed"
        elif s["stale"]:
            code, severity = "PAPER_SESSION_STALE", "warning"
            message = (f"status {s['status']} with no heartbeat for {s['age_minutes']} minutes "
                       f"(threshold {stale_minutes})" if s["age_minutes"] is not None
                       else f"status {s['status']} with no parseable heartbeat/updated_at/created_at")
        elif s["status"] == "aborted":
            code, severity, message = "PAPER_SESSION_ABORTED", "warning", s["error_message"] or "session aborted"
        elif s["status"] not in STATUSES and s["status"] not in TERMINAL:
            code, severity = "PAPER_SESSION_UNKNOWN_STATUS", "warning"
            message = f"unknown status {s['status']!r}"
        if code:
            alerts.append({"alert_code": code, "severity": severity, "session_id": s["session_id"],
                           "status": s["status"], "activity_at": s["activity_at"], "age_minutes": s["age_minutes"],
                           "error_type": s["error_type"], "message": message, "path": s["path"]})
    alerts.sort(key=lambda a: (SEVERITY_ORDER[a["severity"]], a["alert_code"], a["session_id"], a["path"]))
    return alerts


def _alert_status(alerts: list[dict]) -> str:
    if any(a["severity"] == "critical" for a in alerts):
        return "critical"
    return "warning" if alerts else "ok"


def _snapshot_head(root, now: datetime, stale_minutes: float, sessions: list[dict]) -> dict:
    """The fields the alert snapshot and the health report open with."""
    return {"root_dir": str(require_root(root)), "generated_at": format_time(now),
            "stale_after_minutes": stale_minutes, "total_sessions": len(sessions),
            "status_counts": _status_counts(sessions)}


def alerts_snapshot(root: str | os.PathLike, now: datetime, stale_minutes: float = 60) -> dict:
    """The alert snapshot (print it with sorted keys): failed, stale and invalid sessions."""
    sessions = list_sessions(root, now, stale_minutes)
    alerts = _alerts(sessions, stale_minutes)
    success = _latest(sessions, ("completed", "success"))
    latest_alert = max(alerts, key=lambda a: (parse_time(a["activity_at"]) or
                                              datetime.min.replace(tzinfo=timezone.utc), a["session_id"]),
                       default=None)
    return json_safe({
        **_snapshot_head(root, now, stale_minutes, sessions),
        "active_sessions": sum(1 for s in sessions if s["active"]),
        "stale_sessions": sum(1 for s in sessions if s["stale"]),
        "invalid_sessions": sum(1 for s in sessions if not s["valid"]),
        "alert_status": _alert_status(alerts),
        "has_alerts": bool(alerts),
        "alert_counts": {"critical": sum(a["severity"] == "critical" for a in alerts),
                         "warning": sum(a["severity"] == "warning" for a in alerts)},
        "latest_success_session_id": success["session_id"] if success else None,
        "latest_success_at": success["activity_at"] if success else None,
        "latest_alert_session_id": latest_alert["session_id"] if latest_alert else None,
        "latest_alert_code": latest_alert["alert_code"] if latest_alert else None,
        "latest_alert_at": latest_alert["activity_at"] if latest_alert else None,
        "alerts": alerts,
    })


def health(root: str | os.PathLike, now: datetime, stale_minutes: float = 60) -> dict:
    """Counts by status, the latest session, the latest problem, active/stale/invalid sessions."""
    sessions = list_sessions(root, now, stale_minutes)
    alerts = _alerts(sessions, stale_minutes)
    latest = _latest(sessions)
    issue = _latest(sessions, ("failed", "aborted"))

    def brief(s: dict) -> dict:
        return {k: s[k] for k in ("session_id", "status", "activity_at", "age_minutes", "stale", "pid", "host",
                                  "path")}

    return json_safe({
        **_snapshot_head(root, now, stale_minutes, sessions),
        "alert_status": _alert_status(alerts),
        "latest_session": None if latest is None else {
            "session_id": latest["session_id"], "status": latest["status"], "at": latest["activity_at"]},
        "latest_failure": None if issue is None else {
            "session_id": issue["session_id"], "status": issue["status"], "at": issue["activity_at"],
            "error_type": issue["error_type"], "message": issue["error_message"]},
        "active_sessions": [brief(s) for s in sessions if s["active"]],
        "stale_sessions": [brief(s) for s in sessions if s["stale"]],
        "invalid_sessions": [{"path": s["path"], "problems": s["problems"]} for s in sessions if not s["valid"]],
    })


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return " ".join(str(value).split())


def write_index(root: str | os.PathLike, now: datetime) -> dict[str, str]:
    """Write ``paper_sessions_index.csv`` and ``.json`` (strict JSON) atomically in ``root``."""
    root = require_root(root)
    sessions = list_sessions(root, now)
    columns = index_columns()
    rows = [{k: s[k] for k in columns} for s in sessions]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    csv_path, json_path = root / "paper_sessions_index.csv", root / "paper_sessions_index.json"
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_json(json_path, {"generated_at": format_time(now), "root_dir": str(root),
                                  "n_sessions": len(rows), "sessions": rows})
    return {"paper_sessions_index_csv": str(csv_path), "paper_sessions_index_json": str(json_path)}


def __getattr__(name: str):  # the registry's current lists under their old names
    lists = {"KPIS": summary_names, "INDEX_COLUMNS": index_columns}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
