"""Sweeps through ``--profile slurm`` on a real SLURM cluster (snakemake-executor-plugin-slurm):
the same leaderboards as the local run, and a failing shard's contract exit code.

Needs a reachable cluster with working ``sacct`` (``scripts/slurm-up.sh up`` makes one on this
machine). Without one every test is skipped with the reason, except under
``QUANTLAB_REQUIRE_SLURM=1`` (CI's ``.ci/run``), where a missing cluster fails them. Run them with
``make test-slurm``; ``make test`` leaves them out.

The SLURM requests share one outputs root (on a path every node sees; one node here), so later
tests find the data earlier ones loaded and submit fewer jobs. Each test still stands alone: a
missing intermediate is only submitted once more. Shards run with one thread each
(``QUANTLAB_SWEEP_THREADS=1``) so that two fit on a two-CPU node at once; the local runs keep
the default two, so equality also says the thread count changes nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, QuantLab, strict_json

pytestmark = pytest.mark.slurm

GRID_YAML = ROOT / "config" / "experiments" / "spx_2017_grid.yaml"
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


@pytest.fixture(scope="module")
def slurm_outputs(tmp_path_factory) -> Path:
    problem = cluster_problem()
    if problem:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    return tmp_path_factory.mktemp("slurm") / "outputs"


def on_slurm(ql: QuantLab, outputs: Path) -> QuantLab:
    ql.env.update({"QUANTLAB_OUTPUTS_DIR": str(outputs), "QUANTLAB_SWEEP_THREADS": "1"})
    return ql


def sweep(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "slurm-1", "command": "sweep", "params": params}


def submitted_jobs(log_text: str) -> list[str]:
    return SUBMITTED.findall(log_text)


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = _run("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids))
    assert out.returncode == 0, out.stderr
    return dict(line.split("|", 1) for line in out.stdout.split())


def assert_same_files(local: Path, remote: Path, names: list[str]) -> None:
    for name in names:
        assert (local / name).read_bytes() == (remote / name).read_bytes(), name


def test_grid_sweep_on_slurm_equals_the_local_run(ql, slurm_outputs):
    local = ql.request(sweep(config_path=str(GRID_YAML), shards=2))
    assert local.returncode == 0, local.stderr
    remote = on_slurm(ql, slurm_outputs).request(sweep(config_path=str(GRID_YAML), shards=2, profile="slurm"),
                                                 timeout=TIMEOUT_S)
    assert remote.returncode == 0, remote.stderr
    a, b = Path(local.envelope["artifacts_path"]), Path(remote.envelope["artifacts_path"])
    assert_same_files(a, b, ["leaderboard.csv", "metrics.json"])
    assert remote.envelope["summary"] == local.envelope["summary"]
    # the data and both shards ran as SLURM jobs, which SLURM's accounting saw complete
    log = (b / "logs" / "snakemake.log").read_text()
    jobs = submitted_jobs(log)
    assert len(jobs) == 3 and log.count("\nrule sweep_shard:") == 2 and "\nrule load_data:" in log
    assert set(sacct_states(jobs).values()) == {"COMPLETED"}
    assert "localrule merge_leaderboard:" in log  # bookkeeping stays on the submitting machine


def test_walk_forward_on_slurm_equals_the_local_run(ql, slurm_outputs, tmp_path):
    exp = yaml.safe_load(WF_YAML.read_text())
    exp["splits"] = exp["splits"][:1]  # one split: data, train shard, test -> three rounds of jobs
    config = tmp_path / "wf_one_split.yaml"
    config.write_text(yaml.safe_dump(exp))
    local = ql.request(sweep(config_path=str(config), shards=1))
    assert local.returncode == 0, local.stderr
    remote = on_slurm(ql, slurm_outputs).request(sweep(config_path=str(config), shards=1, profile="slurm"),
                                                 timeout=TIMEOUT_S)
    assert remote.returncode == 0, remote.stderr
    a, b = Path(local.envelope["artifacts_path"]), Path(remote.envelope["artifacts_path"])
    assert remote.envelope["mode"] == "walkforward"
    assert_same_files(a, b, ["leaderboard.csv", "walkforward_summary.csv", "metrics.json"])
    with open(b / "leaderboard.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3  # top_k of the one split
    log = (b / "logs" / "snakemake.log").read_text()
    jobs = submitted_jobs(log)
    assert "\nrule sweep_shard:" in log and "\nrule wf_test:" in log and "localrule wf_select:" in log
    assert jobs and set(sacct_states(jobs).values()) == {"COMPLETED"}


def test_a_failing_shard_on_slurm_exits_with_the_contract_code(ql, slurm_outputs, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "ql_slurm_failing.py").write_text(textwrap.dedent(FAILING_PLUGIN))
    ql = on_slurm(ql, slurm_outputs)
    ql.env.update({"PYTHONPATH": str(plugins), "QUANTLAB_PLUGINS": "ql_slurm_failing"})  # exported to the jobs
    runs = slurm_outputs / "runs"
    before = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    res = ql.request(sweep(ticker="SPX", start="2016-01-01", end="2018-01-01", strategy="fails_at_two",
                           param_grid={"offset": [0, 1, 2]}, shards=3, profile="slurm"), timeout=TIMEOUT_S)
    # exit 4 (strategy error) read from the error record the failed job left in its log: SLURM
    # itself only says FAILED, and snakemake only "exit 1"
    assert res.returncode == 4, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "offset 2 is the failing shard" in res.stderr
    env = res.envelope
    assert env["status"] == "error" and env["exit_code"] == 4 and env["error"]["error_type"] == "StrategyError"
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    assert (sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []) == before  # nothing published
    failed = slurm_outputs / ".quantlab" / "logs" / "failed"
    record = "".join(p.read_text() for p in failed.glob("*_grid_*.snakemake.log"))
    states = sacct_states(submitted_jobs(record))
    assert "FAILED" in states.values()  # the shard really failed as a SLURM job
    for path in failed.rglob("*.json"):
        strict_json(path.read_text())
