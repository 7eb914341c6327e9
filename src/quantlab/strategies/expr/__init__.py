"""Expression strategies: a whitelist language parsed by :mod:`.parser` (never ``eval``), checked
and evaluated as vectorised numpy by :mod:`.compiler`, with the functions of :mod:`.functions`;
registered as ``strategy: "expr"`` by :mod:`.strategy`. See docs/expressions.md."""

from quantlab.strategies.expr.strategy import ExprStrategy

__all__ = ["ExprStrategy"]
