"""Run ids: the one place that formats, parses and claims them.

A run id is ``YYYYMMDD_HHMMSS_<mode>_<7 hex>`` (UTC time of the claim, the request's mode, a
hash of the resolved request). A second request claiming the same id within the same second
gets a suffix in the same family, ``..._<7 hex>_2``, ``_3``...: the timestamp is never bumped,
so a run id (and ``created_at``) never lies about when the request ran.

Ids are claimed atomically in one shared place, ``<internal>/requests/<run_id>/`` (mkdir), and
then in the output directory (the staging dir, or the session dir of a paper session). So an id
is unique across the whole outputs root whatever ``out_dir`` a request names, and the workflow's
per-request bookkeeping under ``requests/<run_id>/`` belongs to exactly one request.

``QUANTLAB_TEST_NOW`` (test-only, ISO 8601) fixes the clock of the claim, so tests can make
identical requests collide deterministically without depending on the wall clock.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

TIME_FORMAT = "%Y%m%d_%H%M%S"
STAGING_PREFIX = ".tmp_"


def pattern(mode: str = "[a-z]+") -> str:
    """Regex (unanchored) of a run id of ``mode`` (itself a regex, e.g. ``"(grid|walkforward)"``);
    the Snakemake wildcard constraints use it."""
    return rf"[0-9]{{8}}_[0-9]{{6}}_{mode}_[0-9a-f]{{7}}(?:_[1-9][0-9]*)?"


_PARTS = re.compile(r"^([0-9]{8}_[0-9]{6})_([a-z]+)_([0-9a-f]{7})(?:_([1-9][0-9]*))?$")


class RunIdParts(NamedTuple):
    time: datetime
    mode: str
    digest: str
    seq: int


def format_run_id(ts: datetime, mode: str, digest: str, seq: int = 1) -> str:
    base = f"{ts:{TIME_FORMAT}}_{mode}_{digest}"
    return base if seq <= 1 else f"{base}_{seq}"


def parse_run_id(text: object) -> RunIdParts | None:
    """The parts of a run id, or None for anything else (no exception)."""
    m = _PARTS.match(str(text))
    if not m:
        return None
    try:
        ts = datetime.strptime(m.group(1), TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return RunIdParts(ts, m.group(2), m.group(3), int(m.group(4) or 1))


def run_id_time(text: object) -> datetime | None:
    parts = parse_run_id(text)
    return parts.time if parts else None


def recency_key(created_at: datetime | None, run_id: object) -> tuple:
    """Sort key, newest last: creation time (else the id's own), then claim order within the
    second (``_2`` after the unsuffixed id, ``_10`` after ``_9``), then the id."""
    parts = parse_run_id(run_id)
    dt = created_at or (parts.time if parts else None)
    return (dt is not None, dt.timestamp() if dt else 0.0, parts.seq if parts else 0, str(run_id))


def staging_name(run_id: str) -> str:
    return f"{STAGING_PREFIX}{run_id}"


def iso_z(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def claim_time() -> datetime:
    """Now (UTC, whole seconds); ``QUANTLAB_TEST_NOW`` fixes it for tests."""
    fixed = os.environ.get("QUANTLAB_TEST_NOW")
    if fixed:
        ts = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
        return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    return datetime.now(timezone.utc).replace(microsecond=0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


STAGING_LEDGER = "staging"  # <internal>/staging/<run_id>: the path of each claimed staging dir


def collect_stale_staging(out_dir: Path | None = None) -> None:
    """Remove staging dirs whose owner process is gone (a SIGKILLed request leaves one).

    Every claim names its staging dir in the ledger ``<internal>/staging/``, so this looks at
    the claims in flight (and the stale ones), never at the run directories: O(1) in the number
    of runs. Staging dirs of a version without the ledger: :func:`collect_stale_staging_in`."""
    from quantlab.contract.paths import internal_root

    ledger = internal_root() / STAGING_LEDGER
    try:
        names = os.listdir(ledger)
    except OSError:
        return
    for name in names:
        entry = ledger / name
        try:
            staging = Path(entry.read_text(encoding="utf-8"))
        except OSError:
            continue
        if not staging.is_dir():  # published or discarded
            entry.unlink(missing_ok=True)
        elif _owner_gone(staging):
            shutil.rmtree(staging, ignore_errors=True)
            entry.unlink(missing_ok=True)


def collect_stale_staging_in(out_dir: Path) -> None:
    """Every stale staging dir directly under ``out_dir`` (a scan: ``--runs-reindex``)."""
    try:
        entries = list(out_dir.glob(f"{STAGING_PREFIX}*"))
    except OSError:
        return
    for staging in entries:
        if _owner_gone(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _owner_gone(staging: Path) -> bool:
    try:
        pid = int((staging / ".owner").read_text().strip() or 0)
    except (OSError, ValueError):
        return False  # being created right now, or not ours
    return bool(pid) and not _pid_alive(pid)


def peek_run_id(mode: str, digest: str, now: datetime | None = None) -> tuple[str, datetime]:
    """The id a claim would take now, without claiming it (dry runs): the first suffix whose
    claim dir does not exist, so a dry run right after an identical request still shows the
    per-request steps a real request would run."""
    from quantlab.contract.paths import internal_root

    claims = internal_root() / "requests"
    ts = (now or claim_time()).replace(microsecond=0)
    seq = 1
    while (claims / format_run_id(ts, mode, digest, seq)).exists():
        seq += 1
    return format_run_id(ts, mode, digest, seq), ts


def claim_run_id(out_dir: Path, mode: str, digest: str, now: datetime | None = None,
                 staging: bool = True) -> tuple[str, datetime]:
    """Claim a run id unique across the outputs root; returns ``(run_id, claim time)``.

    ``mkdir <internal>/requests/<run_id>`` is the atomic, shared claim; then the staging dir
    ``<out_dir>/.tmp_<run_id>`` (or, with ``staging=False``, the final directory of a paper
    session, visible while it runs) is made. A taken id moves on to the next suffix."""
    from quantlab.contract.paths import internal_root

    out_dir.mkdir(parents=True, exist_ok=True)
    if staging:
        collect_stale_staging(out_dir)
    claims = internal_root() / "requests"
    claims.mkdir(parents=True, exist_ok=True)
    ts = (now or claim_time()).replace(microsecond=0)
    seq = 0
    while True:
        seq += 1
        run_id = format_run_id(ts, mode, digest, seq)
        try:
            os.mkdir(claims / run_id)
        except FileExistsError:
            continue
        target = out_dir / (staging_name(run_id) if staging else run_id)
        try:
            os.mkdir(target)
        except FileExistsError:  # left by an older version: the id stays claimed, take the next
            continue
        if staging and (out_dir / run_id).exists():
            os.rmdir(target)
            continue
        if staging:
            (target / ".owner").write_text(str(os.getpid()))
            ledger = internal_root() / STAGING_LEDGER
            ledger.mkdir(parents=True, exist_ok=True)
            (ledger / run_id).write_text(os.path.abspath(target), encoding="utf-8")
        return run_id, ts
