"""Generate the request JSON Schema from the parameter registry.

``python -m quantlab.contract.schema`` prints it; ``config/schemas/request.schema.json`` is its
checked-in output (a test keeps them equal).
"""

from __future__ import annotations

import json
import sys

from quantlab.contract.params import COMMAND_PARAMS, COMMAND_RULES, COMMANDS


def params_schema(command: str) -> dict:
    props = {}
    for spec in COMMAND_PARAMS[command]:
        props[spec.name] = spec.json_schema()
        for alias in spec.aliases:
            props[alias] = {**spec.json_schema(), "description": f"Alias of {spec.name}."}
    # Unknown keys are accepted here and reported as warnings by the validator.
    schema = {"type": ["object", "null"], "properties": props, "additionalProperties": True}
    if COMMAND_RULES.get(command):
        schema["allOf"] = list(COMMAND_RULES[command])
    return schema


def request_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://quantlab.local/schemas/request.schema.json",
        "title": "QuantLab JSON request (Stepbit I/O contract v1)",
        "type": "object",
        "additionalProperties": False,
        "required": ["schema_version", "command"],
        "properties": {
            "schema_version": {"const": "1.0"},
            "request_id": {"type": ["string", "integer", "null"], "maxLength": 256},
            "command": {"enum": list(COMMANDS)},
            "params": {"type": ["object", "null"]},
        },
        "allOf": [
            {
                "if": {"properties": {"command": {"const": cmd}}, "required": ["command"]},
                "then": {"properties": {"params": params_schema(cmd)}},
            }
            for cmd in COMMANDS
        ],
    }


def main() -> None:
    json.dump(request_schema(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()


def strategy_params_schema(strategy: dict) -> dict:
    """JSON Schema of one strategy's parameters, from its registry description."""
    props = {}
    for p in strategy["params"]:
        prop = {"type": [p["type"], "null"], "default": p["default"], "description": p["description"]}
        if p["type"] == "integer":  # whole-valued floats are accepted for integers
            prop["type"] = ["integer", "number", "null"]
            prop["multipleOf"] = 1
        for key in ("minimum", "maximum"):
            if p.get(key) is not None:
                prop[key] = p[key]
        props[p["name"]] = prop
    schema = {"type": ["object", "null"], "properties": props,
              "additionalProperties": strategy.get("additional_params", False),
              "description": strategy["description"]}
    required = [p["name"] for p in strategy["params"] if p.get("required")]
    if required:
        schema["required"] = required
    if strategy.get("language"):
        schema["x-language"] = strategy["language"]
    if strategy.get("constraints"):
        schema["x-constraints"] = strategy["constraints"]
    return schema


def described_request_schema(command: str | None = None) -> dict:
    """The request schema an agent builds requests from (``main.py --schema [COMMAND]``): the
    contract schema plus, for ``run``/``sweep``, the registered strategies and each one's
    parameter schema. Generated from the same registries the validator uses."""
    from quantlab.strategies import DEFAULT_STRATEGY, describe_strategies

    strategies = describe_strategies()
    names = [s["name"] for s in strategies]
    commands = [command] if command else list(COMMANDS)
    out = request_schema()
    out["title"] = f"QuantLab JSON request: {', '.join(commands)}"
    out["properties"]["command"] = {"enum": commands}
    out["allOf"] = []
    out["x-strategies"] = strategies
    for cmd in commands:
        params = params_schema(cmd)
        if "objective" in params["properties"]:  # the live metric names (plugins' included)
            from quantlab.commands.experiment import ranking_names

            params["properties"]["objective"] = {**params["properties"]["objective"],
                                                 "enum": [*ranking_names(), None]}
        if "strategy" in params["properties"]:
            params["properties"]["strategy"] = {**params["properties"]["strategy"], "enum": [*names, None]}
            rules = []
            for s in strategies:
                is_it = {"properties": {"strategy": {"const": s["name"]}}, "required": ["strategy"]}
                if s["name"] == DEFAULT_STRATEGY:
                    is_it = {"anyOf": [is_it, {"not": {"required": ["strategy"]}},
                                       {"properties": {"strategy": {"type": "null"}}}]}
                rules.append({"if": is_it, "then": {"properties": {
                    "strategy_params": strategy_params_schema(s)}}})
            params["allOf"] = params.get("allOf", []) + rules
        out["allOf"].append({"if": {"properties": {"command": {"const": cmd}}, "required": ["command"]},
                             "then": {"properties": {"params": params}}})
    return out
