"""Baskets: `portfolio` with params.legs — legs run as jobs, reuse cached runs, weights checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_request, strict_json

LEGS = [{"label": "spx", "ticker": "SPX", "weight": 0.6},
        {"label": "ndx", "ticker": "NASDAQ", "weight": 0.4, "strategy": "sma_crossover",
         "parameters": {"fast": 10, "slow": 50}}]


def _req(**params):
    base = {"start": "2016-01-01", "end": "2018-01-01", "legs": LEGS}
    base.update(params)
    return {"schema_version": "1.0", "request_id": "bk-1", "command": "portfolio", "params": base}


def _record(res) -> str:
    return (Path(res.envelope["artifacts_path"]) / "logs" / "snakemake.log").read_text()


def test_basket_combines_legs_with_their_weights(ql):
    spx = ql.request(run_request(start="2016-01-01", end="2018-01-01"))  # a leg already computed
    res = ql.request(_req())
    assert res.returncode == 0, res.stderr
    out = Path(res.envelope["artifacts_path"])
    mc = strict_json((out / "report.json").read_text())["machine_contract"]
    assert mc["contract_type"] == "quantlab.portfolio.result" and sorted(mc["session_ids"]) == ["ndx", "spx"]
    metrics = strict_json((out / "metrics.json").read_text())
    legs = {s["session_id"]: s for s in metrics["sessions"]}
    assert legs["spx"]["total_return"] == pytest.approx(spx.envelope["summary"]["total_return"], abs=1e-12)
    combined = 0.6 * legs["spx"]["total_return"] + 0.4 * legs["ndx"]["total_return"]  # buy and hold of the weights
    assert metrics["metrics"]["total_return"] == pytest.approx(combined, abs=1e-12)
    assert strict_json((out / "correlation.json").read_text())
    assert (out / "equity.png").read_bytes()[:4] == b"\x89PNG"
    # the SPX leg reused the plain run's simulation; only the NASDAQ leg was computed
    record = _record(res)
    assert record.count("rule simulate:") == 1


def test_basket_rerun_recomputes_nothing(ql):
    first = ql.request(_req())
    again = ql.request(_req())
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    record = _record(again)
    for rule in ("load_data", "signals", "simulate", "score"):
        assert f"rule {rule}:" not in record, rule
    assert "rule basket_legs:" in record and "rule publish_portfolio:" in record
    assert again.envelope["summary"] == first.envelope["summary"]


def test_weights_must_sum_to_one_unless_normalized(ql):
    legs = [{**LEGS[0], "weight": 0.6}, {**LEGS[1], "weight": 0.6}]
    bad = ql.request(_req(legs=legs))
    assert bad.returncode == 2 and "sum to 1.2" in bad.stderr and bad.signals[-1]["event"] == "SESSION_FAILED"
    ok = ql.request(_req(legs=legs, normalize=True))
    assert ok.returncode == 0, ok.stderr
    w = strict_json((Path(ok.envelope["artifacts_path"]) / "weights.json").read_text())
    assert w["modes"]["custom_weight"]["weights"] == pytest.approx({"spx": 0.5, "ndx": 0.5})


@pytest.mark.parametrize("legs,needle", [
    ([], "non-empty"),
    ([{"label": "a", "ticker": "SPX", "weight": -1}], "weight"),
    ([{"label": "a", "ticker": "SPX", "weight": 1, "colour": "red"}], "colour"),
    ([{"label": "a", "ticker": "SPX", "weight": 0.5}, {"label": "a", "ticker": "SPX", "weight": 0.5}], "twice"),
    ([{"label": "a", "ticker": "SPX", "weight": 1, "strategy": "moon"}], "moon"),
    ([{"label": "a", "ticker": "SPX", "weight": 1, "parameters": {"rsi_buy_mx": 3}}], "did you mean"),
])
def test_bad_legs_exit_2(ql, legs, needle):
    res = ql.request(_req(legs=legs))
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_unknown_ticker_leg_exits_3(ql):
    res = ql.request(_req(legs=[{"label": "x", "ticker": "NOPE-XYZ", "weight": 1}], source="sample"))
    assert res.returncode == 3 and "NOPE-XYZ" in res.stderr
