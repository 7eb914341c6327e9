"""Arguments and help: count flags, argparse errors under --json-request, per-command help, text
that drifted from the code (issues #19.3, #19.4, #10.16, #10.17)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, run_request


def _assert_usage_failure(res, needle: str) -> None:
    assert res.returncode == 2
    env = res.envelope  # exactly one JSON line
    assert env["status"] == "error" and env["exit_code"] == 2 and env["request_id"] == "req-test"
    assert env["error"]["error_type"] == "ConfigError" and needle in env["error"]["message"]
    assert [s["event"] for s in res.signals] == ["SESSION_STARTED", "SESSION_FAILED"]
    assert res.signals[-1]["exit_code"] == 2 and needle in res.signals[-1]["message"]
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and needle in errors[0]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("flag,value", [("--cores", "0"), ("--cores", "-3"), ("--jobs", "0"), ("--jobs", "-1")])
def test_count_flags_below_one_are_refused(ql, flag, value):
    res = ql.request(run_request(), flag, value, timeout=60)
    _assert_usage_failure(res, f"{flag} must be ≥ 1")
    assert not (ql.outputs / "runs").exists() or not any((ql.outputs / "runs").iterdir())
    assert not list(ql.outputs.rglob(".tmp_*"))


def test_count_flag_below_one_on_the_human_cli(ql):
    proc = ql.cli("run", "--ticker", "SPX", "--cores", "0", timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["ERROR: --cores must be ≥ 1, got 0 (see --help)"]


@pytest.mark.parametrize("extra,needle", [(("--cores", "abc"), "invalid int value: 'abc'"),
                                          (("--no-such-flag",), "unrecognized arguments: --no-such-flag"),
                                          (("--cores",), "expected one argument")])
def test_argument_errors_under_json_request_answer_with_an_envelope(ql, extra, needle):
    _assert_usage_failure(ql.request(run_request(), *extra), needle)


def test_a_big_runs_argument_error_answers_as_any_other(ql):
    """A big run's request forks its step worker from the raw argv before the arguments are
    parsed (orchestrate.early.fork_from_argv): an argument error still ends in the contract's
    usage failure, with nothing written, and the worker is ended (drop_pending)."""
    big = run_request(ticker="SYN", source="synthetic", interval="1m", start="2020-01-01", end="2021-01-01")
    res = ql.request(big, "--no-such-flag", timeout=60)
    _assert_usage_failure(res, "unrecognized arguments: --no-such-flag")
    assert not (ql.outputs / "runs").exists() or not any((ql.outputs / "runs").iterdir())
    assert not list(ql.outputs.rglob(".tmp_*")) and not list(ql.outputs.rglob("speculative/*"))


def test_argument_error_with_signal_file_given_as_equals(ql, tmp_path):
    import json

    sig = tmp_path / "sig.jsonl"
    proc = subprocess.run(ql.cmd("--json-request=" + json.dumps(run_request()), f"--signal-file={sig}", "--bogus"),
                          capture_output=True, text=True, env=ql.env, cwd=ql.tmp, timeout=60)
    assert proc.returncode == 2 and len(proc.stdout.splitlines()) == 1
    assert json.loads(sig.read_text().splitlines()[-1])["event"] == "SESSION_FAILED"


def test_help_has_no_doubled_or_empty_defaults(ql):
    out = ql.cli("--help").stdout
    assert "(default: None)" not in out
    assert not re.search(r"\(default[^)]*\)\s*\(default", out)
    assert "Default: the data_path file's name" in out  # a described default, not a doubled one


@pytest.mark.parametrize("command,flags,absent", [
    ("run", ("--ticker", "--strategy-params", "--fee", "--cores"), ("--runs-list", "--portfolio-mode")),
    ("sweep", ("--shards", "--sweep-outdir"), ("--ticker", "--runs-list")),
    ("forward", ("--forward-start", "--resume-forward"), ("--ticker",)),
    ("portfolio", ("--portfolio-mode", "--portfolio-top-n"), ("--ticker",)),
])
def test_each_command_has_its_own_help(ql, command, flags, absent):
    proc = ql.cli(command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: main.py {command}")
    for flag in flags:
        assert flag in proc.stdout
    for flag in absent:
        assert flag not in proc.stdout
    assert "(default: None)" not in proc.stdout


def _rulegraph_module():
    spec = importlib.util.spec_from_file_location("rulegraph", ROOT / "scripts" / "rulegraph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DOT_HEAD = "digraph snakemake_dag {\n    graph[bgcolor=white, margin=0];\n"


@settings(max_examples=50, deadline=None)
@given(st.permutations(["load_data", "signals", "simulate", "score", "publish_run"]), st.randoms())
def test_canonical_dot_ignores_node_numbering_and_edge_order(names, rnd):
    canonical_dot = _rulegraph_module().canonical_dot
    deps = [("load_data", "signals"), ("load_data", "simulate"), ("signals", "simulate"),
            ("simulate", "score"), ("score", "publish_run"), ("simulate", "publish_run")]

    def render(order, edges):
        ids = {name: i for i, name in enumerate(order)}
        nodes = [f'\t{ids[n]}[label = "{n}", color = "0.1 0.6 0.85", style="rounded"];' for n in order]
        return _DOT_HEAD + "\n".join(nodes + [f"\t{ids[a]} -> {ids[b]}" for a, b in edges]) + "\n}            \n"

    shuffled = deps[:]
    rnd.shuffle(shuffled)
    reference = canonical_dot(render(sorted(names), deps))
    assert canonical_dot(render(list(names), shuffled)) == reference
    assert canonical_dot(reference) == reference
    assert reference.count(" -> ") == len(deps) and reference.endswith("}\n")


def test_rulegraph_output_is_stable_across_two_runs(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / str(i)
        out.mkdir()
        subprocess.run([sys.executable, str(ROOT / "scripts" / "rulegraph.py"), "--only", "run", "--out", str(out)],
                       check=True, capture_output=True, timeout=120)
        outs.append((out / "rulegraph-run.dot").read_text())
    assert outs[0] == outs[1]
    assert outs[0] == (ROOT / "docs" / "img" / "rulegraph-run.dot").read_text()  # the tracked file is current


def _tracked_text_files():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".json", "") and path.is_file():
            yield name, path.read_text(errors="replace")


def test_nothing_points_outside_the_repository_or_at_stale_command_lists():
    offenders = [name for name, text in _tracked_text_files() if name != "tests/cli/test_cli_args.py"
                 if re.search(r"(\.\./|\b)shared/(spec|reference)", text) or "implemented: run" in text]
    assert offenders == []


def test_architecture_doc_does_not_deny_the_step_worker():
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert "no child process" not in text.lower()
