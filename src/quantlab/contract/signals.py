"""Lifecycle signals: JSON Lines appended to ``--signal-file`` (and optionally POSTed to a webhook).

The client creates the file empty and reads only its last line, so: append only (O_APPEND, one
``write`` per event so concurrent writers never interleave), never truncate, never lock, and the
terminal event is written last. Signalling is best effort: a failure prints one warning on stderr
and never changes the exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import datetime
from typing import Any

SCHEMA_VERSION = "1.0"


def local_timestamp() -> str:
    """ISO 8601 local time with its UTC offset (the contract says local time)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


class SignalEmitter:
    def __init__(self, path: str | None, *, mode: str, request_id: Any = None, webhook: str | None = None):
        self.path = path
        self.mode = mode
        self.request_id = request_id
        self.webhook = webhook
        self.events: list[dict] = []

    def _base(self, event: str, status: str) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "event": event,
            "status": status,
            "timestamp": local_timestamp(),
            "mode": self.mode,
            "request_id": self.request_id,
        }

    def emit(self, event: str, status: str, **fields: Any) -> dict:
        record = self._base(event, status)
        for key, value in fields.items():
            if key not in ("event", "status", "mode", "request_id", "schema_version"):
                record[key] = value
        self.events.append(record)
        if self.path:
            self._append(record, durable=status != "running")
        if self.webhook:
            from quantlab.contract.webhook import post_event

            post_event(self.webhook, record)
        return record

    def started(self, **fields: Any) -> dict:
        return self.emit("SESSION_STARTED", "running", **fields)

    def completed(self, **fields: Any) -> dict:
        return self.emit("SESSION_COMPLETED", "success", **fields)

    def failed(self, *, exit_code: int, error_type: str, message: str, **fields: Any) -> dict:
        return self.emit("SESSION_FAILED", "error", exit_code=exit_code, error_type=error_type,
                         message=message, **fields)

    def _append(self, record: dict, durable: bool = False) -> None:
        """One write on a descriptor closed right after; ``durable`` (the terminal event, after
        which main.py leaves without teardown) also fsyncs it."""
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                if durable:
                    with contextlib.suppress(OSError):  # a pipe or tty cannot be fsync'd: written is enough
                        os.fsync(fd)
            finally:
                os.close(fd)
        except (OSError, ValueError) as exc:
            print(f"WARNING: could not write signal to {self.path}: {exc}", file=sys.stderr)
