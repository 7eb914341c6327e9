"""Black-box tests of the read-only inspection flags through main.py: --runs-list/-show/-best,
--compare, --paper-sessions-list/-show/-health/-alerts/-index, on real runs and sessions made
through main.py plus hand-written corrupt, legacy and paper-session directories."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import GRID_YAML, SPX_2017_RUN, QuantLab, strict_json

NOW = "2026-11-25T09:00:00Z"


# one worker runs the whole module, so its module-scoped fixture is made once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("inspect")


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    """Two runs and a grid sweep under one runs root, and one real paper session."""
    ql = QuantLab(tmp_path_factory.mktemp("inspect"))
    root = ql.cli_all(SPX_2017_RUN,
                      ("run", "--ticker", "SPX", "--start", "2015-01-01", "--end", "2017-01-01",
                       "--strategy", "sma_crossover"),
                      ("sweep", str(GRID_YAML)),
                      ("--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01", "--paper"))
    index = strict_json((root / "runs_index.json").read_text())["runs"]
    return {"root": root, "index": index, "dirs": sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
            "paper_root": ql.outputs / "paper_sessions"}


def one_error_line(res, code: int = 2) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    return lines[0]


def snapshot(root: Path) -> dict:
    """Every file and dir under ``root`` but the runs catalog and its lock (a cache inspection
    may build or refresh)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.relative_to(root).parts[0] not in (".catalog", ".runs_index.lock")}


# ------------------------------------------------------------------------------ --runs-list
def test_runs_list_table_newest_first(ql, real):
    res = ql.cli("--runs-list", str(real["root"]))
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["run_id", "mode", "ticker", "strategy", "created_at", "sharpe_simple",
                                "total_return", "max_drawdown", "trades"]
    body = lines[2:5]
    expected = sorted(real["index"], key=lambda r: (r["created_at"], r["run_id"]), reverse=True)
    assert [line.split()[0] for line in body] == [r["run_id"] for r in expected]
    assert lines[5] == f"3 runs under {real['root']} (newest first)"
    grid = next(line for line in body if "_grid_" in line)
    row = next(r for r in real["index"] if r["mode"] == "grid")
    assert f"{row['sharpe_simple']:.4f}" in grid and grid.split()[-1] == str(row["trades"])


def test_runs_list_json_is_the_index_rows(ql, real):
    res = ql.cli("--runs-list", str(real["root"]), "--json")
    rows = strict_json(res.stdout)
    assert res.returncode == 0 and isinstance(rows, list) and len(rows) == 3
    by_id = {r["run_id"]: r for r in real["index"]}
    for row in rows:
        assert row.pop("problems") == [] and row == by_id[row["run_id"]]


def test_runs_list_empty_and_missing_roots(ql, tmp_path):
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing"):
        res = ql.cli("--runs-list", str(root))
        assert res.returncode == 0 and res.stdout.startswith("0 runs") and res.stderr == ""
        res = ql.cli("--runs-list", str(root), "--json")
        assert res.returncode == 0 and strict_json(res.stdout) == []
    (tmp_path / "file").write_text("x")
    assert "not a directory" in one_error_line(ql.cli("--runs-list", str(tmp_path / "file")))


def test_inspection_writes_nothing_and_emits_no_signal(ql, real, tmp_path):
    before = snapshot(real["root"])
    sig = tmp_path / "signals.jsonl"
    sig.touch()
    dirs = [str(d) for d in real["dirs"]]
    for args in (["--runs-list", str(real["root"])], ["--runs-show", dirs[0]], ["--compare", *dirs],
                 ["--runs-best", str(real["root"])]):
        res = ql.cli(*args, "--signal-file", str(sig))
        assert res.returncode == 0, res.stderr
    assert snapshot(real["root"]) == before and sig.read_text() == ""


# ------------------------------------------------------------------------------ --runs-show
def test_runs_show_key_values_and_json(ql, real):
    run_dir = next(d for d in real["dirs"] if "_run_" in d.name  # the two runs may share a second
                   and strict_json((d / "config.json").read_text())["strategy"] == "rsi_ma_cross_v2")
    res = ql.cli("--runs-show", str(run_dir))
    assert res.returncode == 0, res.stderr
    kv = dict(line.split(None, 1) for line in res.stdout.splitlines() if line and not line.startswith("["))
    assert kv["run_id"] == run_dir.name and kv["ticker"] == "SPX" and kv["problems"] == "-"
    assert kv["strategy_params.ma_window"] == "20" and "[metrics]" in res.stdout and "[config]" in res.stdout
    data = strict_json(ql.cli("--runs-show", str(run_dir), "--json").stdout)
    assert data["run"]["run_id"] == run_dir.name and data["metrics"]["bars"] > 0
    assert data["config"]["ticker"] == "SPX" and "equity.parquet" in data["files"]


def test_runs_show_errors(ql, real, tmp_path):
    assert "run directory not found" in one_error_line(ql.cli("--runs-show", str(tmp_path / "nope")))
    assert "not a run directory" in one_error_line(ql.cli("--runs-show", str(tmp_path)))
    assert "not a run directory" in one_error_line(ql.cli("--runs-show", str(real["root"]), "--json"))


# ------------------------------------------------------------------------------ --runs-best
def test_runs_best(ql, real):
    best = max(real["index"], key=lambda r: r["sharpe_simple"])
    worst = min(real["index"], key=lambda r: r["sharpe_simple"])
    res = ql.cli("--runs-best", str(real["root"]))
    assert res.returncode == 0 and res.stdout.splitlines()[0].endswith(best["run_id"])
    assert "best run by sharpe_simple (highest) among 3 of 3 runs" in res.stdout
    data = strict_json(ql.cli("--runs-best", str(real["root"]), "--ascending", "--json").stdout)
    assert data["run"]["run_id"] == worst["run_id"] and data["value"] == worst["sharpe_simple"]
    data = strict_json(ql.cli("--runs-best", str(real["root"]), "--metric", "max_drawdown", "--json").stdout)
    assert data["value"] == max(r["max_drawdown"] for r in real["index"])  # the shallowest drawdown
    data = strict_json(ql.cli("--best-from", str(real["root"]), "--metric", "cagr", "--json").stdout)
    assert data["metric"] == "cagr" and data["runs_with_metric"] == 3


def test_runs_best_follows_the_metrics_direction_unless_told(ql, real):
    """A lower-is-better metric ranks lowest first by default; --descending overrides it."""
    vols = {}
    for row in real["index"]:
        shown = strict_json(ql.cli("--runs-show", row["path"], "--json").stdout)
        vols[row["run_id"]] = shown["metrics"]["volatility_ann"]
    assert len(set(vols.values())) > 1
    res = ql.cli("--runs-best", str(real["root"]), "--metric", "volatility_ann", "--json")
    data = strict_json(res.stdout)
    assert res.returncode == 0 and data["ascending"] is True and data["value"] == min(vols.values())
    data = strict_json(ql.cli("--runs-best", str(real["root"]), "--metric", "volatility_ann", "--descending",
                              "--json").stdout)
    assert data["ascending"] is False and data["value"] == max(vols.values())
    listing = strict_json(ql.cli("--compare", *(r["path"] for r in real["index"]), "--metric", "volatility_ann",
                                 "--json").stdout)
    assert listing["best_run_id"] == min(vols, key=vols.get)


def test_runs_best_errors(ql, real, tmp_path):
    line = one_error_line(ql.cli("--runs-best", str(real["root"]), "--metric", "sharpe"))
    assert "unknown metric 'sharpe'" in line and "sharpe_simple" in line and "profit_factor" in line
    line = one_error_line(ql.cli("--runs-best", str(tmp_path / "missing")), code=3)
    assert "no run under" in line and "(0 runs scanned)" in line
    (tmp_path / "r" / "x").mkdir(parents=True)
    (tmp_path / "r" / "x" / "metadata.json").write_text('{"run_id": "x"}')
    assert "(1 runs scanned)" in one_error_line(ql.cli("--runs-best", str(tmp_path / "r"), "--json"), code=3)


# ------------------------------------------------------------------------------ --compare
def test_compare_table_and_json(ql, real):
    dirs = [str(d) for d in real["dirs"]]
    res = ql.cli("--compare", *dirs)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    order = [r["run_id"] for r in sorted(real["index"], key=lambda r: -r["sharpe_simple"])]
    assert lines[0].split() == ["metric", *order]
    labels = [line.split()[0] for line in lines[2:-1]]
    assert labels[:4] == ["mode", "ticker", "strategy", "sharpe_simple"] and "profit_factor" in labels
    assert lines[-1] == f"3 runs sorted by sharpe_simple (descending); best: {order[0]}"
    data = strict_json(ql.cli("--compare", *dirs, "--metric", "total_return", "--ascending", "--json").stdout)
    assert [r["run_id"] for r in data["runs"]] == \
        [r["run_id"] for r in sorted(real["index"], key=lambda r: r["total_return"])]
    assert data["sort_by"] == "total_return" and data["ascending"] is True
    assert all(set(r["metrics"]) == set(data["metrics"]) for r in data["runs"])


def test_compare_errors(ql, real, tmp_path):
    assert "not a run directory" in one_error_line(ql.cli("--compare", str(real["dirs"][0]), str(tmp_path)))
    assert "unknown metric" in one_error_line(ql.cli("--compare", str(real["dirs"][0]), "--metric", "x"))


def test_two_inspection_commands_at_once_is_an_error(ql, real):
    line = one_error_line(ql.cli("--runs-list", str(real["root"]), "--paper-sessions-list", str(real["root"])))
    assert "choose one inspection command" in line


# ------------------------------------------------------------------------------ corrupt and legacy dirs
def test_corrupt_json_is_reported_not_a_crash(ql, real, tmp_path):
    root = tmp_path / "runs"
    copies = [shutil.copytree(d, root / d.name) for d in real["dirs"]]
    (copies[0] / "metrics.json").write_text('{"sharpe_simple": ')
    (copies[1] / "metadata.json").write_text("\x00garbage")
    res = ql.cli("--runs-list", str(root))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert f"! {copies[0].name}: metrics.json: invalid JSON (Expecting value at line 1 column 19)" in res.stdout
    assert f"! {copies[1].name}: metadata.json: invalid JSON" in res.stdout
    rows = {r["run_id"]: r for r in strict_json(ql.cli("--runs-list", str(root), "--json").stdout)}
    assert len(rows) == 3 and rows[copies[1].name]["problems"][0].startswith("metadata.json: invalid JSON")
    show = strict_json(ql.cli("--runs-show", str(copies[0]), "--json").stdout)
    assert show["problems"] == ["metrics.json: invalid JSON (Expecting value at line 1 column 19)"]
    assert ql.cli("--compare", *map(str, copies)).returncode == 0
    assert ql.cli("--runs-best", str(root)).returncode == 0


def write_legacy(root: Path) -> tuple[Path, Path]:
    """The original tool's run dirs: metadata/report.json shapes, and the older meta/run_report.json."""
    a = root / "20260320_050132_run_fb06467"
    a.mkdir(parents=True)
    summary = {"max_drawdown": -0.5805, "sharpe_simple": -0.3323, "total_return": -0.3537, "trades": 77,
               "win_rate": 0.4653}
    (a / "metadata.json").write_text(json.dumps({"run_id": a.name, "mode": "run", "command": "run",
                                                 "created_at": "2026-03-20T05:01:32.259889", "git_commit": "unknown",
                                                 "status": "success", "summary": summary}))
    (a / "config.json").write_text(json.dumps({"ticker": "ETH-USD", "start": "2022-01-01", "end": "2023-12-31",
                                               "fee": 0.002}))
    (a / "metrics.json").write_text(json.dumps({"best_result": {"days": 630, "trades": 77.0, **summary},
                                                "summary": summary, "mode": "run"}))
    (a / "report.json").write_text(json.dumps({"header": {"run_id": a.name, "mode": "run"},
                                               "results": [{"days": 630, "trades": 77.0}],
                                               "machine_contract": {"summary": summary}}))
    b = root / "old_layout"
    b.mkdir()
    (b / "meta.json").write_text(json.dumps({"run_id": "20250101_000000_run_aaaaaaa", "mode": "run",
                                             "created_at": "2025-01-01T00:00:00"}))
    (b / "run_report.json").write_text(json.dumps({
        "header": {"run_id": "20250101_000000_run_aaaaaaa"},
        "config_resolved": {"ticker": "BTC-USD", "start": "2024-01-01", "end": "2024-06-01"},
        "results": [{"sharpe": 0.5, "max_dd": -0.2, "total_return": 0.1, "n_trades": 12.0}]}))
    return a, b


def test_legacy_run_dirs_are_read(ql, real, tmp_path):
    root = tmp_path / "legacy"
    a, b = write_legacy(root)
    shutil.copytree(real["dirs"][0], root / real["dirs"][0].name)
    before = snapshot(root)
    rows = strict_json(ql.cli("--runs-list", str(root), "--json").stdout)
    by_id = {r["run_id"]: r for r in rows}
    assert by_id[a.name]["ticker"] == "ETH-USD" and by_id[a.name]["trades"] == 77
    assert by_id["20250101_000000_run_aaaaaaa"]["ticker"] == "BTC-USD"
    assert [r["run_id"] for r in rows][-2:] == [a.name, "20250101_000000_run_aaaaaaa"]  # oldest last
    show = strict_json(ql.cli("--runs-show", str(b), "--json").stdout)
    assert show["metrics"] == {"sharpe_simple": 0.5, "total_return": 0.1, "max_drawdown": -0.2, "trades": 12}
    data = strict_json(ql.cli("--compare", str(a), str(b), "--json").stdout)
    assert [r["run_id"] for r in data["runs"]] == ["20250101_000000_run_aaaaaaa", a.name]
    assert "days" in data["metrics"]
    best = strict_json(ql.cli("--runs-best", str(root), "--metric", "days", "--json").stdout)
    assert best["run"]["run_id"] == a.name and best["value"] == 630
    assert snapshot(root) == before  # read-only


# ------------------------------------------------------------------------------ paper sessions
def _iso(minutes_before_now: float) -> str:
    t = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc) - timedelta(minutes=minutes_before_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pin_times(status_file: Path, minutes_before_now: float) -> None:
    """Move a real session's timestamps to a fixed point before NOW: the suite must not depend on
    the date or time it runs at (CI also runs this file with the clock a year ahead)."""
    status = json.loads(status_file.read_text())
    for key in ("created_at", "started_at", "updated_at", "heartbeat_at", "finished_at"):
        if status.get(key):
            status[key] = _iso(minutes_before_now)
    status_file.write_text(json.dumps(status, indent=2))


def _session(root: Path, sid: str, status: str, beat_min: float, error=None) -> None:
    d = root / sid
    d.mkdir(parents=True)
    terminal = status in ("completed", "failed")
    (d / "session_status.json").write_text(json.dumps({
        "session_id": sid, "status": status, "created_at": _iso(beat_min + 5), "started_at": _iso(beat_min + 5),
        "updated_at": _iso(beat_min), "heartbeat_at": _iso(beat_min), "finished_at": _iso(beat_min) if terminal
        else None, "duration_seconds": 300.0 if terminal else None, "terminal": terminal, "pid": 123, "host": "h",
        "request_id": f"req-{sid}", "error": error}, indent=2))


@pytest.fixture
def sessions(ql, real, tmp_path) -> Path:
    """A real completed session plus a hand-written stale, live, failed and empty one."""
    root = tmp_path / "paper_sessions"
    real_session = next(real["paper_root"].iterdir())
    shutil.copytree(real_session, root / real_session.name)
    _pin_times(root / real_session.name / "session_status.json", 600)  # ran 10 h before NOW, whatever the clock says
    _session(root, "s_dead", "running", 120)           # killed: heartbeat 2 hours old
    _session(root, "s_live", "running", 0.2)
    _session(root, "s_failed", "failed", 30, {"error_type": "DataError", "message": "no data", "exit_code": 3})
    (root / "s_empty").mkdir()
    ql.env["QUANTLAB_NOW"] = NOW
    return root


def test_paper_list_table_and_json(ql, sessions):
    res = ql.cli("--paper-sessions-list", str(sessions))
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["session_id", "status", "created_at", "activity_at", "age_min", "stale",
                                "request_id", "error_type"]
    status = {line.split()[0]: line.split()[1] for line in lines[2:7]}
    assert status["s_dead"] == "running" and status["s_failed"] == "failed" and status["s_empty"] == "invalid"
    assert "completed" in status.values()
    assert "STALE" in next(line for line in lines if line.startswith("s_dead"))
    assert "STALE" not in next(line for line in lines if line.startswith("s_live"))
    assert "! s_empty: session_status.json: missing" in lines
    data = strict_json(ql.cli("--paper-sessions-list", str(sessions), "--json").stdout)
    assert len(data) == 5 and {s["session_id"] for s in data if s["stale"]} == {"s_dead"}
    real_one = next(s for s in data if s["status"] == "completed")
    assert real_one["report_contract_type"] == "quantlab.paper.result" and real_one["ticker"] == "SPX"


def test_paper_show(ql, sessions):
    res = ql.cli("--paper-sessions-show", str(sessions / "s_failed"))
    kv = dict(line.split(None, 1) for line in res.stdout.splitlines())
    assert res.returncode == 0 and kv["status"] == "failed" and kv["error_type"] == "DataError"
    assert kv["exit_code"] == "3" and kv["age_minutes"] == "30.0"
    data = strict_json(ql.cli("--paper-sessions-show", str(sessions / "s_dead"), "--json").stdout)
    assert data["stale"] is True and data["age_minutes"] == 120.0
    assert "not a paper session directory" in one_error_line(
        ql.cli("--paper-sessions-show", str(sessions / "s_empty")))


def test_paper_health(ql, sessions):
    res = ql.cli("--paper-sessions-health", str(sessions))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "total_sessions: 5 (completed 1, failed 1, initializing 0, invalid 1, running 2)" in out
    assert "alert_status:   critical" in out and "latest failure: s_failed failed" in out
    assert "active sessions (2):" in out and "stale sessions (1; stale after 60 min):" in out
    assert "invalid session dirs (1):" in out and f"{sessions / 's_empty'}: session_status.json: missing" in out
    data = strict_json(ql.cli("--paper-sessions-health", str(sessions), "--json").stdout)
    assert [s["session_id"] for s in data["stale_sessions"]] == ["s_dead"]
    assert data["latest_session"]["session_id"] == "s_live"


def test_paper_alerts_snapshot(ql, sessions):
    res = ql.cli("--paper-sessions-alerts", str(sessions))
    assert res.returncode == 0, res.stderr
    snap = strict_json(res.stdout)
    assert res.stdout == json.dumps(snap, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # sorted keys
    assert snap["alert_status"] == "critical" and snap["generated_at"] == NOW
    assert [(a["severity"], a["alert_code"], a["session_id"]) for a in snap["alerts"]] == [
        ("critical", "PAPER_SESSION_FAILED", "s_failed"),
        ("warning", "PAPER_SESSION_INVALID", "s_empty"),
        ("warning", "PAPER_SESSION_STALE", "s_dead")]
    assert snap["alert_counts"] == {"critical": 1, "warning": 2} and snap["stale_sessions"] == 1
    # a higher threshold clears the stale alert; a repeat gives the same bytes
    again = ql.cli("--paper-sessions-alerts", str(sessions), "--paper-stale-minutes", "180")
    assert "PAPER_SESSION_STALE" not in again.stdout
    assert ql.cli("--paper-sessions-alerts", str(sessions)).stdout == res.stdout


def test_paper_alerts_ok_and_warning_levels(ql, tmp_path):
    ql.env["QUANTLAB_NOW"] = NOW
    root = tmp_path / "ps"
    root.mkdir()
    assert strict_json(ql.cli("--paper-sessions-alerts", str(root)).stdout)["alert_status"] == "ok"
    _session(root, "done", "completed", 10)
    assert strict_json(ql.cli("--paper-sessions-alerts", str(root)).stdout)["alert_status"] == "ok"
    _session(root, "hung", "initializing", 61)
    snap = strict_json(ql.cli("--paper-sessions-alerts", str(root)).stdout)
    assert snap["alert_status"] == "warning" and snap["alerts"][0]["session_id"] == "hung"
    res = ql.cli("--paper-sessions-alerts", str(root), "--paper-stale-minutes", "0.5")
    assert strict_json(res.stdout)["stale_after_minutes"] == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan"])
def test_paper_stale_minutes_must_be_positive(ql, sessions, value):
    line = one_error_line(ql.cli("--paper-sessions-alerts", str(sessions), f"--paper-stale-minutes={value}"))
    assert "--paper-stale-minutes must be a number > 0" in line


def test_paper_roots_missing_is_an_error_empty_is_not(ql, tmp_path):
    for flag in ("--paper-sessions-list", "--paper-sessions-health", "--paper-sessions-alerts",
                 "--paper-sessions-index"):
        assert "paper sessions root not found" in one_error_line(ql.cli(flag, str(tmp_path / "nope")))
    assert not (tmp_path / "nope").exists()
    (tmp_path / "empty").mkdir()
    res = ql.cli("--paper-sessions-list", str(tmp_path / "empty"))
    assert res.returncode == 0 and res.stdout.startswith("0 sessions")
    assert "total_sessions: 0" in ql.cli("--paper-sessions-health", str(tmp_path / "empty")).stdout
    ql.env["QUANTLAB_NOW"] = "not a time"
    assert "QUANTLAB_NOW" in one_error_line(ql.cli("--paper-sessions-alerts", str(tmp_path / "empty")))


def test_paper_index_files(ql, sessions):
    before = {p.name for p in sessions.iterdir()}
    res = ql.cli("--paper-sessions-index", str(sessions))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str(sessions / "paper_sessions_index.csv"),
                                       str(sessions / "paper_sessions_index.json")]
    assert {p.name for p in sessions.iterdir()} == before | {"paper_sessions_index.csv", "paper_sessions_index.json"}
    data = strict_json((sessions / "paper_sessions_index.json").read_text())
    assert data["n_sessions"] == 5 and data["generated_at"] == NOW and data["root_dir"] == str(sessions)
    with open(sessions / "paper_sessions_index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["session_id"]: r["status"] for r in rows}["s_dead"] == "running"
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in data["sessions"]]
    # rerun: the index files are not taken for sessions
    again = strict_json(ql.cli("--paper-sessions-index", str(sessions), "--json").stdout)
    assert again["paper_sessions_index_json"] == str(sessions / "paper_sessions_index.json")
    assert strict_json((sessions / "paper_sessions_index.json").read_text())["n_sessions"] == 5
