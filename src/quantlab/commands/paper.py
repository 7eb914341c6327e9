"""Paper sessions: a ``run`` with ``paper=true`` executed as a session with a lifecycle.

``outputs/paper_sessions/<session_id>/session_status.json`` moves
``initializing -> running -> completed | failed``. While the session runs, a heartbeat thread
refreshes ``heartbeat_at`` (and counts ``heartbeat_count``) every ``HEARTBEAT_S`` seconds, so a killed process is detectable:
its status stays ``running`` while its heartbeat ages (``--paper-sessions-alerts`` reports it as
stale after ``--paper-stale-minutes``). Every write of the status file is atomic.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import atomic_write_json, read_json
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info

HEARTBEAT_S = float(os.environ.get("QUANTLAB_HEARTBEAT_SECONDS", "5"))
TERMINAL = ("completed", "failed")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_status(session_dir: Path) -> dict:
    try:
        data = read_json(Path(session_dir) / "session_status.json")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class PaperSession:
    def __init__(self, session_dir: Path, *, session_id: str, request_id: Any, created_at: str):
        self.dir = Path(session_dir)
        self.session_id = session_id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self.status: dict[str, Any] = {
            "session_id": session_id, "status": "initializing", "terminal": False,
            "created_at": created_at, "started_at": None, "updated_at": created_at, "heartbeat_at": created_at,
            "finished_at": None, "duration_seconds": None, "pid": os.getpid(), "host": socket.gethostname(),
            "request_id": request_id, "error": None, "heartbeat_interval_seconds": HEARTBEAT_S,
            "heartbeat_count": 0,
        }

    def _write(self) -> None:
        atomic_write_json(self.dir / "session_status.json", self.status, sort_keys=True)

    def create(self, config: dict, warnings: list[str]) -> None:
        """Status ``initializing`` plus the session's metadata and config."""
        config = {k: v for k, v in config.items() if k != "out_dir"}
        with self._lock:
            self._write()
        atomic_write_json(self.dir / "config.json", config, sort_keys=True)
        atomic_write_json(self.dir / "session_metadata.json", {
            "session_id": self.session_id, "run_id": self.session_id, "command": "run", "mode": "paper",
            "status": "initializing", "created_at": self.status["created_at"],
            "request_id": self.status["request_id"], "config_path": "json_request",
            "config_hash": canonical_hash(config, algo="sha1"), "code_fingerprint": code_fingerprint(),
            "warnings": warnings, **runtime_info(),
        }, sort_keys=True)

    def start(self) -> None:
        now = utc_now()
        with self._lock:
            self.status.update(status="running", started_at=now, updated_at=now, heartbeat_at=now)
            self._write()
        self._thread = threading.Thread(target=self._beat, name="paper-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                if self.status["terminal"]:
                    return
                now = utc_now()
                self.status.update(heartbeat_at=now, updated_at=now,
                                   heartbeat_count=self.status["heartbeat_count"] + 1)
                try:
                    self._write()
                except OSError:
                    pass

    def _finish(self, status: str, **fields: Any) -> None:
        self._stop.set()
        now = utc_now()
        with self._lock:
            self.status.update(status=status, terminal=True, updated_at=now, heartbeat_at=now, finished_at=now,
                               duration_seconds=round(time.monotonic() - self._t0, 3), **fields)
            self._write()

    def complete(self) -> None:
        self._finish("completed")

    def fail(self, *, exit_code: int, error_type: str, message: str) -> None:
        self._finish("failed", error={"error_type": error_type, "message": message, "exit_code": exit_code})
        try:
            meta = read_json(self.dir / "session_metadata.json")
            meta["status"] = "failed"
            atomic_write_json(self.dir / "session_metadata.json", meta, sort_keys=True)
        except (OSError, ValueError):
            pass
