"""Black-box tests of ``robustness: true`` on a single run (issue #12): PSR, minimum track record
and the bootstrap Sharpe interval in machine_contract.robustness."""

from __future__ import annotations

from pathlib import Path

from conftest import run_request, strict_json


def test_run_robustness_reports_psr_and_a_sharpe_interval(ql):
    res = ql.request(run_request(start="2010-01-01", end="2018-01-01", robustness=True))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    report = strict_json((run_dir / "report.json").read_text())
    rb = report["machine_contract"]["robustness"]
    sharpe = report["summary"]["sharpe_simple"]
    assert abs(rb["sharpe"] - sharpe) < 1e-6 * max(1.0, abs(sharpe))  # the run's own Sharpe
    assert 0.0 <= rb["probabilistic_sharpe"] <= 1.0
    ci = rb["sharpe_ci"]
    assert ci["low"] < rb["sharpe"] < ci["high"] and ci["method"] == "stationary" and ci["n_boot"] == 1000
    assert rb["bars"] == report["results"][0]["bars"]
    assert set(rb["minimum_track_record"]) >= {"bars", "years", "sufficient"}
    assert (rb["probabilistic_sharpe"] > 0.5) == (rb["sharpe"] > 0)
    assert strict_json((run_dir / "metrics.json").read_text())["robustness"] == rb
    assert "## Robustness" in (run_dir / "run_report.md").read_text()
    # rebuilding the report from the run's files keeps it
    (run_dir / "report.json").unlink()
    assert ql.cli("report", str(run_dir)).returncode == 0
    assert strict_json((run_dir / "report.json").read_text())["machine_contract"]["robustness"] == rb


def test_run_without_the_option_has_no_robustness_block(ql):
    res = ql.request(run_request())
    assert res.returncode == 0, res.stderr
    report = strict_json((Path(res.envelope["artifacts_path"]) / "report.json").read_text())
    assert "robustness" not in report["machine_contract"]
    assert "## Robustness" not in (Path(res.envelope["artifacts_path"]) / "run_report.md").read_text()
    res = ql.request(run_request(robustness="yes"))
    assert res.returncode == 2 and "robustness" in res.stderr
