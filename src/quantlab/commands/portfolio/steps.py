"""The ``portfolio`` command's step functions (workflow/rules/portfolio.smk):

    portfolio_mode (one job per mode)  -> <mode>.json       (scan + select + combine)
    publish_portfolio                  -> published.json    (writes <out_dir>/<run_id>/ atomically)
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from quantlab.artifacts.io import atomic_write_json
from quantlab.commands.portfolio.combine import MODES, combine, load_weights
from quantlab.commands.portfolio.selection import normalise_selection, select_sessions
from quantlab.commands.portfolio.sessions import nothing_found, scan_sessions
from quantlab.commands.worker import warm_step
from quantlab.errors import ConfigError


def run_mode(spec: Mapping[str, Any]) -> dict:
    """scan + select + combine for one mode spec (what :func:`step_portfolio_mode` writes)."""
    root = spec.get("root")
    if not root:
        raise ConfigError("portfolio needs the root directory of the forward sessions")
    mode = spec.get("mode")
    if mode not in MODES:
        raise ConfigError(f"unknown portfolio mode {mode!r}; valid: {', '.join(MODES)}")
    criteria = normalise_selection(spec.get("selection") or {})
    weights = spec.get("weights")
    if isinstance(weights, (str, os.PathLike)):
        weights = load_weights(weights)
    sessions, scan = scan_sessions(root)
    if not sessions:
        raise nothing_found(root, scan)
    selected, selection = select_sessions(sessions, root=root, **criteria)
    result = combine(selected, mode, weights if mode == "custom_weight" else None)
    return {"kind": "quantlab.portfolio.mode", "root": str(root), "scan": scan, "selection": selection, **result}


@warm_step
def step_portfolio_mode(spec: dict, out_json: str) -> None:
    """Scan + select + combine one mode; write its result JSON atomically (strict JSON).

    ``spec`` = ``{"root", "mode", "weights": {session_id: weight} | path | None,
    "selection": {top_n, rank_metric, min_return, max_drawdown, include_tickers, exclude_tickers,
    include_strategies, exclude_strategies, latest_per_source_run}}``.
    """
    atomic_write_json(out_json, run_mode(spec))


@warm_step
def step_publish_portfolio(record: dict, mode_jsons: list[str], marker_out: str) -> dict:
    from quantlab.commands.portfolio.publish import publish_portfolio

    return publish_portfolio(record, mode_jsons, marker_out)
