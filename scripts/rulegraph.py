"""Write the rule graphs (Snakemake's --rulegraph) of a run, a grid sweep and a walk-forward
sweep to docs/img/rulegraph-*.dot (and .svg when Graphviz `dot` is installed). Plans unclaimed
demo requests in a temporary outputs root; runs nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    os.environ["QUANTLAB_OUTPUTS_DIR"] = tempfile.mkdtemp(prefix="quantlab-rulegraph-")
    from quantlab.commands.experiment import build_experiment, read_yaml
    from quantlab.commands.run import plan_run
    from quantlab.commands.sweep import plan_sweep

    run = plan_run({"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}, request_id=None,
                   warnings=[], origin="cli", claim=False)
    configs = {"run": (run.snakemake_config(), run.target)}
    for name, yaml_file in (("grid", "spx_2017_grid.yaml"), ("walkforward", "spx_walkforward.yaml")):
        exp = build_experiment(read_yaml(ROOT / "config/experiments" / yaml_file), where=yaml_file)
        plan = plan_sweep(exp, {"shards": 2}, request_id=None, warnings=[], origin="cli", claim=False)
        configs[name] = (plan.config, plan.target)
    work = Path(os.environ["QUANTLAB_OUTPUTS_DIR"]) / ".quantlab"
    work.mkdir(parents=True, exist_ok=True)
    snakemake = Path(sys.executable).with_name("snakemake")
    for name, (config, target) in configs.items():
        cfg = work / f"{name}.json"
        cfg.write_text(json.dumps(config))
        dot = subprocess.run([str(snakemake), "-s", str(ROOT / "workflow/Snakefile"), "-d", str(work),
                              "--rulegraph", "--configfile", str(cfg), "--", target],
                             capture_output=True, text=True, check=True).stdout
        out = ROOT / "docs" / "img" / f"rulegraph-{name}.dot"
        out.write_text(dot[dot.index("digraph"):])
        if shutil.which("dot"):
            subprocess.run(["dot", "-Tsvg", str(out), "-o", str(out.with_suffix(".svg"))], check=True)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
