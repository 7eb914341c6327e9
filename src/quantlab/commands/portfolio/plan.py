"""Plan a ``portfolio`` request: validate everything before Snakemake starts (exit 2/3 early),
claim the run id, and build the Snakemake config (one ``portfolio_mode`` job per mode, then
``publish_portfolio``). The aggregation itself is in :mod:`.sessions`, :mod:`.selection` and :mod:`.combine`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from quantlab.artifacts.provenance import canonical_hash
from quantlab.commands.common import StagedPlan
from quantlab.contract.paths import outputs_root, resolve_input_path, resolve_output_dir
from quantlab.contract.runid import claim_run_id, iso_z, peek_run_id
from quantlab.errors import ConfigError, DataError

SELECTION_PARAMS = ("portfolio_top_n", "portfolio_rank_metric", "portfolio_min_return", "portfolio_max_drawdown",
                    "portfolio_include_tickers", "portfolio_exclude_tickers", "portfolio_include_strategies",
                    "portfolio_exclude_strategies", "portfolio_latest_per_source_run")


@dataclass
class PortfolioPlan(StagedPlan):
    run_id: str
    out_dir: Path
    config: dict
    kind = "portfolio"


def _claim(out_dir: Path, digest: str, claim: bool) -> tuple[str, datetime]:
    if claim:
        return claim_run_id(out_dir, "portfolio", digest)
    return peek_run_id("portfolio", digest)


def plan_portfolio(params: dict, *, request_id: Any, warnings: list[str], claim: bool = True) -> PortfolioPlan:
    from quantlab.commands.portfolio.combine import compare_modes, load_weights
    from quantlab.commands.portfolio.selection import normalise_selection

    if params.get("legs") is not None:
        return _plan_basket(params, request_id=request_id, warnings=warnings, claim=claim)
    compare = params.get("portfolio_compare")
    report = params.get("portfolio_report")
    if compare and report and compare != report:
        raise ConfigError("give params.portfolio_report or params.portfolio_compare, not both")
    root_arg = compare or report
    if not root_arg:
        raise ConfigError("JSON request for 'portfolio' requires params.portfolio_report (or portfolio_compare): "
                          "the root directory of forward sessions")
    root = resolve_input_path(root_arg, "portfolio_report")
    if not root.is_dir():
        raise DataError(f"no forward session root at {root}")
    selection = normalise_selection({k: params[k] for k in SELECTION_PARAMS if params.get(k) is not None})
    weights = None
    if params.get("portfolio_weights"):
        weights = load_weights(resolve_input_path(params["portfolio_weights"], "portfolio_weights"))
    mode = params.get("portfolio_mode") or "equal_weight"
    if mode == "custom_weight" and weights is None and not compare:
        raise ConfigError("portfolio_mode custom_weight needs params.portfolio_weights (a JSON file)")
    modes = compare_modes(weights) if compare else [mode]
    out_dir = resolve_output_dir(params.get("out_dir"), outputs_root() / "portfolio")
    digest = canonical_hash({"root": str(root), "modes": modes, "selection": selection, "weights": weights}, 7,
                            algo="sha1")
    run_id, ts = _claim(out_dir, digest, claim)
    record = {"run_id": run_id, "created_at": iso_z(ts), "request_id": request_id,
              "out_dir": str(out_dir), "root": str(root), "modes": modes, "compare": bool(compare),
              "warnings": warnings}
    spec = {"root": str(root), "weights": weights, "selection": selection}
    return PortfolioPlan(run_id=run_id, out_dir=out_dir,
                         config={"kind": "portfolio", "planned": True, "requests": {run_id: record},
                                 "portfolio": {run_id: spec}})


def _plan_basket(params: dict, *, request_id: Any, warnings: list[str], claim: bool) -> PortfolioPlan:
    from quantlab.commands.basket import plan_legs
    from quantlab.contract.paths import internal_root

    if params.get("portfolio_report") or params.get("portfolio_compare"):
        raise ConfigError("give params.legs (a basket) or params.portfolio_report (forward sessions), not both")
    legs, config, weights = plan_legs(params)
    out_dir = resolve_output_dir(params.get("out_dir"), outputs_root() / "portfolio")
    digest = canonical_hash({"legs": legs, "weights": weights}, 7, algo="sha1")
    run_id, ts = _claim(out_dir, digest, claim)
    created = iso_z(ts)
    root = internal_root() / "requests" / run_id / "legs"
    record = {"run_id": run_id, "created_at": created, "request_id": request_id, "out_dir": str(out_dir),
              "root": str(root), "modes": ["custom_weight"], "compare": False, "warnings": warnings,
              "basket": {"legs": legs, "weights": weights, "root": str(root), "created_at": created}}
    spec = {"root": str(root), "weights": weights, "selection": {}, "basket": True}
    config.update({"kind": "portfolio", "planned": True, "requests": {run_id: record},
                   "portfolio": {run_id: spec}})
    return PortfolioPlan(run_id=run_id, out_dir=out_dir, config=config)
