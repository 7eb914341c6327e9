"""quantlab.registry.runs: list / show / best / compare on real run dirs (made through main.py),
hand-written legacy dirs (the original tool's shapes) and corrupt files."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import GRID_YAML, QuantLab, strict_json
from quantlab.artifacts.runs_index import COLUMNS, index_row
from quantlab.errors import ConfigError, DataError
from quantlab.registry import runs



# one worker runs the whole module, so its module-scoped fixture is made once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("registry_runs")


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    """One real `run` and one real grid `sweep` (through main.py), shared by the module."""
    ql = QuantLab(tmp_path_factory.mktemp("registry_runs"))
    for args in (("run", "--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01"),
                 ("sweep", str(GRID_YAML))):
        res = ql.cli(*args)
        assert res.returncode == 0, res.stderr
    root = ql.runs_dir()
    dirs = {p.name.split("_")[2]: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return {"root": root, "run": dirs["run"], "grid": dirs["grid"]}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def legacy_run(root: Path, name: str = "20260320_050132_run_fb06467", sharpe: float = -0.3323) -> Path:
    """A run dir of the original tool: metadata.json/config.json/metrics.json/report.json,
    naive local created_at with microseconds, trades as a float in the results."""
    d = root / name
    summary = {"max_drawdown": -0.5805, "sharpe_simple": sharpe, "total_return": -0.3537, "trades": 77,
               "win_rate": 0.4653}
    write(d / "metadata.json", {"command": "run", "config_hash": "fb06", "config_path": "inline_cli",
                                "created_at": "2026-03-20T05:01:32.259889", "git_commit": "unknown", "mode": "run",
                                "python_version": "3.11.7 (main) [GCC 12.2.0]", "request_id": "req_demo_1",
                                "run_id": name, "status": "success", "summary": summary})
    write(d / "config.json", {"cooldown_days": 0, "end": "2023-12-31", "fee": 0.002, "initial_cash": 1000.0,
                              "interval": "1d", "k_atr": 0.05, "paper": False, "rsi_buy_max": 60.0,
                              "rsi_sell_min": 75.0, "slippage_bps": 8.0, "slippage_mode": "fixed",
                              "start": "2022-01-01", "ticker": "ETH-USD"})
    write(d / "metrics.json", {"best_result": {"days": 630, "max_drawdown": -0.5805, "sharpe_simple": sharpe,
                                               "total_return": -0.3537, "trades": 77.0},
                               "command": "run", "leaderboard_size": 1, "mode": "run", "status": "success",
                               "summary": summary})
    write(d / "report.json", {"schema_version": "1.0", "artifact_type": "quantlab_run_report", "status": "success",
                              "header": {"run_id": name, "mode": "run", "created_at": "2026-03-20T05:01:32.259889",
                                         "git_commit": "unknown"},
                              "results": [{"days": 630, "sharpe_simple": sharpe, "trades": 77.0}],
                              "machine_contract": {"contract_type": "quantlab.run.result", "summary": summary}})
    return d


def oldest_legacy_run(root: Path, name: str = "old_run") -> Path:
    """Only meta.json + run_report.json, metrics under legacy aliases and no summary block."""
    d = root / name
    write(d / "meta.json", {"run_id": "20250101_000000_run_aaaaaaa", "mode": "run", "ticker": "BTC-USD",
                            "created_at": "2025-01-01T00:00:00"})
    write(d / "run_report.json", {"header": {"run_id": "20250101_000000_run_aaaaaaa", "mode": "run"},
                                  "config_resolved": {"ticker": "BTC-USD", "start": "2024-01-01", "end": "2024-06-01"},
                                  "results": [{"sharpe": 0.5, "max_dd": -0.2, "total_return": 0.1, "n_trades": 12.0}]})
    return d


# ------------------------------------------------------------------------------ helpers
def test_read_json_checked_reports_without_echoing_contents(tmp_path):
    assert runs.read_json_checked(tmp_path / "absent.json") == (None, None)
    data, problem = runs.read_json_checked(write(tmp_path / "ok.json", {"a": 1}))
    assert data == {"a": 1} and problem is None
    data, problem = runs.read_json_checked(write(tmp_path / "bad.json", '{"secret": "TOPSECRET",'))
    assert data is None and problem.startswith("bad.json: invalid JSON (") and "TOPSECRET" not in problem
    data, problem = runs.read_json_checked(write(tmp_path / "nan.json", '{"x": NaN}'))
    assert problem == "nan.json: non-strict JSON (NaN is not valid JSON)" and data is not None
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    assert runs.read_json_checked(tmp_path / "bin.json")[1] == "bin.json: not UTF-8 text"
    problems: list[str] = []
    assert runs.read_object(write(tmp_path / "list.json", [1, 2]), problems) == {}
    assert problems == ["list.json: not a JSON object"]


def test_parse_time_accepts_z_offsets_and_naive_as_utc():
    utc = datetime(2026, 11, 25, 7, 1, 2, tzinfo=timezone.utc)
    assert runs.parse_time("2026-11-25T07:01:02Z") == utc
    assert runs.parse_time("2026-11-25T08:01:02+01:00") == utc
    assert runs.parse_time("2026-11-25T07:01:02") == utc
    assert runs.parse_time("yesterday") is None and runs.parse_time(None) is None and runs.parse_time(5) is None
    assert runs.format_time(utc) == "2026-11-25T07:01:02Z"


def test_check_metric_lists_valid_names():
    assert runs.check_metric("cagr") == "cagr"
    with pytest.raises(ConfigError, match="valid metrics: sharpe_simple, total_return"):
        runs.check_metric("sharpe")


# ------------------------------------------------------------------------------ list
def test_list_runs_reuses_the_index_rows_newest_first(real):
    rows = runs.list_runs(real["root"])
    assert sorted(r["mode"] for r in rows) == ["grid", "run"]
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first (the two may share a second)
    index = strict_json((real["root"] / "runs_index.json").read_text())["runs"]
    by_id = {r["run_id"]: r for r in index}
    for row in rows:
        assert set(COLUMNS) <= set(row) and row["problems"] == []
        assert {k: v for k, v in row.items() if k != "problems"} == by_id[row["run_id"]]


def test_list_runs_missing_or_empty_root_is_empty_and_a_file_root_is_an_error(tmp_path):
    assert runs.list_runs(tmp_path / "nope") == []
    assert runs.list_runs(tmp_path) == []
    with pytest.raises(ConfigError, match="not a directory"):
        runs.list_runs(write(tmp_path / "file.txt", "x"))


def test_list_runs_reports_corrupt_files_and_keeps_the_row(real, tmp_path):
    run_dir = shutil.copytree(real["run"], tmp_path / real["run"].name)
    write(run_dir / "metrics.json", "{not json")
    write(run_dir / "metadata.json", "[1, 2]")
    (tmp_path / "not_a_run").mkdir()  # no marker file: ignored
    (rows,) = runs.list_runs(tmp_path)
    assert rows["run_id"] == real["run"].name  # from report.json's header
    assert rows["problems"] == ["metadata.json: not a JSON object",
                                "metrics.json: invalid JSON (Expecting property name enclosed in double quotes at "
                                "line 1 column 2)"]


def test_list_runs_reads_legacy_dirs(tmp_path):
    legacy_run(tmp_path)
    oldest_legacy_run(tmp_path)
    rows = runs.list_runs(tmp_path)
    assert [r["run_id"] for r in rows] == ["20260320_050132_run_fb06467", "20250101_000000_run_aaaaaaa"]
    new, old = rows
    assert new["ticker"] == "ETH-USD" and new["trades"] == 77 and new["sharpe_simple"] == -0.3323
    assert old["ticker"] == "BTC-USD" and old["start"] == "2024-01-01" and old["problems"] == []
    # no summary block: the KPIs come from the legacy results row (aliases resolved)
    assert (old["sharpe_simple"], old["max_drawdown"], old["trades"], old["win_rate"]) == (0.5, -0.2, 12, None)


# ------------------------------------------------------------------------------ metrics / show
def test_run_metrics_full_set_for_runs_and_sweeps(real):
    metrics = runs.run_metrics(real["run"])
    assert set(metrics) == set(runs.METRICS)
    assert isinstance(metrics["trades"], int) and isinstance(metrics["bars"], int)
    row = index_row(real["run"])
    assert all(metrics[k] == row[k] for k in ("sharpe_simple", "total_return", "max_drawdown", "trades", "win_rate"))
    grid = runs.run_metrics(real["grid"])
    assert "rsi_buy_max" not in grid and "rank" not in grid  # parameters are not metrics
    assert grid["sharpe_simple"] == index_row(real["grid"])["sharpe_simple"]


def test_run_metrics_legacy_aliases_and_float_trades(tmp_path):
    m = runs.run_metrics(oldest_legacy_run(tmp_path))
    assert m == {"sharpe_simple": 0.5, "total_return": 0.1, "max_drawdown": -0.2, "trades": 12}
    assert isinstance(m["trades"], int)
    legacy = runs.run_metrics(legacy_run(tmp_path))
    assert legacy["days"] == 630 and legacy["trades"] == 77


def test_show_run(real):
    data = runs.show_run(real["run"])
    assert data["run"]["run_id"] == real["run"].name and data["problems"] == []
    assert data["config"]["ticker"] == "SPX" and data["metrics"]["bars"] > 200
    assert "summary" not in data["metadata"] and data["metadata"]["run_id"] == real["run"].name
    assert {"metadata.json", "metrics.json", "equity.parquet"} <= set(data["files"])
    json.dumps(data, allow_nan=False)


def test_show_run_rejects_what_is_not_a_run_dir(tmp_path):
    with pytest.raises(ConfigError, match="run directory not found"):
        runs.show_run(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not a run directory"):
        runs.show_run(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        runs.show_run(write(tmp_path / "f.json", "{}"))


def test_show_legacy_run_uses_config_resolved_when_config_json_is_absent(tmp_path):
    data = runs.show_run(oldest_legacy_run(tmp_path))
    assert data["config"]["ticker"] == "BTC-USD" and data["metrics"]["sharpe_simple"] == 0.5


# ------------------------------------------------------------------------------ best / compare
def test_best_run_highest_lowest_and_null_metrics_skipped(real, tmp_path):
    for d in (real["run"], real["grid"]):
        shutil.copytree(d, tmp_path / d.name)
    write(tmp_path / "empty_run" / "metadata.json", {"run_id": "empty_run", "mode": "run"})  # no metrics
    best = runs.best_run(tmp_path)
    assert best["run"]["run_id"] == real["grid"].name and best["metric"] == "sharpe_simple"
    assert best["runs_scanned"] == 3 and best["runs_with_metric"] == 2
    worst = runs.best_run(tmp_path, "sharpe_simple", ascending=True)
    assert worst["run"]["run_id"] == real["run"].name
    by_bars = runs.best_run(tmp_path, "bars")
    assert by_bars["value"] == max(runs.run_metrics(real["run"])["bars"], runs.run_metrics(real["grid"])["bars"])


def test_best_run_and_compare_follow_the_metrics_direction_by_default(real, tmp_path):
    """A lower-is-better metric (volatility_ann) ranks lowest first unless told otherwise."""
    for d in (real["run"], real["grid"]):
        shutil.copytree(d, tmp_path / d.name)
    vol = {d.name: runs.run_metrics(d)["volatility_ann"] for d in (real["run"], real["grid"])}
    assert len(set(vol.values())) == 2
    calm, wild = min(vol, key=vol.get), max(vol, key=vol.get)
    best = runs.best_run(tmp_path, "volatility_ann")
    assert (best["run"]["run_id"], best["ascending"]) == (calm, True)
    assert runs.best_run(tmp_path, "volatility_ann", ascending=False)["run"]["run_id"] == wild
    dirs = [tmp_path / real["run"].name, tmp_path / real["grid"].name]
    assert runs.compare_runs(dirs, "volatility_ann")["best_run_id"] == calm
    assert runs.compare_runs(dirs, "volatility_ann", ascending=False)["best_run_id"] == wild
    assert runs.best_run(tmp_path, "sharpe_simple")["ascending"] is False


def test_best_run_ties_go_to_the_smaller_run_id(tmp_path):
    legacy_run(tmp_path, "b_run", sharpe=1.0)
    legacy_run(tmp_path, "a_run", sharpe=1.0)
    assert runs.best_run(tmp_path)["run"]["run_id"] == "a_run"


def test_best_run_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown metric"):
        runs.best_run(tmp_path, "nope")
    with pytest.raises(DataError, match=r"has a value for sharpe_simple \(0 runs scanned\)"):
        runs.best_run(tmp_path / "missing")
    legacy_run(tmp_path)
    with pytest.raises(DataError, match=r"profit_factor \(1 runs scanned\)"):
        runs.best_run(tmp_path, "profit_factor")


def test_compare_runs_sorted_by_metric(real, tmp_path):
    legacy = legacy_run(tmp_path)
    data = runs.compare_runs([real["run"], legacy, real["grid"]], "total_return")
    ids = [r["run_id"] for r in data["runs"]]
    assert ids == [real["grid"].name, real["run"].name, legacy.name]
    assert data["best_run_id"] == real["grid"].name and data["n_runs"] == 3
    assert data["metrics"][: len(runs.METRICS)] == list(runs.METRICS) and "days" in data["metrics"]
    assert data["runs"][2]["metrics"]["cagr"] is None and data["runs"][2]["metrics"]["days"] == 630
    asc = runs.compare_runs([real["run"], legacy, real["grid"]], "total_return", ascending=True)
    assert [r["run_id"] for r in asc["runs"]] == ids[::-1]


def test_compare_runs_missing_metric_goes_last_and_bad_dirs_are_errors(real, tmp_path):
    legacy = legacy_run(tmp_path)
    data = runs.compare_runs([legacy, real["run"]], "cagr")
    assert [r["run_id"] for r in data["runs"]] == [real["run"].name, legacy.name]
    only_legacy = runs.compare_runs([legacy], "cagr")
    assert only_legacy["best_run_id"] is None
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a run directory"):
        runs.compare_runs([real["run"], tmp_path / "plain"])
    with pytest.raises(ConfigError, match="unknown metric"):
        runs.compare_runs([real["run"]], "sharpe")
    with pytest.raises(ConfigError, match="at least one"):
        runs.compare_runs([])
