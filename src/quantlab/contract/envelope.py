"""The single stdout line printed under ``--json-request`` (contract gap #22)."""

from __future__ import annotations

import json
from typing import Any

from quantlab.errors import EXIT_LABELS


def success_envelope(*, request_id: Any, command: str, result: dict, warnings: list[str]) -> dict:
    env = {
        "schema_version": "1.0",
        "request_id": request_id,
        "status": "success",
        "command": command,
        "mode": result.get("mode"),
        "run_id": result.get("run_id"),
        "artifacts_path": result.get("artifacts_path"),
        "report_path": result.get("report_path"),
        "summary": result.get("summary"),
        "exit_code": 0,
    }
    if "data" in result:  # the data command's listing, inspection or import record
        env["data"] = result["data"]
    if warnings:
        env["warnings"] = warnings
    return env


def failure_envelope(*, request_id: Any, exit_code: int, error_type: str, message: str,
                     artifacts_path: str | None = None, report_path: str | None = None) -> dict:
    return {
        "schema_version": "1.0",
        "request_id": request_id,
        "status": "error",
        "error": {"code": EXIT_LABELS.get(exit_code, "GENERAL_ERROR"), "message": message,
                  "error_type": error_type},
        "exit_code": exit_code,
        "artifacts_path": artifacts_path,
        "report_path": report_path,
    }


def dumps(envelope: dict) -> str:
    return json.dumps(envelope, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
