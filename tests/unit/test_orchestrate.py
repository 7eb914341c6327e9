"""The executor's library pieces: store integrity checks, key locking, the report builder."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from quantlab.artifacts.report_doc import artifact_listing, machine_contract, report_document
from quantlab.commands.common import KeyLocks
from quantlab.orchestrate.execute import intact, lock_keys


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=64))
def test_intact_parquet_needs_magic_at_both_ends(tmp_path_factory, body):
    path = tmp_path_factory.mktemp("s") / "x.parquet"
    path.write_bytes(body)
    assert intact(path) == (len(body) >= 12 and body[:4] == b"PAR1" and body[-4:] == b"PAR1")
    path.write_bytes(b"PAR1" + body + b"\0" * 4 + b"PAR1")
    assert intact(path)


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                          max_leaves=8))
def test_intact_json_is_json_that_parses(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("s") / "x.json"
    text = json.dumps(value)
    path.write_text(text)
    assert intact(path)
    path.write_text(text[:-1] if len(text) > 1 and text[-1] in "]}\"" else text + "{")
    assert not intact(path)


def test_lock_keys_returns_missing_and_removes_damaged(tmp_path, capsys):
    good, torn, absent = tmp_path / "good.json", tmp_path / "torn.json", tmp_path / "absent.json"
    good.write_text("{}")
    torn.write_text('{"a":')
    with KeyLocks(tmp_path / "locks") as locks:
        missing = lock_keys(locks, {"a": [good], "b": [torn], "c": [absent]})
        assert missing == ["b", "c"] and not torn.exists() and good.exists()
        assert "damaged cache file" in capsys.readouterr().err
        assert lock_keys(locks, {"a": [good]}, force=True) == ["a"]


def test_report_document_order_and_contract_head(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / ".owner").write_text("1")
    mc = machine_contract("run", "run", None, run_id="r", warnings=[])
    assert list(mc) == ["schema_version", "contract_type", "command", "status", "run_id", "warnings"]
    assert machine_contract("run", "run", "q")["request_id"] == "q"
    doc = report_document(artifact_type="t", header={"run_id": "r"}, mc=mc, summary={"x": 1},
                          sections={"config_resolved": {}}, artifacts=artifact_listing(tmp_path))
    assert list(doc) == ["schema_version", "artifact_type", "status", "header", "config_resolved", "artifacts",
                         "machine_contract", "summary"]
    assert doc["artifacts"] == [{"file_name": "metrics.json", "size_bytes": 2},
                                {"file_name": "report.json", "size_bytes": None}]
    assert "artifacts" not in report_document(artifact_type="t", header={}, mc=mc, summary=None)


class _EarlyWorker:
    """Stands in for a StepWorker forked before planning (commands/worker.py, ``deferred``)."""

    def __init__(self):
        self.calls = []

    def start(self, log_path, prefetch):
        self.calls.append(("start", log_path, prefetch))

    def abandon(self):
        self.calls.append(("abandon",))


def _plan(tmp_path, **kw):
    from quantlab.orchestrate.plan import Plan

    kw.setdefault("prefetch", ("sweep.prefetch_sweep", ()))
    return Plan(run_id="r", mode="grid", config={}, target="t", log_path=tmp_path / "s.log",
                worker=_EarlyWorker(), **kw)


def test_an_early_worker_is_started_when_steps_run_here_else_abandoned(tmp_path, monkeypatch):
    from quantlab.orchestrate.execute import _step_worker

    plan = _plan(tmp_path)
    early = plan.worker
    assert _step_worker(plan, stale=True) is early and plan.worker is None
    assert early.calls == [("start", str(tmp_path / "s.log"), ("sweep.prefetch_sweep", ()))]
    for kw, stale in (({}, False), ({"executor": "slurm"}, True), ({"prefetch": None}, True)):
        plan = _plan(tmp_path, **kw)
        early = plan.worker
        _step_worker(plan, stale=stale)  # an identical rerun, steps run elsewhere, nothing to prefetch
        assert early.calls == [("abandon",)] and plan.worker is None


def _main_with_fake_early_workers(tmp_path, monkeypatch):
    """main.py loaded as a module, with every early worker it forks a recording stand-in."""
    import importlib.util
    from pathlib import Path

    import quantlab.orchestrate.early as early

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path))
    made = []
    monkeypatch.setattr(early, "_PENDING", [])
    monkeypatch.setattr(early, "early_worker", lambda command, params, opts: made.append(_EarlyWorker()) or made[-1])
    spec = importlib.util.spec_from_file_location("quantlab_main", Path(__file__).resolve().parents[2] / "main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    return main, made


def test_a_sweep_that_fails_validation_abandons_its_early_worker(tmp_path, monkeypatch, capsys):
    """main.py forks a sweep's worker before validating the request; a request that fails
    before its plan takes the worker ends it (no child left serving in a long-lived caller)."""
    main, made = _main_with_fake_early_workers(tmp_path, monkeypatch)
    bad = {"schema_version": "1.0", "command": "sweep", "params": {"ticker": "SPX", "param_grid": "not a grid"}}
    assert main.main(["--json-request", json.dumps(bad)]) == 2
    assert [w.calls for w in made] == [[("abandon",)]]


def test_a_sweep_request_that_completed_before_forks_no_early_worker(tmp_path, monkeypatch):
    """An identical rerun (fast path) would only throw an early worker's imports away: once a
    request completed (``remember``), the same params get none before planning, unless forced."""
    import argparse

    from quantlab.orchestrate import early

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path))
    params = {"ticker": "SPX", "start": "2015-01-01", "end": "2016-01-01", "param_grid": {"fast": [2, 3]}}

    def opts(force=False):
        return argparse.Namespace(dry_run=False, executor=None, profile=None, force=force)

    first = opts()
    worker = early.early_worker("sweep", params, first)
    assert worker is not None
    worker.abandon()
    early.remember(first)
    assert early.early_worker("sweep", params, opts()) is None
    other = early.early_worker("sweep", {**params, "end": "2016-02-01"}, opts())  # another request
    assert other is not None
    other.abandon()
    forced = early.early_worker("sweep", params, opts(force=True))
    assert forced is not None
    forced.abandon()


def test_only_a_big_run_forks_its_worker_before_planning(tmp_path, monkeypatch):
    """A run whose window goes through numba (``big_run``) forks its worker before validation; a
    small run does not (its worker is forked after planning, as before); and once a big run
    completed, the identical request forks none early."""
    import argparse

    from quantlab.orchestrate import early

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path))
    opts = argparse.Namespace(dry_run=False, executor=None, profile=None, force=False)
    small = {"ticker": "SPX", "start": "2015-01-01", "end": "2016-01-01"}
    big = {"ticker": "SYN", "source": "synthetic", "interval": "1m", "start": "2020-01-01", "end": "2021-01-01"}
    assert early.early_worker("run", small, opts) is None
    assert early.early_worker("run", {"ticker": "SPX"}, opts) is None  # no window: the planner decides
    assert early.early_worker("portfolio", big, opts) is None
    worker = early.early_worker("run", big, opts)
    assert worker is not None
    worker.abandon()
    early.remember(opts)
    assert early.early_worker("run", big, opts) is None
    assert early.seen_file(big, "run").parent.name == "run"


def test_a_big_run_that_fails_planning_abandons_its_early_worker(tmp_path, monkeypatch):
    """main.py forks a big run's worker before validating; a request that then fails (here: an
    unknown strategy, found by the planner) ends it."""
    main, made = _main_with_fake_early_workers(tmp_path, monkeypatch)
    bad = {"schema_version": "1.0", "command": "run", "params": {
        "ticker": "SYN", "source": "synthetic", "interval": "1m", "start": "2020-01-01", "end": "2021-01-01",
        "strategy": "no_such_strategy"}}
    assert main.main(["--json-request", json.dumps(bad)]) in (2, 3)
    assert [w.calls for w in made] == [[("abandon",)]]


BIG_RUN = {"schema_version": "1.0", "command": "run", "params": {
    "ticker": "SYN", "source": "synthetic", "interval": "1m", "start": "2020-01-01", "end": "2021-01-01"}}


def test_a_machine_request_forks_its_early_worker_before_parsing_its_arguments(tmp_path, monkeypatch):
    """The early worker is forked from the raw argv, before the CLI's imports and parsing (its
    imports start ~30 ms sooner), and the request then takes that very worker."""
    import quantlab.cli

    main, made = _main_with_fake_early_workers(tmp_path, monkeypatch)
    order = []
    parser = quantlab.cli.build_parser
    monkeypatch.setattr(quantlab.cli, "build_parser", lambda *a, **k: order.append(len(made)) or parser(*a, **k))
    bad = {**BIG_RUN, "params": {**BIG_RUN["params"], "strategy": "no_such_strategy"}}
    assert main.main(["--json-request", json.dumps(bad)]) in (2, 3)  # fails in planning: abandoned
    assert order == [1]  # the worker existed when the arguments were parsed
    assert [w.calls for w in made] == [[("abandon",)]]  # one worker, taken by the request, then ended


def test_an_early_worker_the_request_never_takes_is_ended(tmp_path, monkeypatch, capsys):
    """A usage error (an unknown flag beside a big run's request) never reaches the request: the
    worker forked from argv is abandoned all the same."""
    main, made = _main_with_fake_early_workers(tmp_path, monkeypatch)
    assert main.main(["--json-request", json.dumps(BIG_RUN), "--no-such-flag"]) == 2
    assert [w.calls for w in made] == [[("abandon",)]]
    from quantlab.orchestrate import early

    assert early._PENDING == []


def test_a_pending_worker_for_other_params_is_ended_and_the_decision_made_again(tmp_path, monkeypatch):
    import argparse

    from quantlab.orchestrate import early

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path))
    made = []
    monkeypatch.setattr(early, "_PENDING", [])
    monkeypatch.setattr(early, "early_worker", lambda command, params, opts: made.append(_EarlyWorker()) or made[-1])
    early.fork_from_argv(["--json-request", json.dumps(BIG_RUN)])
    assert len(made) == 1
    opts = argparse.Namespace(dry_run=False, executor=None, profile=None, force=False)
    assert early.pending_worker("run", BIG_RUN["params"], opts) is made[0]  # the same request: taken
    early.fork_from_argv(["--json-request", json.dumps(BIG_RUN)])
    other = early.pending_worker("run", {**BIG_RUN["params"], "end": "2021-02-01"}, opts)
    assert made[1].calls == [("abandon",)] and other is made[2]
    early.fork_from_argv(["--json-request", json.dumps({**BIG_RUN, "command": "portfolio"})])
    early.fork_from_argv(["run", "--ticker", "SPX"])
    assert early._PENDING == [] and len(made) == 3  # neither a machine run/sweep: nothing forked
