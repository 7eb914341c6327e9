"""Baskets: ``command: "portfolio"`` with ``params.legs`` — a weighted set of instruments (each with
an optional strategy and parameters) over one window, for agents that think in baskets.

DAG: per leg, the ``run`` chain (load_data -> signals -> simulate -> score: one job each,
content-addressed, so a leg shared with an earlier run or basket is reused) -> basket_legs
(lays the legs out as sessions) -> portfolio_mode (custom_weight) -> publish_portfolio.

Weights must sum to 1 within 1e-9, or ``normalize: true`` rescales them. Every leg is simulated
with the basket's ``initial_cash``; its equity is scaled by its weight, so the basket starts at
``initial_cash`` and each leg's returns are untouched.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, read_json
from quantlab.errors import ConfigError
from quantlab.commands.worker import warm_step

LEG_KEYS = {"label", "ticker", "weight", "strategy", "parameters"}
SHARED = ("start", "end", "interval", "source", "adjust", "fee", "slippage_mode", "slippage_bps", "k_atr", "fill",
          "allow_short", "initial_cash")


def plan_legs(params: dict) -> tuple[list[dict], dict, dict]:
    """Validated legs with their run plans; returns (legs, snakemake config parts, weights)."""
    from quantlab.commands.run.plan import plan_run

    legs = params["legs"]
    if not isinstance(legs, list) or not legs:
        raise ConfigError("params.legs must be a non-empty array of {label, ticker, weight, strategy?, parameters?}")
    if len(legs) > 200:
        raise ConfigError(f"params.legs has {len(legs)} legs (limit 200)")
    weights: dict[str, float] = {}
    config: dict[str, dict] = {"data": {}, "signals": {}, "sim": {}}
    out = []
    for i, leg in enumerate(legs):
        where = f"params.legs[{i}]"
        if not isinstance(leg, dict):
            raise ConfigError(f"{where} must be an object")
        unknown = sorted(set(leg) - LEG_KEYS)
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(LEG_KEYS))}")
        label = leg.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 64 or not all(
                c.isalnum() or c in "-_." for c in label):
            raise ConfigError(f"{where}.label must be 1-64 characters of letters, digits, '-', '_' or '.'")
        if label in weights:
            raise ConfigError(f"{where}.label {label!r} is used twice")
        weight = leg.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"{where}.weight must be a number > 0, got {weight!r}")
        run_params = {k: params[k] for k in SHARED if params.get(k) is not None}
        run_params["ticker"] = leg.get("ticker")
        if leg.get("strategy") is not None:
            run_params["strategy"] = leg["strategy"]
        if leg.get("parameters") is not None:
            run_params["strategy_params"] = leg["parameters"]
        if not isinstance(run_params["ticker"], str) or not run_params["ticker"]:
            raise ConfigError(f"{where}.ticker must be a non-empty string")
        try:
            plan = plan_run(run_params, request_id=None, warnings=[], origin="json", claim=False)
        except ConfigError as exc:
            raise ConfigError(f"{where} ({label}): {exc}") from None
        for kind in ("data", "signals", "sim"):
            config[kind][plan.keys[kind]] = plan.specs[kind]
        weights[label] = float(weight)
        out.append({"label": label, "ticker": plan.params["ticker"], "strategy": plan.params["strategy"],
                    "strategy_params": plan.strategy_params, "interval": plan.params["interval"],
                    "initial_cash": plan.params["initial_cash"], "start": plan.params["start"],
                    "end": plan.params["end"], "sim": plan.keys["sim"]})
    total = sum(weights.values())
    if abs(total - 1.0) > 1e-9:
        if not params.get("normalize"):
            raise ConfigError(f"params.legs weights sum to {total:.12g}, not 1 (within 1e-9); fix them or "
                              "set params.normalize: true")
        weights = {k: v / total for k, v in weights.items()}
    return out, config, weights


@warm_step
def step_basket_legs(spec: dict, sim_dirs: list[str], out_path: str) -> None:
    """Lay each leg out as a session directory (metadata, metrics, equity scaled by its weight)."""
    import numpy as np

    from quantlab.columnar import column_to_numpy, parquet_bytes, read_parquet, table_from_numpy

    root = Path(spec["root"])
    for leg, sim in zip(spec["legs"], sim_dirs):
        w = spec["weights"][leg["label"]]
        table = read_parquet(Path(sim) / "equity.parquet")
        cols = {name: column_to_numpy(table, name) for name in table.column_names}
        for name in ("equity", "benchmark_equity"):
            cols[name] = np.asarray(cols[name], dtype=float) * w
        leg_dir = root / leg["label"]
        atomic_write_bytes(leg_dir / "equity.parquet", parquet_bytes(table_from_numpy(cols)))
        atomic_write_json(leg_dir / "metrics.json", read_json(Path(sim) / "metrics.json"))
        atomic_write_json(leg_dir / "session_metadata.json", {
            "session_id": leg["label"], "command": "forward", "mode": "basket_leg", "status": "success",
            "ticker": leg["ticker"], "interval": leg["interval"], "strategy": leg["strategy"],
            "strategy_params": leg["strategy_params"], "initial_cash": leg["initial_cash"] * w,
            "source_run_id": f"basket:{leg['label']}", "forward_start": leg["start"], "forward_end": leg["end"],
            "created_at": spec["created_at"], "updated_at": spec["created_at"]}, sort_keys=True)
    atomic_write_json(out_path, {"legs": [leg["label"] for leg in spec["legs"]], "root": str(root)})


def leg_sim_inputs(legs: list[dict]) -> list[str]:
    from quantlab.store_layout import sim_files

    return [path for leg in legs for path in sim_files(leg["sim"])]


def params_with_legs(params: dict) -> Any:
    return params.get("legs") is not None
