"""Write .test/config_run.yaml and .test/config_sweep.yaml: fixed, planned requests (bundled
sample data, fixed run ids, paths relative to the workflow's workdir) so a Snakemake user can run
`snakemake -s workflow/Snakefile --configfile .test/config_run.yaml -n` (or --rulegraph, --lint)
without QuantLab's planner. Plans unclaimed requests in a temporary outputs root; runs nothing."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

HEADER = """\
# A fixed, planned QuantLab {name} request (bundled sample data, fixed content keys and run id) for plain
# Snakemake: snakemake -s workflow/Snakefile --configfile .test/config_{name}.yaml -n  (or --rulegraph, or
# -d <workdir> --cores 2 to run it). Regenerate with scripts/test_configs.py when the planner changes.
"""


def main() -> int:
    import yaml

    tmp = tempfile.mkdtemp(prefix="quantlab-testcfg-")
    os.environ["QUANTLAB_OUTPUTS_DIR"] = tmp
    from quantlab.commands.experiment import build_experiment, read_yaml
    from quantlab.commands.run.plan import plan_run
    from quantlab.commands.sweep.board import attach_board
    from quantlab.commands.sweep.plan import plan_sweep

    run = plan_run({"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "source": "sample"},
                   request_id="test-run", warnings=[], origin="cli", claim=False)
    exp = build_experiment(read_yaml(ROOT / "config/experiments/spx_2017_grid.yaml"), where="spx_2017_grid.yaml")
    sweep = plan_sweep(exp, {"shards": 2}, request_id="test-sweep", warnings=[], origin="cli", claim=False)
    attach_board(sweep.config, sweep.run_id)
    for name, config, run_id, fixed in (("run", run.snakemake_config(), run.run_id, "20260101_000000_run_0000001"),
                                        ("sweep", sweep.config, sweep.run_id, "20260101_000000_grid_0000002")):
        text = json.dumps(config).replace(run_id, fixed).replace(tmp, "outputs")
        text = text.replace(f"{ROOT}/", "").replace('"source": "auto"', '"source": "sample"')
        config = json.loads(text)
        config.pop("planned", None)  # a hand-written config: the workflow validates it
        out = ROOT / ".test" / f"config_{name}.yaml"
        out.parent.mkdir(exist_ok=True)
        out.write_text(HEADER.format(name=name) + yaml.safe_dump(config, sort_keys=False, default_flow_style=None,
                                                                 width=100))
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
