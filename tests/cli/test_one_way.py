"""Issue #11: one way through. Every workflow command goes through the one executor, so what
one command guarantees (store integrity checks, key locks) every command does."""

from __future__ import annotations

from pathlib import Path

from conftest import run_request, strict_json

LEGS = [{"label": "spx", "ticker": "SPX", "weight": 0.5}, {"label": "ndx", "ticker": "NASDAQ", "weight": 0.5}]


def _basket() -> dict:
    return {"schema_version": "1.0", "request_id": "one-way", "command": "portfolio",
            "params": {"start": "2016-01-01", "end": "2018-01-01", "legs": LEGS}}


def test_basket_rebuilds_a_damaged_leg_like_a_run_does(ql):
    first = ql.request(run_request(start="2016-01-01", end="2018-01-01"))  # the SPX leg, cached
    assert first.returncode == 0, first.stderr
    store = ql.outputs / ".quantlab" / "store" / "sim"
    (metrics,) = list(store.rglob("metrics.json"))
    metrics.write_text('{"metrics": {')  # torn by outside interference
    res = ql.request(_basket())
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("damaged cache file") == 1 and str(metrics) in res.stderr
    assert res.signals[-1]["event"] == "SESSION_COMPLETED"
    strict_json(metrics.read_text())  # made again
    out = Path(res.envelope["artifacts_path"])
    legs = {s["session_id"]: s for s in strict_json((out / "metrics.json").read_text())["sessions"]}
    assert legs["spx"]["total_return"] == first.envelope["summary"]["total_return"]


def test_basket_dry_run_names_the_legs_steps(ql):
    res = ql.request(_basket(), "--dry-run")
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert env["dry_run"] is True and env["mode"] == "portfolio"
    assert {"load_data", "simulate", "basket_legs", "publish_portfolio"} <= set(env["stale_steps"])
