"""Parse and validate a ``--json-request`` payload or a CLI invocation into one ``Request``.

Strict where a mistake would change the result (types, ranges, unknown strategies, a params key
that resembles a real one: ``fees``, ``tickr``), lenient where it would not (keys that resemble
nothing, like ``notes``, are warned about and ignored; ``null`` means the default; whole-valued
floats are accepted for integers). The synonyms an agent writes most are aliases (``symbol``,
``start_date``, ``end_date``, ``parameters``, ``strategy_name``); a top-level key that is a
parameter of the chosen strategy is used as that strategy parameter, with a warning. Error messages keep the prefixes that runbooks
key on and are always one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from quantlab.contract.params import COMMANDS, ParamSpec, spec_index
from quantlab.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "config" / "schemas" / "request.schema.json"


@dataclass
class Request:
    command: str
    params: dict[str, Any]
    request_id: str | int | None = None
    warnings: list[str] = field(default_factory=list)
    origin: str = "json"  # json | cli


class RequestError(ConfigError):
    """A request-level error whose message already carries its runbook prefix."""


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    # The schema's cross-parameter rules (contract.params.COMMAND_RULES: which inputs a command
    # needs) are for agents validating their own requests; here the commands' planners check them
    # with messages that name the fix, so the validator leaves them out.
    for rule in schema.get("allOf", []):
        rule.get("then", {}).get("properties", {}).get("params", {}).pop("allOf", None)
    return jsonschema.Draft202012Validator(schema)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_error_message(err) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    where = path or "request"
    validator = err.validator
    if validator == "additionalProperties" and not err.absolute_path:
        allowed = "schema_version, request_id, command, params"
        extra = sorted(set(err.instance) - {"schema_version", "request_id", "command", "params"})
        return f"unknown top-level field {', '.join(repr(e) for e in extra)} (allowed: {allowed})"
    if validator == "type":
        expected = err.validator_value
        expected = [t for t in (expected if isinstance(expected, list) else [expected]) if t != "null"]
        return f"{where} must be of type {' or '.join(expected)}, got {_short(err.instance)}"
    if validator == "enum":
        allowed = ", ".join(str(v) for v in err.validator_value if v is not None)
        return f"{where} must be one of [{allowed}], got {_short(err.instance)}"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[validator]
        return f"{where} must be {word} {err.validator_value}, got {_short(err.instance)}"
    if validator in ("minLength", "maxLength", "pattern"):
        return f"{where} is not a valid value ({validator} {err.validator_value!r}): {_short(err.instance)}"
    return f"{where}: {err.message[:200]}"


def parse_json_request(raw: str) -> Request:
    """Validate the raw ``--json-request`` text and return a Request with normalised params."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nesting too deep or invalid"
        raise RequestError(f"Invalid --json-request payload: malformed JSON ({msg})") from None
    if not isinstance(payload, dict):
        raise RequestError(
            f"Invalid --json-request payload: expected a JSON object, got {type(payload).__name__}"
        )
    version = payload.get("schema_version")
    if version != "1.0":
        raise RequestError(f"Unsupported or missing schema_version {_short(version)}. Expected '1.0'.")
    command = payload.get("command")
    if command is None or command == "":
        raise RequestError("Missing 'command' in JSON request.")
    if not isinstance(command, str) or command not in COMMANDS:
        raise RequestError(f"Unknown command {_short(command)}. Valid commands: {', '.join(COMMANDS)}.")
    errors = sorted(_validator().iter_errors(payload), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # the deepest error names the exact field
        err = max(errors, key=lambda e: len(e.absolute_path))
        raise RequestError(f"Invalid --json-request payload: {schema_error_message(err)}")
    params = payload.get("params")
    if params is None:
        params = {}
    req = Request(command=command, params={}, request_id=payload.get("request_id"), origin="json")
    req.params = normalise_params(command, params, req.warnings)
    return req


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def closest_key(key: str, candidates) -> str | None:
    """The candidate ``key`` is a near miss of, or None. A real resemblance is required: at most
    two edits and at most a quarter of the longer name (case, ``-`` and ``_`` ignored), so ``fees``
    -> ``fee`` and ``tickr`` -> ``ticker``, while ``start_date`` never suggests ``strategy``."""
    def norm(text: str) -> str:
        return str(text).lower().replace("-", "").replace("_", "")

    best, best_d = None, None
    for cand in sorted(set(candidates)):
        a, b = norm(key), norm(cand)
        if not a or not b:
            continue
        d = _distance(a, b)
        if d <= 2 and d * 4 <= max(len(a), len(b)) and (best_d is None or d < best_d):
            best, best_d = cand, d
    return best


def _strategy_param_names(name: Any) -> set[str]:
    from quantlab.strategies import REGISTRY

    strategy = REGISTRY.get(name) if isinstance(name, str) else None
    return {p.name for p in strategy.params} if strategy is not None else set()


# Defaults that stand in for what a request most likely meant to give: named in the warnings.
_NAMED_DEFAULTS = ("start", "end")


def normalise_params(command: str, params: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Apply aliases, drop nulls, coerce whole floats to ints; a near-miss key is an error, a
    strategy parameter given at the top level (``run``) is moved into ``strategy_params``, other
    unknown keys are ignored with a warning."""
    index = spec_index(command)
    out: dict[str, Any] = {}
    unknown = []
    for key, value in params.items():
        spec = index.get(key)
        if spec is None:
            unknown.append(key)
            continue
        if value is None:
            continue
        value = coerce(spec, value, key)
        if spec.name in out and out[spec.name] != value:
            raise ConfigError(f"params.{key} conflicts with params.{spec.name} (same parameter, two values)")
        out[spec.name] = value
    declared: set[str] = set()
    if unknown and command == "run":
        from quantlab.contract.params import DEFAULT_STRATEGY

        strategy = out.get("strategy", DEFAULT_STRATEGY)
        declared = _strategy_param_names(strategy)
    for key in unknown:
        if key in declared:
            if params[key] is None:
                continue
            nested = dict(out.get("strategy_params") or {})
            if key in nested and nested[key] != params[key]:
                raise ConfigError(f"params.{key} conflicts with params.strategy_params.{key} "
                                  "(same parameter, two values)")
            nested[key] = params[key]
            out["strategy_params"] = nested
            warnings.append(f"params.{key} is a parameter of strategy '{strategy}': used as "
                            f"strategy_params.{key}")
            continue
        hint = closest_key(key, list(index) + sorted(declared))
        if hint is not None:
            where = f"strategy_params.{hint}" if hint in declared else hint
            raise ConfigError(f"params.{key} is not a parameter of '{command}' (did you mean '{where}'?)")
        warnings.append(f"unknown params key '{key}' ignored")
    # a missing ticker (and then the window too) is resolved, and named in the warnings, where the
    # stand-in is chosen: commands.run.plan.resolve_run_params (a data file's name or the bundled sample)
    if (command == "run" or (command == "sweep" and "config_path" not in out)) and out.get("ticker") is not None:
        for name in _NAMED_DEFAULTS:
            spec = index.get(name)
            if spec is not None and name not in out:
                warnings.append(f"params.{name} not given: the default {spec.default!r} is used")
    return out


def coerce(spec: ParamSpec, value: Any, key: str) -> Any:
    """Type coercion shared by JSON (already schema-checked) and CLI (strings) values."""
    t = spec.type
    if t == "integer":
        if isinstance(value, bool):
            raise ConfigError(f"params.{key} must be an integer, got {_short(value)}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(f"params.{key} must be an integer, got {_short(value)}") from None
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"params.{key} must be a whole number, got {value!r}")
            value = int(value)
        if not isinstance(value, int):
            raise ConfigError(f"params.{key} must be an integer, got {_short(value)}")
    elif t == "number":
        if isinstance(value, bool):
            raise ConfigError(f"params.{key} must be a number, got {_short(value)}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(f"params.{key} must be a number, got {_short(value)}") from None
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"params.{key} must be a finite number, got {_short(value)}")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond float's range (e.g. 10**400)
            raise ConfigError(f"params.{key} must be a finite number, got {_short(value)}") from None
    elif t == "boolean":
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "1", "yes", "on"):
                value = True
            elif low in ("false", "0", "no", "off"):
                value = False
        if not isinstance(value, bool):
            raise ConfigError(f"params.{key} must be a boolean, got {_short(value)}")
    elif t == "string":
        if not isinstance(value, str):
            raise ConfigError(f"params.{key} must be a string, got {_short(value)}")
    elif t == "object":
        if not isinstance(value, dict):
            raise ConfigError(f"params.{key} must be an object, got {_short(value)}")
    elif t == "array":
        if not isinstance(value, list):
            raise ConfigError(f"params.{key} must be an array, got {_short(value)}")
    # ranges (CLI values are not schema-checked, so check here for both paths)
    if t in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f"params.{key} must be >= {spec.minimum}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"params.{key} must be <= {spec.maximum}, got {value}")
        if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            raise ConfigError(f"params.{key} must be > {spec.exclusive_minimum}, got {value}")
    if spec.enum is not None and value not in spec.enum:
        raise ConfigError(f"params.{key} must be one of [{', '.join(map(str, spec.enum))}], got {_short(value)}")
    if t == "string":
        import re

        pattern = spec.extra.get("pattern")
        if pattern and not re.match(pattern, value):
            raise ConfigError(f"params.{key} has characters that are not allowed: {_short(value)}")
        if len(value) > spec.extra.get("maxLength", 1 << 20):
            raise ConfigError(f"params.{key} is too long ({len(value)} characters)")
    return value
