"""Snakemake's Python API vs its CLI, on this project's own `run` workflow.

    .venv/bin/python benchmarks/bench_invocation.py [--repeat 5]

Both execute the same Snakefile, configfile and target on a fresh outputs root (nothing cached),
in a fresh process, jobs as threads in the Snakemake process (no pre-warmed worker, so only the
invocation differs). This is the measurement behind the choice in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Check, finish, paired_ratio, Stats, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SNAKEMAKE = str(Path(PY).with_name("snakemake"))

PREPARE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from quantlab.commands.run.plan import plan_run
plan = plan_run({"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}, request_id=None,
                warnings=[], origin="cli", claim=False)
work = os.path.join(os.environ["QUANTLAB_OUTPUTS_DIR"], ".quantlab")
os.makedirs(work, exist_ok=True)
json.dump(plan.snakemake_config(), open(os.path.join(work, "bench.json"), "w"))
print(plan.target)
"""

API = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from quantlab.snakemake_runner import execute
work = Path(os.environ["QUANTLAB_OUTPUTS_DIR"]) / ".quantlab"
out = execute(config=json.load(open(work / "bench.json")), workdir=work, targets=[sys.argv[2]],
              log_path=work / "api.log")
sys.exit(0 if out.ok else 1)
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-invocation-"))
    times: dict[str, list[float]] = {"api": [], "cli": []}
    for i in range(args.repeat):
        for mode in (("api", "cli") if i % 2 == 0 else ("cli", "api")):  # interleaved, order alternating
            env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp / f"{mode}{i}"), "QUANTLAB_STEP_WORKER": "0"}
            target = subprocess.run([PY, "-c", PREPARE, str(ROOT / "src")], env=env, capture_output=True,
                                    text=True, check=True).stdout.strip()
            work = tmp / f"{mode}{i}" / ".quantlab"
            if mode == "api":
                cmd = [PY, "-c", API, str(ROOT / "src"), target]
            else:
                cmd = [SNAKEMAKE, "-s", str(ROOT / "workflow/Snakefile"), "-d", str(work), "--cores", "2",
                       "--force-use-threads", "--nolock", "--scheduler", "greedy", "-q", "all",
                       "--configfile", str(work / "bench.json"), "--", target]
            times[mode].append(timed(cmd, env))
    api, cli = Stats(times["api"]), Stats(times["cli"])
    print(f"\nSnakemake invocation, this project's run workflow, fresh process, {args.repeat} interleaved rounds, "
          "median [min..max]")
    print(f"  Python API (snakemake.api, threads)   {api.show()} s")
    print(f"  CLI (snakemake --force-use-threads)   {cli.show()} s")
    ratio = paired_ratio(cli, api)
    return finish([Check("invocation", "Snakemake CLI / Python API, cold run workflow", ratio.median, "x",
                         spread=(ratio.lo, ratio.hi))])

if __name__ == "__main__":
    sys.exit(main())
