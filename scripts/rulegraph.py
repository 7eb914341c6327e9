"""Write the rule graphs (Snakemake's --rulegraph) of a run, a grid sweep and a walk-forward
sweep to docs/img/rulegraph-*.dot (and .svg when Graphviz `dot` is installed). Plans unclaimed
demo requests in a temporary outputs root; runs nothing.

The output is canonical (nodes numbered by rule name, edges sorted), so running it twice gives the
same bytes and tracked files only change when the workflow does:

    python scripts/rulegraph.py [--out DIR] [--only run|grid|walkforward]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


_NODE = re.compile(r"^\s*(\d+)\[label = \"([^\"]*)\"(.*)$")
_EDGE = re.compile(r"^\s*(\d+) -> (\d+)\s*$")


def canonical_dot(dot: str) -> str:
    """Snakemake's rule graph with nodes renumbered in rule-name order and edges sorted."""
    head, nodes, edges = [], {}, []
    for line in dot[dot.index("digraph"):].splitlines():
        node, edge = _NODE.match(line), _EDGE.match(line)
        if node:
            nodes[node.group(1)] = (node.group(2), node.group(3))
        elif edge:
            edges.append((edge.group(1), edge.group(2)))
        elif line.strip() and line.strip() != "}":
            head.append(line.rstrip())
    order = {old: new for new, old in enumerate(sorted(nodes, key=lambda k: nodes[k]))}
    lines = head + [f'\t{order[old]}[label = "{nodes[old][0]}"{nodes[old][1].rstrip()}'
                    for old in sorted(nodes, key=order.get)]
    lines += [f"\t{a} -> {b}" for a, b in sorted({(order[a], order[b]) for a, b in edges})]
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write the workflow's rule graphs (canonical .dot)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="directory of the .dot files")
    ap.add_argument("--only", choices=("run", "grid", "walkforward"), help="one graph only")
    args = ap.parse_args(argv)
    os.environ["QUANTLAB_OUTPUTS_DIR"] = tempfile.mkdtemp(prefix="quantlab-rulegraph-")
    from quantlab.commands.experiment import build_experiment, read_yaml
    from quantlab.commands.run.plan import plan_run
    from quantlab.commands.sweep.plan import plan_sweep

    run = plan_run({"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}, request_id=None,
                   warnings=[], origin="cli", claim=False)
    configs = {"run": (run.snakemake_config(), run.target)}
    for name, yaml_file in (("grid", "spx_2017_grid.yaml"), ("walkforward", "spx_walkforward.yaml")):
        if args.only and args.only != name:
            continue
        exp = build_experiment(read_yaml(ROOT / "config/experiments" / yaml_file), where=yaml_file)
        plan = plan_sweep(exp, {"shards": 2}, request_id=None, warnings=[], origin="cli", claim=False)
        configs[name] = (plan.config, plan.target)
    work = Path(os.environ["QUANTLAB_OUTPUTS_DIR"]) / ".quantlab"
    work.mkdir(parents=True, exist_ok=True)
    snakemake = Path(sys.executable).with_name("snakemake")
    for name, (config, target) in configs.items():
        if args.only and args.only != name:
            continue
        cfg = work / f"{name}.json"
        cfg.write_text(json.dumps(config))
        dot = subprocess.run([str(snakemake), "-s", str(ROOT / "workflow/Snakefile"), "-d", str(work),
                              "--rulegraph", "--configfile", str(cfg), "--", target],
                             capture_output=True, text=True, check=True).stdout
        out = Path(args.out) / f"rulegraph-{name}.dot"
        out.write_text(canonical_dot(dot))
        if shutil.which("dot"):
            subprocess.run(["dot", "-Tsvg", str(out), "-o", str(out.with_suffix(".svg"))], check=True)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
