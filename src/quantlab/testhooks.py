"""Test-only pause points, so tests can order concurrent requests without sleeping.

``QUANTLAB_TEST_PAUSE_AT=<step name>:<path>``: when the process reaches :func:`pause` with that
step name, it writes ``<path>.reached`` and waits until ``<path>`` exists. Unset (production):
one environment lookup, nothing else.
"""

from __future__ import annotations

import os
import time


def pause(step: str) -> None:
    spec = os.environ.get("QUANTLAB_TEST_PAUSE_AT")
    if not spec:
        return
    name, _, path = spec.partition(":")
    if name != step or not path:
        return
    with open(path + ".reached", "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    while not os.path.exists(path):
        time.sleep(0.01)
