"""Black-box tests of `portfolio` through main.py, on real forward sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import GRID_YAML, QuantLab, strict_json



# one worker runs the whole module, so its module-scoped fixture is made once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("portfolio_cli")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """One sweep, then three forward sessions (two windows, one of them with 2 candidates)."""
    ql = QuantLab(tmp_path_factory.mktemp("portfolio"))
    sweep = ql.request({"schema_version": "1.0", "command": "sweep", "params": {"config_path": str(GRID_YAML)}})
    assert sweep.returncode == 0, sweep.stderr
    ids = []
    for start, end in (("2018-01-01", "2018-07-01"), ("2018-03-01", "2018-09-01"), ("2018-06-01", "2018-12-01")):
        res = ql.request({"schema_version": "1.0", "command": "forward", "params": {
            "run_dir": sweep.envelope["artifacts_path"], "forward_start": start, "forward_end": end}})
        assert res.returncode == 0, res.stderr
        ids.append(res.envelope["run_id"])
    return ql, ql.outputs / "forward_runs", ids


def _req(**params):
    return {"schema_version": "1.0", "request_id": "pf-1", "command": "portfolio", "params": params}


def test_equal_weight(sessions):
    ql, root, ids = sessions
    res = ql.request(_req(portfolio_report=str(root)))
    assert res.returncode == 0, res.stderr
    out = Path(res.envelope["artifacts_path"])
    assert out.parent == ql.outputs / "portfolio" and "_portfolio_" in res.envelope["run_id"]
    report = strict_json((out / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["contract_type"] == "quantlab.portfolio.result" and mc["command"] == "portfolio"
    assert mc["mode"] == "equal_weight" and sorted(mc["session_ids"]) == sorted(ids)
    weights = strict_json((out / "weights.json").read_text())["modes"]["equal_weight"]["weights"]
    assert weights == pytest.approx({i: 1 / 3 for i in ids})
    for name in mc["artifacts"].values():
        assert (out / name).is_file(), name
    corr = strict_json((out / "correlation.json").read_text())
    assert corr  # the correlation matrix is written
    assert res.signals[-1]["event"] == "SESSION_COMPLETED" and res.signals[-1]["mode"] == "portfolio"
    assert report["summary"] == mc["summary"] == res.envelope["summary"]


def test_custom_weights_and_compare(sessions, tmp_path):
    ql, root, ids = sessions
    wfile = tmp_path / "w.json"
    wfile.write_text(json.dumps({ids[0]: 3, ids[1]: 1}))
    res = ql.request(_req(portfolio_report=str(root), portfolio_mode="custom_weight", portfolio_weights=str(wfile)))
    assert res.returncode == 0, res.stderr
    w = strict_json((Path(res.envelope["artifacts_path"]) / "weights.json").read_text())["modes"]["custom_weight"]
    assert w["weights"] == pytest.approx({ids[0]: 0.75, ids[1]: 0.25, ids[2]: 0.0})
    cmp = ql.request(_req(portfolio_compare=str(root), portfolio_weights=str(wfile)))
    assert cmp.returncode == 0, cmp.stderr
    metrics = strict_json((Path(cmp.envelope["artifacts_path"]) / "metrics.json").read_text())
    assert {"equal_weight", "inverse_vol", "custom_weight"} <= set(metrics["modes"])
    cli = ql.cli("--portfolio-compare", str(root), "--portfolio-top-n", "2")
    assert cli.returncode == 0, cli.stderr


@pytest.mark.parametrize("kind,code,needle", [
    ("unknown_session", 2, "nope"),
    ("no_root", 3, "no forward session"),
    ("empty_root", 3, "no complete forward session"),
    ("bad_metric", 2, "rank metric"),
    ("custom_without_weights", 2, "portfolio_weights"),
])
def test_portfolio_bad_inputs(sessions, tmp_path, kind, code, needle):
    ql, root, ids = sessions
    params = {"portfolio_report": str(root)}
    if kind == "unknown_session":
        wfile = tmp_path / "w.json"
        wfile.write_text(json.dumps({"nope": 1}))
        params.update(portfolio_mode="custom_weight", portfolio_weights=str(wfile))
    elif kind == "no_root":
        params["portfolio_report"] = str(tmp_path / "missing")
    elif kind == "empty_root":
        (tmp_path / "empty").mkdir()
        params["portfolio_report"] = str(tmp_path / "empty")
    elif kind == "bad_metric":
        params["portfolio_rank_metric"] = "luck"
    else:
        params["portfolio_mode"] = "custom_weight"
    res = ql.request(_req(**params))
    assert res.returncode == code, (res.returncode, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    out = ql.outputs / "portfolio"
    assert not out.exists() or [p for p in out.iterdir() if p.is_dir() and p.name.startswith(".tmp")] == []
