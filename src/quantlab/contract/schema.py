"""Generate the request JSON Schema from the parameter registry.

``python -m quantlab.contract.schema`` prints it; ``config/schemas/request.schema.json`` is its
checked-in output (a test keeps them equal).
"""

from __future__ import annotations

import json
import sys

from quantlab.contract.params import COMMAND_PARAMS, COMMANDS


def params_schema(command: str) -> dict:
    props = {}
    for spec in COMMAND_PARAMS[command]:
        props[spec.name] = spec.json_schema()
        for alias in spec.aliases:
            props[alias] = {**spec.json_schema(), "description": f"Alias of {spec.name}."}
    # Unknown keys are accepted here and reported as warnings by the validator.
    return {"type": ["object", "null"], "properties": props, "additionalProperties": True}


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
