#!/usr/bin/env python
"""Write the tables in the docs that list a registry, from the registry itself.

    .venv/bin/python scripts/docs_tables.py            # rewrite the tables in place
    .venv/bin/python scripts/docs_tables.py --check    # exit 1 naming each stale table

A generated table sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in a
doc; everything else in the doc is hand-written. ``make docs`` runs the first form, a test the
second, so a new strategy, metric or request parameter cannot leave the docs behind.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: object) -> str:
    return "–" if value is None else (repr(value) if isinstance(value, float) else str(value))


def _param(p: dict) -> str:
    if p["default"] is None and p["minimum"] is None and p["maximum"] is None:
        return f"`{p['name']}`"
    return f"`{p['name']}` {_number(p['default'])} [{_number(p['minimum'])}..{_number(p['maximum'])}]"


def strategies_table() -> str:
    from quantlab.strategies import describe_strategies

    rows = ["| name | parameters: default [min..max] | rule |", "|---|---|---|"]
    for s in describe_strategies():
        params = ", ".join(_param(p) for p in s["params"]) or "–"
        rules = "; ".join(s.get("constraints") or ())
        rows.append(f"| `{s['name']}` | {_cell(params)}{f' ({_cell(rules)})' if rules else ''} | "
                    f"{_cell(s['description'])} |")
    return "\n".join(rows)


def metrics_table() -> str:
    from quantlab import metric_registry

    rows = ["| metric | better | in every summary | meaning |", "|---|---|---|---|"]
    for name in metric_registry.metric_names():  # every one in metrics.json and a sweep's leaderboard
        m = metric_registry.METRICS[name]
        rows.append(f"| `{name}` | {'higher' if m.higher_is_better else 'lower'} | "
                    f"{'yes' if m.in_summary else 'no'} | {_cell(m.description)} |")
    return "\n".join(rows)


def request_params_table(command: str) -> str:
    from quantlab.contract.params import spec_index

    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for spec in {id(s): s for s in spec_index(command).values()}.values():  # aliases map to their spec
        meaning = spec.description
        if spec.enum:
            meaning += " One of: " + ", ".join(f"`{v}`" for v in spec.enum) + "."
        if spec.aliases:
            meaning += " Aliases: " + ", ".join(f"`{a}`" for a in spec.aliases) + "."
        default = "–" if spec.default is None else f"`{spec.default}`"
        rows.append(f"| `{spec.name}` | {spec.type} | {_cell(default)} | {_cell(meaning)} |")
    return "\n".join(rows)


TABLES = {
    "strategies": strategies_table,
    "metrics": metrics_table,
    "params-run": lambda: request_params_table("run"),
    "params-sweep": lambda: request_params_table("sweep"),
}
DOCS = ("docs/cli.md", "docs/stepbit-io-v1.md", "docs/extending.md", "docs/engine.md")
BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def render(text: str) -> str:
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"unknown generated table {name!r}; known: {', '.join(TABLES)}")
        return f"{match[1]}{TABLES[name]()}\n{match[4]}"

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated table is stale")
    args = parser.parse_args(argv)
    stale = []
    for rel in DOCS:
        path = ROOT / rel
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            stale.append(rel)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"stale generated tables in {', '.join(stale)}: run `make docs`", file=sys.stderr)
        return 1
    if not args.check:
        print(f"rewrote {', '.join(stale)}" if stale else "docs tables are current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
