"""The workflow's conventional Snakemake edges: each command kind has its own output namespace
(``requests/<run_id>/<kind>/``), so no rule tells requests apart by sniffing the run id."""

from __future__ import annotations

import os
import re

import pytest

from conftest import ROOT, run_request

WORKFLOW = ROOT / "workflow"


def _rule_outputs() -> dict[str, list[str]]:
    """rule name -> its output patterns under requests/ (read from the rule files)."""
    found: dict[str, list[str]] = {}
    for path in sorted(WORKFLOW.rglob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", path.read_text(), flags=re.M):
            outputs = re.search(r"^    output:\n((?:        .*\n)+)", body, flags=re.M)
            found[name] = re.findall(r'"(requests/[^"]+)"', outputs.group(1)) if outputs else []
    return found


def test_every_request_output_pattern_belongs_to_one_rule_and_one_kind():
    outputs = _rule_outputs()
    patterns = [p for ps in outputs.values() for p in ps]
    assert patterns, "no rule writes under requests/"
    assert len(patterns) == len(set(patterns)), f"rules share an output pattern: {sorted(patterns)}"
    for pattern in patterns:
        assert re.match(r"^requests/\{run_id\}/(run|paper|sweep|forward|portfolio|\{kind\})/", pattern), pattern
    text = "".join(p.read_text() for p in WORKFLOW.rglob("*.smk")) + (WORKFLOW / "Snakefile").read_text()
    for sniff in ("'_paper_'", "'_portfolio_'", "'_forward_'", '"_paper_"', '"_forward_"', '"_portfolio_"',
                  'run_id_pattern("'):
        assert sniff not in text, f"the workflow still tells requests apart by their run id ({sniff})"


def test_a_run_and_a_paper_session_publish_in_their_own_namespaces(ql):
    res = ql.request(run_request())
    assert res.returncode == 0, res.stderr
    run_id = res.envelope["run_id"]
    requests = ql.outputs / ".quantlab" / "requests"
    assert sorted(p.name for p in (requests / run_id).iterdir() if p.is_dir()) == ["run"]
    assert (requests / run_id / "run" / "index.json").is_file()
    assert (requests / run_id / "run" / "published.json").is_file()

    paper = ql.request(run_request(paper=True))
    assert paper.returncode == 0, paper.stderr
    session = paper.envelope["run_id"]
    assert sorted(p.name for p in (requests / session).iterdir() if p.is_dir()) == ["paper"]
    assert (requests / session / "paper" / "published.json").is_file()


def test_a_sweep_publishes_in_its_own_namespace(ql):
    payload = {"schema_version": "1.0", "request_id": "sw", "command": "sweep",
               "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
                          "param_grid": {"fast": [5, 10], "slow": [30]}}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    ns = ql.outputs / ".quantlab" / "requests" / res.envelope["run_id"] / "sweep"
    assert sorted(p.name for p in ns.iterdir()) == ["index.json", "published.json"]


def _shard_jobs(ql, cores: int) -> list[str]:
    payload = {"schema_version": "1.0", "request_id": "sw", "command": "sweep",
               "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
                          "param_grid": {"fast": [5, 10], "slow": [30]}, "out_dir": str(ql.tmp / f"c{cores}")}}
    res = ql.request(payload, "--cores", str(cores), "--force")
    assert res.returncode == 0, res.stderr
    log = (ql.tmp / f"c{cores}" / res.envelope["run_id"] / "logs" / "snakemake.log").read_text()
    return [job for job in re.split(r"\n(?=\[)", log) if "rule sweep_shard:" in job]


def test_sweep_shards_declare_their_threads_and_the_scheduler_caps_them_at_cores(ql):
    jobs = _shard_jobs(ql, cores=2)
    assert jobs and all("threads: 2" in job for job in jobs), jobs
    jobs = _shard_jobs(ql, cores=1)  # granted one core: the shard runs on one thread
    assert jobs and not any("threads:" in job for job in jobs), jobs


# ------------------------------------------------------------- plain Snakemake on .test/ configs
def _snakemake(tmp_path, configfile, *args: str):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("snakemake")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTLAB_")}
    return subprocess.run([str(exe), "-s", str(WORKFLOW / "Snakefile"), "-d", str(tmp_path / "work"),
                           "--configfile", str(configfile), *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("name, rules", [
    ("run", {"load_data", "signals", "simulate", "score", "plot_equity", "publish_run", "refresh_index", "all"}),
    ("sweep", {"load_data", "sweep_shard", "merge_leaderboard", "publish_sweep", "refresh_index", "all"}),
])
def test_plain_snakemake_dry_runs_and_draws_the_test_configs(tmp_path, name, rules):
    config = ROOT / ".test" / f"config_{name}.yaml"
    dry = _snakemake(tmp_path, config, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]
    table = dry.stdout[dry.stdout.index("Job stats:"):]
    assert set(re.findall(r"^(\w+)\s+\d+$", table, flags=re.M)) - {"total"} == rules
    graph = _snakemake(tmp_path, config, "--rulegraph")
    assert graph.returncode == 0, graph.stderr[-2000:]
    assert set(re.findall(r'label = "(\w+)"', graph.stdout)) == rules
    assert not (tmp_path / "work" / "store").exists(), "a dry run wrote outputs"


def test_plain_snakemake_rejects_a_config_outside_the_schema(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / ".test" / "config_run.yaml").read_text() + "requets: {}\n")  # a misspelt section
    res = _snakemake(tmp_path, bad, "-n")
    assert res.returncode != 0
    assert "requets" in res.stderr + res.stdout


def test_snakemake_lint_is_clean():
    """`snakemake --lint` on the three .test/ configs: the call the CLI's --lint makes, all three in
    one process (scripts/lint_workflow.py, also `make lint`)."""
    import subprocess
    import sys

    configs = [str(ROOT / ".test" / f"config_{name}.yaml") for name in ("lint", "run", "sweep")]
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_workflow.py"), *configs],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert res.stdout.count(": clean") == 3, res.stdout


def test_the_workflow_is_snakefmt_formatted():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("snakefmt")
    if not exe.exists():  # installed by `make venv` from requirements-dev.lock
        exe = shutil.which("snakefmt")
    assert exe, "snakefmt is not installed (make venv installs requirements-dev.lock)"
    res = subprocess.run([str(exe), "--check", "--diff", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
