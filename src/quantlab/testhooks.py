"""Test-only hooks that make races and kills land at a known point (inert in production).

``QUANTLAB_TEST_PAUSE_AT="<point>:<path>[,<point>:<path>...]"``: when the code reaches
``pause("<point>")`` it writes ``<path>.reached`` (containing its pid) and then waits:
if ``<path>`` is a FIFO it is opened for reading and read to EOF (a test that opens the FIFO
for writing learns exactly when the request arrived, and releases it by closing it); otherwise
it waits until ``<path>`` exists (at most ``QUANTLAB_TEST_PAUSE_TIMEOUT`` seconds, default
120). A test waits for ``.reached`` (or its FIFO open), does what must happen at that point
(start a competing request, send a signal, look at a lock), then releases the request.

Points: every workflow step by name (``step_load_data``, ``step_simulate``,
``sweep.step_sweep_shard`` ..., also without the module prefix: ``commands/worker.step_name``; fired by
the ``@warm_step`` decorator), ``index_scanned`` (inside the runs-index lock, between reading the
run dirs and writing the index files), ``catalog_committed`` (the runs catalog took a run's row
and is marked dirty; the index files are not patched yet), ``forward_session_locked`` (a forward request holding its
session's lock, before planning), ``read_marker`` (a request's outputs are published and its
marker written; it is about to read the marker back), ``after_envelope`` (main.py: the outcome
is printed and signalled, before exit), ``planned`` (the executor starts: the request is planned,
nothing is locked or run yet).

``QUANTLAB_TEST_DELAY_AT="<point>:<seconds>[,...]"``: sleep that long at the point, every time
(a forced regression: ``make bench`` must fail with a delay injected into the planner,
tests/cli/test_bench_teeth.py).

``<point>#<n>:<path>`` pauses only the n-th time any process of the request reaches the point
(the calls are counted with exclusively created files ``<path>.hit.<k>``, so concurrent jobs
count once each): e.g. ``step_sweep_shard#5`` holds the fifth shard to start, by which time at
least ``5 - jobs`` shards have finished.
"""

from __future__ import annotations

import os

ENV_PAUSE_AT = "QUANTLAB_TEST_PAUSE_AT"
ENV_DELAY_AT = "QUANTLAB_TEST_DELAY_AT"


def pause(point: str) -> None:
    """Wait here if a test asked to (see the module doc)."""
    delay = os.environ.get(ENV_DELAY_AT)
    if delay:
        for seconds, _ in _items_at(point, delay):
            import time

            time.sleep(float(seconds))
    spec = os.environ.get(ENV_PAUSE_AT)
    if not spec:
        return
    for path, nth in _items_at(point, spec):
        if not nth or _count(path) == int(nth):
            _wait_at(path)


def _items_at(point: str, spec: str):
    """``(value, nth)`` of each ``<name>[#<nth>]:<value>`` item of ``spec`` naming ``point`` (a
    step's point also without its module prefix)."""
    for item in spec.split(","):
        name, _, value = item.partition(":")
        name, _, nth = name.partition("#")
        if value and name in (point, point.rpartition(".")[2]):
            yield value, nth


def _count(path: str) -> int:
    """This call's 1-based rank among all calls that reached ``path``'s point."""
    k = 1
    while True:
        try:
            os.close(os.open(f"{path}.hit.{k}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return k
        except FileExistsError:
            k += 1


pause_at = pause


def _wait_at(path: str) -> None:
    import stat
    import time

    try:
        is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        is_fifo = False
    if is_fifo:
        with open(path, "rb") as fh:
            fh.read()
        return
    with open(path + ".reached", "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    deadline = time.monotonic() + float(os.environ.get("QUANTLAB_TEST_PAUSE_TIMEOUT", "120"))
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
