"""Type-check, bind and evaluate expression trees (from :mod:`.parser`) over numpy bars.

:func:`compile_expr` binds parameter names to their numbers, folds constants, checks every
function call (names, arity, window arguments) and returns a typed tree whose nodes are plain
hashable tuples ``(tag, kind, lead, ...)``: ``kind`` is ``number`` (a constant), ``series`` or
``condition``; ``lead`` is the number of leading bars the value is undefined (nested look-backs
add up). :func:`evaluate` computes a typed tree over the bars, vectorised, memoising every
non-constant node in :data:`CACHE` (keyed by the node itself, i.e. function, arguments and
windows, for the current input arrays), so combinations of a sweep that share sub-expressions
compute them once.

Arithmetic: IEEE float64, except that division by zero is ``nan`` (undefined). Every comparison
with an undefined (``nan``) operand is false (``!=`` too); ``and``/``or``/``not`` act on
conditions only.
"""

from __future__ import annotations

import difflib
import math
import threading
from collections import OrderedDict

from quantlab._lazy import np

from quantlab.strategies.expr.functions import FUNCTIONS, MAX_WINDOW, SERIES
from quantlab.strategies.expr.parser import COMPARISONS, ExprError, parse


def compile_expr(text: str, params: dict[str, float]) -> tuple:
    """The typed tree of ``text`` with ``params`` bound; :class:`ExprError` if invalid."""
    tree = parse(text)
    return _Binder(text, params).bind(tree)


class _Binder:
    def __init__(self, text: str, params: dict[str, float]):
        self.text = text
        self.params = params

    def fail(self, message: str, pos: int) -> ExprError:
        return ExprError(message, pos, self.text)

    def bind(self, node: tuple) -> tuple:
        tag, pos = node[0], node[1]
        if tag == "num":
            return _const(node[2])
        if tag == "name":
            return self.name(node[2], pos)
        if tag == "neg":
            operand = self.bind(node[2])
            self.need_numeric(operand, "-", pos)
            if operand[1] == "number":
                return _const(-operand[3])
            return ("neg", "series", operand[2], operand)
        if tag == "not":
            operand = self.bind(node[2])
            self.need_condition(operand, "not", pos)
            return ("not", "condition", operand[2], operand)
        if tag == "bin":
            return self.binary(node[2], self.bind(node[3]), self.bind(node[4]), pos)
        return self.call(node[2], node[3], pos)

    def name(self, name: str, pos: int) -> tuple:
        if name in SERIES:
            return ("series", "series", 0, name)
        if name in self.params:
            return _const(self.params[name])
        if name in FUNCTIONS:
            raise self.fail(f"'{name}' is a function: call it as {FUNCTIONS[name].signature()}", pos)
        raise self.fail(f"unknown name '{name}'{_did_you_mean(name, [*self.params, *SERIES])}"
                        f" (names are {', '.join(SERIES)} and the numeric strategy_params"
                        f"{': ' + ', '.join(self.params) if self.params else ''})", pos)

    def need_numeric(self, node: tuple, op: str, pos: int) -> None:
        if node[1] == "condition":
            raise self.fail(f"'{op}' needs numbers or series, got a condition", pos)

    def need_condition(self, node: tuple, op: str, pos: int) -> None:
        if node[1] != "condition":
            raise self.fail(f"'{op}' needs conditions (comparisons, crossed_above/below, and/or/not), "
                            f"got a {node[1]}", pos)

    def binary(self, op: str, a: tuple, b: tuple, pos: int) -> tuple:
        lead = max(a[2], b[2])
        if op in ("and", "or"):
            self.need_condition(a, op, pos)
            self.need_condition(b, op, pos)
            return ("bin", "condition", lead, op, a, b)
        self.need_numeric(a, op, pos)
        self.need_numeric(b, op, pos)
        if op in COMPARISONS:
            return ("bin", "condition", lead, op, a, b)
        if a[1] == b[1] == "number":
            return _const(_fold(op, a[3], b[3]))
        return ("bin", "series", lead, op, a, b)

    def call(self, name: str, args: tuple, pos: int) -> tuple:
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise self.fail(f"unknown function '{name}'{_did_you_mean(name, list(FUNCTIONS))}"
                            f" (functions: {', '.join(FUNCTIONS)})", pos)
        if not fn.min_args <= len(args) <= len(fn.args):
            count = str(fn.min_args) if fn.min_args == len(fn.args) else f"{fn.min_args} to {len(fn.args)}"
            raise self.fail(f"{name}() takes {count} arguments, got {len(args)}: {fn.signature()}", pos)
        series, consts = [], []
        for i, kind in enumerate(fn.args):
            if i >= len(args):
                consts.append(fn.defaults[i - fn.min_args])
                continue
            arg = self.bind(args[i])
            arg_pos = args[i][1]
            if kind == "series":
                self.need_numeric(arg, f"{name}() argument {i + 1}", arg_pos)
                series.append(arg)
                continue
            if arg[1] != "number":
                raise self.fail(f"{name}() argument {i + 1} ({kind}) must be a constant: a number or a "
                                f"parameter name, not a series", arg_pos)
            value = arg[3]
            if kind == "window":
                if not (math.isfinite(value) and value == int(value) and 1 <= value <= MAX_WINDOW):
                    raise self.fail(f"{name}() window must be a whole number of bars in [1, {MAX_WINDOW}], "
                                    f"got {_fmt(value)}", arg_pos)
                value = int(value)
            consts.append(value)
        consts = tuple(int(c) if k == "window" else float(c)
                       for k, c in zip([k for k in fn.args if k != "series"], consts))
        lead = fn.lookback([s[2] for s in series], consts)
        return ("call", fn.returns, lead, name, tuple(series), consts)


def _const(value: float) -> tuple:
    return ("const", "number", 0, float(value))


def _fold(op: str, a: float, b: float) -> float:
    return float(_arithmetic(op, np.float64(a), np.float64(b)))


def _fmt(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else repr(x)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ------------------------------------------------------------------------------------ evaluation
class _Cache:
    """Values of typed nodes for one set of input arrays (reset when the arrays change), LRU,
    at most ``max_bytes`` of arrays. Thread-safe."""

    def __init__(self, max_bytes: int = 128 << 20):
        self.max_bytes = max_bytes
        self.inputs: tuple = ()
        self.values: OrderedDict = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def bind(self, arrays: tuple) -> None:
        with self.lock:
            if len(arrays) != len(self.inputs) or any(a is not b for a, b in zip(arrays, self.inputs)):
                self.inputs = arrays  # holding them keeps their ids from being reused
                self.values.clear()
                self.bytes = 0

    def get(self, key):
        with self.lock:
            value = self.values.get(key)
            if value is not None:
                self.values.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return value

    def put(self, key, value) -> None:
        with self.lock:
            if key in self.values:
                return
            value.flags.writeable = False
            self.values[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes and len(self.values) > 1:
                _, old = self.values.popitem(last=False)
                self.bytes -= old.nbytes


CACHE = _Cache()


ARITHMETIC = ("+", "-", "*", "/")


def _arithmetic(op: str, a, b):
    """IEEE float64 arithmetic (overflow gives inf), except that x / 0 is nan."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return np.where(b == 0, np.nan, a / b)


def evaluate(node: tuple, bars: dict):
    """The value of a typed tree: a float or bool constant, or an array over the bars."""
    tag = node[0]
    if tag == "const":
        return node[3]
    if tag == "series":
        return bars[node[3]]
    cached = CACHE.get(node)
    if cached is not None:
        return cached
    n = len(bars["close"])
    if tag == "call":
        value = _call(node, bars, n)
    elif tag == "neg":
        value = -evaluate(node[3], bars)
    elif tag == "not":
        value = ~_as_bool(evaluate(node[3], bars), n)
    else:
        value = _binary(node[3], evaluate(node[4], bars), evaluate(node[5], bars), n)
    value = np.asarray(value)
    if value.shape != (n,):
        value = np.broadcast_to(value, (n,)).copy()
    CACHE.put(node, value)
    return value


def _call(node: tuple, bars: dict, n: int):
    name, series, consts = node[3], node[4], node[5]
    fn = FUNCTIONS[name]
    windows = [c for k, c in zip([k for k in fn.args if k != "series"], consts) if k == "window"]
    for w in windows:
        if w > n:
            raise ExprError(f"{name}() window {w} is longer than the {n} bars of data")
    xs = []
    for s in series:
        value = evaluate(s, bars)
        if np.ndim(value) == 0:
            value = np.full(n, float(value))
        xs.append(value)
    return fn.run(bars, [s[2] for s in series], xs, consts)


def _as_bool(value, n: int):
    return np.broadcast_to(np.asarray(value, dtype=bool), (n,))


def _binary(op: str, a, b, n: int):
    if op == "and":
        return _as_bool(a, n) & _as_bool(b, n)
    if op == "or":
        return _as_bool(a, n) | _as_bool(b, n)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if op in ARITHMETIC:
        return _arithmetic(op, a, b)
    with np.errstate(invalid="ignore"):
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "==":
            return a == b
        return (a != b) & ~np.isnan(a) & ~np.isnan(b)


def _typed_children(node: tuple) -> tuple:
    tag = node[0]
    if tag == "call":
        return node[4]
    if tag in ("neg", "not"):
        return (node[3],)
    if tag == "bin":
        return (node[4], node[5])
    return ()


def uses_series(node: tuple, name: str | None = None) -> bool:
    """Whether the typed tree reads the series ``name`` (any series if None)."""
    return any(n[0] == "series" and (name is None or n[3] == name) for n in _walk(node))


def reads_bars(node: tuple) -> bool:
    """Whether the typed tree depends on the bars (a series, or a function such as atr(14) that
    reads them itself)."""
    return uses_series(node) or any(n[0] == "call" and not n[4] for n in _walk(node))


def _walk(node: tuple):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(_typed_children(n))


def evaluate_condition(node: tuple, bars: dict) -> np.ndarray:
    """A condition tree as a fresh bool array over the bars."""
    return np.array(_as_bool(evaluate(node, bars), len(bars["close"])), dtype=bool)
