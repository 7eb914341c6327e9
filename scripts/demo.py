"""`make demo`: one real end-to-end request on the bundled S&P 500 data, through main.py.

Runs the same command an external consumer would run, with a signal file, then prints the
envelope, the last signal and where the artifacts are.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REQUEST = {
    "schema_version": "1.0",
    "request_id": "demo-001",
    "command": "run",
    "params": {
        "ticker": "SPX",
        "start": "2016-01-01",
        "end": "2019-01-01",
        "strategy": "rsi_ma_cross_v2",
        "strategy_params": {"rsi_buy_max": 60, "rsi_sell_min": 75, "cooldown_days": 2},
        "fee": 0.001,
        "slippage_bps": 5,
    },
}


def main() -> int:
    signal_file = Path(tempfile.mkdtemp(prefix="quantlab-demo-")) / "signals.jsonl"
    signal_file.touch()
    cmd = [sys.executable, str(ROOT / "main.py"), "--json-request", json.dumps(REQUEST),
           "--signal-file", str(signal_file)]
    print("$ python main.py --json-request '" + json.dumps(REQUEST) + f"' --signal-file {signal_file}")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f"exit code: {proc.returncode}")
    if proc.stderr.strip():
        print("stderr:\n" + proc.stderr.rstrip())
    print("stdout (envelope):\n" + proc.stdout.rstrip())
    lines = signal_file.read_text().splitlines()
    print(f"last signal ({len(lines)} lines in {signal_file}):\n" + (lines[-1] if lines else "<none>"))
    if proc.returncode != 0:
        return proc.returncode
    env = json.loads(proc.stdout)
    run_dir = Path(env["artifacts_path"])
    print(f"\nartifacts in {run_dir}:")
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(run_dir)}  ({path.stat().st_size:,} bytes)")
    print(f"runs index: {run_dir.parent / 'runs_index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
