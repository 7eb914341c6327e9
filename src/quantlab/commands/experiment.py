"""Sweep experiments: read (YAML file or inline request params), validate, expand to combinations.

The YAML format is the original tool's (``ticker, start, end, interval, fee, slippage_mode,
slippage_bps, k_atr, param_grid``, plus ``splits / selection / constraints`` for walk-forward),
with ``strategy`` (default ``rsi_ma_cross_v2``) and, for agents, ``parameter_sets`` (a list of
``{label, parameters}``) with ``objective`` instead of a grid. Validation is strict where a
mistake would change results (unknown grid keys, out-of-range values, bad dates, bad metrics)
and lenient where it would not (unknown top-level keys are warnings).
"""

from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from quantlab.contract.params import RUN_PARAMS
from quantlab.engine.risk import RISK_KEYS
from quantlab.errors import ConfigError
from quantlab.metric_registry import HEADLINE, grid_metric_names, lower_is_better

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "config" / "schemas" / "sweep.schema.json"
ENGINE_GRID_KEYS = ("fee", "slippage_bps", "k_atr") + RISK_KEYS  # engine parameters a grid may vary
BASE_KEYS = ("ticker", "start", "end", "interval", "source", "data_path", "seed", "adjust", "date_format", "strategy", "fee",
             "slippage_mode", "slippage_bps", "k_atr", "fill", "allow_short", "initial_cash", *RISK_KEYS,
             "risk_free_rate", "strategy_params")
EXPERIMENT_KEYS = ("param_grid", "parameter_sets", "objective", "splits", "selection", "constraints")
MAX_COMBOS = 100_000
MAX_YAML_BYTES = 1 << 20


@dataclass
class Split:
    name: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str


@dataclass
class Experiment:
    base: dict[str, Any]                 # run-like params: ticker, dates, costs, strategy ...
    strategy: str
    grid_keys: list[str]                 # keys that vary (sorted), for columns and the heatmap
    combos: list[dict[str, Any]]         # resolved strategy params (+ engine overrides)
    labels: list[str | None]
    sort_by: list[str]
    ascending: list[bool]
    top_k: int = 3
    min_trades: int = 0
    splits: list[Split] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)       # the experiment as given (resolved)
    warnings: list[str] = field(default_factory=list)
    source_path: str | None = None
    combinations_total: int = 0                              # as written, before skipping
    skipped: list[dict] = field(default_factory=list)        # {params, label?, reason, message}

    @property
    def mode(self) -> str:
        return "walkforward" if self.splits else "grid"


def sweep_schema() -> dict:
    """JSON Schema of an experiment (YAML file or inline params), from the run params registry."""
    props: dict[str, Any] = {spec.name: spec.json_schema() for spec in RUN_PARAMS if spec.name in BASE_KEYS}
    scalar = {"type": ["number", "integer", "boolean", "string"]}
    date = {"type": "string", "minLength": 4, "maxLength": 40}
    window = {"type": "object", "required": ["start", "end"], "additionalProperties": False,
              "properties": {"start": date, "end": date}}
    props.update({
        "param_grid": {"type": ["object", "null"], "description": "param name -> list of values (cartesian product)",
                       "additionalProperties": {"anyOf": [{"type": "array", "items": scalar, "minItems": 1}, scalar]}},
        "parameter_sets": {"type": ["array", "null"], "minItems": 1, "description": "explicit labelled combos",
                           "items": {"type": "object", "required": ["parameters"], "additionalProperties": False,
                                     "properties": {"label": {"type": "string", "maxLength": 200},
                                                    "parameters": {"type": "object",
                                                                   "additionalProperties": scalar}}}},
        "objective": {"type": ["string", "null"], "enum": [*ranking_names(), None],
                      "description": "ranking metric (default sharpe_simple); psr / deflated_sharpe: "
                                     "per-combination robustness columns (docs/robustness.md)"},
        "splits": {"type": ["array", "null"], "items": {
            "type": "object", "required": ["train", "test"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "maxLength": 200}, "train": window, "test": window}}},
        "selection": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "sort_by": {"type": "array", "items": {"enum": list(ranking_names())}, "minItems": 1},
            "ascending": {"type": "array", "items": {"type": "boolean"}},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 10_000}}},
        "constraints": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "min_trades": {"type": "integer", "minimum": 0}, "min_trade_trades": {"type": "integer", "minimum": 0}}},
    })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://quantlab.local/schemas/sweep.schema.json",
        "title": "QuantLab sweep experiment (YAML file or inline sweep params)",
        "type": "object",
        "properties": props,
        "additionalProperties": True,  # unknown keys are warnings
    }


def ranking_names(names=None) -> tuple[str, ...]:
    """What a sweep can rank by: every metric, then the per-combination robustness columns
    (``psr``, ``deflated_sharpe``: computed from the kept returns, so only with robustness on)."""
    from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES

    return (*(grid_metric_names() if names is None else names), *ROBUST_OBJECTIVES)


def _validator():
    return _validator_for(grid_metric_names())


@lru_cache(maxsize=4)
def _validator_for(names: tuple):
    """The checked-in schema, or the live one when plugins registered metrics it does not list."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    if schema["properties"]["objective"]["enum"] != [*ranking_names(names), None]:
        schema = sweep_schema()
    return jsonschema.Draft202012Validator(schema)


def read_yaml(path: Path) -> dict:
    """Safe-load a sweep YAML file (size-capped; plain YAML types only)."""
    import yaml

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"Sweep config not readable: {path} ({exc.strerror})") from None
    if not path.is_file():
        raise ConfigError(f"Sweep config is not a file: {path}")
    if size == 0:
        raise ConfigError(f"Sweep config is empty: {path}")
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"Sweep config is too large ({size} bytes, limit {MAX_YAML_BYTES}): {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Sweep config not readable: {path} ({type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"Sweep config is not valid YAML{where}: {path}") from None
    except RecursionError:
        raise ConfigError(f"Sweep config nests too deeply: {path}") from None
    if data is None:
        raise ConfigError(f"Sweep config is empty: {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"Sweep config must be a mapping of keys, got {type(data).__name__}: {path}")
    return _plain(data)


MAX_NODES = 200_000


def _plain(value: Any, budget: list[int] | None = None) -> Any:
    """YAML dates become ISO strings; everything else must already be JSON-like. Anchors and
    aliases are expanded under a node budget, so an alias bomb is refused, not expanded."""
    import datetime as dt

    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"Sweep config expands to more than {MAX_NODES} values (YAML aliases?)")
    if isinstance(value, dict):
        return {str(k): _plain(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, budget) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _schema_check(data: dict, where: str) -> None:
    from quantlab.contract.request import schema_error_message

    errors = list(_validator().iter_errors(data))
    if errors:
        err = max(errors, key=lambda e: len(e.absolute_path))
        raise ConfigError(f"Invalid sweep experiment ({where}): {schema_error_message(err)}")


def _identity(combo: dict):
    """What makes two resolved combinations the same (as their sorted JSON would, without
    writing it): name, type and value of each parameter; a zero by its text (-0.0 is not 0.0)."""
    try:
        key = tuple((k, type(v), repr(v) if v == 0 else v) for k, v in sorted(combo.items()))
        hash(key)
        return key
    except TypeError:  # an unhashable value: its JSON text
        return json.dumps(combo, sort_keys=True)


def build_experiment(data: dict, *, where: str, source_path: str | None = None) -> Experiment:
    """Validate an experiment mapping and expand it into resolved combinations."""
    from quantlab.commands.run.plan import resolve_run_params
    from quantlab.strategies import get_strategy

    data = {k: v for k, v in data.items() if v is not None}
    _schema_check(data, where)
    warnings: list[str] = []
    known = set(BASE_KEYS) | set(EXPERIMENT_KEYS)
    for key in sorted(set(data) - known):
        from quantlab.contract.request import closest_key

        hint = closest_key(key, known)
        if hint is not None:  # a near miss would silently change the experiment
            raise ConfigError(f"Invalid sweep experiment ({where}): unknown key '{key}' (did you mean '{hint}'?)")
        warnings.append(f"unknown experiment key '{key}' ignored")
    grid = data.get("param_grid")
    sets = data.get("parameter_sets")
    if grid and sets:
        raise ConfigError("Invalid sweep experiment: give param_grid or parameter_sets, not both")
    if not grid and not sets:
        raise ConfigError("Invalid sweep experiment: param_grid (or parameter_sets) is required")
    base_in = {k: data[k] for k in BASE_KEYS if k in data}
    base, _ = resolve_run_params(base_in, warnings)
    strategy = get_strategy(base["strategy"])
    declared = set(base["strategy_params"])  # the resolved names: declared ones, or expr's given ones
    combos: list[dict] = []
    labels: list[str | None] = []
    grid_keys: list[str] = []
    if grid:
        grid_keys = sorted(grid)
        for key in grid_keys:
            if key not in declared and key not in ENGINE_GRID_KEYS:
                hint = difflib.get_close_matches(key, sorted(declared | set(ENGINE_GRID_KEYS)), n=1)
                raise ConfigError(f"param_grid key '{key}' is not a parameter of strategy '{strategy.name}'"
                                  + (f" (did you mean '{hint[0]}'?)" if hint else "")
                                  + f"; valid: {', '.join(sorted(declared) + list(ENGINE_GRID_KEYS))}")
        values = [v if isinstance(v, list) else [v] for v in (grid[k] for k in grid_keys)]
        total = 1
        for v in values:
            total *= len(v)
        if total > MAX_COMBOS:
            raise ConfigError(f"param_grid expands to {total} combinations (limit {MAX_COMBOS})")
        raw_combos = [dict(zip(grid_keys, combo)) for combo in itertools.product(*values)]
        labels = [None] * len(raw_combos)
    else:
        raw_combos, labels = [], []
        for i, item in enumerate(sets):
            unknown = sorted(set(item["parameters"]) - declared - set(ENGINE_GRID_KEYS))
            if unknown:
                hint = difflib.get_close_matches(unknown[0], sorted(declared), n=1)
                raise ConfigError(f"parameter_sets[{i}].parameters.{unknown[0]} is not a parameter of strategy "
                                  f"'{strategy.name}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            raw_combos.append(dict(item["parameters"]))
            labels.append(item.get("label") or f"set_{i + 1}")
        if len(set(labels)) != len(labels):
            raise ConfigError("parameter_sets labels must be unique")
        grid_keys = sorted({k for c in raw_combos for k in c})
    base_strategy = dict(base["strategy_params"])
    kept_labels: list[str | None] = []
    skipped: list[dict] = []
    for i, (raw, label) in enumerate(zip(raw_combos, labels)):
        strat = {**base_strategy, **{k: v for k, v in raw.items() if k in declared}}
        try:
            resolved = strategy.coerce_params(strat)
            constraint_error = None
            try:
                strategy.check(resolved)
            except ConfigError as exc:
                constraint_error = exc
            for key in ENGINE_GRID_KEYS:
                if key in raw:
                    resolved[key] = engine_override(key, raw[key])
        except ConfigError as exc:
            if grid:  # a value out of range is a mistake in the grid itself: refuse it
                raise ConfigError(f"combination {i + 1} {json.dumps(raw, default=str)}: {exc}") from None
            constraint_error = exc  # an invalid explicit parameter set is skipped, by label
        if constraint_error is not None:
            skipped.append(skipped_entry(raw, label, "invalid_params", str(constraint_error)))
            continue
        combos.append(resolved)
        kept_labels.append(label)
    if not combos:
        raise ConfigError(f"no valid combination: all {len(raw_combos)} break the parameter rules of strategy "
                          f"'{strategy.name}' (e.g. {_example(skipped[0])})")
    if skipped:
        warnings.append(skipped_warning(skipped, len(raw_combos)))
    labels = kept_labels
    # drop exact duplicates (keep the first), so identical configs are not ranked twice
    seen: set[str] = set()
    unique, unique_labels = [], []
    for combo, label in zip(combos, labels):
        key = _identity(combo)
        if key in seen:
            warnings.append(f"duplicate combination {json.dumps(combo, sort_keys=True)} ignored")
            continue
        seen.add(key)
        unique.append(combo)
        unique_labels.append(label)
    objective = data.get("objective")
    selection = data.get("selection") or {}
    sort_by = list(selection.get("sort_by") or ([objective] if objective else [HEADLINE, "total_return"]))
    # by default each metric ranks its better end first (volatility_ann: lowest first)
    ascending = list(selection.get("ascending") or [m in lower_is_better() for m in sort_by])
    if len(ascending) != len(sort_by):
        raise ConfigError("selection.ascending must have one entry per selection.sort_by metric")
    constraints = data.get("constraints") or {}
    min_trades = int(constraints.get("min_trades", constraints.get("min_trade_trades", 0)))
    splits = [_split(i, s) for i, s in enumerate(data.get("splits") or [])]
    names = [s.name for s in splits]
    if len(set(names)) != len(names):
        raise ConfigError("splits must have unique names")
    raw_resolved = {**{k: base[k] for k in BASE_KEYS if k in base},
                    **{k: data[k] for k in EXPERIMENT_KEYS if k in data}}
    raw_resolved["strategy"] = strategy.name
    return Experiment(base=base, strategy=strategy.name, grid_keys=grid_keys, combos=unique,
                      labels=unique_labels, sort_by=sort_by, ascending=ascending,
                      top_k=int(selection.get("top_k", 3)), min_trades=min_trades, splits=splits,
                      raw=raw_resolved, warnings=warnings, source_path=source_path,
                      combinations_total=len(raw_combos), skipped=skipped)


SKIPPED_EXAMPLES = 5


def skipped_entry(params: dict, label: str | None, reason: str, message: str) -> dict:
    entry: dict[str, Any] = {"params": dict(params), "reason": reason, "message": message}
    if label is not None:
        entry["label"] = label
    return entry


def _example(entry: dict) -> str:
    who = (f"'{entry['label']}'" if entry.get("label") is not None
           else ", ".join(f"{k}={v}" for k, v in entry["params"].items()))
    return f"{who}: {entry['message']}"


def skipped_warning(skipped: list[dict], total: int) -> str:
    """One warning line for skipped combinations: how many, why, and one example."""
    reasons = sorted({e["reason"] for e in skipped})
    return (f"{len(skipped)} of {total} combinations skipped ({', '.join(reasons)}), "
            f"e.g. {_example(skipped[0])}")


def skipped_summary(total: int, skipped: list[dict], evaluated: int) -> dict:
    """The ``machine_contract`` fields of a sweep's skipped combinations."""
    return {"combinations_total": total, "combinations_skipped": len(skipped),
            "combinations_evaluated": evaluated,
            "skipped_examples": [{k: e[k] for k in ("label", "params", "reason", "message") if k in e}
                                 for e in skipped[:SKIPPED_EXAMPLES]]}


def engine_override(key: str, value: Any) -> float | int | str:
    from quantlab.contract.params import ParamSpec
    from quantlab.contract.request import coerce

    spec = next(s for s in RUN_PARAMS if s.name == key)
    value = coerce(ParamSpec(spec.name, spec.type, minimum=spec.minimum, maximum=spec.maximum,
                             exclusive_minimum=spec.exclusive_minimum), value,
                   f"param_grid.{key}")
    if spec.enum is not None and value not in spec.enum:
        raise ConfigError(f"param_grid.{key} must be one of: {', '.join(spec.enum)}; got {value!r}")
    return value


def _split(i: int, s: dict) -> Split:
    from quantlab.dates import parse_date

    name = s.get("name") or f"split_{i + 1}"
    tr, te = s["train"], s["test"]
    d = {k: parse_date(str(v), f"splits[{i}].{k}") for k, v in
         (("train.start", tr["start"]), ("train.end", tr["end"]), ("test.start", te["start"]), ("test.end", te["end"]))}
    if not d["train.start"] < d["train.end"] <= d["test.start"] < d["test.end"]:
        raise ConfigError(f"splits[{i}] ({name}): need train.start < train.end <= test.start < test.end")
    return Split(name=name, train_start=str(tr["start"]), train_end=str(tr["end"]),
                 test_start=str(te["start"]), test_end=str(te["end"]))


def load_experiment(params: dict, *, resolve_path) -> Experiment:
    """From sweep request params: ``config_path`` (YAML) or an inline experiment — exactly one."""
    inline = {k: v for k, v in params.items() if k in set(BASE_KEYS) | set(EXPERIMENT_KEYS) and v is not None}
    has_inline = any(k in inline for k in ("param_grid", "parameter_sets"))
    path = params.get("config_path")
    if path and has_inline:
        raise ConfigError("give params.config_path or an inline experiment (param_grid / parameter_sets), not both")
    if path:
        if inline:
            raise ConfigError(f"params {', '.join(sorted(inline))} cannot be combined with params.config_path "
                              "(put them in the YAML file)")
        resolved = resolve_path(path, "config_path")
        if not resolved.exists():
            raise ConfigError(f"Sweep config not found: {path}")
        return build_experiment(read_yaml(resolved), where=str(resolved), source_path=str(resolved))
    if not has_inline:
        raise ConfigError("JSON request for 'sweep' requires params.config_path as a non-empty string "
                          "(or an inline experiment: params.param_grid / params.parameter_sets)")
    return build_experiment(inline, where="inline params")


def __getattr__(name: str):  # the registry's current lists under their old names
    from quantlab import metric_registry as mr

    lists = {"METRIC_NAMES": mr.metric_names}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
