"""What the interactive reports read from a result directory (run, sweep, forward session,
portfolio), as pandas frames. Every reader returns ``None`` for a missing or unreadable file: a
report shows what exists and says what is missing, it never fails on one file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

OHLC = ("open", "high", "low", "close")


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_frame(path: Path):
    """A Parquet file as a DataFrame with a naive UTC ``timestamp`` column, or None."""
    import pandas as pd

    from quantlab.columnar import read_parquet

    try:
        frame = read_parquet(path).to_pandas()
    except Exception:  # missing, truncated or foreign file
        return None
    if "timestamp" in frame.columns:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    return frame


def read_csv(path: Path):
    """A CSV file as a DataFrame (time columns parsed to naive UTC), or None."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    for col in ("entry_time", "exit_time", "timestamp"):
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce").dt.tz_localize(None)
    return frame


def csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def store_bars(run_dir: Path, metadata: dict | None):
    """The OHLC bars a run simulated on, from the content-addressed store (``content_keys.data``),
    cut to the run's window; None when the store no longer has them (the report then draws the
    close line from equity.parquet)."""
    from quantlab.contract.paths import outputs_root

    key = ((metadata or {}).get("content_keys") or {}).get("data")
    if not key:
        return None
    for root in (outputs_root(), run_dir.parent.parent):
        frame = read_frame(root / ".quantlab" / "store" / "data" / str(key) / "bars.parquet")
        if frame is not None and all(c in frame.columns for c in OHLC):
            return frame
    return None
