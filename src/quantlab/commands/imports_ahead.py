"""What the step worker (commands/worker.py) imports ahead of its steps, and how.

The worker imports its first modules (``worker.FIRST_MODULES``, or all of ``WARM_MODULES``)
while the parent starts Snakemake, with the cyclic garbage collector off, and then freezes what
they made (:func:`kept_for_good`). A big run's later steps' modules (:data:`LATER_MODULES`: the
chart, publishing, the runs index) are imported by its simulate step on a thread while its files
are written (commands/run/steps.py), so the plot, publish and index steps import nothing.
"""

from __future__ import annotations

import contextlib
import importlib

LATER_MODULES = {
    "run": ("PIL.Image", "PIL.ImageDraw", "PIL.ImageFont", "PIL.PngImagePlugin", "quantlab.artifacts.plots",
            "filelock", "sqlite3", "quantlab.artifacts.runs_index", "quantlab.artifacts.catalog_sync",
            "quantlab.registry.runs", "quantlab.artifacts.report_doc", "quantlab.commands.robust_run"),
}


def import_all(modules) -> None:
    """Import each of ``modules``; one that fails to import is left to the step that needs it."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def import_later(command: str) -> None:
    import_all(LATER_MODULES[command])


@contextlib.contextmanager
def kept_for_good():
    """Imports (and numba's start) with the cyclic garbage collector off, then all they made
    frozen (``gc.freeze``: never scanned again): they live as long as the worker. A big run's
    worker spent ~0.2 s of CPU scanning them: ~180 collections during numba's import, and full
    collections in the chain (one while trades.csv is formatted went over ~110k objects: 40-55
    ms). The collector is on again after, for the steps' own objects."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
