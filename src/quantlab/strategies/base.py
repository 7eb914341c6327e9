"""What a strategy is: declared parameters (data) plus a signal function over numpy arrays.

The parameter declarations are the single source the CLI, the request/sweep JSON Schemas and the
docs read (:func:`quantlab.strategies.describe_strategies`). Parameters are often written by an
LLM, so :meth:`Strategy.resolve_params` is strict wherever a mistake would change the result
(unknown names, fractional integers, out-of-range values) and lenient where it would not
(``None`` = default, ``5.0`` for an integer, ``5`` for a float).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from quantlab._lazy import np

from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError, QuantLabError, StrategyError

JSON_TYPES = {int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int | float | bool
    default: int | float | bool
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": JSON_TYPES[self.type],
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.description,
        }

    def coerce(self, value: object, strategy: str) -> int | float | bool:
        """``value`` as this parameter's type, range-checked; ``None`` gives the default.
        Accepted plain values are remembered per (type, value): a 100,000-combination grid
        repeats a few hundred distinct values, each checked once (errors are never cached)."""
        kind = type(value)
        if kind in _PLAIN and not (kind is float and value == 0.0):  # -0.0 == 0.0: keep its sign
            cache = self.__dict__.get("_coerced")
            if cache is None:  # on the instance (a frozen dataclass: not a field, not hashed)
                cache = {}
                object.__setattr__(self, "_coerced", cache)
            hit = cache.get((kind, value), _MISSING)
            if hit is _MISSING:
                hit = cache[(kind, value)] = self._coerce(value, strategy)
            return hit
        return self._coerce(value, strategy)

    def _coerce(self, value: object, strategy: str) -> int | float | bool:
        where = f"strategy '{strategy}' parameter '{self.name}'"
        if value is None:
            return self.default
        if self.type is bool:
            if is_bool(value):
                return bool(value)
            raise ConfigError(f"{where} must be a boolean (true/false), got {value!r}")
        if is_bool(value) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{where} must be {'an integer' if self.type is int else 'a number'}, "
                              f"got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be finite, got {value!r}")
        if self.type is int:
            if isinstance(value, numbers.Integral):
                result: int | float = int(value)
            elif number.is_integer():
                result = int(number)
            else:
                raise ConfigError(f"{where} must be a whole number, got {value!r}")
        else:
            result = number
        too_low = self.minimum is not None and result < self.minimum
        too_high = self.maximum is not None and result > self.maximum
        if too_low or too_high:
            lo = "-inf" if self.minimum is None else _fmt(self.minimum)
            hi = "inf" if self.maximum is None else _fmt(self.maximum)
            raise ConfigError(f"{where} = {_fmt(result)} is out of range [{lo}, {hi}]")
        return result


_PLAIN = (int, float, bool, type(None))   # hashable values whose coercion depends on the value only
_MISSING = object()


def is_bool(value: object) -> bool:
    """bool or numpy.bool_, without importing numpy just to ask."""
    if isinstance(value, bool):
        return True
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class Strategy:
    """Base class; one subclass (and module) per strategy, registered in ``strategies.REGISTRY``.

    Subclasses declare ``name``, ``description``, ``params`` and implement :meth:`compute`
    (plus :meth:`warmup_bars` and, if needed, :meth:`check`). Call :meth:`signals`, not
    ``compute``: it validates inputs and outputs and turns failures into ``StrategyError``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    constraints: ClassVar[tuple[str, ...]] = ()  # cross-parameter rules, in words (enforced by check)
    uses_volume: ClassVar[bool] = False  # compute() takes a volume= keyword (the bars' volume or None)

    # --- parameters -----------------------------------------------------------------------
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def resolve_params(self, given: Mapping[str, object] | None = None) -> dict:
        """Defaults overlaid with ``given``, coerced and validated (``ConfigError``, one line)."""
        resolved = self.coerce_params(given)
        self.check(resolved)
        return resolved

    def coerce_params(self, given: Mapping[str, object] | None = None) -> dict:
        """Defaults overlaid with ``given``, each value coerced and range-checked; the
        cross-parameter constraints (:meth:`check`) are not applied."""
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"strategy '{self.name}' parameters must be an object, got {type(given).__name__}")
        declared = {p.name: p for p in self.params}
        for key in given:
            if key not in declared:
                raise ConfigError(self._unknown_key_message(key))
        return {name: p.coerce(given.get(name), self.name) for name, p in declared.items()}

    def _unknown_key_message(self, key: object) -> str:
        import difflib

        valid = [p.name for p in self.params]
        msg = f"unknown parameter {key!r} for strategy '{self.name}'"
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        if close:
            msg += f" (did you mean '{close[0]}'?)"
        msg += "; valid parameters: " + (", ".join(valid) if valid else "none")
        return msg

    def check(self, params: dict) -> None:
        """Cross-parameter constraints; raise ``ConfigError``. Default: none."""

    # --- signals ------------------------------------------------------------------------------
    def warmup_bars(self, params: dict) -> int:
        """Bars of history the indicators need before the first signal can occur."""
        return 0

    def compute(self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                params: dict) -> Signals:
        raise NotImplementedError

    def grid_path(self, close, params: list[dict]):
        """This strategy's fused grid path (``engine.sweep.GridPath``), or None (the default).

        None: the grid engine calls :meth:`signals` once per combo (numpy), then its kernel.
        A strategy may instead give a numba-compilable function that writes one combo's
        signals inside the grid kernel from shared data it prepares here (indicator tables,
        cumulative sums, per-combo parameters): ``sma_crossover`` and ``rsi_ma_cross_v2`` do.
        ``close``: the float64 closes of the whole window; ``params``: the combos' resolved
        strategy parameters (engine overrides already taken out). The fused signals must equal
        :meth:`signals`' bar for bar (tests/unit/test_sweep_engine.py checks the built-in ones).
        """
        return None

    def signals(self, open_, high, low, close, params: Mapping[str, object] | None = None,
                volume=None) -> Signals:
        """Entry/exit signals for float64 OHLC arrays of equal length.

        ``volume`` (optional, same length) reaches :meth:`compute` only if the strategy declares
        ``uses_volume``.

        ``params`` are resolved first (already-resolved params pass unchanged). Raises
        ``ConfigError`` for bad params and ``StrategyError`` for anything that fails inside.
        """
        params = self.resolve_params(params)
        try:
            arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close)]
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy '{self.name}': prices are not numeric arrays ({exc})") from exc
        n = len(arrays[3])
        if any(a.ndim != 1 or len(a) != n for a in arrays):
            raise StrategyError(f"strategy '{self.name}': open, high, low, close must be 1-D arrays of equal length")
        extra = {}
        if self.uses_volume:
            if volume is not None:
                volume = np.ascontiguousarray(volume, dtype=np.float64)
                if volume.shape != (n,):
                    raise StrategyError(f"strategy '{self.name}': volume must be a 1-D array as long as close")
            extra["volume"] = volume
        try:
            result = self.compute(*arrays, params, **extra)
        except QuantLabError:
            raise
        except Exception as exc:  # a bug or a numeric failure inside strategy code: exit 4
            raise StrategyError(f"strategy '{self.name}' failed: {type(exc).__name__}: {exc}") from exc
        for label in ("entries", "exits"):
            arr = getattr(result, label)
            if not isinstance(arr, np.ndarray) or arr.dtype != np.bool_ or arr.shape != (n,):
                raise StrategyError(f"strategy '{self.name}' returned malformed {label}")
        return result

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "params": [p.describe() for p in self.params],
            "constraints": list(self.constraints),
        }

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
