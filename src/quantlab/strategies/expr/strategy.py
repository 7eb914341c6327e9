"""``strategy: "expr"``: entry and exit rules written in the expression language.

``strategy_params``: ``entry`` and ``exit`` (expressions, required), ``short_entry`` and
``short_exit`` (optional, only with ``allow_short``), and any number of numeric parameters the
expressions refer to by name (which ``param_grid`` can range over). See docs/expressions.md.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from functools import lru_cache

from quantlab.engine.simulator import Signals
from quantlab.errors import ConfigError
from quantlab.strategies.base import Strategy, is_bool
from quantlab.strategies.expr.functions import FUNCTIONS, MAX_WINDOW, SERIES
from quantlab.strategies.expr.parser import KEYWORDS, MAX_DEPTH, MAX_LENGTH, ExprError

# the compiler (difflib, threading) is imported when an expression is compiled, not at registry import
RESERVED = frozenset((*SERIES, *KEYWORDS, *FUNCTIONS))

EXPRESSION_KEYS = ("entry", "exit", "short_entry", "short_exit")
REQUIRED_KEYS = ("entry", "exit")
SHORT_KEYS = ("short_entry", "short_exit")
MAX_NAMES = 64
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

GRAMMAR = """\
expr       := or_expr
or_expr    := and_expr ("or" and_expr)*
and_expr   := not_expr ("and" not_expr)*
not_expr   := "not" not_expr | comparison
comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
sum        := product (("+" | "-") product)*
product    := unary (("*" | "/") unary)*
unary      := ("-" | "+") unary | primary
primary    := NUMBER | SERIES | PARAM | FUNCTION "(" [expr ("," expr)*] ")" | "(" expr ")"
SERIES     := open | high | low | close | volume
NUMBER     := digits ["." digits] [("e" | "E") ["+" | "-"] digits]
PARAM      := a numeric key of strategy_params"""


def language() -> dict:
    """The language as JSON-safe data (``--list-strategies``, ``--schema``)."""
    return {
        "grammar": GRAMMAR,
        "series": list(SERIES),
        "functions": [f.describe() for f in FUNCTIONS.values()],
        "semantics": [
            "entry/exit (and short_entry/short_exit) must be conditions: comparisons, crossed_above/below, "
            "and/or/not of conditions",
            "a window is a constant whole number of bars (a number or a parameter name), "
            f"1 <= window <= min({MAX_WINDOW}, bars of data)",
            "nan marks an undefined value: every comparison with nan is false; x / 0 is nan",
            "warm-up = the largest look-back of the expressions; nested look-backs add up",
            "with allow_short the engine reverses: short_entry goes short like exit, short_exit "
            "covers and goes long like entry",
        ],
        "limits": {"max_length": MAX_LENGTH, "max_nesting": MAX_DEPTH, "max_window": MAX_WINDOW,
                   "max_params": MAX_NAMES},
        "example": {"entry": "crossed_above(sma(close, fast), sma(close, slow)) and rsi(close, 14) < rsi_max",
                    "exit": "crossed_below(sma(close, fast), sma(close, slow))",
                    "fast": 10, "slow": 50, "rsi_max": 60},
    }


@lru_cache(maxsize=4096)
def _compiled(key: str, text: str, names: tuple) -> tuple:
    from quantlab.strategies.expr.compiler import compile_expr

    try:
        return compile_expr(text, dict(names))
    except ExprError as exc:
        raise ConfigError(exc.render(f"strategy 'expr' {key}")) from None


class ExprStrategy(Strategy):
    name = "expr"
    description = ("Entry and exit rules written as expressions over open/high/low/close/volume, indicators "
                   "and numeric parameters (see 'language'); e.g. entry = "
                   "\"crossed_above(sma(close, fast), sma(close, slow))\", fast = 10, slow = 50.")
    params = ()
    uses_volume = True

    def coerce_params(self, given: Mapping[str, object] | None = None) -> dict:
        """Expressions parsed and compiled (errors with a caret), numbers checked; the condition
        check (:meth:`check`) is left to :meth:`resolve_params`, as for every strategy."""
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"strategy 'expr' parameters must be an object, got {type(given).__name__}")
        missing = [k for k in REQUIRED_KEYS if given.get(k) is None]
        if missing:
            raise ConfigError(f"strategy 'expr' needs strategy_params.{missing[0]} (an expression string), "
                              "e.g. {\"entry\": \"crossed_above(sma(close, fast), sma(close, slow))\", "
                              "\"exit\": \"crossed_below(sma(close, fast), sma(close, slow))\", "
                              "\"fast\": 10, \"slow\": 50}")
        names: dict[str, int | float] = {}
        for key, value in given.items():
            if key in EXPRESSION_KEYS:
                if value is not None and not isinstance(value, str):
                    raise ConfigError(f"strategy 'expr' parameter '{key}' must be an expression string, "
                                      f"got {type(value).__name__}")
                continue
            names[str(key)] = self._number(key, value)
        if len(names) > MAX_NAMES:
            raise ConfigError(f"strategy 'expr' takes at most {MAX_NAMES} numeric parameters, got {len(names)}")
        bound = tuple(sorted(names.items()))
        out: dict = {}
        for key in EXPRESSION_KEYS:
            text = given.get(key)
            if text is not None:
                _compiled(key, text, bound)
                out[key] = text
        out.update(names)
        return out

    @staticmethod
    def _number(key: object, value: object) -> int | float:
        where = f"strategy 'expr' parameter '{key}'"
        if not isinstance(key, str) or not _NAME.match(key):
            raise ConfigError(f"{where}: a parameter name must be an identifier (letters, digits, _; "
                              f"at most 64 characters)")
        if key in RESERVED:
            raise ConfigError(f"{where}: '{key}' is a reserved word (a series, a function or and/or/not)")
        if is_bool(value) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{where} must be a number (the expressions go in "
                              f"{', '.join(EXPRESSION_KEYS)}), got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{where} must be finite, got {value!r}")
        return int(value) if isinstance(value, numbers.Integral) else float(value)

    def _trees(self, params: dict) -> dict[str, tuple]:
        bound = tuple(sorted((k, v) for k, v in params.items() if k not in EXPRESSION_KEYS))
        return {key: _compiled(key, params[key], bound) for key in EXPRESSION_KEYS if params.get(key) is not None}

    def check(self, params: dict) -> None:
        for key, tree in self._trees(params).items():
            if tree[1] != "condition":
                raise ConfigError(f"strategy 'expr' {key}: must be a condition (a comparison, crossed_above/below, "
                                  f"and/or/not), got a {tree[1]}")

    def lint(self, params: dict) -> list[str]:
        """Warnings about resolved params that run but look like mistakes: numeric names no
        expression uses, and rules that do not depend on the bars (always or never true)."""
        from quantlab.strategies.expr.compiler import reads_bars
        from quantlab.strategies.expr.parser import names_in, parse

        used = set()
        for key in EXPRESSION_KEYS:
            if params.get(key) is not None:
                used |= names_in(parse(params[key]))
        out = [f"strategy_params.{name} is not used by any expression" for name in params
               if name not in EXPRESSION_KEYS and name not in used]
        out += [f"strategy_params.{key} does not depend on the bars: it is the same (always or never true) on "
                f"every bar" for key, tree in self._trees(params).items() if not reads_bars(tree)]
        return out

    def warmup_bars(self, params: dict) -> int:
        params = self.resolve_params(params)
        return max(tree[2] for tree in self._trees(params).values())

    def compute(self, open_, high, low, close, params, volume=None):
        from quantlab.strategies.expr.compiler import uses_series

        trees = self._trees(params)
        bars = {"open": open_, "high": high, "low": low, "close": close}
        if volume is not None:
            bars["volume"] = volume
        elif any(uses_series(t, "volume") for t in trees.values()):
            raise ConfigError("strategy 'expr': volume is not available on this path (it is passed to "
                              "strategies by run, not by sweeps yet)")
        from quantlab.strategies.expr.compiler import CACHE, evaluate_condition

        CACHE.bind(tuple(bars[k] for k in ("open", "high", "low", "close", "volume") if k in bars))
        try:
            values = {key: evaluate_condition(tree, bars) for key, tree in trees.items()}
        except ExprError as exc:
            raise ConfigError(exc.render("strategy 'expr'")) from None
        entries, exits = values["entry"], values["exit"]
        if "short_entry" in values:
            exits = exits | values["short_entry"]
        if "short_exit" in values:
            entries = entries | values["short_exit"]
        return Signals(entries, exits)

    def describe(self) -> dict:
        expr_param = {"type": "string", "default": None, "minimum": None, "maximum": None}
        return {
            "name": self.name,
            "description": self.description,
            "params": [
                {**expr_param, "name": "entry", "required": True, "description": "Condition to go long."},
                {**expr_param, "name": "exit", "required": True, "description": "Condition to leave the long."},
                {**expr_param, "name": "short_entry",
                 "description": "allow_short only: condition to go short (acts like exit)."},
                {**expr_param, "name": "short_exit",
                 "description": "allow_short only: condition to cover the short (acts like entry: goes long)."},
            ],
            "additional_params": {"type": "number", "description": "Numeric parameters the expressions refer "
                                  "to by name; param_grid can range over them."},
            "constraints": ["entry and exit are required conditions", "short_entry/short_exit need allow_short"],
            "language": language(),
        }
