"""Strategy registry: every strategy by name, with its declared parameters.

``get_strategy(name)`` returns the singleton; ``describe_strategies()`` is the JSON-safe
description the CLI, the JSON Schemas and the docs are generated from. Importing this package
imports numpy only (no numba, no pandas).

The expression strategy (``expr``, its parser and compiler) is registered by name and imported
on first use (:data:`LAZY`), so a request for another strategy never pays its import.

Plugins: ``QUANTLAB_PLUGINS`` names importable modules (comma-separated) that add strategies
with the :func:`register` class decorator; they are imported at the first registry lookup.
"""

from __future__ import annotations

import importlib
import os

from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError
from quantlab.strategies.base import Param, Strategy
from quantlab.strategies.bollinger_reversion import BollingerReversion
from quantlab.strategies.buy_and_hold import BuyAndHold
from quantlab.strategies.donchian_breakout import DonchianBreakout
from quantlab.strategies.rsi_ma_cross_v2 import RsiMaCrossV2
from quantlab.strategies.sma_crossover import SmaCrossover

DEFAULT_STRATEGY = "rsi_ma_cross_v2"

# built-in strategies imported on first use: name -> (module, class)
LAZY = {"expr": ("quantlab.strategies.expr", "ExprStrategy")}


class _Registry(dict):
    """name -> Strategy. Every name is there from the start (in registry order); a :data:`LAZY`
    one holds None until its value is first read, which imports its module."""

    def _value(self, name: str) -> Strategy | None:
        value = dict.get(self, name)
        if value is None and name in LAZY:
            module, cls = LAZY[name]
            value = getattr(importlib.import_module(module), cls)()
            dict.__setitem__(self, name, value)
        return value

    def __getitem__(self, name: str) -> Strategy:
        if name not in self:
            raise KeyError(name)
        return self._value(name)

    def get(self, name, default=None):
        return self._value(name) if name in self else default

    def values(self) -> list[Strategy]:
        return [self._value(name) for name in self]

    def items(self) -> list[tuple[str, Strategy]]:
        return [(name, self._value(name)) for name in self]


REGISTRY: dict[str, Strategy] = _Registry(
    {s.name: s for s in (RsiMaCrossV2(), SmaCrossover(), BollingerReversion(), DonchianBreakout(), BuyAndHold())},
)
for _name in LAZY:
    dict.__setitem__(REGISTRY, _name, None)


_loaded_plugins: set[str] = set()


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a :class:`Strategy` subclass to the registry (for plugins)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError("register expects a Strategy subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must declare a non-empty name")
    existing = REGISTRY.get(name)
    if existing is not None and type(existing) is not cls:
        raise ConfigError(f"strategy name '{name}' is already registered")
    REGISTRY[name] = cls()
    return cls


def load_plugins() -> None:
    """Import the modules named in ``QUANTLAB_PLUGINS`` (once each); ``ConfigError`` if one fails."""
    for module in os.environ.get("QUANTLAB_PLUGINS", "").replace(os.pathsep, ",").split(","):
        module = module.strip()
        if not module or module in _loaded_plugins:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ConfigError(f"cannot load strategy plugin '{module}' (QUANTLAB_PLUGINS): "
                              f"{type(exc).__name__}: {exc}") from exc
        _loaded_plugins.add(module)


def get_strategy(name: str) -> Strategy:
    """The registered strategy called ``name``; ``ConfigError`` listing the valid names otherwise."""
    load_plugins()
    strategy = REGISTRY.get(name) if isinstance(name, str) else None
    if strategy is None:
        import difflib

        msg = f"unknown strategy {name!r}"
        close = difflib.get_close_matches(str(name), list(REGISTRY), n=1, cutoff=0.6)
        if close:
            msg += f" (did you mean '{close[0]}'?)"
        raise ConfigError(msg + "; valid strategies: " + ", ".join(REGISTRY))
    return strategy


def describe_strategies() -> list[dict]:
    """Every strategy and its parameters as JSON-safe dicts (name, description, params, constraints)."""
    load_plugins()
    return [s.describe() for s in REGISTRY.values()]


__all__ = [
    "DEFAULT_STRATEGY",
    "REGISTRY",
    "Param",
    "Signals",
    "Strategy",
    "describe_strategies",
    "get_strategy",
    "load_plugins",
    "register",
]
