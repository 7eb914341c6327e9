"""Concurrent requests on one project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import assert_every_json_parses, run_request, strict_json
from index_reference import REGISTRY_SIZES, assert_files_are_a_full_rebuild, populate


@pytest.mark.slow
@pytest.mark.parametrize("registry", REGISTRY_SIZES)
def test_eight_simultaneous_runs_all_succeed_and_are_indexed(ql, registry):
    # a mix: 4 identical requests (they share every intermediate) and 4 distinct ones
    before = [] if not registry else [r["run_id"] for r in strict_json(
        (populate(ql.runs_dir(), registry) / "runs_index.json").read_text())["runs"]]
    payloads = [run_request() for _ in range(4)] + [run_request(fee=0.001 * i) for i in range(1, 5)]
    procs = [ql.spawn(p, ql.tmp / f"sig{i}.jsonl") for i, p in enumerate(payloads)]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    run_ids = []
    for i, ((out, err), code) in enumerate(results):
        assert code == 0, err
        env = strict_json(out.strip())
        run_ids.append(env["run_id"])
        lines = (ql.tmp / f"sig{i}.jsonl").read_text().splitlines()
        assert [json.loads(x)["event"] for x in lines] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert len(set(run_ids)) == 8, "every request gets its own run directory"
    index = assert_files_are_a_full_rebuild(ql.runs_dir())
    assert sorted(r["run_id"] for r in index["runs"]) == sorted(before + run_ids)  # nothing lost
    metrics = {(ql.runs_dir() / rid / "metrics.json").read_bytes() for rid in run_ids[:4]}
    assert len(metrics) == 1, "identical concurrent requests give identical metrics"
    assert_every_json_parses(ql.outputs)


@pytest.mark.slow
def test_identical_warm_runs_started_together_each_report_their_own_out_dir(ql):
    """Three identical warm runs, one claim second (fixed clock), out_dir race_a|b|c: each
    request's envelope, signal and report.json name its own directory and request."""
    ql.env["QUANTLAB_TEST_NOW"] = "2031-02-03T04:05:06Z"
    assert ql.request(run_request()).returncode == 0  # warm
    for round_ in range(3):
        dirs = {k: ql.tmp / f"race_{k}_{round_}" for k in "abc"}
        procs = {k: ql.spawn({**run_request(out_dir=str(d)), "request_id": f"{k}-{round_}"},
                           ql.tmp / f"sig_{k}_{round_}.jsonl") for k, d in dirs.items()}
        for k, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            env = strict_json(out.strip())
            run_dir = Path(env["artifacts_path"])
            assert run_dir.parent == dirs[k]
            report = strict_json((run_dir / "report.json").read_text())
            assert report["machine_contract"]["request_id"] == f"{k}-{round_}"
            last = json.loads((ql.tmp / f"sig_{k}_{round_}.jsonl").read_text().splitlines()[-1])
            assert last["artifacts_path"] == str(run_dir) and last["runs_index_root"] == str(dirs[k])
    assert_every_json_parses(ql.outputs)


# Kills and signals at known points (no sleeps, no lost races) live in test_kill_safety.py,
# test_termination.py and test_locks.py.
