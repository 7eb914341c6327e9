"""The research loop on the bundled S&P 500 data, end to end: sweep -> forward -> resume ->
portfolio. Prints each command and its real output (docs/research-loop.md is made from it).

    .venv/bin/python scripts/research_loop.py [OUTPUTS_DIR]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(*args: str, env: dict) -> str:
    shown = " ".join(a if " " not in a else f"'{a}'" for a in args)
    print(f"$ python main.py {shown}")
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    out = (proc.stdout + proc.stderr).rstrip()
    print(out.replace(env["QUANTLAB_OUTPUTS_DIR"], "outputs"))
    print(f"(exit {proc.returncode})\n")
    if proc.returncode:
        raise SystemExit(proc.returncode)
    return proc.stdout


def main() -> int:
    outputs = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="quantlab-loop-")
    env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": outputs}
    sh("sweep", "config/experiments/spx_walkforward.yaml", env=env)
    sweep_dir = sorted(Path(outputs, "runs").glob("*_walkforward_*"))[-1]
    sh("--forward-eval", str(sweep_dir), "--forward-start", "2018-01-01", "--forward-end", "2018-07-01",
       "--forward-top-k", "2", env=env)
    sh("sweep", "config/experiments/spx_2017_grid.yaml", env=env)
    grid_dir = sorted(Path(outputs, "runs").glob("*_grid_*"))[-1]
    sh("--forward-eval", str(grid_dir), "--forward-start", "2018-01-01", "--forward-end", "2018-07-01", env=env)
    session = sorted(Path(outputs, "forward_runs").glob("*_forward_*"), key=lambda p: p.stat().st_mtime)[-1]
    sh("--resume-forward", str(session), "--forward-end", "2019-01-01", env=env)
    raw = json.dumps({"schema_version": "1.0", "request_id": "loop-1", "command": "portfolio",
                      "params": {"portfolio_compare": str(Path(outputs, "forward_runs"))}})
    sh("--json-request", raw, env=env)
    sh("--runs-list", str(Path(outputs, "runs")), env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
