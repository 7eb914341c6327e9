"""Every request answers for itself: unique run ids that never lie about time, each request
reporting only the directory it wrote, per-job logs that are JSON or gone, artifacts that
follow the umask. Races are made deterministic with the test-only hooks QUANTLAB_TEST_NOW (a
fixed claim clock, so identical requests collide) and QUANTLAB_TEST_PAUSE_AT (a FIFO
rendezvous), never with sleeps."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import assert_every_json_parses, GRID_YAML, ROOT, run_request, strict_json

NOW = "2031-02-03T04:05:06Z"
LEGS = [{"label": "spx", "ticker": "SPX", "weight": 0.6},
        {"label": "ndx", "ticker": "NASDAQ", "weight": 0.4}]


def _report(run_dir: Path) -> dict:
    return strict_json((run_dir / "report.json").read_text())


def _completed(res) -> dict:
    assert res.signals[-1]["event"] == "SESSION_COMPLETED", res.signals
    return res.signals[-1]


def test_identical_requests_in_one_second_get_suffixed_ids_and_true_time(ql):
    ql.env["QUANTLAB_TEST_NOW"] = NOW
    ids = []
    for i in range(4):
        res = ql.request({**run_request(), "request_id": f"same-{i}"})
        assert res.returncode == 0, res.stderr
        ids.append(res.envelope["run_id"])
        meta = strict_json((Path(res.envelope["artifacts_path"]) / "metadata.json").read_text())
        assert meta["created_at"] == NOW, "created_at is when the request ran, never bumped"
        assert _report(Path(res.envelope["artifacts_path"]))["header"]["created_at"] == NOW
    base = ids[0]
    assert base.startswith("20310203_040506_run_") and len(base.split("_")[3]) == 7
    assert ids == [base, f"{base}_2", f"{base}_3", f"{base}_4"]
    # the registry and the index accept the suffixed form, newest (latest claim) first
    listed = ql.cli("--runs-list", str(ql.runs_dir()), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = strict_json(listed.stdout)
    rows = rows["runs"] if isinstance(rows, dict) else rows
    assert [r["run_id"] for r in rows] == ids[::-1]
    index = strict_json((ql.runs_dir() / "runs_index.json").read_text())
    assert sorted(r["run_id"] for r in index["runs"]) == sorted(ids)
    shown = ql.cli("--runs-show", str(ql.runs_dir() / ids[-1]))
    assert shown.returncode == 0 and ids[-1] in shown.stdout


def test_identical_paper_sessions_in_one_second_get_suffixed_ids(ql):
    ql.env["QUANTLAB_TEST_NOW"] = NOW
    ids = []
    for i in range(2):
        res = ql.request(run_request(paper=True))
        assert res.returncode == 0, res.stderr
        ids.append(res.envelope["run_id"])
        status = strict_json((Path(res.envelope["artifacts_path"]) / "session_status.json").read_text())
        assert status["created_at"] == NOW and status["session_id"] == ids[-1]
    assert ids[0].startswith("20310203_040506_paper_") and ids[1] == ids[0] + "_2"
    listed = strict_json(ql.cli("--paper-sessions-list", str(ql.outputs / "paper_sessions"), "--json").stdout)
    assert [s["session_id"] for s in listed] == ids[::-1]


def test_same_sweep_to_two_out_dirs_in_one_second_writes_both(ql):
    ql.env["QUANTLAB_TEST_NOW"] = NOW
    envs = []
    for rid, key, where in (("sw-a", "out_dir", "b2_out_dir"), ("sw-b", "sweep_outdir", "b2_sweep_outdir")):
        out = ql.tmp / where
        res = ql.request({"schema_version": "1.0", "request_id": rid, "command": "sweep",
                          "params": {"config_path": str(GRID_YAML), key: str(out)}})
        assert res.returncode == 0, res.stderr
        env = res.envelope
        assert Path(env["artifacts_path"]).parent == out, "a request reports the directory it wrote"
        assert _completed(res)["artifacts_path"] == env["artifacts_path"]
        assert _report(Path(env["artifacts_path"]))["machine_contract"]["request_id"] == rid
        envs.append(env)
    assert envs[0]["run_id"] != envs[1]["run_id"]
    assert envs[1]["run_id"] == envs[0]["run_id"] + "_2"
    assert_every_json_parses(ql.outputs)


def test_same_basket_to_two_out_dirs_in_one_second_writes_both(ql):
    ql.env["QUANTLAB_TEST_NOW"] = NOW
    seen = set()
    for rid, where in (("bk-a", "basket_a"), ("bk-b", "basket_b")):
        out = ql.tmp / where
        res = ql.request({"schema_version": "1.0", "request_id": rid, "command": "portfolio",
                          "params": {"start": "2016-01-01", "end": "2018-01-01", "legs": LEGS,
                                     "out_dir": str(out)}})
        assert res.returncode == 0, res.stderr
        env = res.envelope
        assert Path(env["artifacts_path"]).parent == out
        assert _completed(res)["artifacts_path"] == env["artifacts_path"]
        assert _report(Path(env["artifacts_path"]))["machine_contract"]["request_id"] == rid
        seen.add(env["run_id"])
    assert len(seen) == 2


def _spawn(ql, payload: dict, env: dict, sig: Path) -> subprocess.Popen:
    sig.touch()
    return subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ql.tmp)


def _open_for_writing(fifo: Path, proc: subprocess.Popen):
    """Open the FIFO for writing: returns once ``proc`` is paused on it (None if it never came)."""
    box = []
    t = threading.Thread(target=lambda: box.append(open(fifo, "wb")), daemon=True)
    t.start()
    while t.is_alive() and proc.poll() is None:
        t.join(0.05)
    t.join(1)  # the rendezvous may have completed just as the process was checked
    return box[0] if box else None


@pytest.mark.slow
def test_identical_concurrent_runs_with_different_out_dirs_report_their_own_dir_20_times(ql):
    """Request a publishes and writes its marker, then waits; request b (identical, same second,
    another out_dir) runs start to end; then a reads its marker back. 20 rounds, no wrong answer."""
    ql.env["QUANTLAB_TEST_NOW"] = NOW
    warm = ql.request(run_request(out_dir=str(ql.tmp / "warm")))
    assert warm.returncode == 0, warm.stderr
    for i in range(20):
        fifo = ql.tmp / f"pause_{i}"
        os.mkfifo(fifo)
        dirs = {k: ql.tmp / f"race_{k}_{i}" for k in "ab"}
        env_a = {**ql.env, "QUANTLAB_TEST_PAUSE_AT": f"read_marker:{fifo}"}
        a = _spawn(ql, {**run_request(out_dir=str(dirs["a"])), "request_id": f"a-{i}"}, env_a,
                   ql.tmp / f"sig_a_{i}.jsonl")
        gate = _open_for_writing(fifo, a)
        assert gate is not None, a.communicate()[1]
        b = _spawn(ql, {**run_request(out_dir=str(dirs["b"])), "request_id": f"b-{i}"}, ql.env,
                   ql.tmp / f"sig_b_{i}.jsonl")
        b_out, b_err = b.communicate(timeout=120)
        gate.close()  # release a
        a_out, a_err = a.communicate(timeout=120)
        for key, (out, err, code) in {"a": (a_out, a_err, a.returncode), "b": (b_out, b_err, b.returncode)}.items():
            assert code == 0, err
            env = strict_json(out.strip())
            run_dir = Path(env["artifacts_path"])
            assert run_dir.parent == dirs[key], f"round {i}: request {key} reported {run_dir}"
            assert _report(run_dir)["machine_contract"]["request_id"] == f"{key}-{i}"
            signals = [strict_json(x) for x in (ql.tmp / f"sig_{key}_{i}.jsonl").read_text().splitlines()]
            assert signals[-1]["event"] == "SESSION_COMPLETED"
            assert signals[-1]["artifacts_path"] == str(run_dir)
            assert signals[-1]["runs_index_root"] == str(dirs[key])
    assert_every_json_parses(ql.outputs)


def test_job_logs_are_json_or_gone_after_success_and_kept_after_failure(ql):
    legacy = ql.outputs / ".quantlab" / "logs" / "load_data" / "0123456789abcdef.json"
    legacy.parent.mkdir(parents=True)
    legacy.touch()  # left by an older version: collected by the next workflow run
    ok = ql.request(run_request())
    assert ok.returncode == 0, ok.stderr
    sweep = ql.request({"schema_version": "1.0", "request_id": "sw", "command": "sweep",
                        "params": {"config_path": str(GRID_YAML)}})
    assert sweep.returncode == 0, sweep.stderr
    internal = ql.outputs / ".quantlab"
    assert_every_json_parses(ql.outputs)
    assert not [p for p in internal.rglob("*") if p.is_file() and p.stat().st_size == 0
                and p.suffix != ".lock" and ".snakemake" not in p.parts], "no empty per-job log files"
    assert not list((internal / "requests").glob("*/logs")), "a successful request keeps no job logs"
    # a failing step: its job log (the error record) and the Snakemake log are kept for diagnosis
    bad = ql.request(run_request(source="file", data_path=str(ROOT / "README.md")))
    assert bad.returncode == 3, bad.stderr
    failed = internal / "logs" / "failed"
    kept = sorted(p.name for p in failed.iterdir())
    assert len(kept) == 2 and kept[0].endswith(".jobs") and kept[1].endswith(".snakemake.log"), kept
    records = [strict_json(p.read_text()) for p in (failed / kept[0]).rglob("*.log") if p.stat().st_size]
    assert records and records[0]["exit_code"] == 3
    assert_every_json_parses(ql.outputs)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_artifacts_follow_the_umask(ql, umask, mode):
    payload = json.dumps(run_request())
    proc = subprocess.run(ql.cmd("--json-request", payload), capture_output=True, text=True, env=ql.env,
                          cwd=ql.tmp, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(strict_json(proc.stdout.strip())["artifacts_path"])
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    files += [p for p in ql.runs_dir().iterdir() if p.name.startswith("runs_index")]
    assert len(files) >= 10
    modes = {str(p.relative_to(ql.outputs)): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(mode)}, modes


def test_a_dry_run_in_the_same_second_as_an_identical_request_still_shows_its_own_steps(ql):
    """The dry run peeks at the id a claim would take (the next suffix), so it never mistakes
    the previous identical request's bookkeeping for its own (fixed clock: same second)."""
    ql.env["QUANTLAB_TEST_NOW"] = "2031-02-03T04:05:06Z"
    payload = run_request(strategy="sma_crossover")
    assert ql.request(payload).returncode == 0
    dry = ql.request(payload, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.envelope["stale_steps"] == ["publish_run", "refresh_index"]
