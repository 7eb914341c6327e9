"""Tokenizer and recursive-descent parser of the expression language (see docs/expressions.md).

Untrusted text in, a tree of plain tuples out; nothing is evaluated here. Bounded: at most
``MAX_LENGTH`` characters, ``MAX_DEPTH`` levels of nesting (parentheses, calls, operators), each
number literal at most 32 characters. Every failure is an :class:`ExprError` carrying the
column of the offending token, formatted on one line with a caret by :meth:`ExprError.render`.

Tree nodes (``pos`` = 0-based column):
``("num", pos, value)``, ``("name", pos, identifier)``, ``("call", pos, function, args)``,
``("neg", pos, operand)``, ``("not", pos, operand)``, ``("bin", pos, op, left, right)`` with
``op`` one of ``+ - * / < <= > >= == != and or``.
"""

from __future__ import annotations

import re

from quantlab.errors import ConfigError

MAX_LENGTH = 10_000
MAX_DEPTH = 32  # nested parentheses, calls and unary operators (bounds the parser's recursion)
MAX_TREE_DEPTH = 100  # levels of the tree, operator chains included (bounds the compiler's recursion)
MAX_NUMBER_CHARS = 32

KEYWORDS = ("and", "or", "not")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|[-+*/<>(),])
""", re.VERBOSE)


class ExprError(ConfigError):
    """A compile error at ``pos`` (0-based column) of ``text``."""

    def __init__(self, message: str, pos: int | None = None, text: str = ""):
        self.message, self.pos, self.text = message, pos, text
        super().__init__(message)

    def render(self, label: str) -> str:
        """``<label>: <message> at column N: <snippet with ^ before the token>`` on one line."""
        if self.pos is None:
            return f"{label}: {self.message}"
        text = self.text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        lo, hi = max(0, self.pos - 30), min(len(text), self.pos + 30)
        snippet = ("..." if lo else "") + text[lo:self.pos] + "^" + text[self.pos:hi] + ("..." if hi < len(text) else "")
        return f"{label}: {self.message} at column {self.pos + 1}: {snippet}"


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, pos)`` tokens (kind: num, name, kw, op) plus a final ``("end", "", len)``."""
    if not isinstance(text, str):
        raise ExprError(f"must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"is too long ({len(text)} characters, at most {MAX_LENGTH})")
    tokens = []
    pos = 0
    match = _TOKEN.match
    while pos < len(text):
        m = match(text, pos)
        if m is None:
            raise ExprError(f"unexpected character {text[pos]!r}", pos, text)
        kind = m.lastgroup
        value = m.group()
        if kind == "num":
            if len(value) > MAX_NUMBER_CHARS:
                raise ExprError(f"number literal longer than {MAX_NUMBER_CHARS} characters", pos, text)
            end = m.end()
            if end < len(text) and (text[end].isalpha() or text[end] in "_."):
                raise ExprError(f"unexpected character {text[end]!r} after a number", end, text)
        elif kind == "name" and value in KEYWORDS:
            kind = "kw"
        if kind != "ws":
            tokens.append((kind, value, pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    """Precedence, loosest first: ``or``, ``and``, ``not``, comparison (not chained), ``+ -``,
    ``* /``, unary ``-``, primary (number, name, call, parenthesised expression)."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers -------------------------------------------------------------------------------
    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok=None) -> ExprError:
        tok = tok or self.peek()
        return ExprError(message, tok[2], self.text)

    def enter(self, tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", tok)

    def expect(self, value: str, what: str) -> None:
        tok = self.peek()
        if tok[1] != value or tok[0] not in ("op",):
            raise self.fail(f"expected {what}, found {_describe(tok)}")
        self.take()

    # grammar -------------------------------------------------------------------------------
    def parse(self) -> tuple:
        if self.peek()[0] == "end":
            raise ExprError("is empty")
        node = self.expr()
        tok = self.peek()
        if tok[0] != "end":
            raise self.fail(f"unexpected {_describe(tok)}")
        return node

    def expr(self) -> tuple:
        return self.binary_chain(self.and_, "or")

    def and_(self) -> tuple:
        return self.binary_chain(self.not_, "and")

    def binary_chain(self, operand, *ops) -> tuple:
        node = operand()
        while self.peek()[1] in ops and self.peek()[0] in ("kw", "op"):
            tok = self.take()
            node = ("bin", tok[2], tok[1], node, operand())
        return node

    def not_(self) -> tuple:
        tok = self.peek()
        if tok[0] == "kw" and tok[1] == "not":
            self.take()
            self.enter(tok)
            node = ("not", tok[2], self.not_())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.additive()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in COMPARISONS:
            self.take()
            right = self.additive()
            after = self.peek()
            if after[0] == "op" and after[1] in COMPARISONS:
                raise self.fail("chained comparisons are not supported (use 'and')", after)
            return ("bin", tok[2], tok[1], left, right)
        return left

    def additive(self) -> tuple:
        return self.binary_chain(self.multiplicative, "+", "-")

    def multiplicative(self) -> tuple:
        return self.binary_chain(self.unary, "*", "/")

    def unary(self) -> tuple:
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("+", "-"):
            self.take()
            self.enter(tok)
            operand = self.unary()
            self.depth -= 1
            return operand if tok[1] == "+" else ("neg", tok[2], operand)
        return self.primary()

    def primary(self) -> tuple:
        tok = self.take()
        kind, value, pos = tok
        if kind == "num":
            return ("num", pos, float(value))
        if kind == "name":
            if self.peek()[1] == "(" and self.peek()[0] == "op":
                open_tok = self.take()
                self.enter(open_tok)
                args = []
                if self.peek()[1] != ")":
                    while True:
                        args.append(self.expr())
                        if self.peek()[1] == "," and self.peek()[0] == "op":
                            self.take()
                            continue
                        break
                self.expect(")", f"',' or ')' to close the call of {value!r}")
                self.depth -= 1
                return ("call", pos, value, tuple(args))
            return ("name", pos, value)
        if kind == "op" and value == "(":
            self.enter(tok)
            node = self.expr()
            self.expect(")", "')'")
            self.depth -= 1
            return node
        raise self.fail(f"unexpected {_describe(tok)}" if kind != "end" else "unexpected end of expression", tok)


def _describe(tok) -> str:
    kind, value, _ = tok
    if kind == "end":
        return "end of expression"
    if kind == "kw":
        return f"keyword {value!r}"
    return repr(value)


def parse(text: str) -> tuple:
    """The tree of ``text``; :class:`ExprError` (a ``ConfigError``) if it is not in the language."""
    tree = _Parser(text).parse()
    _check_tree_depth(tree, text)
    return tree


def _children(node: tuple) -> tuple:
    kind = node[0]
    if kind == "call":
        return node[3]
    if kind in ("neg", "not"):
        return (node[2],)
    if kind == "bin":
        return (node[3], node[4])
    return ()


def _check_tree_depth(tree: tuple, text: str) -> None:
    """Iteratively (no recursion): reject trees deeper than ``MAX_TREE_DEPTH``."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise ExprError(f"nested deeper than {MAX_TREE_DEPTH} levels (operator chains count)", node[1], text)
        stack.extend((child, depth + 1) for child in _children(node))


def names_in(tree: tuple) -> set[str]:
    """The names (series and parameters, not functions) the tree refers to."""
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if node[0] == "name":
            found.add(node[2])
        stack.extend(_children(node))
    return found
