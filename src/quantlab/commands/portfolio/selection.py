"""Selecting sessions (step 2 of a portfolio mode): the filters in :data:`FILTER_ORDER`, then the
ranking by ``rank_metric`` (best first) and ``top_n``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from quantlab import metric_registry
from quantlab.commands.portfolio.sessions import float_or_none, recency
from quantlab.errors import ConfigError, DataError


SELECTION_KEYS = ("top_n", "rank_metric", "min_return", "max_drawdown", "include_tickers", "exclude_tickers",
                  "include_strategies", "exclude_strategies", "latest_per_source_run")
FILTER_ORDER = ("include_tickers", "exclude_tickers", "include_strategies", "exclude_strategies", "min_return",
                "max_drawdown", "latest_per_source_run", "top_n")
EXTRA_RANK_METRICS = ("total_pnl",)          # currency P&L of the session: (n_final - 1) * initial_cash
RANK_ALIASES = {"contribution_pct": "total_pnl"}  # the original tool's spelling


def rank_metrics() -> tuple[str, ...]:
    """Metrics a selection can rank by: every key of ``compute_metrics`` plus ``total_pnl``."""
    return metric_registry.metric_names() + EXTRA_RANK_METRICS


def short_list(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _names(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"selection {key} must be a list of names or a comma-separated string, got {value!r}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"selection {key} must hold names (strings), got {item!r}")
        name = item.strip()
        if name and name.upper() not in (o.upper() for o in out):
            out.append(name)
    return out or None


def _number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"selection {key} must be a finite number, got {value!r}")
    return float(value)


def normalise_selection(selection: Mapping[str, Any] | None = None, **kwargs: Any) -> dict:
    """Validated selection criteria with defaults. Keys may carry the ``portfolio_`` prefix of
    the CLI/JSON params (``portfolio_top_n`` = ``top_n``). ``None`` means the default (no filter).

    Raises ``ConfigError`` (exit 2) naming the bad key: unknown keys, an unknown rank metric,
    top_n not a whole number >= 0 (0 = no limit), max_drawdown outside [-1, 0] (a drawdown is
    a fraction <= 0: -0.2 keeps sessions that never lost more than 20%), non-boolean
    latest_per_source_run.
    """
    raw = {**dict(selection or {}), **kwargs}
    given: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        name = key[len("portfolio_"):] if isinstance(key, str) and key.startswith("portfolio_") else key
        if name not in SELECTION_KEYS:
            unknown.append(str(key))
        else:
            given[name] = value
    if unknown:
        raise ConfigError(f"unknown portfolio selection key(s): {', '.join(sorted(unknown))}; "
                          f"valid: {', '.join(SELECTION_KEYS)}")
    top_n = given.get("top_n")
    if top_n is not None:
        if isinstance(top_n, bool) or not isinstance(top_n, (int, float)) or not math.isfinite(float(top_n)) \
                or float(top_n) != int(top_n) or top_n < 0:
            raise ConfigError(f"selection top_n must be a whole number >= 0 (0 = no limit), got {top_n!r}")
        top_n = int(top_n) or None
    metric = given.get("rank_metric") or "total_return"
    valid = rank_metrics()
    if not isinstance(metric, str) or RANK_ALIASES.get(metric, metric) not in valid:
        raise ConfigError(f"unknown portfolio rank metric {metric!r}; valid: {', '.join(valid)}")
    max_dd = _number(given.get("max_drawdown"), "max_drawdown")
    if max_dd is not None and not -1.0 <= max_dd <= 0.0:
        raise ConfigError(f"selection max_drawdown must be a drawdown fraction in [-1, 0] (e.g. -0.2 keeps "
                          f"sessions whose max_drawdown >= -0.2), got {max_dd!r}")
    latest = given.get("latest_per_source_run")
    if latest is None:
        latest = False
    elif isinstance(latest, bool) or (isinstance(latest, int) and latest in (0, 1)):
        latest = bool(latest)
    else:
        raise ConfigError(f"selection latest_per_source_run must be true or false, got {latest!r}")
    return {
        "top_n": top_n, "rank_metric": metric,
        "min_return": _number(given.get("min_return"), "min_return"), "max_drawdown": max_dd,
        "include_tickers": _names(given.get("include_tickers"), "include_tickers"),
        "exclude_tickers": _names(given.get("exclude_tickers"), "exclude_tickers"),
        "include_strategies": _names(given.get("include_strategies"), "include_strategies"),
        "exclude_strategies": _names(given.get("exclude_strategies"), "exclude_strategies"),
        "latest_per_source_run": latest,
    }


def _rank(sessions: list[dict], metric: str) -> list[dict]:
    """Best first (highest, or lowest for volatility_ann); undefined values last; ties by id."""
    key = RANK_ALIASES.get(metric, metric)
    sign = 1.0 if key in metric_registry.lower_is_better() else -1.0
    present = [s for s in sessions if float_or_none(s["metrics"].get(key)) is not None]
    absent = [s for s in sessions if float_or_none(s["metrics"].get(key)) is None]
    present.sort(key=lambda s: (sign * float(s["metrics"][key]), s["session_id"]))
    absent.sort(key=lambda s: s["session_id"])
    return present + absent


def describe_selection(criteria: dict) -> str:
    parts = [f"{k}={v if not isinstance(v, list) else ','.join(v)}" for k, v in criteria.items()
             if v not in (None, False) and k != "rank_metric"]
    return ", ".join(parts) or "no filter"


def select_sessions(sessions: list[dict], *, top_n: int | None = None, rank_metric: str | None = "total_return",
                    min_return: float | None = None, max_drawdown: float | None = None,
                    include_tickers: Iterable[str] | str | None = None,
                    exclude_tickers: Iterable[str] | str | None = None,
                    include_strategies: Iterable[str] | str | None = None,
                    exclude_strategies: Iterable[str] | str | None = None,
                    latest_per_source_run: bool = False,
                    root: str | os.PathLike | None = None) -> tuple[list[dict], dict]:
    """Filter and rank scanned sessions (order: ``FILTER_ORDER``); returns (selected best first,
    stats). Tickers and strategies match case-insensitively; an empty list means no filter.
    ``min_return``: keep total_return >= x. ``max_drawdown``: keep max_drawdown >= x (x <= 0).
    ``latest_per_source_run``: per source_run_id keep the session with the latest parsed
    updated_at (created_at as fallback; sessions without a source run id are kept).
    ``top_n``: after ranking by ``rank_metric`` (undefined values rank last), keep the first n.

    Raises ``ConfigError`` for bad criteria, ``DataError`` when nothing is left (``root`` only
    names the directory in that message).
    """
    criteria = normalise_selection(
        top_n=top_n, rank_metric=rank_metric, min_return=min_return, max_drawdown=max_drawdown,
        include_tickers=include_tickers, exclude_tickers=exclude_tickers, include_strategies=include_strategies,
        exclude_strategies=exclude_strategies, latest_per_source_run=latest_per_source_run)
    if root is None and sessions:
        root = str(Path(sessions[0]["path"]).parent)
    where = f" under {root}" if root is not None else ""
    if not sessions:
        raise DataError(f"no complete forward session{where} (nothing to build a portfolio from)")
    current = list(sessions)
    counts: dict[str, int] = {"input": len(current)}
    excluded: dict[str, str] = {}

    def apply(stage: str, keep) -> None:
        nonlocal current
        kept = []
        for s in current:
            if keep(s):
                kept.append(s)
            else:
                excluded[s["session_id"]] = stage
        current = kept
        counts[f"after_{stage}"] = len(current)

    def upper(values):
        return {v.upper() for v in values}

    c = criteria
    apply("include_tickers",
          lambda s: c["include_tickers"] is None or s["ticker"].upper() in upper(c["include_tickers"]))
    apply("exclude_tickers",
          lambda s: c["exclude_tickers"] is None or s["ticker"].upper() not in upper(c["exclude_tickers"]))
    apply("include_strategies",
          lambda s: c["include_strategies"] is None or s["strategy"].upper() in upper(c["include_strategies"]))
    apply("exclude_strategies",
          lambda s: c["exclude_strategies"] is None or s["strategy"].upper() not in upper(c["exclude_strategies"]))

    def at_least(key, threshold):
        def keep(s):
            if threshold is None:
                return True
            value = float_or_none(s["metrics"].get(key))
            return value is not None and value >= threshold
        return keep

    apply("min_return", at_least("total_return", c["min_return"]))
    apply("max_drawdown", at_least("max_drawdown", c["max_drawdown"]))
    latest_ids = None
    if c["latest_per_source_run"]:
        best: dict[str, dict] = {}
        for s in current:
            src = s["source_run_id"]
            if src is None:
                continue
            if src not in best or recency(s) > recency(best[src]):
                best[src] = s
        latest_ids = {s["session_id"] for s in best.values()}
    apply("latest_per_source_run",
          lambda s: latest_ids is None or s["source_run_id"] is None or s["session_id"] in latest_ids)
    ranked = _rank(current, c["rank_metric"])
    for s in ranked[c["top_n"]:] if c["top_n"] else []:
        excluded[s["session_id"]] = "top_n"
    current = ranked[: c["top_n"]] if c["top_n"] else ranked
    counts["after_top_n"] = len(current)
    stats = {"order": list(FILTER_ORDER), "criteria": criteria, "counts": counts, "selected": len(current),
             "selected_ids": [s["session_id"] for s in current], "excluded": excluded}
    if not current:
        raise DataError(f"no forward session{where} matches the selection ({describe_selection(criteria)}; "
                        f"{len(sessions)} eligible)")
    return current, stats
