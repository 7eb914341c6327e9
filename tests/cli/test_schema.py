"""Self-description for agents: --schema validates the requests the suite sends and rejects bad ones."""

from __future__ import annotations


import jsonschema
import pytest

from conftest import ROOT, run_request, strict_json


# one worker runs the whole module, so its module-scoped fixture is made once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("schema")


@pytest.fixture(scope="module")
def schema():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--schema"], capture_output=True, text=True,
                         check=True).stdout
    return jsonschema.Draft202012Validator(strict_json(out))


GOOD = [
    run_request(),
    run_request(strategy="sma_crossover", strategy_params={"fast": 5, "slow": 20}),
    run_request(strategy="buy_and_hold", fee=0, slippage_bps=0, fill="close"),
    run_request(cooldown_days=2.0, rsi_buy_max=55, fee=None, interval=None),
    run_request(run_label="x", timeout_seconds=30),  # unknown params keys are allowed (warned)
    run_request(paper=True, source="synthetic", seed=3),
    {"schema_version": "1.0", "command": "run", "params": None},
    {"schema_version": "1.0", "command": "sweep", "params": {"config_path": "config/experiments/spx_2017_grid.yaml",
                                                            "sweep_outdir": "/tmp/x"}},
    {"schema_version": "1.0", "command": "sweep", "params": {
        "ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
        "objective": "total_return", "parameter_sets": [{"label": "a", "parameters": {"fast": 5, "slow": 20}}]}},
]

BAD = [
    {"command": "run"},
    {"schema_version": "2.0", "command": "run"},
    {"schema_version": "1.0", "command": "bogus"},
    {"schema_version": "1.0", "command": "run", "extra": 1},
    {"schema_version": "1.0", "command": "run", "params": [1]},
    run_request(fee="abc"),
    run_request(fee=0.5),
    run_request(cooldown_days=5.5),
    run_request(paper="yes"),
    run_request(ticker=42),
    run_request(interval="7d"),
    run_request(slippage_mode="random"),
    run_request(strategy="moon_shot"),
    run_request(strategy_params={"rsi_buy_mx": 50}),
    run_request(strategy_params={"rsi_buy_max": 150}),
    run_request(strategy="sma_crossover", strategy_params={"fast": 2.5}),
    run_request(strategy_params={"cooldown_days": True}),
]


def _req(command: str, **params) -> dict:
    return {"schema_version": "1.0", "command": command, "params": params}


GRID = {"fast": [5, 10], "slow": [50]}
# Invalid sweep / forward / portfolio (basket) requests: main.py rejects each with exit 2 (checked
# below), and the published schema must reject them too, so an agent's own validation agrees.
BAD_OTHER = [
    _req("sweep"),
    _req("sweep", config_path="config/experiments/spx_2017_grid.yaml", param_grid=GRID),
    _req("sweep", param_grid={"fast": []}, strategy="sma_crossover"),
    _req("sweep", param_grid=[1, 2]),
    _req("sweep", parameter_sets=[{"label": "a"}]),
    _req("sweep", parameter_sets=[]),
    _req("sweep", param_grid=GRID, parameter_sets=[{"label": "a", "parameters": {"fast": 5}}]),
    _req("sweep", config_path=""),
    _req("sweep", param_grid=GRID, strategy="sma_crossover", objective="moonshot"),
    _req("sweep", param_grid=GRID, strategy="sma_crossover", splits="H1"),
    _req("forward"),
    _req("forward", forward_eval="outputs/runs/x", forward_top_k=0),
    _req("forward", forward_eval="outputs/runs/x", forward_metric=42),
    _req("portfolio"),
    _req("portfolio", portfolio_report="outputs/forward_runs", portfolio_mode="moon"),
    _req("portfolio", legs=[{"label": "a", "ticker": "SPX"}]),
    _req("portfolio", legs=[]),
    _req("portfolio", legs=[{"label": "a", "ticker": "SPX", "weight": "half"}]),
]
GOOD_OTHER = [
    _req("sweep", param_grid=GRID, strategy="sma_crossover", objective="total_return", config_path=None),
    _req("forward", forward_eval="outputs/runs/x"),
    _req("forward", resume_forward="outputs/forward_runs/x", forward_end="2019-01-01"),
    _req("portfolio", portfolio_compare="outputs/forward_runs"),
    _req("portfolio", legs=[{"label": "a", "ticker": "SPX", "weight": 1.0}]),
]


@pytest.mark.parametrize("payload", BAD_OTHER, ids=lambda p: f"{p['command']}-{sorted(p['params'])}")
def test_schema_rejects_what_main_rejects_for_every_command(schema, ql, payload):
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(payload)
    res = ql.request(payload)
    assert res.returncode == 2 and res.stderr.startswith("ERROR: "), res.stderr


@pytest.mark.parametrize("payload", GOOD_OTHER, ids=lambda p: f"{p['command']}-{sorted(p['params'])}")
def test_schema_accepts_valid_requests_of_every_command(schema, payload):
    schema.validate(payload)


@pytest.mark.parametrize("payload", GOOD)
def test_schema_accepts_the_requests_the_suite_sends(schema, payload):
    schema.validate(payload)


@pytest.mark.parametrize("payload", BAD)
def test_schema_rejects_bad_requests(schema, payload):
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(payload)


def test_schema_per_command_and_strategies_listing(ql):
    run = strict_json(ql.cli("--schema", "run").stdout)
    assert run["properties"]["command"] == {"enum": ["run"]}
    listing = strict_json(ql.cli("--list-strategies").stdout)
    names = [s["name"] for s in listing]
    assert {"rsi_ma_cross_v2", "sma_crossover", "bollinger_reversion", "donchian_breakout", "buy_and_hold"} <= set(names)
    rsi = next(s for s in listing if s["name"] == "rsi_ma_cross_v2")
    assert {p["name"]: p["default"] for p in rsi["params"]}["rsi_buy_max"] == 60.0
    bad = ql.cli("--schema", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("ERROR: ")
