"""Near-miss params keys, aliases, top-level strategy parameters and named defaults (issue #10.11)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_request, strict_json
from quantlab.contract.params import COMMAND_PARAMS, spec_index
from quantlab.contract import request as contract_request
from quantlab.errors import ConfigError


def _report(res) -> dict:
    return strict_json(open(res.envelope["report_path"]).read())


@pytest.mark.parametrize("key,value,suggestion", [
    ("fees", 0.0, "fee"), ("tickr", "SPX", "ticker"), ("strategy_param", {}, "strategy_params"),
    ("slippage_bp", 1, "slippage_bps"), ("initial_csh", 5, "initial_cash"),
])
def test_near_miss_keys_are_refused_with_a_suggestion(ql, key, value, suggestion):
    res = ql.request(run_request(**{key: value}))
    assert res.returncode == 2, res.stderr
    msg = res.envelope["error"]["message"]
    assert f"params.{key}" in msg and f"did you mean '{suggestion}'?" in msg
    assert res.signals[-1]["event"] == "SESSION_FAILED" and res.signals[-1]["exit_code"] == 2
    assert not (ql.outputs / "runs").exists() or not any((ql.outputs / "runs").iterdir())


def test_unrelated_keys_stay_lenient(ql):
    res = ql.request(run_request(notes="a comment for humans", comment="x"))
    assert res.returncode == 0, res.stderr
    warnings = _report(res)["machine_contract"]["warnings"]
    assert "unknown params key 'notes' ignored" in warnings and "unknown params key 'comment' ignored" in warnings
    assert not any("did you mean" in w for w in warnings)


def test_llm_synonyms_are_aliases(ql):
    payload = {"schema_version": "1.0", "request_id": "req-test", "command": "run",
               "params": {"symbol": "SPX", "start_date": "2017-01-01", "end_date": "2018-01-01",
                          "strategy_name": "sma_crossover", "parameters": {"fast": 10, "slow": 50}}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    report = _report(res)
    reference = ql.request(run_request(strategy="sma_crossover", strategy_params={"fast": 10, "slow": 50}))
    assert res.envelope["summary"] == reference.envelope["summary"]
    assert report["machine_contract"]["warnings"] == []
    assert _report(reference)["machine_contract"]["summary"] == report["machine_contract"]["summary"]


def test_top_level_strategy_parameter_is_used_and_said_so(ql):
    res = ql.request(run_request(strategy="sma_crossover", fast=7, slow=40))
    assert res.returncode == 0, res.stderr
    nested = ql.request(run_request(strategy="sma_crossover", strategy_params={"fast": 7, "slow": 40}))
    assert res.envelope["summary"] == nested.envelope["summary"]
    warnings = _report(res)["machine_contract"]["warnings"]
    assert "params.fast is a parameter of strategy 'sma_crossover': used as strategy_params.fast" in warnings
    assert "params.slow is a parameter of strategy 'sma_crossover': used as strategy_params.slow" in warnings


def test_top_level_strategy_parameter_conflicting_with_nested_is_refused(ql):
    res = ql.request(run_request(strategy="sma_crossover", fast=7, strategy_params={"fast": 8}))
    assert res.returncode == 2 and "params.fast conflicts" in res.envelope["error"]["message"]


def test_defaults_standing_in_for_ticker_and_window_are_named(ql):
    payload = {"schema_version": "1.0", "request_id": "r", "command": "run", "params": {"source": "synthetic"}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    warnings = _report(res)["machine_contract"]["warnings"]
    assert "no ticker given: the synthetic series is called 'SYNTH'" in warnings
    assert "params.start not given: the default '2023-01-01' is used" in warnings
    assert "params.end not given: the default '2024-01-01' is used" in warnings
    assert "WARNING: " in res.stderr and "params.start not given" in res.stderr


def test_near_miss_in_an_inline_sweep_is_refused(ql):
    payload = {"schema_version": "1.0", "request_id": "s", "command": "sweep",
               "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
                          "param_grid": {"fast": [5, 10], "slow": [30]}, "objectiv": "total_return"}}
    res = ql.request(payload)
    assert res.returncode == 2 and "did you mean 'objective'?" in res.envelope["error"]["message"]


# ------------------------------------------------------------------------------------ units
@pytest.mark.parametrize("key,expected", [
    ("fees", "fee"), ("tickr", "ticker"), ("Ticker", "ticker"), ("tikcer", "ticker"), ("strategy_param", "strategy_params"),
    ("slippage-bps", "slippage_bps"), ("start_date", None), ("notes", None), ("comment", None), ("foo", None),
    ("end_dt", None), ("x", None),
])
def test_closest_key_requires_a_real_resemblance(key, expected):
    candidates = [k for k in spec_index("run") if k != "start_date"]  # start_date as if it were no alias
    assert contract_request.closest_key(key, candidates) == expected


def test_start_date_never_suggests_strategy():
    assert contract_request.closest_key("start_date", ["strategy", "strategy_params", "seed", "end"]) is None
    assert contract_request.closest_key("start_dat", ["strategy", "start_date"]) == "start_date"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(spec_index("run"))), st.data())
def test_exact_keys_resolve_to_themselves_and_one_deletion_is_suggested(name, data):
    index = spec_index("run")
    assert index[contract_request.closest_key(name, index)].name == index[name].name
    if len(name) >= 8:
        i = data.draw(st.integers(0, len(name) - 1))
        typo = name[:i] + name[i + 1:]
        hint = contract_request.closest_key(typo, index)
        assert hint is not None
        assert contract_request._distance(typo.replace("_", ""), hint.replace("_", "")) <= 1


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20))
def test_normalise_params_accepts_suggests_or_warns(key):
    warnings: list[str] = []
    try:
        contract_request.normalise_params("portfolio", {key: None}, warnings)
    except ConfigError as exc:
        assert "did you mean" in str(exc) and contract_request.closest_key(key, spec_index("portfolio")) is not None
        return
    assert key in spec_index("portfolio") or warnings == [f"unknown params key '{key}' ignored"]


def test_aliases_exist_for_every_command_that_has_the_field():
    for command, specs in COMMAND_PARAMS.items():
        index = spec_index(command)
        for alias, name in (("symbol", "ticker"), ("start_date", "start"), ("end_date", "end")):
            if name in index:
                assert index[alias].name == name, (command, alias)
