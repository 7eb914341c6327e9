"""Shared plumbing for command steps: error capture into the job log, store paths, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import traceback
from pathlib import Path
from typing import Iterator

from quantlab.artifacts.io import atomic_write_json
from quantlab.contract import namespaces
from quantlab.contract.runid import staging_name
from quantlab.errors import QuantLabError


@contextlib.contextmanager
def step_errors(log_path: str | os.PathLike | None) -> Iterator[None]:
    """Record a failing step's ``{exit_code, error_type, message}`` in its log file.

    Snakemake reports every job failure the same way (exit 1) and drops the step's own exit code;
    main.py reads this record back to map the failure to exit 2, 3 or 4.
    """
    try:
        yield
    except QuantLabError as exc:
        if log_path:
            atomic_write_json(log_path, {"exit_code": exc.exit_code,
                                         "error_type": getattr(exc, "error_type", type(exc).__name__),
                                         "message": str(exc),
                                         "traceback": getattr(exc, "worker_traceback", None)})
        raise
    except Exception as exc:  # unexpected: exit 1, keep the traceback in the log only
        if log_path:
            atomic_write_json(log_path, {"exit_code": 1, "error_type": type(exc).__name__,
                                         "message": " ".join(str(exc).split()) or type(exc).__name__,
                                         "traceback": traceback.format_exc()})
        raise


class KeyLocks:
    """fcntl.flock locks on content keys: exclusive for keys this request will produce, shared
    for keys it only reads. The kernel releases them when the holder dies, so a SIGKILLed request
    never blocks the next one. Acquired in sorted order, all at once, so no deadlock."""

    def __init__(self, lock_dir: Path):
        self.lock_dir = lock_dir
        self.held: dict[str, int] = {}

    def acquire(self, key: str, exclusive: bool) -> None:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fd = self.held.get(key)
        if fd is None:
            fd = os.open(self.lock_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            self.held[key] = fd
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def release_all(self) -> None:
        for fd in self.held.values():
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            except OSError:
                pass
        self.held.clear()

    def __enter__(self) -> "KeyLocks":
        return self

    def __exit__(self, *exc) -> None:
        self.release_all()


class StagedPlan:
    """What a command's plan derives from its ``run_id``, ``out_dir`` and ``kind`` (its output
    namespace, :mod:`quantlab.contract.namespaces`): the staging dir its run directory is written
    in (then renamed into place by :func:`publish_staging`) and its final workflow target."""

    @property
    def staging_dir(self) -> Path:
        return self.out_dir / staging_name(self.run_id)

    @property
    def target(self) -> str:
        return namespaces.target(self.run_id, self.kind)


def publish_staging(staging: Path, final: Path, marker_out: str | os.PathLike, result: dict) -> dict:
    """Move a fully written staging directory into place (one atomic rename) and write the
    request's marker. The run id was claimed with the staging dir, so ``final`` cannot exist."""
    try:
        os.unlink(staging / ".owner")
    except FileNotFoundError:
        pass
    os.rename(staging, final)
    atomic_write_json(marker_out, result)
    return result


FAILED_LOGS_KEPT = 100  # failed requests whose logs stay under <internal>/logs/failed/


def keep_failed_logs(internal: Path, run_id: str, log_path: Path | None, keep: int = FAILED_LOGS_KEPT) -> None:
    """Keep a failed request's Snakemake log and per-job logs for diagnosis, as
    ``logs/failed/<run_id>.snakemake.log`` and ``logs/failed/<run_id>.jobs/``; only the newest
    ``keep`` failed requests are kept (a successful request's job logs are simply removed)."""
    failed = internal / "logs" / "failed"
    moves = [(log_path, failed / f"{run_id}.snakemake.log"),
             (internal / "requests" / run_id / "logs", failed / f"{run_id}.jobs")]
    moves = [(src, dest) for src, dest in moves if src is not None and src.exists()]
    if not moves:
        return
    failed.mkdir(parents=True, exist_ok=True)
    for src, dest in moves:
        try:
            os.replace(src, dest)
        except OSError:
            pass
    prune_failed_logs(failed, keep)


def prune_failed_logs(failed: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` failed requests' logs (by modification time)."""
    import shutil

    try:
        entries = sorted(os.scandir(failed), key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
    except OSError:
        return
    runs: dict[str, list] = {}
    for entry in entries:  # newest first; one failed request = <run_id>.snakemake.log + <run_id>.jobs
        runs.setdefault(entry.name.split(".", 1)[0], []).append(entry)
    for stale in list(runs.values())[keep:]:
        for entry in stale:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
