"""Write the `run` rule graph (Snakemake's --rulegraph) to docs/img/rulegraph-run.dot (and .svg when
Graphviz `dot` is installed). Uses a planned, unclaimed demo request; runs nothing."""

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
    os.environ.setdefault("QUANTLAB_OUTPUTS_DIR", tempfile.mkdtemp(prefix="quantlab-rulegraph-"))
    from quantlab.commands.run import plan_run

    plan = plan_run({"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}, request_id=None,
                    warnings=[], origin="cli", claim=False)
    work = Path(os.environ["QUANTLAB_OUTPUTS_DIR"]) / ".quantlab"
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "rulegraph.json"
    cfg.write_text(json.dumps(plan.snakemake_config()))
    snakemake = Path(sys.executable).with_name("snakemake")
    dot = subprocess.run([str(snakemake), "-s", str(ROOT / "workflow/Snakefile"), "-d", str(work),
                          "--rulegraph", "--configfile", str(cfg), "--"],
                         capture_output=True, text=True, check=True).stdout
    dot = dot[dot.index("digraph"):]
    out = ROOT / "docs/img/rulegraph-run.dot"
    out.write_text(dot)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", str(out), "-o", str(out.with_suffix(".svg"))], check=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
