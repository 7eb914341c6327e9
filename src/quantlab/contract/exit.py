"""Leave the process without interpreter teardown, once everything it wrote is out.

A ``run`` request imports ~1,400 modules (Snakemake, numpy, pyarrow ...). Tearing them down
after the envelope is printed costs 0.2-0.5 s and changes nothing a caller can see, so main.py
ends with :func:`exit_now`: it does what a normal exit does that matters for the outputs, in
order, and then calls ``os._exit``:

1. a live non-daemon thread would be waited for by a normal exit: then exit normally instead;
2. ``atexit`` callbacks run (libraries' clean-ups, temp files);
3. unreachable objects are collected, so their finalisers run as teardown would run them
   (what existed after the first Snakemake import is frozen, ``snakemake_runner.first_import_kept``,
   and not walked again: it lives to the end anyway). A buffered file dropped in a reference
   cycle loses its buffer here as in an ordinary exit (CPython may finalise its raw file first):
   every file this project writes is closed by a ``with`` block;
4. ``logging`` handlers are flushed and closed;
5. stdout and stderr are flushed (the envelope is complete in a pipe or file when the caller
   sees the process end); a failed stdout flush exits 120, as CPython does.

The signal file needs nothing here: every event is one unbuffered ``os.write`` on a descriptor
closed right after, and the terminal event is fsync'd (quantlab.contract.signals). Artifacts are
written atomically and closed before their rename (quantlab.artifacts.io).
``QUANTLAB_FAST_EXIT=0`` restores the ordinary exit (for comparison in benchmarks).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

ENV_FAST_EXIT = "QUANTLAB_FAST_EXIT"
FLUSH_FAILED = 120  # CPython's exit status when flushing stdout fails at shutdown


def exit_now(code: int) -> NoReturn:
    import threading

    if os.environ.get(ENV_FAST_EXIT, "1") == "0" or any(
            t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    import atexit
    import gc

    atexit._run_exitfuncs()
    gc.collect()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(flush_std_streams(code))


def flush_std_streams(code: int) -> int:
    """Flush stderr, then stdout; the exit status to use (``FLUSH_FAILED`` if stdout could not
    be written completely and the request had succeeded)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        return code or FLUSH_FAILED
    return code
