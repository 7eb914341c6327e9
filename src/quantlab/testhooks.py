"""Test-only hooks that make races deterministic (never set in production).

``QUANTLAB_TEST_PAUSE_AT=<step>:<path>`` makes the request wait when it reaches ``<step>``:
if ``<path>`` is a FIFO it is opened for reading and read to EOF (so a test that opens the
FIFO for writing learns exactly when the request arrived, and releases it by closing it);
otherwise the request waits until ``<path>`` exists. Steps: ``read_marker`` (the request's
outputs are published and its marker written; it is about to read the marker back).
"""

from __future__ import annotations

import os
import stat
import time


def pause_at(step: str, timeout: float = 120.0) -> None:
    spec = os.environ.get("QUANTLAB_TEST_PAUSE_AT")
    if not spec:
        return
    name, _, path = spec.partition(":")
    if name != step or not path:
        return
    try:
        is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        is_fifo = False
    if is_fifo:
        with open(path, "rb") as fh:
            fh.read()
        return
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
