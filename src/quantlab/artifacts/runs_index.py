"""The runs index (``runs_index.csv/json/md``): a pure function of the run directories under a
root, kept equal to the runs catalog (:mod:`quantlab.artifacts.catalog`) and updated under a
file lock so concurrent requests lose no row.

A run directory is any non-hidden child holding ``metadata.json`` or ``report.json`` (or the
legacy ``meta.json`` / ``run_report.json``, or a forward session's ``session_metadata.json``).
Directories deleted from outside simply disappear from the next rebuild; an unreadable file makes
that row partial, never the rebuild fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import json_safe
from quantlab.metric_registry import headline_first, integer_names, summary_names


def metric_keys() -> tuple[str, ...]:
    """The registry's summary metrics, headline (sharpe_simple) first: the index's metric columns."""
    return headline_first(summary_names())


def columns() -> list[str]:
    return ["run_id", "mode", "created_at", "git_commit", "ticker", "start", "end", "strategy",
            *metric_keys(), "path"]


MARKERS = ("metadata.json", "report.json", "meta.json", "run_report.json", "session_metadata.json")


def _load(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def index_row(run_dir: Path) -> dict[str, Any] | None:
    if not any((run_dir / m).is_file() for m in MARKERS):
        return None
    meta = _load(run_dir / "metadata.json") or _load(run_dir / "meta.json") or _load(run_dir / "session_metadata.json")
    report = _load(run_dir / "report.json") or _load(run_dir / "run_report.json")
    header = report.get("header", {}) if isinstance(report.get("header"), dict) else {}
    config = report.get("config_resolved") or _load(run_dir / "config.json")
    config = config if isinstance(config, dict) else {}
    summary: dict = {}
    for candidate in (
        (report.get("machine_contract") or {}).get("summary") if isinstance(report.get("machine_contract"), dict) else None,
        report.get("summary") if isinstance(report.get("summary"), dict) else None,
        _load(run_dir / "metrics.json").get("summary"),
        meta.get("summary"),
    ):
        if isinstance(candidate, dict) and candidate:
            summary = candidate
            break
    row = {
        "run_id": meta.get("run_id") or header.get("run_id") or run_dir.name,
        "mode": meta.get("mode") or header.get("mode") or "",
        "created_at": meta.get("created_at") or header.get("created_at") or "",
        "git_commit": meta.get("git_commit") or header.get("git_commit") or "",
        "ticker": config.get("ticker") or meta.get("ticker") or "",
        "start": config.get("start") or meta.get("forward_start") or "",
        "end": config.get("end") or meta.get("forward_end") or "",
        "strategy": config.get("strategy") or meta.get("strategy") or "",
        "path": str(run_dir),
    }
    ints = integer_names()
    for key in metric_keys():
        value = summary.get(key)
        if key in ints:
            value = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            value = None
        row[key] = value
    return json_safe(row)


def scan(root: Path) -> list[dict]:
    rows = []
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return rows
    for entry in children:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        row = index_row(Path(entry.path))
        if row is not None:
            rows.append(row)
    return rows


def index_paths(root: Path) -> dict[str, str]:
    root = Path(root)
    return {
        "runs_index_root": str(root),
        "runs_index_csv": str(root / "runs_index.csv"),
        "runs_index_json": str(root / "runs_index.json"),
        "runs_index_md": str(root / "runs_index.md"),
    }


def refresh(root: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Bring ``root``'s catalog and its three index files up to date under ``root/.runs_index.lock``.

    With ``run_dir`` (a child of ``root``: the run a request just published) only that run's row
    changes, and the files are patched from it on (O(1) when it sorts last); without it, or for a
    directory elsewhere, everything is rebuilt from the run directories (``--runs-reindex``).
    Either way the files end byte-for-byte what a full rebuild at that moment writes."""
    from quantlab.artifacts.catalog_sync import record_run, reindex

    root = Path(os.path.abspath(root))
    root.mkdir(parents=True, exist_ok=True)
    run_dir = Path(os.path.abspath(run_dir)) if run_dir is not None else None
    if run_dir is not None and run_dir.parent == root and not run_dir.name.startswith("."):
        record_run(root, run_dir)
    else:
        reindex(root)
    return index_paths(root)


def __getattr__(name: str):  # the registry's current lists under their old names
    lists = {"COLUMNS": columns, "METRIC_KEYS": metric_keys}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
