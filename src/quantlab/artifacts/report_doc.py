"""The report.json document every command writes, and its ``machine_contract``: one builder.

    {"schema_version", "artifact_type", "status", "header", <the command's sections>...,
     "artifacts": [{file_name, size_bytes}...], "machine_contract", "summary"}

``machine_contract`` starts ``{"schema_version", "contract_type": "quantlab.<kind>.result",
"command", "status", "request_id"?}`` and then carries the command's own fields (always with a
``warnings`` list).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"


def machine_contract(kind: str, command: str, request_id: Any, status: str = "success", **fields: Any) -> dict:
    mc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "contract_type": f"quantlab.{kind}.result",
                          "command": command, "status": status}
    if request_id is not None:
        mc["request_id"] = request_id
    mc.update(fields)
    return mc


REPORT_HTML = "report.html"  # the optional interactive page (docs/reports.md): never a listed artifact


def artifact_listing(directory: Path, exclude: tuple[str, ...] = ()) -> list[dict]:
    """The files of a result directory with their sizes, then report.json itself (written last).
    The optional report.html is left out: it may be made later, and rebuilding report.json gives
    the same document whether it exists or not."""
    names = sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.name not in ("report.json", REPORT_HTML, *exclude))
    return ([{"file_name": n, "size_bytes": (directory / n).stat().st_size} for n in names]
            + [{"file_name": "report.json", "size_bytes": None}])


def report_document(*, artifact_type: str, header: dict, mc: dict, summary: Any,
                    sections: dict | None = None, artifacts: list[dict] | None = None) -> dict:
    report = {"schema_version": SCHEMA_VERSION, "artifact_type": artifact_type, "status": mc["status"],
              "header": header, **(sections or {})}
    if artifacts is not None:
        report["artifacts"] = artifacts
    report.update(machine_contract=mc, summary=summary)
    return report
