"""Black-box tests of the `run` command through main.py: the Stepbit contract, success side."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import re
from pathlib import Path

import pytest

from conftest import run_request, strict_json

RUN_ID = re.compile(r"^\d{8}_\d{6}_run_[0-9a-f]{7}$")
RUN_FILES = {"metadata.json", "config.json", "metrics.json", "report.json", "run_report.md",
             "trades.csv", "equity.parquet", "equity.png"}


def _all_json_strict(directory: Path) -> None:
    for path in directory.rglob("*.json"):
        strict_json(path.read_text())


def test_success_envelope_artifacts_and_signals(ql):
    res = ql.request(run_request())
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert env["status"] == "success" and env["schema_version"] == "1.0"
    assert env["request_id"] == "req-test"
    assert RUN_ID.match(env["run_id"])
    run_dir = Path(env["artifacts_path"])
    assert run_dir.is_absolute() and run_dir.parent == ql.runs_dir()
    assert env["report_path"] == str(run_dir / "report.json")
    files = {p.name for p in run_dir.iterdir() if p.is_file()}
    assert RUN_FILES <= files
    _all_json_strict(run_dir)

    report = strict_json((run_dir / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["schema_version"] == "1.0"
    assert mc["contract_type"] == "quantlab.run.result"
    assert mc["command"] == "run" and mc["mode"] == "run" and mc["status"] == "success"
    assert mc["request_id"] == "req-test"
    assert mc["run_id"] == env["run_id"]
    assert set(mc["summary"]) == {"total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate"}
    assert isinstance(mc["summary"]["trades"], int)
    assert report["summary"] == mc["summary"] == env["summary"]
    for name in mc["artifacts"].values():
        assert (run_dir / name).is_file(), name
    listed = {a["file_name"] for a in report["artifacts"]}
    assert {"report.json", "run_report.md", "metrics.json"} <= listed

    metrics = strict_json((run_dir / "metrics.json").read_text())
    assert metrics["summary"] == mc["summary"]
    for key in ("total_return", "cagr", "sharpe_simple", "sortino", "max_drawdown", "calmar",
                "volatility_ann", "trades", "win_rate", "profit_factor", "exposure",
                "avg_trade_return", "bars", "benchmark_return"):
        assert key in metrics["metrics"], key
    assert metrics["metrics"]["bars"] == 251  # S&P 500 trading days in 2017
    assert metrics["metrics"]["max_drawdown"] <= 0

    # signals: exactly STARTED then COMPLETED, COMPLETED agrees with the artifacts
    assert [s["event"] for s in res.signals] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    started, done = res.signals
    for s in res.signals:
        assert s["schema_version"] == "1.0" and s["mode"] == "run" and s["request_id"] == "req-test"
        assert s["timestamp"]
    assert started["status"] == "running" and done["status"] == "success"
    assert done["run_id"] == env["run_id"]
    assert done["artifacts_path"] == str(run_dir)
    assert done["artifacts_path"] == str(Path(done["report_path"]).parent)
    assert done["summary"] == mc["summary"]
    for key in ("runs_index_json", "runs_index_csv", "runs_index_md", "runs_index_root"):
        assert Path(done[key]).is_absolute() and Path(done[key]).exists(), key
    index = strict_json(Path(done["runs_index_json"]).read_text())
    assert [r["run_id"] for r in index["runs"]] == [env["run_id"]]
    assert index["runs"][0]["trades"] == mc["summary"]["trades"]
    # stderr stays short on success (the client pastes it into a prompt)
    assert len(res.stderr.splitlines()) <= 3, res.stderr


def test_trades_csv_is_clean(ql):
    res = ql.request(run_request(strategy="sma_crossover", strategy_params={"fast": 5, "slow": 20},
                                 start="2015-01-01", end="2018-01-01"))
    assert res.returncode == 0, res.stderr
    text = (Path(res.envelope["artifacts_path"]) / "trades.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    assert rows[0][:4] == ["trade_id", "side", "entry_time", "exit_time"]
    assert len(rows) - 1 == res.envelope["summary"]["trades"] > 5
    for row in rows:
        assert len(row) == len(rows[0]) and all(cell != "" for cell in row)


def test_identical_requests_give_identical_metrics_and_reuse_everything(ql):
    first = ql.request(run_request())
    second = ql.request(run_request())
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    a, b = Path(first.envelope["artifacts_path"]), Path(second.envelope["artifacts_path"])
    assert a != b
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert (a / "trades.csv").read_bytes() == (b / "trades.csv").read_bytes()
    from quantlab.contract.runid import parse_run_id

    # same request hash (the second may carry a _2 suffix when both ran in the same second)
    assert parse_run_id(first.envelope["run_id"]).digest == parse_run_id(second.envelope["run_id"]).digest
    # the first ran the workflow (its Snakemake log is in the run dir), the second found
    # every intermediate up to date and did not start Snakemake at all
    assert (a / "logs" / "snakemake.log").is_file()
    assert not (b / "logs").exists()
    index = strict_json((ql.runs_dir() / "runs_index.json").read_text())
    assert index["n_runs"] == 2


def test_changed_parameter_recomputes_only_what_depends_on_it(ql):
    base = run_request(fee=0.001)
    assert ql.request(base).returncode == 0
    store = ql.outputs / ".quantlab" / "store"
    data_files = {p: p.stat().st_mtime_ns for p in (store / "data").rglob("*.parquet")}
    signal_files = {p: p.stat().st_mtime_ns for p in (store / "signals").rglob("*.parquet")}
    changed = run_request(fee=0.003)
    dry = ql.request(changed, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    env = dry.envelope
    assert env["dry_run"] is True
    assert "load_data" not in env["stale_steps"] and "signals" not in env["stale_steps"]
    assert {"simulate", "score", "publish_run", "refresh_index"} <= set(env["stale_steps"])
    assert dry.signals == []  # a dry run runs nothing and signals nothing
    res = ql.request(changed)
    assert res.returncode == 0, res.stderr
    # Snakemake's own record of what it ran, kept in the run directory
    record = (Path(res.envelope["artifacts_path"]) / "logs" / "snakemake.log").read_text()
    assert "localrule load_data:" not in record and "localrule signals:" not in record
    for rule in ("simulate", "score", "plot_equity", "publish_run", "refresh_index"):
        assert f"localrule {rule}:" in record, rule
    assert {p: p.stat().st_mtime_ns for p in (store / "data").rglob("*.parquet")} == data_files
    assert {p: p.stat().st_mtime_ns for p in (store / "signals").rglob("*.parquet")} == signal_files
    assert len(list((store / "sim").iterdir())) == 2


def test_dry_run_writes_no_run_dir(ql):
    res = ql.request(run_request(), "--dry-run")
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert {"load_data", "signals", "simulate", "score", "plot_equity", "publish_run",
            "refresh_index"} == set(env["stale_steps"])
    assert not ql.runs_dir().exists() or not any(ql.runs_dir().iterdir())


def test_unknown_params_key_is_a_warning(ql):
    # a near miss (tikcer) is exit 2 since issue #10.11 (tests/cli/test_param_leniency.py)
    res = ql.request(run_request(run_label="x", timeout_seconds=30))
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("WARNING") == 1 and "run_label" in res.stderr and "timeout_seconds" in res.stderr
    mc = strict_json(Path(res.envelope["report_path"]).read_text())["machine_contract"]
    assert any("run_label" in w for w in mc["warnings"])
    assert res.envelope["warnings"] == mc["warnings"]


def test_nulls_mean_default_and_whole_floats_are_ints(ql):
    res = ql.request(run_request(fee=None, interval=None, cooldown_days=2.0, rsi_buy_max=55))
    assert res.returncode == 0, res.stderr
    config = json.loads((Path(res.envelope["artifacts_path"]) / "config.json").read_text())
    assert config["fee"] == 0.002 and config["interval"] == "1d"
    assert config["strategy_params"]["cooldown_days"] == 2
    assert isinstance(config["strategy_params"]["cooldown_days"], int)
    assert config["strategy_params"]["rsi_buy_max"] == 55.0


def test_params_null_and_request_id_optional(ql):
    payload = {"schema_version": "1.0", "command": "run",
               "params": {"ticker": "^IXIC", "start": "2018-01-01", "end": "2018-07-01"}}
    res = ql.request(payload)
    assert res.returncode == 0, res.stderr
    assert res.envelope["request_id"] is None
    mc = strict_json(Path(res.envelope["report_path"]).read_text())["machine_contract"]
    assert "request_id" not in mc


def _arch_closes(name: str) -> dict[str, float]:
    base = Path(list(importlib.util.find_spec("arch").submodule_search_locations)[0])
    with gzip.open(base / "data" / name / f"{name}.csv.gz", "rt") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for row in rows:
        m, d, y = row["Date"].split("/")
        out[f"{int(y):04d}-{int(m):02d}-{int(d):02d}"] = float(row["Close"])
    return out


def test_buy_and_hold_without_costs_matches_raw_closes(ql):
    import pyarrow.parquet as pq

    res = ql.request(run_request(strategy="buy_and_hold", fee=0, slippage_bps=0, fill="close",
                                 start="2016-01-01", end="2017-01-01"))
    assert res.returncode == 0, res.stderr
    closes = _arch_closes("sp500")
    days = sorted(d for d in closes if "2016-01-01" <= d < "2017-01-01")
    expected = closes[days[-1]] / closes[days[0]] - 1
    assert res.envelope["summary"]["total_return"] == pytest.approx(expected, abs=1e-12)
    eq = pq.read_table(Path(res.envelope["artifacts_path"]) / "equity.parquet").to_pydict()
    assert len(eq["equity"]) == len(days)
    for value, day in zip(eq["equity"], days):
        assert value == pytest.approx(10_000 * closes[day] / closes[days[0]], rel=1e-12)


def test_version_and_check(ql):
    from quantlab import __version__

    v = ql.cli("--version")
    assert v.returncode == 0 and v.stdout == f"{__version__}\n" and v.stderr == ""
    c = ql.cli("--check")
    assert c.returncode == 0, c.stdout
    health = strict_json(c.stdout)
    for key in ("status", "project_root", "main_path", "src_root", "interpreter", "venv_active",
                "quantlab_import", "python_version", "version", "snakemake_version", "data_sources"):
        assert key in health, key
    assert health["status"] == "ok" and health["snakemake_version"] == "9.27.1"
    assert health["data_sources"]["sample"] is True
    assert ql.cli("--check").stdout == c.stdout  # deterministic


def test_human_cli_subcommand_and_flat_flags(ql):
    a = ql.cli("run", "--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01",
               "--strategy", "sma_crossover", "--param", "fast=5", "--param", "slow=30", "--slippage-bps", "2")
    assert a.returncode == 0, a.stderr
    assert "total_return" in a.stdout and "artifacts:" in a.stdout
    b = ql.cli("--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01", "--rsi_buy_max", "55",
               "--outdir", str(ql.tmp / "elsewhere"))
    assert b.returncode == 0, b.stderr
    runs = [p for p in (ql.tmp / "elsewhere").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["strategy_params"]["rsi_buy_max"] == 55.0
    assert (ql.tmp / "elsewhere" / "runs_index.csv").is_file()


def test_deleted_run_dir_does_not_break_later_requests(ql):
    import shutil

    first = ql.request(run_request())
    shutil.rmtree(first.envelope["artifacts_path"])
    second = ql.request(run_request(fee=0.001))
    assert second.returncode == 0, second.stderr
    # a request updates its own row only (O(1)); the next inspection of the root sees that the
    # root changed behind the catalog and drops the deleted run from the catalog and the files
    listed = strict_json(ql.cli("--runs-list", str(ql.runs_dir()), "--json").stdout)
    assert [r["run_id"] for r in listed] == [second.envelope["run_id"]]
    index = strict_json((ql.runs_dir() / "runs_index.json").read_text())
    assert [r["run_id"] for r in index["runs"]] == [second.envelope["run_id"]]


def test_equity_file_agrees_with_metrics_and_png_is_valid(ql):
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    res = ql.request(run_request(start="2008-01-01", end="2010-01-01"))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    eq = pq.ParquetFile(run_dir / "equity.parquet").read().to_pydict()
    metrics = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    assert min(eq["drawdown"]) == pytest.approx(metrics["max_drawdown"], abs=1e-12)
    assert eq["equity"][-1] / 10_000 - 1 == pytest.approx(metrics["total_return"], abs=1e-12)
    assert metrics["bars"] == len(eq["equity"])
    assert str(eq["timestamp"][0])[:10] >= "2008-01-01"
    img = Image.open(io.BytesIO((run_dir / "equity.png").read_bytes()))
    assert img.format == "PNG" and img.size[0] >= 600


def test_file_source_end_to_end(ql, tmp_path):
    import numpy as np

    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    days = np.datetime64("2020-01-01") + np.arange(400)
    lines = ["Date,Open,High,Low,Close,Volume"]
    for d, c in zip(days, close):
        lines.append(f"{d},{c:.4f},{c * 1.01:.4f},{c * 0.99:.4f},{c:.4f},1000")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    res = ql.request(run_request(ticker="MYCOIN", data_path=str(path), start="2020-03-01", end="2021-01-01",
                                 strategy="sma_crossover", strategy_params={"fast": 5, "slow": 20}))
    assert res.returncode == 0, res.stderr
    config = strict_json((Path(res.envelope["artifacts_path"]) / "config.json").read_text())
    assert config["source"] == "file" and config["data_path"] == str(path)
    metrics = strict_json((Path(res.envelope["artifacts_path"]) / "metrics.json").read_text())["metrics"]
    assert metrics["bars"] == int((np.datetime64("2021-01-01") - np.datetime64("2020-03-01")).astype(int))
    # editing the file gives a new data key: the next run sees the new bars (same dates: the window
    # must stay covered by the file, issue #16)
    edited = lines[:200] + [",".join([line.split(",")[0], *(f"{float(v) * 1.2:.4f}" for v in line.split(",")[1:5]),
                                      "1000"]) for line in lines[200:]]
    path.write_text("\n".join(edited) + "\n")
    res2 = ql.request(run_request(ticker="MYCOIN", data_path=str(path), start="2020-03-01", end="2021-01-01",
                                  strategy="sma_crossover", strategy_params={"fast": 5, "slow": 20}))
    assert res2.returncode == 0, res2.stderr
    assert res2.envelope["summary"] != res.envelope["summary"]


def test_report_rebuilds_a_run_directory_identically(ql):
    res = ql.request(run_request())
    run_dir = Path(res.envelope["artifacts_path"])
    before = {n: (run_dir / n).read_bytes() for n in ("report.json", "run_report.md")}
    for n in before:
        (run_dir / n).unlink()
    rebuilt = ql.cli("report", str(run_dir))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert str(run_dir / "report.json") in rebuilt.stdout
    assert {n: (run_dir / n).read_bytes() for n in before} == before
    legacy = ql.cli("--report", str(run_dir))
    assert legacy.returncode == 0 and (run_dir / "report.json").read_bytes() == before["report.json"]


@pytest.mark.parametrize("args", [("report",), ("report", "/nonexistent/run"), ("--report",)])
def test_report_needs_a_real_run_directory(ql, args):
    res = ql.cli(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("ERROR: ")


def test_report_refuses_a_directory_that_is_not_a_run(ql, tmp_path):
    (tmp_path / "notarun").mkdir()
    res = ql.cli("report", str(tmp_path / "notarun"))
    assert res.returncode == 2 and "not a run directory" in res.stderr
