"""Sweeps through ``--profile slurm`` on a real SLURM cluster (snakemake-executor-plugin-slurm):
the same leaderboards as the local run, a failing shard's contract exit code, and a terminated
request that cancels its jobs.

Needs a reachable cluster with working ``sacct`` (``scripts/slurm-up.sh up`` makes one on this
machine). Without one every test is skipped with the reason, except under
``QUANTLAB_REQUIRE_SLURM=1`` (CI's ``.ci/run``), where a missing cluster fails them. Run them with
``make test-slurm``; ``make test`` leaves them out.

The four SLURM requests run at once (the ``slurm`` fixture); each test compares one of them with
the same request run locally, or checks how it failed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import GRID_YAML, ROOT, QuantLab, Result, strict_json

pytestmark = pytest.mark.slurm

WF_YAML = ROOT / "config" / "experiments" / "spx_walkforward.yaml"
REQUIRE = "QUANTLAB_REQUIRE_SLURM"
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
TIMEOUT_S = 300  # per request; the CI budget for the whole module is ~2 minutes

FAILING_PLUGIN = '''
"""Test plugin: enters every 10 bars and exits 5 bars later; raises for offset 2, so of a grid
over offset exactly the shard holding offset 2 fails (inside its SLURM job)."""
import numpy as np

from quantlab.strategies import Param, Signals, Strategy, register


@register
class FailsAtTwo(Strategy):
    name = "fails_at_two"
    description = "fixed rhythm; raises for offset == 2 (test plugin)"
    params = (Param("offset", int, 0, 0, 50),)

    def compute(self, open_, high, low, close, params):
        if params["offset"] == 2:
            raise ZeroDivisionError("offset 2 is the failing shard")
        i = np.arange(len(close)) - params["offset"]
        return Signals(i % 10 == 0, i % 10 == 5)
'''


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def cluster_problem() -> str | None:
    """Why no SLURM sweep can run here, or None when one can."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (requirements.lock)"
    if shutil.which("sinfo") is None:
        return "no SLURM cluster: sinfo is not on PATH (scripts/slurm-up.sh up makes one)"
    try:
        states = _run("sinfo", "-h", "-o", "%T")
        acct = _run("sacct", "-n", "-X", "-S", "now-1hours")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"SLURM does not answer: {exc}"
    if states.returncode != 0:
        return f"SLURM is not reachable: sinfo: {states.stderr.strip()[:200]}"
    if not {"idle", "mixed", "allocated", "completing"} & set(states.stdout.split()):
        return f"no SLURM node accepts jobs (node states: {states.stdout.split()})"
    if acct.returncode != 0:
        return f"sacct does not work (the plugin's status command needs slurmdbd): {acct.stderr.strip()[:200]}"
    return None


@dataclass
class Submitted:
    payload: dict
    result: Result | None = None
    outputs: Path | None = None  # the outputs root it ran in


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, Submitted]:
    """The module's SLURM requests, started together and awaited: a grid, a one-split
    walk-forward, a grid whose one shard fails and one terminated while its shard runs.
    Concurrent requests share SLURM's queue (the plugin polls each on its own), so the module
    costs about the longest of them, not the sum."""
    problem = cluster_problem()
    if problem:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("slurm")
    plugins = base / "plugins"
    plugins.mkdir()
    (plugins / "ql_slurm_failing.py").write_text(textwrap.dedent(FAILING_PLUGIN))
    exp = yaml.safe_load(WF_YAML.read_text())
    exp["splits"] = exp["splits"][:1]  # one split: data, train shard, test -> three rounds of jobs
    (base / "wf_one_split.yaml").write_text(yaml.safe_dump(exp))
    requests = {
        "grid": Submitted(sweep(config_path=str(GRID_YAML), shards=2)),
        "walkforward": Submitted(sweep(config_path=str(base / "wf_one_split.yaml"), shards=1)),
        "failing": Submitted(sweep(ticker="SPX", start="2016-01-01", end="2018-01-01", strategy="fails_at_two",
                                   param_grid={"offset": [1, 2]}, shards=2)),
    }
    ql = QuantLab(base)
    # one outputs root on a path every node sees (one node here); shards with one thread each, so
    # two fit on a two-CPU node at once (the local runs keep the default two: equal leaderboards
    # also say the thread count changes nothing)
    ql.env.update({"QUANTLAB_OUTPUTS_DIR": str(base / "outputs"), "QUANTLAB_SWEEP_THREADS": "1"})
    # the failing request's plugin reaches its jobs through the environment (sbatch --export=ALL);
    # only there: a plugin is part of the code fingerprint, so of every content key
    plugin_env = {"PYTHONPATH": str(plugins), "QUANTLAB_PLUGINS": "ql_slurm_failing"}
    # the terminated request (own outputs root) stops inside its shard's SLURM job (test hook,
    # exported to the job), is sent SIGTERM there, and must take its job down with it
    gate = base / "gate"
    envs = {"failing": plugin_env,
            "terminated": {"QUANTLAB_OUTPUTS_DIR": str(base / "outputs-terminated"),
                           "QUANTLAB_TEST_PAUSE_AT": f"sweep.step_sweep_shard:{gate}",
                           "QUANTLAB_TEST_PAUSE_TIMEOUT": "60"}}
    requests["terminated"] = Submitted(sweep(ticker="SPX", start="2016-01-01", end="2018-01-01",
                                             strategy="sma_crossover", param_grid={"fast": [5], "slow": [30]}))
    running = {}
    for name, sub in requests.items():
        sig = base / f"signals_{name}.jsonl"
        sig.touch()
        payload = {**sub.payload, "params": {**sub.payload["params"], "profile": "slurm"}}
        running[name] = sig, subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                              env={**ql.env, **envs.get(name, {})}, cwd=base)
    try:
        proc = running["terminated"][1]
        deadline = time.monotonic() + TIMEOUT_S
        while not Path(f"{gate}.reached").exists():  # the shard's job is inside the step
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the shard's SLURM job never reached the pause point"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        for name, (sig, proc) in running.items():
            out, err = proc.communicate(timeout=TIMEOUT_S)
            requests[name].outputs = Path({**ql.env, **envs.get(name, {})}["QUANTLAB_OUTPUTS_DIR"])
            requests[name].result = Result(proc.returncode, out, err,
                                           [strict_json(line) for line in sig.read_text().splitlines()])
    finally:
        for _, proc in running.values():
            if proc.poll() is None:
                proc.kill()  # its snakemake child dies with it (PR_SET_PDEATHSIG)
    return requests


def sweep(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "slurm-1", "command": "sweep", "params": params}


def submitted_jobs(log_text: str) -> list[str]:
    return SUBMITTED.findall(log_text)


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = _run("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids))
    assert out.returncode == 0, out.stderr
    return dict(line.split("|", 1) for line in out.stdout.split())


def scontrol_state(job_id: str) -> str:
    """The job's state from slurmctld itself (sacct hears of a cancellation a moment later)."""
    out = _run("scontrol", "show", "job", "-o", job_id)
    assert out.returncode == 0, out.stderr
    return re.search(r"JobState=(\S+)", out.stdout).group(1)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if text in line:
            found.append(line[:200])
    return found


def local_and_slurm(ql, sub: Submitted) -> tuple[Path, Path, str]:
    """The local run of the same request, and both run dirs plus the SLURM run's Snakemake record."""
    local = ql.request(sub.payload)
    assert local.returncode == 0, local.stderr
    remote = sub.result
    assert remote.returncode == 0, remote.stderr
    assert remote.envelope["summary"] == local.envelope["summary"]
    a, b = Path(local.envelope["artifacts_path"]), Path(remote.envelope["artifacts_path"])
    return a, b, (b / "logs" / "snakemake.log").read_text()


def assert_same_files(local: Path, remote: Path, names: list[str]) -> None:
    for name in names:
        assert (local / name).read_bytes() == (remote / name).read_bytes(), name


def test_grid_sweep_on_slurm_equals_the_local_run(ql, slurm):
    a, b, log = local_and_slurm(ql, slurm["grid"])
    assert_same_files(a, b, ["leaderboard.csv", "metrics.json"])
    # the data and both shards ran as SLURM jobs, which SLURM's accounting saw complete
    jobs = submitted_jobs(log)
    assert len(jobs) == 3 and log.count("\nrule sweep_shard:") == 2 and "\nrule load_data:" in log
    assert set(sacct_states(jobs).values()) == {"COMPLETED"}
    assert "localrule merge_leaderboard:" in log  # bookkeeping stays on the submitting machine


def test_walk_forward_on_slurm_equals_the_local_run(ql, slurm):
    a, b, log = local_and_slurm(ql, slurm["walkforward"])
    assert slurm["walkforward"].result.envelope["mode"] == "walkforward"
    assert_same_files(a, b, ["leaderboard.csv", "walkforward_summary.csv", "metrics.json"])
    with open(b / "leaderboard.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3  # top_k of the one split
    jobs = submitted_jobs(log)
    assert "\nrule sweep_shard:" in log and "\nrule wf_test:" in log and "localrule wf_select:" in log
    assert jobs and set(sacct_states(jobs).values()) == {"COMPLETED"}


def test_a_failing_shard_on_slurm_exits_with_the_contract_code(slurm):
    res = slurm["failing"].result
    # exit 4 (strategy error) read from the error record the failed job left in its log: SLURM
    # itself only says FAILED, and snakemake only "exit 1"
    assert res.returncode == 4, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "offset 2 is the failing shard" in res.stderr
    env = res.envelope
    assert env["status"] == "error" and env["exit_code"] == 4 and env["error"]["error_type"] == "StrategyError"
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    outputs = slurm["failing"].outputs
    published = {p.name for p in (outputs / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert published == {Path(slurm[n].result.envelope["artifacts_path"]).name for n in ("grid", "walkforward")}
    failed = list((outputs / ".quantlab" / "logs" / "failed").glob("*.snakemake.log"))
    assert len(failed) == 1
    states = sacct_states(submitted_jobs(failed[0].read_text()))
    assert "FAILED" in states.values()  # the shard really failed as a SLURM job
    # SLURM's own log of the failed job is kept with the request's job logs; no request uses the
    # plugin's shared default directory, which each snakemake cleans at exit (another request's
    # pending job would lose the directory of its output file and fail)
    slurm_logs = list(failed[0].with_name(failed[0].name.replace(".snakemake.log", ".jobs")).glob("slurm/**/*.log"))
    assert any("offset 2 is the failing shard" in p.read_text() for p in slurm_logs), slurm_logs
    assert not (outputs / ".quantlab" / ".snakemake" / "slurm_logs").exists()
    for path in (outputs / ".quantlab" / "logs" / "failed").rglob("*.json"):
        strict_json(path.read_text())


def test_a_terminated_request_cancels_its_slurm_jobs(slurm):
    """SIGTERM while a shard runs in SLURM: the request ends as Terminated (exit 1) and its
    snakemake, sent SIGINT (on SIGTERM it would wait for the job), cancels the job."""
    sub = slurm["terminated"]
    res = sub.result
    assert res.returncode == 1, res.stderr
    assert res.envelope["error"]["error_type"] == "Terminated" and res.signals[-1]["event"] == "SESSION_FAILED"
    failed = list((sub.outputs / ".quantlab" / "logs" / "failed").glob("*.snakemake.log"))
    assert len(failed) == 1
    jobs = submitted_jobs(failed[0].read_text())
    states = {job: scontrol_state(job) for job in jobs}
    assert states[jobs[-1]] == "CANCELLED", states  # the shard's job, held inside the step
    # and none of the job's processes outlives it (SLURM kills them within KillWait, 5 s)
    deadline = time.monotonic() + 30
    while left := processes_mentioning(str(sub.outputs)):
        assert time.monotonic() < deadline, f"processes of the cancelled job are still running: {left}"
        time.sleep(0.2)
    assert not [p for p in (sub.outputs / "runs").glob("*") if not p.name.startswith(".")]  # nothing published
