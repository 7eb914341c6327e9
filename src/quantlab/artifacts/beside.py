"""File writes on threads beside the work that produces the next file.

``with writes_beside() as beside: beside(fn, *args)``: each ``fn(*args)`` (an atomic file write,
artifacts/io.py) runs on its own thread while the block goes on: Parquet encoding and the
kernel's writes release the GIL, so a step's big files are written while it formats the next
one. Leaving the block waits for every write; one that failed fails the block with its own
exception once the others have ended, and, being atomic (a temp file renamed into place), leaves
no file behind.

``beside(fn, *args, late_ok=True)`` marks a write no later step of a chain reads (a run's
trades.csv, which only publishing copies). Inside :func:`late_writes` (the step worker's
speculative chain, commands/speculate.py) the block does not wait for it: it goes on while the
chain's next steps compute, and the chain waits for it (:meth:`Writes.wait`) before it counts
the step as done. Anywhere else a late write is waited for like any other.
"""

from __future__ import annotations

import contextlib
import threading

_LOCAL = threading.local()  # .collecting: this thread's late_writes() blocks, innermost last


def _collecting() -> list:
    if not hasattr(_LOCAL, "collecting"):
        _LOCAL.collecting = []
    return _LOCAL.collecting


class Writes:
    """Writes running on threads (:func:`writes_beside`)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, fn, *args) -> None:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - raised in the waiting thread (wait)
                self.errors.append(exc)

        thread = threading.Thread(target=run, name="quantlab-write", daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait(self) -> None:
        """Wait for every write; raise the first failure."""
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise self.errors[0]


@contextlib.contextmanager
def writes_beside():
    now, late = Writes(), Writes()

    def beside(fn, *args, late_ok: bool = False) -> None:
        (late if late_ok else now).start(fn, *args)

    try:
        yield beside
    except BaseException:
        for writes in (now, late):
            with contextlib.suppress(BaseException):
                writes.wait()
        raise
    try:
        now.wait()
    except BaseException:
        with contextlib.suppress(BaseException):
            late.wait()
        raise
    collecting = _collecting()
    if late.threads and collecting:
        collecting[-1].append(late)
    else:
        late.wait()


@contextlib.contextmanager
def late_writes():
    """Collect the late writes of the :func:`writes_beside` blocks inside (in this thread: the
    chain may compute a step on another thread meanwhile), instead of waiting for them there:
    ``with late_writes() as pending: ...`` then ``for w in pending: w.wait()``."""
    pending: list[Writes] = []
    _collecting().append(pending)
    try:
        yield pending
    finally:
        _collecting().pop()
