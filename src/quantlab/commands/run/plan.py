"""The ``run`` command's planner: a request -> :class:`RunPlan` (defaults, content keys, run id).

The cold ``run`` path imports this module before Snakemake starts: keep its imports light
(no numpy, no pyarrow, no steps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from pathlib import Path
from typing import Any

from quantlab.artifacts.provenance import canonical_hash, code_fingerprint
from quantlab.commands.common import StagedPlan
from quantlab.contract import namespaces
from quantlab.contract.params import DEFAULT_STRATEGY, RUN_PARAMS
from quantlab.contract.paths import imported_path, outputs_root, resolve_input_path, resolve_output_dir
from quantlab.contract.runid import claim_run_id, iso_z, peek_run_id
from quantlab.dates import parse_date
from quantlab.engine import risk
from quantlab.errors import ConfigError, DataError


FLAT_STRATEGY_KEYS = ("rsi_buy_max", "rsi_sell_min", "cooldown_days")
ENGINE_KEYS = ("fee", "slippage_mode", "slippage_bps", "k_atr", "fill", "allow_short", "initial_cash") + risk.RISK_KEYS


@dataclass
class RunPlan(StagedPlan):
    run_id: str
    created_at: str
    params: dict[str, Any]            # resolved request params (defaults applied)
    strategy_params: dict[str, Any]
    request_id: Any
    out_dir: Path
    keys: dict[str, str]              # data / signals / sim content keys
    specs: dict[str, dict]            # what each keyed step needs
    warnings: list[str] = field(default_factory=list)
    origin: str = "json"

    @property
    def paper(self) -> bool:
        return bool(self.params.get("paper"))

    @property
    def kind(self) -> str:
        """The request's output namespace (``quantlab.contract.namespaces``)."""
        return "paper" if self.paper else "run"

    @property
    def published(self) -> str:
        """The publish step's marker (relative to the internal root)."""
        return namespaces.request_file(self.run_id, self.kind, "published.json")

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.run_id

    def request_record(self) -> dict:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "request_id": self.request_id,
            "params": self.params,
            "strategy_params": self.strategy_params,
            "out_dir": str(self.out_dir),
            "keys": self.keys,
            "warnings": self.warnings,
            "origin": self.origin,
        }

    def snakemake_config(self) -> dict:
        return {
            "kind": self.kind,
            "planned": True,
            "data": {self.keys["data"]: self.specs["data"]},
            "signals": {self.keys["signals"]: self.specs["signals"]},
            "sim": {self.keys["sim"]: self.specs["sim"]},
            "requests": {self.run_id: self.request_record()},
        }


DEFAULT_TICKER = "SPX"  # the bundled S&P 500 sample: no network needed
DEFAULT_SAMPLE_WINDOW = ("2017-01-01", "2018-01-01")


def _default_ticker(resolved: dict, params: dict, warnings: list[str]) -> None:
    """No ticker: a data file names itself (its file name), a synthetic series is ``SYNTH``;
    otherwise the bundled S&P 500 sample stands in, over 2017 unless a window is given. Every
    stand-in (ticker and window) is named in the warnings."""
    if resolved.get("ticker"):
        return
    if resolved.get("data_path"):
        stem = Path(str(resolved["data_path"])).stem
        resolved["ticker"] = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:64] or "FILE"
        warnings.append(f"no ticker given: the data file's name '{resolved['ticker']}' is used as the ticker")
    elif resolved.get("source") == "synthetic":
        resolved["ticker"] = "SYNTH"
        warnings.append("no ticker given: the synthetic series is called 'SYNTH'")
    else:
        resolved["ticker"] = DEFAULT_TICKER
        window = ""
        if params.get("start") is None and params.get("end") is None:
            resolved["start"], resolved["end"] = DEFAULT_SAMPLE_WINDOW
            window = f" over the default window {DEFAULT_SAMPLE_WINDOW[0]}..{DEFAULT_SAMPLE_WINDOW[1]}"
        warnings.append(f"no ticker given: the bundled S&P 500 sample ({DEFAULT_TICKER}) stood in{window}")
        if window:
            return
    for name in ("start", "end"):
        if params.get(name) is None:
            warnings.append(f"params.{name} not given: the default {resolved[name]!r} is used")


def resolve_run_params(params: dict[str, Any], warnings: list[str]) -> tuple[dict, dict]:
    """Defaults + strategy resolution. Returns (resolved params, strategy params)."""
    from quantlab.strategies import get_strategy

    resolved = {spec.name: spec.default for spec in RUN_PARAMS}
    resolved.update({k: v for k, v in params.items() if k not in FLAT_STRATEGY_KEYS})
    resolved["strategy"] = resolved.get("strategy") or DEFAULT_STRATEGY
    _default_ticker(resolved, params, warnings)
    strategy = get_strategy(resolved["strategy"])
    declared = {p.name for p in strategy.params}
    given = dict(params.get("strategy_params") or {})
    for key in FLAT_STRATEGY_KEYS:
        if key in params:
            if key in declared:
                if key in given and given[key] != params[key]:
                    raise ConfigError(f"params.{key} conflicts with params.strategy_params.{key}")
                given.setdefault(key, params[key])
            else:
                warnings.append(f"params key '{key}' ignored: strategy '{strategy.name}' has no such parameter")
    strategy_params = strategy.resolve_params(given)
    short_rules = [k for k in ("short_entry", "short_exit") if strategy.name == "expr" and k in strategy_params]
    if short_rules and not resolved.get("allow_short"):
        raise ConfigError(f"strategy_params.{short_rules[0]} needs params.allow_short = true")
    if hasattr(strategy, "lint"):  # suspicious but valid strategy params (expr)
        warnings.extend(strategy.lint(strategy_params))
    start = parse_date(resolved["start"], "start")
    end = parse_date(resolved["end"], "end")
    if start >= end:
        raise ConfigError(f"params.start ({resolved['start']}) must be before params.end ({resolved['end']})")
    if resolved["source"] == "file" and not resolved.get("data_path"):
        raise ConfigError("params.data_path is required when params.source is 'file'")
    if resolved.get("data_path") and resolved["source"] == "auto":
        resolved["source"] = "file"
    checked = SimpleNamespace(**{k: resolved[k] for k in risk.RISK_KEYS})
    risk.validate(checked)  # stops, time exit, sizing: rules across them, values normalised (0 == 0.0)
    resolved.update(vars(checked))
    resolved["strategy_params"] = strategy_params
    return resolved, strategy_params


def make_data_spec(resolved: dict, start: str, end: str, lookback_bars: int) -> tuple[str, dict]:
    """The load_data step's spec for a window, and its content key."""
    data_path = None
    data_digest = None
    if resolved.get("data_path"):
        path = resolve_input_path(resolved["data_path"], "data_path")
        if not path.is_file():
            raise DataError(f"No data for {resolved['ticker']} {start}..{end}: "
                            f"data_path {path} does not exist or is not a file")
        data_path = str(path)
        st = path.stat()
        data_digest = canonical_hash([str(path), st.st_size, st.st_mtime_ns])
    elif resolved["source"] == "auto":  # bars stored by `data import` are served first: key on them
        imported = imported_path(outputs_root() / "cache", resolved["ticker"], resolved["interval"])
        if imported.is_file():
            st = imported.stat()
            data_digest = canonical_hash(["imported", st.st_size, st.st_mtime_ns])
    spec = {
        "ticker": resolved["ticker"], "start": start, "end": end,
        "interval": resolved["interval"], "source": resolved["source"], "data_path": data_path,
        "data_digest": data_digest, "seed": resolved["seed"], "lookback_bars": int(lookback_bars),
        "adjust": resolved.get("adjust") or "auto", "date_format": resolved.get("date_format"),
        "cache_dir": str(outputs_root() / "cache"), "code": code_fingerprint("data"),
    }
    return canonical_hash({k: v for k, v in spec.items() if k != "cache_dir"}, 16), spec


def plan_run(params: dict[str, Any], *, request_id: Any, warnings: list[str], origin: str,
             claim: bool = True) -> RunPlan:
    from quantlab.strategies import get_strategy

    resolved, strategy_params = resolve_run_params(params, warnings)
    paper = bool(resolved.get("paper"))
    if paper:
        if resolved.get("out_dir"):
            warnings.append("params.out_dir ignored: paper sessions live under outputs/paper_sessions")
        out_dir = outputs_root() / "paper_sessions"
    else:
        out_dir = resolve_output_dir(resolved.get("out_dir"), outputs_root() / "runs")
    strategy = get_strategy(resolved["strategy"])
    warmup = int(strategy.warmup_bars(strategy_params))
    dkey, data_spec = make_data_spec(resolved, resolved["start"], resolved["end"], warmup)
    code = code_fingerprint()
    signals_spec = {"data": dkey, "strategy": strategy.name, "strategy_params": strategy_params, "code": code}
    skey = canonical_hash(signals_spec, 16)
    engine = {k: resolved[k] for k in ENGINE_KEYS}
    sim_spec = {"data": dkey, "signals": skey, "engine": engine, "start": resolved["start"],
                "end": resolved["end"], "strategy": strategy.name, "warmup": warmup,
                "ticker": resolved["ticker"], "interval": resolved["interval"], "code": code,
                "title": f"{resolved['ticker']} {strategy.name} {resolved['start']}..{resolved['end']}"}
    mkey = canonical_hash(sim_spec, 16)
    identity = {k: v for k, v in resolved.items() if k not in ("out_dir",)}
    digest = canonical_hash(identity, 7, algo="sha1")
    mode = "paper" if paper else "run"
    if claim:
        run_id, ts = claim_run_id(out_dir, mode, digest, staging=not paper)
    else:
        run_id, ts = peek_run_id(mode, digest)
    return RunPlan(
        run_id=run_id, created_at=iso_z(ts), params=resolved,
        strategy_params=strategy_params, request_id=request_id, out_dir=out_dir,
        keys={"data": dkey, "signals": skey, "sim": mkey},
        specs={"data": data_spec, "signals": signals_spec, "sim": sim_spec},
        warnings=warnings, origin=origin,
    )
