"""Per-key locks: identical concurrent requests compute each content key once.

Made deterministic with the test hook (QUANTLAB_TEST_PAUSE_AT): request A is held inside its
simulate step; B and C, identical, start then. Each of B and C either blocks on a key lock (seen
in /proc/locks as a waiting flock of its pid) or reaches its own simulate step (its gate's
`.reached` appears) — the test waits for one or the other, never for a time. Then everything is
released. With the locks, exactly one request ran simulate; without them, all three did."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from conftest import assert_every_json_parses, run_request, strict_json


def blocked_on_flock(pid: int) -> bool:
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields and str(pid) in fields:
            return True
    return False


def start(ql, payload, name: str, gate: Path) -> subprocess.Popen:
    sig = ql.tmp / f"{name}.jsonl"
    sig.touch()
    return subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ql.tmp,
                            env={**ql.env, "QUANTLAB_TEST_PAUSE_AT": f"step_simulate:{gate}"})


def wait_until(check, proc: subprocess.Popen, what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert proc.poll() is None, f"request ended early ({what}): {proc.communicate()[1][-800:]}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.005)


def test_identical_concurrent_requests_simulate_once(ql):
    payload = run_request(strategy="sma_crossover", start="2010-01-01", end="2012-01-01")
    gates = {name: ql.tmp / f"gate_{name}" for name in "abc"}
    procs = {"a": start(ql, payload, "a", gates["a"])}
    try:
        wait_until(Path(f"{gates['a']}.reached").exists, procs["a"], "A inside simulate")
        for name in "bc":
            procs[name] = start(ql, payload, name, gates[name])
        for name in "bc":
            proc, reached = procs[name], Path(f"{gates[name]}.reached")
            wait_until(lambda: blocked_on_flock(proc.pid) or reached.exists(), proc,
                       f"{name} blocked on a key lock or inside simulate")
    finally:
        for gate in gates.values():
            gate.touch()
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results[name] = strict_json(out)
    ran_simulate = sorted(name for name, gate in gates.items() if Path(f"{gate}.reached").exists())
    assert ran_simulate == ["a"], f"simulate ran in {ran_simulate}: the per-key locks did not hold"
    summaries = {json.dumps(r["summary"], sort_keys=True) for r in results.values()}
    assert len(summaries) == 1 and len({r["artifacts_path"] for r in results.values()}) == 3
    for name in "bc":  # Snakemake's own record: B and C never scheduled simulate
        log = Path(results[name]["artifacts_path"]) / "logs" / "snakemake.log"
        assert not log.exists() or "simulate" not in log.read_text()
    assert_every_json_parses(ql.outputs)
