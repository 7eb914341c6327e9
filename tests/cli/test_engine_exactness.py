"""Engine exactness through main.py: fill prices stay positive under ATR slippage, a short cannot
drive the account below zero (margin call), annualisation comes from the data, undefined ratios."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import run_request, strict_json


def write_csv(path: Path, closes, *, start="2020-01-01", step_hours=24, spread=0.0, gaps=None) -> Path:
    """Bars at ``start`` + i * ``step_hours``: open = previous close x gap, high/low around."""
    import numpy as np

    t0 = np.datetime64(start + "T00:00:00")
    lines = ["Date,Open,High,Low,Close,Volume"]
    prev = closes[0]
    for i, c in enumerate(closes):
        o = prev * (gaps[i] if gaps is not None else 1.0)
        hi = max(o, c) * (1 + spread)
        lo = min(o, c) * (1 - spread)
        ts = t0 + np.timedelta64(int(i * step_hours * 60), "m")
        stamp = str(ts)[:10] if step_hours % 24 == 0 else str(ts).replace("T", " ")
        lines.append(f"{stamp},{o:.6f},{hi:.6f},{lo:.6f},{c:.6f},1000")
        prev = c
    path.write_text("\n".join(lines) + "\n")
    return path


def trades_of(run_dir: Path) -> list[dict]:
    with open(run_dir / "trades.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def report_of(res) -> tuple[Path, dict, dict]:
    run_dir = Path(res.envelope["artifacts_path"])
    report = strict_json((run_dir / "report.json").read_text())
    metrics = strict_json((run_dir / "metrics.json").read_text())["metrics"]
    return run_dir, report, metrics


def wild_closes(n=120):
    """Alternating +-30% days with a drift of regime changes: plenty of SMA crosses."""
    closes, c = [], 100.0
    for i in range(n):
        c *= 1.3 if (i // 3) % 2 == 0 else 0.7
        closes.append(c)
    return closes


# ------------------------------------------------------------------------------ 19.7 slippage
@pytest.mark.parametrize("allow_short,k_atr", [(False, 3), (True, 10)])
def test_atr_slippage_never_makes_a_fill_price_or_fee_negative(ql, tmp_path, allow_short, k_atr):
    path = write_csv(tmp_path / "wild.csv", wild_closes(), spread=0.05)
    res = ql.request(run_request(ticker="WILD", source="file", data_path=str(path), start="2020-01-01",
                                 end="2020-05-01", strategy="sma_crossover",
                                 strategy_params={"fast": 2, "slow": 3}, slippage_mode="atr", k_atr=k_atr,
                                 allow_short=allow_short, fee=0.001))
    assert res.returncode == 0, res.stderr
    run_dir, report, metrics = report_of(res)
    trades = trades_of(run_dir)
    assert trades
    for row in trades:
        assert float(row["entry_price"]) > 0 and float(row["exit_price"]) > 0, row
        assert float(row["qty"]) > 0 and float(row["entry_fee"]) >= 0 and float(row["exit_fee"]) >= 0, row
    assert metrics["total_return"] >= -1 and metrics["max_drawdown"] >= -1
    import pyarrow.parquet as pq

    eq = pq.ParquetFile(run_dir / "equity.parquet").read().to_pydict()
    assert min(eq["equity"]) >= 0


# ------------------------------------------------------------------------------ 19.8 margin call
def short_squeeze_closes():
    """Up, then down (fast SMA crosses below slow: short), then a one-bar 5x jump that stays."""
    closes = [100.0 + i for i in range(20)] + [119.0 - 3 * i for i in range(1, 11)]
    return closes + [closes[-1] * 5] + [closes[-1] * 5 * (1 + 0.001 * i) for i in range(1, 30)]


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_short_wiped_out_is_liquidated_and_flagged(ql, tmp_path, fill):
    path = write_csv(tmp_path / "squeeze.csv", short_squeeze_closes())
    res = ql.request(run_request(ticker="SQZ", source="file", data_path=str(path), start="2020-01-01",
                                 end="2020-03-01", strategy="sma_crossover", strategy_params={"fast": 2, "slow": 5},
                                 allow_short=True, fee=0.001, slippage_bps=5, fill=fill))
    assert res.returncode == 0, res.stderr
    run_dir, report, metrics = report_of(res)
    assert metrics["total_return"] == -1.0
    assert metrics["max_drawdown"] == -1.0
    assert metrics["cagr"] is None or metrics["cagr"] >= -1.0
    warnings = report["machine_contract"]["warnings"]
    assert any("margin call" in w for w in warnings), warnings
    assert any(line.startswith("WARNING: ") and "margin call" in line for line in res.stderr.splitlines())
    assert any("margin call" in w for w in res.envelope.get("warnings", []))
    import pyarrow.parquet as pq

    eq = pq.ParquetFile(run_dir / "equity.parquet").read().to_pydict()
    assert min(eq["equity"]) == 0.0 and eq["equity"][-1] == 0.0
    assert min(eq["returns"]) >= -1.0 and min(eq["drawdown"]) >= -1.0
    assert eq["position"][-1] == 0
    trades = trades_of(run_dir)
    assert trades[-1]["side"] == "short"
    assert float(trades[-1]["exit_fee"]) >= 0
    assert res.signals[-1]["event"] == "SESSION_COMPLETED"


# ------------------------------------------------------------------------------ 10.16 ratios
def test_undefined_ratios_are_null_in_runs_and_sweeps_and_runs_have_no_best_result(ql, tmp_path):
    path = write_csv(tmp_path / "flat.csv", [100.0] * 90)
    base = {"ticker": "FLAT", "source": "file", "data_path": str(path), "start": "2020-01-01",
            "end": "2020-03-30", "strategy": "sma_crossover"}
    res = ql.request(run_request(**base, strategy_params={"fast": 2, "slow": 5}))
    assert res.returncode == 0, res.stderr
    run_dir, report, metrics = report_of(res)
    assert metrics["total_return"] == 0.0 and metrics["volatility_ann"] == 0.0
    assert metrics["sharpe_simple"] is None and metrics["sortino"] is None and metrics["calmar"] is None
    assert res.envelope["summary"]["sharpe_simple"] is None
    whole = strict_json((run_dir / "metrics.json").read_text())
    assert "best_result" not in whole and "leaderboard_size" not in whole  # sweep-only keys

    sweep = ql.request({"schema_version": "1.0", "request_id": "sw", "command": "sweep",
                        "params": {**base, "param_grid": {"fast": [2, 3], "slow": [5]}}})
    assert sweep.returncode == 0, sweep.stderr
    best = strict_json(Path(sweep.envelope["report_path"]).read_text())["machine_contract"]["best_result"]
    assert best["sharpe_simple"] is None and best["sortino"] is None
    with open(Path(sweep.envelope["artifacts_path"]) / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["sharpe_simple"] for r in rows] == [r["sortino"] for r in rows]  # both empty: null


# ------------------------------------------------------------------------------ 10.10 calendar
def weekday_closes(n=300, seed=5):
    import numpy as np

    rng = np.random.default_rng(seed)
    return (100 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))).tolist()


def write_weekday_csv(path: Path, closes) -> Path:
    """Exchange-style daily bars: Monday to Friday only."""
    import numpy as np

    days = np.arange(np.datetime64("2020-01-06"), np.datetime64("2022-01-01"))
    days = [d for d in days if (d.astype("datetime64[D]").astype(int) + 3) % 7 < 5][: len(closes)]
    lines = ["Date,Open,High,Low,Close,Volume"]
    for d, c in zip(days, closes):
        lines.append(f"{d},{c:.6f},{c * 1.01:.6f},{c * 0.99:.6f},{c:.6f},1000")
    path.write_text("\n".join(lines) + "\n")
    return path


def _window(run_dir: Path) -> dict:
    return strict_json((run_dir / "metadata.json").read_text())["window"]


def test_annualisation_comes_from_the_data_not_the_ticker_name(ql, tmp_path):
    path = write_weekday_csv(tmp_path / "my_bars.csv", weekday_closes())
    base = {"source": "file", "data_path": str(path), "start": "2020-03-01", "end": "2021-01-01",
            "strategy": "sma_crossover", "strategy_params": {"fast": 5, "slow": 20}}
    sharpes = []
    for ticker in (None, "ZZZ", "ETH-USD"):
        payload = run_request(**base)
        payload["params"].pop("ticker")
        if ticker:
            payload["params"]["ticker"] = ticker
        res = ql.request(payload)
        assert res.returncode == 0, res.stderr
        run_dir, report, metrics = report_of(res)
        assert _window(run_dir)["periods_per_year"] == 252.0 and _window(run_dir)["bar_interval"] == "1d"
        whole = strict_json((run_dir / "metrics.json").read_text())
        assert whole["periods_per_year"] == 252.0 and whole["bar_interval"] == "1d"
        config = strict_json((run_dir / "config.json").read_text())
        assert config["ticker"] == (ticker or "my_bars")  # a file names itself, never ETH-USD
        sharpes.append(metrics["sharpe_simple"])
    assert sharpes[0] is not None and sharpes[0] == sharpes[1] == sharpes[2]


def test_weekend_bars_mean_a_365_day_year_whatever_the_ticker(ql, tmp_path):
    path = write_csv(tmp_path / "coin.csv", weekday_closes(300))  # every calendar day
    res = ql.request(run_request(ticker="ZZZ", source="file", data_path=str(path), start="2020-02-01",
                                 end="2020-10-01", strategy="sma_crossover", strategy_params={"fast": 5, "slow": 20}))
    assert res.returncode == 0, res.stderr
    window = _window(Path(res.envelope["artifacts_path"]))
    assert window["periods_per_year"] == 365.0 and window["calendar"] == "24/7"


def test_hourly_bars_declared_daily_fail_and_declared_hourly_annualise_hourly(ql, tmp_path):
    path = write_csv(tmp_path / "hourly.csv", weekday_closes(600), step_hours=1)
    base = {"source": "file", "data_path": str(path), "start": "2020-01-03", "end": "2020-01-20",
            "strategy": "sma_crossover", "strategy_params": {"fast": 5, "slow": 20}}
    res = ql.request(run_request(**base))  # the default interval is 1d
    assert res.returncode == 3
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and "interval 1h" in errors[0] and "interval 1d" in errors[0], res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED" and res.envelope["exit_code"] == 3
    assert not ql.runs_dir().exists() or not [p for p in ql.runs_dir().iterdir() if p.name.startswith("2")]

    ok = ql.request(run_request(**base, interval="1h"))
    assert ok.returncode == 0, ok.stderr
    window = _window(Path(ok.envelope["artifacts_path"]))
    assert window["periods_per_year"] == 365.0 * 24 and window["bar_interval"] == "1h"


def test_run_without_arguments_uses_the_bundled_sample_and_says_so(ql):
    res = ql.request({"schema_version": "1.0", "command": "run"})
    assert res.returncode == 0, res.stderr
    run_dir, report, metrics = report_of(res)
    config = strict_json((run_dir / "config.json").read_text())
    assert config["ticker"] == "SPX" and (config["start"], config["end"]) == ("2017-01-01", "2018-01-01")
    notes = [w for w in report["machine_contract"]["warnings"] if "no ticker given" in w]
    assert notes and "SPX" in notes[0] and "2017-01-01..2018-01-01" in notes[0]
    assert any(line.startswith("WARNING: ") and "no ticker given" in line for line in res.stderr.splitlines())
    assert _window(run_dir)["periods_per_year"] == 252.0
    human = ql.cli("run")
    assert human.returncode == 0, human.stderr
    assert "no ticker given" in human.stderr


def test_a_sweep_annualises_like_a_run_of_the_same_bars(ql, tmp_path):
    path = write_csv(tmp_path / "coin.csv", weekday_closes(300))  # 24/7 bars, a stock-like name
    base = {"ticker": "ZZZ", "source": "file", "data_path": str(path), "start": "2020-02-01", "end": "2020-10-01",
            "strategy": "sma_crossover"}
    run = ql.request(run_request(**base, strategy_params={"fast": 5, "slow": 20}))
    assert run.returncode == 0, run.stderr
    sweep = ql.request({"schema_version": "1.0", "request_id": "sw", "command": "sweep",
                        "params": {**base, "param_grid": {"fast": [5], "slow": [20]}}})
    assert sweep.returncode == 0, sweep.stderr
    best = strict_json(Path(sweep.envelope["report_path"]).read_text())["machine_contract"]["best_result"]
    assert best["sharpe_simple"] == pytest.approx(run.envelope["summary"]["sharpe_simple"], rel=1e-12)
