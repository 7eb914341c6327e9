"""Where each command kind's workflow outputs live: ``requests/<run_id>/<kind>/<file>``.

The run id's claim dir ``requests/<run_id>/`` (``quantlab.contract.runid``) stays the one place
that makes ids unique across kinds and keeps the request's job logs; inside it every command kind
has its own namespace, so each rule has an output pattern of its own (no rule tells requests
apart by sniffing the run id). The workflow's ``rule all``, the plans' ``target`` and main.py's
fast path all spell these paths through this module.
"""

from __future__ import annotations

# kind -> the request's final workflow output (paper and portfolio requests refresh no runs index)
FINAL = {"run": "index.json", "paper": "published.json", "sweep": "index.json", "forward": "index.json",
         "portfolio": "published.json"}
KINDS = tuple(FINAL)


def request_file(run_id: str, kind: str, name: str) -> str:
    """``requests/<run_id>/<kind>/<name>``, relative to the workflow's workdir."""
    if kind not in FINAL:
        raise ValueError(f"unknown command kind {kind!r}")
    return f"requests/{run_id}/{kind}/{name}"


def target(run_id: str, kind: str) -> str:
    """The request's final workflow output, the marker main.py reads back."""
    return request_file(run_id, kind, FINAL[kind])
