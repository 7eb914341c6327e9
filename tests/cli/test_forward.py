"""Black-box tests of `forward` (and its resume) through main.py."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import ROOT, run_request, strict_json

WF_YAML = ROOT / "config" / "experiments" / "spx_walkforward.yaml"


def _req(**params):
    return {"schema_version": "1.0", "request_id": "fw-1", "command": "forward", "params": params}




def test_forward_from_a_grid_sweep(ql, grid_dir):
    res = ql.request(_req(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-07-01",
                          forward_top_k=2))
    assert res.returncode == 0, res.stderr
    env = res.envelope
    session = Path(env["artifacts_path"])
    assert session.parent == ql.outputs / "forward_runs" and "_forward_" in env["run_id"]
    for name in ("session_metadata.json", "config.json", "metrics.json", "report.json", "trades.csv",
                 "ledger.csv", "equity.parquet", "equity.png", "run_report.md"):
        assert (session / name).is_file(), name
    mc = strict_json((session / "report.json").read_text())["machine_contract"]
    assert mc["contract_type"] == "quantlab.forward.result" and mc["command"] == "forward"
    assert mc["run_id"] == env["run_id"] and mc["source_run_id"] == grid_dir.name
    assert [c["candidate_id"] for c in mc["candidates"]] == ["c1", "c2"]
    # candidate 1 is the sweep's best by sharpe_simple
    best = strict_json((grid_dir / "report.json").read_text())["machine_contract"]["best_result"]["params"]
    assert mc["candidates"][0]["strategy_params"] == best
    # trades only inside the forward window (warm-up bars are read, never traded)
    ledger = list(csv.DictReader(open(session / "ledger.csv")))
    assert min(r["timestamp"] for r in ledger) >= "2018-01-01" and max(r["timestamp"] for r in ledger) < "2018-07-01"
    assert len(ledger) == 2 * len({r["timestamp"] for r in ledger})
    for row in csv.DictReader(open(session / "trades.csv")):
        assert row["entry_time"] >= "2018-01-01"
    done = res.signals[-1]
    assert done["event"] == "SESSION_COMPLETED" and done["mode"] == "forward"
    # the session is indexed where it lives (issue 10.15: it used to point at outputs/runs, without it)
    assert done["runs_index_json"] == str(ql.outputs / "forward_runs" / "runs_index.json")
    # forward with the sweep's params equals a plain run over the same window
    run = ql.request(run_request(start="2018-01-01", end="2018-07-01", strategy_params=best))
    assert run.envelope["summary"] == env["summary"]


def test_forward_from_a_walkforward_sweep(ql):
    wf = ql.request({"schema_version": "1.0", "command": "sweep", "params": {"config_path": str(WF_YAML)}})
    assert wf.returncode == 0, wf.stderr
    wf_dir = Path(wf.envelope["artifacts_path"])
    res = ql.request(_req(forward_eval=str(wf_dir), forward_end="2018-07-01"))
    assert res.returncode == 0, res.stderr
    meta = strict_json((Path(res.envelope["artifacts_path"]) / "session_metadata.json").read_text())
    assert meta["forward_start"] == "2018-01-01"  # default: the sweep's end
    best = strict_json((wf_dir / "report.json").read_text())["machine_contract"]["best_result"]["params"]
    assert meta["candidates"][0]["strategy_params"] == best


def test_resume_equals_one_shot_and_noop(ql, grid_dir):
    first = ql.request(_req(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-06-01",
                            forward_top_k=2))
    session = Path(first.envelope["artifacts_path"])
    resumed = ql.request(_req(resume_forward=str(session), forward_end="2018-12-01"))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.envelope["run_id"] == first.envelope["run_id"]
    oneshot = ql.request(_req(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-12-01",
                              forward_top_k=2))
    other = Path(oneshot.envelope["artifacts_path"])
    for name in ("metrics.json", "trades.csv", "ledger.csv"):
        assert (session / name).read_bytes() == (other / name).read_bytes(), name
    ledger = (session / "ledger.csv").read_text().splitlines()
    assert len(ledger) == len(set(ledger))  # no bar twice
    meta = strict_json((session / "session_metadata.json").read_text())
    assert meta["resume_count"] == 1 and meta["forward_end"] == "2018-12-01"
    before = {p.name: p.read_bytes() for p in session.iterdir() if p.is_file()}
    noop = ql.request(_req(resume_forward=str(session), forward_end="2018-12-01"))
    assert noop.returncode == 0, noop.stderr
    assert {p.name: p.read_bytes() for p in session.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("params,code,needle", [
    ({}, 2, "forward_eval"),
    ({"run_dir": "/nonexistent/sweep"}, 2, "not found"),
    ({"forward_metric": "luck"}, 2, "forward_metric"),
    ({"forward_start": "2018-06-01", "forward_end": "2018-01-01"}, 2, "before"),
    ({"forward_start": "2030-01-01", "forward_end": "2031-01-01"}, 3, "2030"),
])
def test_forward_bad_inputs(ql, grid_dir, params, code, needle):
    if params and "run_dir" not in params:
        params = {"run_dir": str(grid_dir), **params}
    res = ql.request(_req(**params))
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and needle in res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED" and res.envelope["exit_code"] == code
    fwd = ql.outputs / "forward_runs"
    assert not fwd.exists() or [p for p in fwd.iterdir() if p.is_dir()] == []


def test_forward_from_a_run_dir_is_refused(ql):
    run = ql.request(run_request())
    res = ql.request(_req(run_dir=run.envelope["artifacts_path"]))
    assert res.returncode == 2 and "not a sweep run" in res.stderr


def test_resume_errors(ql, grid_dir, tmp_path):
    bad = ql.request(_req(resume_forward=str(tmp_path)))
    assert bad.returncode == 2 and "not a forward session" in bad.stderr
    first = ql.request(_req(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-06-01"))
    back = ql.request(_req(resume_forward=first.envelope["artifacts_path"], forward_end="2018-03-01"))
    assert back.returncode == 2 and "only extends" in back.stderr


def test_forward_cli_flags(ql, grid_dir):
    a = ql.cli("--forward-eval", str(grid_dir), "--forward-start", "2018-01-01", "--forward-end", "2018-04-01")
    assert a.returncode == 0, a.stderr
    session = next((ql.outputs / "forward_runs").glob("*_forward_*"))
    b = ql.cli("--resume-forward", str(session), "--forward-end", "2018-08-01")
    assert b.returncode == 0, b.stderr
    assert strict_json((session / "session_metadata.json").read_text())["forward_end"] == "2018-08-01"
