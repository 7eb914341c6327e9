"""Test-only hooks, inert unless their environment variable is set (tests make races deterministic).

``QUANTLAB_TEST_PAUSE_AT=<point>:<path>``: when execution reaches ``<point>`` (a step name such as
``step_load_data`` or ``sweep.step_sweep_shard``, or a named point of ``main.py`` such as
``after_envelope``), write ``<path>.reached`` and wait until ``<path>`` exists (at most
``QUANTLAB_TEST_PAUSE_TIMEOUT`` seconds, default 120). A test waits for ``.reached``, acts (sends a
signal, ...), then creates ``<path>`` to let the process continue.
"""

from __future__ import annotations

import os

ENV_PAUSE_AT = "QUANTLAB_TEST_PAUSE_AT"


def pause_at(point: str) -> None:
    spec = os.environ.get(ENV_PAUSE_AT)
    if not spec:
        return
    name, sep, path = spec.partition(":")
    if not sep or not path or name not in (point, point.rpartition(".")[2]):
        return
    import time

    with open(path + ".reached", "w", encoding="utf-8"):
        pass
    deadline = time.monotonic() + float(os.environ.get("QUANTLAB_TEST_PAUSE_TIMEOUT", "120"))
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
