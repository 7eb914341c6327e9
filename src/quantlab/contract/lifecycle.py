"""A request's life as the contract reports it: termination signals, errors as (exit code,
error type, one-line message), warnings on stderr, and the envelope of an argument argparse
refused. main.py and the executor share these; nothing here imports beyond the stdlib."""

from __future__ import annotations

import signal
import sys
from typing import Any

from quantlab.errors import QuantLabError

WORKFLOW_COMMANDS = ("run", "sweep", "forward", "portfolio", "data")


class Terminated(BaseException):
    """SIGTERM/SIGINT: unwind so the failure is signalled and nothing half-written stays."""


SIGNALLED: list[str] = []  # names of the termination signals received (the first decides the outcome)


def _on_signal(signum, _frame):
    SIGNALLED.append(signal.Signals(signum).name)
    raise Terminated(f"terminated by signal {SIGNALLED[0]}")


def trap_signals() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def settle() -> None:
    """The outcome is decided: from here to exit SIGTERM/SIGINT are ignored, so the exit status,
    the envelope and the last signal line always agree (and no Terminated traceback appears)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def one_line(text: str, limit: int = 1000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_warnings(warnings: list[str]) -> None:
    """One ``WARNING:`` line on stderr for warnings found at one point of the request."""
    if warnings:
        print("WARNING: " + one_line("; ".join(warnings)), file=sys.stderr)


def error_info(exc: BaseException, verbose: bool) -> dict:
    """(exit_code, error_type, one-line message) of any exception, as the contract reports it.
    After SIGTERM/SIGINT, whatever error the interruption caused (Snakemake giving up on the
    workflow, the step worker's pipe closing) is reported as the termination it is."""
    if SIGNALLED and not isinstance(exc, Terminated):
        exc = Terminated(f"terminated by signal {SIGNALLED[0]}")
    if isinstance(exc, QuantLabError):
        code, error_type, message = exc.exit_code, getattr(exc, "error_type", type(exc).__name__), str(exc)
    elif isinstance(exc, Terminated):
        code, error_type, message = 1, "Terminated", str(exc)
    elif isinstance(exc, OSError):  # read-only or full disk, permissions: a clean exit 1
        code, error_type = 1, type(exc).__name__
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"cannot write outputs{where}: {exc.strerror or exc}"
    else:
        code, error_type = 1, type(exc).__name__
        message = f"unexpected error: {type(exc).__name__}: {exc}"
        if verbose:
            import traceback

            traceback.print_exc()
    return {"exit_code": code, "error_type": error_type, "message": one_line(message)}


# ------------------------------------------------------------------ peeks into a raw request
def _peek(raw: str, key: str) -> Any:
    import json

    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def peek_command(raw: str) -> str:
    cmd = _peek(raw, "command")
    return cmd if isinstance(cmd, str) and cmd in WORKFLOW_COMMANDS else "unknown"


def peek_params(raw: str) -> dict:
    params = _peek(raw, "params")
    return params if isinstance(params, dict) else {}


def peek_request_id(raw: str) -> Any:
    rid = _peek(raw, "request_id")
    return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None


def argv_value(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` (``--flag V`` or ``--flag=V``) in raw argv, for when argparse failed."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def usage_failure(argv: list[str], message: str) -> int:
    """An argument argparse refused: one ERROR line, exit 2; under --json-request also the failure
    envelope and SESSION_STARTED/SESSION_FAILED (to the --signal-file found in argv, if any)."""
    settle()
    print(f"ERROR: {message}", file=sys.stderr)
    raw = argv_value(argv, "--json-request")
    if raw is None:
        return 2
    from quantlab.contract.envelope import dumps, failure_envelope
    from quantlab.contract.signals import SignalEmitter

    request_id = peek_request_id(raw)
    if "--dry-run" not in argv:
        emitter = SignalEmitter(argv_value(argv, "--signal-file"), mode=peek_command(raw), request_id=request_id)
        emitter.started()
        emitter.failed(exit_code=2, error_type="ConfigError", message=message)
    print(dumps(failure_envelope(request_id=request_id, exit_code=2, error_type="ConfigError",
                                 message=message)), flush=True)
    return 2
