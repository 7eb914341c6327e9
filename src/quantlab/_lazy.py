"""A lazy stand-in for ``numpy`` in modules the request planner imports.

``main.py`` plans a request (strategy registry, parameter validation) before it starts Snakemake;
none of that needs numpy, and importing it costs ~45 ms of a cold ``run``'s budget. Modules on
that path write ``from quantlab._lazy import np``: the real numpy is imported on first use.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


class _LazyNumpy:
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        numpy = sys.modules.get("numpy")  # ~0.05 us once imported; import_module costs ~1.5 us a call
        return getattr(numpy if numpy is not None else importlib.import_module("numpy"), name)

    def __repr__(self) -> str:
        return "<lazy numpy>"


np: Any = _LazyNumpy()


def bind(namespace: dict) -> None:
    """Replace the stand-in by numpy itself in a module's ``namespace`` (its ``globals()``), for a
    module whose numpy-heavy part is about to run: each attribute of the stand-in is a Python call."""
    if type(namespace.get("np")) is _LazyNumpy:
        namespace["np"] = importlib.import_module("numpy")
