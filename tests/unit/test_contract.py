"""Unit tests of the contract layer: request parsing, schema sync, signals, envelope, paths."""

from __future__ import annotations

import json
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.contract import paths
from quantlab.contract.envelope import dumps, failure_envelope
from quantlab.contract.request import RequestError, parse_json_request
from quantlab.contract.schema import request_schema
from quantlab.contract.signals import SignalEmitter
from quantlab.errors import ConfigError


def _req(**params):
    return json.dumps({"schema_version": "1.0", "command": "run", "params": params})


def test_checked_in_schema_matches_the_registry():
    on_disk = json.loads((paths.PROJECT_ROOT / "config/schemas/request.schema.json").read_text())
    assert on_disk == request_schema(), "run: python -m quantlab.contract.schema > config/schemas/request.schema.json"
    from quantlab.commands.experiment import sweep_schema

    sweep_on_disk = json.loads((paths.PROJECT_ROOT / "config/schemas/sweep.schema.json").read_text())
    assert sweep_on_disk == sweep_schema(), "regenerate config/schemas/sweep.schema.json from experiment.sweep_schema()"


def test_aliases_and_coercion():
    req = parse_json_request(_req(outdir="/tmp/x", cooldown_days=3.0, fee=0, initial_cash=5000))
    assert req.params == {"out_dir": "/tmp/x", "cooldown_days": 3, "fee": 0.0, "initial_cash": 5000.0}
    assert isinstance(req.params["cooldown_days"], int) and isinstance(req.params["fee"], float)


def test_alias_conflict_is_an_error():
    with pytest.raises(ConfigError, match="conflicts"):
        parse_json_request(_req(out_dir="/tmp/a", outdir="/tmp/b"))


def test_unknown_keys_warn_and_near_misses_are_errors():
    # issue #10.11 changed this: a key that resembles a real one (tickr) is exit 2, no longer a warning
    with pytest.raises(ConfigError, match="did you mean 'ticker'"):
        parse_json_request(_req(tickr="SPX", run_label="abc"))
    req = parse_json_request(_req(run_label="abc"))
    assert req.params == {}
    assert "unknown params key 'run_label' ignored" in req.warnings


@pytest.mark.parametrize("value", [True, "5", [5], {"a": 1}])
def test_number_params_reject_non_numbers(value):
    with pytest.raises(RequestError, match="params.fee"):
        parse_json_request(_req(fee=value))


def test_request_id_types():
    assert parse_json_request(json.dumps({"schema_version": "1.0", "command": "run",
                                          "request_id": 7})).request_id == 7
    with pytest.raises(RequestError):
        parse_json_request(json.dumps({"schema_version": "1.0", "command": "run", "request_id": [1]}))


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=20))
def test_any_json_value_is_a_clean_config_error_or_a_request(value):
    raw = json.dumps({"schema_version": "1.0", "command": "run", "params": value})
    try:
        req = parse_json_request(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(req.params, dict)


def test_deeply_nested_payload_is_a_config_error():
    with pytest.raises(ConfigError):
        parse_json_request("[" * 100_000 + "]" * 100_000)


def test_signal_lines_are_appended_atomically(tmp_path):
    path = tmp_path / "signals.jsonl"
    path.write_text("")

    def worker(i):
        em = SignalEmitter(str(path), mode="run", request_id=f"r{i}")
        for _ in range(50):
            em.started(payload="x" * 2000)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    for line in lines:
        assert json.loads(line)["event"] == "SESSION_STARTED"


def test_signal_never_truncates_existing_content(tmp_path):
    path = tmp_path / "signals.jsonl"
    path.write_text('{"pre": "existing"}\n')
    SignalEmitter(str(path), mode="run").completed(run_id="x")
    lines = path.read_text().splitlines()
    assert lines[0] == '{"pre": "existing"}' and json.loads(lines[1])["event"] == "SESSION_COMPLETED"


def test_failure_envelope_is_strict_json():
    env = failure_envelope(request_id="r", exit_code=3, error_type="DataError", message="no bars")
    text = dumps(env)
    assert "\n" not in text and json.loads(text)["error"]["code"] == "DATA_ERROR"


def test_output_dir_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("QUANTLAB_ALLOWED_ROOTS", raising=False)
    assert paths.resolve_output_dir("outputs/runs", tmp_path) == paths.PROJECT_ROOT / "outputs" / "runs"
    assert paths.resolve_output_dir(str(tmp_path / "a"), tmp_path) == tmp_path / "a"
    with pytest.raises(ConfigError):
        paths.resolve_output_dir("/etc/x", tmp_path)
    with pytest.raises(ConfigError):
        paths.resolve_output_dir("../" * 20 + "etc", tmp_path)
    with pytest.raises(ConfigError):
        paths.resolve_output_dir("a\x00b", tmp_path)
    monkeypatch.setenv("QUANTLAB_ALLOWED_ROOTS", os.pathsep.join(["/srv/nowhere", "/etc"]))
    assert paths.resolve_output_dir("/etc/x", tmp_path) == paths.Path("/etc/x")
