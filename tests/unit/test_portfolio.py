"""Unit tests of the portfolio command (src/quantlab/commands/portfolio/): scanning forward
sessions, selection, the three weighting modes on a staggered calendar, publishing."""

from __future__ import annotations

import io
import json
import statistics

import numpy as np
import pytest

from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json
from quantlab.columnar import column_to_numpy, parquet_bytes, read_parquet, table_from_numpy
from quantlab.commands.portfolio.combine import combine, compare_modes, load_weights
from quantlab.commands.portfolio.publish import ARTIFACTS
from quantlab.commands.portfolio.selection import FILTER_ORDER, normalise_selection, rank_metrics, select_sessions
from quantlab.commands.portfolio.sessions import empty_tradelog, parse_time, scan_sessions
from quantlab.commands.portfolio.steps import step_portfolio_mode, step_publish_portfolio
from quantlab.errors import ConfigError, DataError
from quantlab.metric_registry import summary_names


def strict_json(text: str):
    def bad(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=bad)


DAY0 = np.datetime64("2026-01-01T00:00:00", "ns")
ONE_DAY = np.timedelta64(1, "D")


def make_session(root, sid, equity, *, first_day=0, cash=10_000.0, ticker="SPY", strategy="sma_crossover",
                 source="src_a", updated_at="2026-11-25T07:01:02Z", interval="1d", position=None,
                 status="success", metrics=True, step=ONE_DAY):
    d = root / sid
    d.mkdir(parents=True)
    equity = np.asarray(equity, dtype=float)
    n = len(equity)
    if step == ONE_DAY:  # exchange days: weekdays only, as a daily stock session has
        ts = np.busday_offset(DAY0.astype("datetime64[D]"), first_day + np.arange(n), roll="forward").astype("datetime64[ns]")
    else:
        ts = DAY0 + (first_day + np.arange(n)) * step
    returns = equity / np.concatenate(([cash], equity[:-1])) - 1.0
    peak = np.maximum.accumulate(np.maximum(equity, cash))
    close = 100.0 + np.arange(n, dtype=float)
    pos = np.ones(n, dtype=np.int8) if position is None else np.asarray(position, dtype=np.int8)
    atomic_write_bytes(d / "equity.parquet", parquet_bytes(table_from_numpy({
        "timestamp": ts, "close": close, "equity": equity, "position": pos, "returns": returns,
        "drawdown": equity / peak - 1.0, "benchmark_equity": cash * close / close[0]})))
    meta = {"session_id": sid, "run_id": sid, "command": "forward", "mode": "forward", "status": status,
            "created_at": "2026-11-25T07:00:00Z", "updated_at": updated_at, "request_id": None,
            "source_run_id": source, "source_run_dir": f"/x/{source}", "ticker": ticker, "interval": interval,
            "strategy": strategy, "strategy_params": {"fast": 5}, "forward_start": "2026-01-01",
            "forward_end": "2026-02-01", "initial_cash": cash}
    atomic_write_json(d / "session_metadata.json", meta)
    if metrics:
        total = float(equity[-1] / cash - 1)
        atomic_write_json(d / "metrics.json", {
            "summary": {"total_return": total, "sharpe_simple": 0.0, "max_drawdown": 0.0, "trades": 3,
                        "win_rate": 2 / 3},
            "metrics": {"total_return": total, "trades": 3, "win_rate": 2 / 3, "profit_factor": 1.5,
                        "avg_trade_return": 0.01}})
    return d


A_EQ = [10_000, 10_100, 10_200, 10_000, 10_300]
B_EQ = [10_000, 9_900, 10_050, 10_100, 10_200]
C_EQ = [5_000, 5_100, 5_050, 5_200, 5_300]


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "forward_runs"
    make_session(r, "sess_a", A_EQ, ticker="SPY", strategy="sma_crossover", source="src_a")
    make_session(r, "sess_b", B_EQ, ticker="QQQ", strategy="donchian_breakout", source="src_b")
    make_session(r, "sess_c", C_EQ, first_day=2, cash=5_000.0, ticker="IWM", strategy="sma_crossover",
                 source="src_c")
    return r


def norm_on_calendar(eq, cash, first_day, days=7):
    """Hand version of the calendar rule: 1.0 before the first bar, forward-filled after the last."""
    out = []
    for day in range(days):
        k = day - first_day
        if k < 0:
            out.append(1.0)
        else:
            out.append(eq[min(k, len(eq) - 1)] / cash)
    return out


def hand_portfolio(weights):
    na = norm_on_calendar(A_EQ, 10_000, 0)
    nb = norm_on_calendar(B_EQ, 10_000, 0)
    nc = norm_on_calendar(C_EQ, 5_000, 2)
    wa, wb, wc = weights
    return [25_000 * (wa * a + wb * b + wc * c) for a, b, c in zip(na, nb, nc)], (na, nb, nc)


def selected(root, **criteria):
    sessions, _ = scan_sessions(root)
    chosen, _ = select_sessions(sessions, **criteria)
    return sorted(chosen, key=lambda s: s["session_id"])


# -------------------------------------------------------------------------------- scanning
def test_scan_counts_incomplete_and_foreign_sessions_without_crashing(root):
    (root / "no_metadata").mkdir()
    bad_json = make_session(root, "bad_json", A_EQ)
    (bad_json / "session_metadata.json").write_text("{broken")
    empty = make_session(root, "empty_equity", A_EQ)
    atomic_write_bytes(empty / "equity.parquet", parquet_bytes(table_from_numpy({
        "timestamp": np.array([], dtype="datetime64[ns]"), "equity": np.array([])})))
    garbage = make_session(root, "garbage_parquet", A_EQ)
    (garbage / "equity.parquet").write_bytes(b"not parquet at all")
    no_equity = make_session(root, "no_equity", A_EQ)
    (no_equity / "equity.parquet").unlink()
    make_session(root, "failed", A_EQ, status="failed")
    paper = make_session(root, "paper_sess", A_EQ)
    meta = json.loads((paper / "session_metadata.json").read_text())
    atomic_write_json(paper / "session_metadata.json", {**meta, "command": "run", "mode": "paper"})
    (root / ".tmp_20260101_000000_forward_abcdef0").mkdir()
    (root / "runs_index.json").write_text("{}")

    sessions, stats = scan_sessions(root)
    assert [s["session_id"] for s in sessions] == ["sess_a", "sess_b", "sess_c"]
    assert stats["scanned"] == 10 and stats["eligible"] == 3
    assert stats["incomplete"] == 6 and stats["not_forward"] == 1 and stats["duplicates"] == 0
    reasons = {e["session_id"]: e["reason"] for e in stats["excluded"]}
    assert reasons["no_metadata"] == "session_metadata.json missing"
    assert reasons["bad_json"] == "session_metadata.json unreadable"
    assert reasons["empty_equity"] == "equity.parquet is empty"
    assert reasons["garbage_parquet"] == "equity.parquet unreadable"
    assert reasons["no_equity"] == "equity.parquet missing"
    assert "failed" in reasons["failed"]
    s = sessions[0]
    assert s["metrics"]["total_return"] == pytest.approx(0.03)
    assert s["metrics"]["trades"] == 3 and s["metrics"]["total_pnl"] == pytest.approx(300.0)


def test_missing_root_empty_root_and_nothing_selected_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_sessions(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    sessions, stats = scan_sessions(empty)
    assert sessions == [] and stats["scanned"] == 0
    with pytest.raises(DataError, match="no complete forward session under"):
        step_portfolio_mode({"root": str(empty), "mode": "equal_weight"}, str(tmp_path / "m.json"))
    with pytest.raises(DataError, match="no complete forward session"):
        select_sessions([])
    assert not (tmp_path / "m.json").exists()
    assert DataError("x").exit_code == 3


def test_duplicates_collapse_to_the_latest_update_by_parsed_time(tmp_path):
    r = tmp_path / "fr"
    # string order says "…09:00:00+03:00" is later; in time it is 06:00Z, before 07:00Z
    make_session(r, "copy_1", A_EQ, updated_at="2026-11-25T09:00:00+03:00")
    make_session(r, "copy_2", A_EQ, updated_at="2026-11-25T07:00:00Z")
    make_session(r, "other", B_EQ)
    sessions, stats = scan_sessions(r)
    assert [s["session_id"] for s in sessions] == ["copy_2", "other"]
    assert stats["duplicates"] == 1 and stats["collapsed"] == [{"session_id": "copy_1", "kept": "copy_2"}]


def test_session_is_normalised_by_its_initial_cash(tmp_path):
    r = tmp_path / "fr"
    make_session(r, "fee_at_bar0", [9_990, 10_100], cash=10_000.0)
    (s,), _ = scan_sessions(r)
    assert s["norm_equity"].tolist() == pytest.approx([0.999, 1.01])
    assert s["metrics"]["total_return"] == pytest.approx(0.01)
    out = combine([s], "equal_weight")
    assert out["series"]["equity"].tolist() == pytest.approx([9_990, 10_100])
    assert out["summary"]["total_return"] == pytest.approx(0.01)


# ------------------------------------------------------------------------------- combining
def test_equal_weight_portfolio_bar_by_bar_on_the_staggered_calendar(root):
    out = combine(selected(root), "equal_weight")
    expected, _ = hand_portfolio((1 / 3, 1 / 3, 1 / 3))
    assert out["weights"]["weights"] == pytest.approx({"sess_a": 1 / 3, "sess_b": 1 / 3, "sess_c": 1 / 3})
    assert out["calendar"]["bars"] == 7 and out["calendar"]["periods_per_year"] == 252
    assert out["series"]["timestamps"][0] == "2026-01-01T00:00:00Z"
    assert out["series"]["timestamps"][-1] == "2026-01-09T00:00:00Z"  # 7 weekdays
    assert out["series"]["equity"].tolist() == pytest.approx(expected, rel=1e-12)
    assert out["portfolio"]["start_value"] == 25_000.0  # sum of the sessions' initial cash, not 10,000
    prev = [25_000] + expected[:-1]
    assert out["series"]["returns"].tolist() == pytest.approx([e / p - 1 for e, p in zip(expected, prev)])
    assert out["summary"]["total_return"] == pytest.approx(expected[-1] / 25_000 - 1)
    assert out["summary"]["trades"] == 0 and isinstance(out["summary"]["trades"], int)
    assert out["summary"]["win_rate"] is None
    # exposure: union of positions while live (C live from day 3; A and B end on day 5)
    assert out["series"]["exposure"].tolist() == [1, 1, 1, 1, 1, 1, 1]
    assert out["metrics"]["exposure"] == 1.0
    peaks = np.maximum.accumulate(np.maximum(expected, 25_000))
    assert out["metrics"]["max_drawdown"] == pytest.approx(min(0.0, float((np.array(expected) / peaks - 1).min())))


def test_metrics_come_from_compute_metrics_with_the_bar_interval(root):
    from quantlab.engine import SimResult
    from quantlab.metrics import compute_metrics

    out = combine(selected(root), "equal_weight")
    eq = out["series"]["equity"]
    res = SimResult(equity=eq, position=out["series"]["exposure"], returns=out["series"]["returns"],
                    trades=empty_tradelog(), open_position=0)
    ref = compute_metrics(res, out["series"]["benchmark_equity"], start=0, periods_per_year=252,
                          initial_cash=25_000.0)
    assert out["metrics"] == ref
    assert list(out["metrics"]) == list(ref)
    assert out["calendar"]["periods_per_year"] == 252 and out["calendar"]["crypto"] is False
    # a ticker's name plays no part (as in runs): a crypto-looking name on weekday bars is 252 ...
    sessions = selected(root)
    sessions[0] = {**sessions[0], "ticker": "BTC-USD"}
    assert combine(sessions, "equal_weight")["calendar"]["periods_per_year"] == 252
    # ... and one session trading through a weekend puts Saturday and Sunday bars in the union calendar: 365
    weekend = DAY0 + np.array([2, 3], dtype="timedelta64[D]")  # 2026-01-03/04, Saturday and Sunday
    sessions[1] = {**sessions[1], "timestamps": np.sort(np.concatenate([sessions[1]["timestamps"][:3], weekend]))}
    crypto = combine(sessions, "equal_weight")
    assert crypto["calendar"]["periods_per_year"] == 365 and crypto["calendar"]["crypto"] is True


def test_custom_weights_are_normalised_and_absent_sessions_get_zero(root):
    out = combine(selected(root), "custom_weight", {"sess_a": 3, "sess_c": 1.0})
    w = out["weights"]
    assert w["weights"] == pytest.approx({"sess_a": 0.75, "sess_b": 0.0, "sess_c": 0.25})
    assert w["input"] == {"sess_a": 3.0, "sess_c": 1.0} and w["input_sum"] == 4.0
    assert w["normalised"] is True and w["zero_weight_sessions"] == ["sess_b"]
    assert any("normalised" in x for x in out["warnings"]) and any("sess_b" in x for x in out["warnings"])
    expected, _ = hand_portfolio((0.75, 0.0, 0.25))
    assert out["series"]["equity"].tolist() == pytest.approx(expected, rel=1e-12)
    already = combine(selected(root), "custom_weight", {"sess_a": 0.5, "sess_b": 0.25, "sess_c": 0.25})
    assert already["weights"]["normalised"] is False and already["weights"]["zero_weight_sessions"] == []


@pytest.mark.parametrize("weights, match", [
    ({"sess_a": 1, "ghost": 1, "phantom": 2}, r"not selected: ghost, phantom"),
    ({"sess_a": -0.1, "sess_b": 1}, r"sess_a must be a finite number >= 0"),
    ({"sess_a": float("nan")}, r"sess_a must be a finite number"),
    ({"sess_a": float("inf")}, r"sess_a must be a finite number"),
    ({"sess_a": True}, r"sess_a must be a finite number"),
    ({"sess_a": "0.5"}, r"sess_a must be a finite number"),
    ({"sess_a": 0, "sess_b": 0.0}, r"sum to 0"),
    ({}, r"non-empty"),
    (None, r"custom_weight needs weights"),
])
def test_bad_custom_weights_are_config_errors(root, weights, match):
    with pytest.raises(ConfigError, match=match) as err:
        combine(selected(root), "custom_weight", weights)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_inverse_vol_weights_match_a_hand_computation(root):
    out = combine(selected(root), "inverse_vol")
    vols = {}
    for sid, eq, cash in (("sess_a", A_EQ, 10_000), ("sess_b", B_EQ, 10_000), ("sess_c", C_EQ, 5_000)):
        values = [cash] + list(eq)
        vols[sid] = statistics.stdev([values[k + 1] / values[k] - 1 for k in range(len(eq))])
    inv = {k: 1 / v for k, v in vols.items()}
    total = sum(inv.values())
    assert out["weights"]["weights"] == pytest.approx({k: v / total for k, v in inv.items()}, rel=1e-12)
    assert out["weights"]["volatility"] == pytest.approx(vols, rel=1e-12)
    expected, _ = hand_portfolio(tuple(inv[k] / total for k in ("sess_a", "sess_b", "sess_c")))
    assert out["series"]["equity"].tolist() == pytest.approx(expected, rel=1e-12)


def test_raw_capital_weights_are_each_sessions_share_of_the_capital(root):
    """raw_capital (the original tool's default): w_i = initial_cash_i / total cash."""
    out = combine(selected(root), "raw_capital")
    assert out["weights"]["weights"] == pytest.approx({"sess_a": 0.4, "sess_b": 0.4, "sess_c": 0.2}, rel=1e-15)
    expected, _ = hand_portfolio((0.4, 0.4, 0.2))
    assert out["series"]["equity"].tolist() == pytest.approx(expected, rel=1e-12)
    assert out["series"]["equity"][0] == pytest.approx(25_000.0)  # each keeps its own capital


def test_inverse_vol_zero_volatility_sessions(tmp_path):
    r = tmp_path / "fr"
    make_session(r, "flat", [10_000] * 5, position=[0] * 5)
    make_session(r, "moving", A_EQ)
    out = combine(selected(r), "inverse_vol")
    assert out["weights"]["weights"] == {"flat": 0.0, "moving": 1.0}
    assert out["weights"]["zero_volatility_sessions"] == ["flat"] and out["weights"]["fallback"] is None
    assert any("zero-volatility" in w for w in out["warnings"])
    r2 = tmp_path / "fr2"
    make_session(r2, "flat1", [10_000] * 5, position=[0] * 5)
    make_session(r2, "flat2", [10_000] * 3, position=[0] * 3)
    out2 = combine(selected(r2), "inverse_vol")
    assert out2["weights"]["weights"] == {"flat1": 0.5, "flat2": 0.5}
    assert out2["weights"]["fallback"] == "equal_weight"
    assert out2["summary"]["total_return"] == 0.0 and out2["contributions"] == {"flat1": 0.0, "flat2": 0.0}
    assert out2["metrics"]["exposure"] == 0.0


def test_contributions_account_for_staggered_timing_and_sum_to_one(root):
    for mode, weights in (("equal_weight", None), ("inverse_vol", None), ("custom_weight", {"sess_a": 2, "sess_c": 1})):
        out = combine(selected(root), mode, weights)
        w = out["weights"]["weights"]
        port_return = out["portfolio"]["end_value"] / 25_000 - 1
        finals = {"sess_a": 1.03, "sess_b": 1.02, "sess_c": 1.06}
        for sid, c in out["contributions"].items():
            assert c == pytest.approx(w[sid] * (finals[sid] - 1) / port_return, rel=1e-12)
        assert sum(out["contributions"].values()) == pytest.approx(1.0, rel=1e-12)
        pnl = sum(row["pnl_contribution"] for row in out["sessions"])
        assert pnl == pytest.approx(out["portfolio"]["total_pnl"], rel=1e-12)


def test_correlation_is_symmetric_pairwise_over_live_overlap(root):
    out = combine(selected(root), "equal_weight")
    corr = out["correlation"]
    m = corr["matrix"]
    assert corr["session_ids"] == ["sess_a", "sess_b", "sess_c"]
    for i in range(3):
        assert m[i][i] == 1.0
        for j in range(3):
            assert m[i][j] == m[j][i]
            assert -1.0 <= m[i][j] <= 1.0
    assert corr["overlap_bars"] == [[5, 5, 3], [5, 5, 3], [3, 3, 5]]
    ra = [A_EQ[k] / ([10_000] + A_EQ)[k] - 1 for k in range(5)]
    rb = [B_EQ[k] / ([10_000] + B_EQ)[k] - 1 for k in range(5)]
    rc = [C_EQ[k] / ([5_000] + C_EQ)[k] - 1 for k in range(5)]
    assert m[0][1] == pytest.approx(statistics.correlation(ra, rb), rel=1e-12)
    assert m[0][2] == pytest.approx(statistics.correlation(ra[2:], rc[:3]), rel=1e-12)
    # a constant series has no correlation
    flat = combine(selected(root) + [{**selected(root)[0], "session_id": "zz_flat",
                                         "norm_equity": np.ones(5), "returns": np.zeros(5)}], "equal_weight")
    assert flat["correlation"]["matrix"][3] == [None, None, None, None]


def test_mixed_intervals_and_unknown_mode_are_rejected(root, tmp_path):
    with pytest.raises(ConfigError, match="unknown portfolio mode 'raw'.*equal_weight"):
        combine(selected(root), "raw")
    make_session(root, "hourly", A_EQ, interval="1h", step=np.timedelta64(1, "h"))
    with pytest.raises(DataError, match=r"mix bar intervals \(1d, 1h\)"):
        combine(selected(root), "equal_weight")


# -------------------------------------------------------------------------------- selection
def test_each_filter_and_the_documented_order(tmp_path):
    r = tmp_path / "fr"
    make_session(r, "s1", [10_000, 10_500], ticker="SPY", strategy="sma_crossover", source="x")
    make_session(r, "s2", [10_000, 9_000], ticker="QQQ", strategy="sma_crossover", source="y")
    make_session(r, "s3", [10_000, 10_200], ticker="ETH-USD", strategy="bollinger_reversion", source="z")
    make_session(r, "s4", [10_000, 10_800, 10_100], ticker="spy", strategy="donchian_breakout", source="w")
    sessions, _ = scan_sessions(r)

    def ids(**kw):
        chosen, stats = select_sessions(sessions, **kw)
        return [s["session_id"] for s in chosen]

    assert ids() == ["s1", "s3", "s4", "s2"]  # ranked by total_return, best first
    assert ids(include_tickers=["SPY"]) == ["s1", "s4"]  # case-insensitive
    assert ids(include_tickers="spy, eth-usd") == ["s1", "s3", "s4"]
    assert ids(exclude_tickers=["spy"]) == ["s3", "s2"]
    assert ids(include_strategies=["sma_crossover"]) == ["s1", "s2"]
    assert ids(exclude_strategies="sma_crossover,donchian_breakout") == ["s3"]
    assert ids(min_return=0.02) == ["s1", "s3"]
    assert ids(min_return=0.05) == ["s1"]
    assert ids(max_drawdown=-0.05) == ["s1", "s3"]  # s4 fell 6.5% from its peak, s2 10%
    assert ids(top_n=2) == ["s1", "s3"]
    assert ids(top_n=0) == ["s1", "s3", "s4", "s2"]
    assert ids(rank_metric="max_drawdown") == ["s1", "s3", "s4", "s2"]
    assert ids(rank_metric="volatility_ann", top_n=1) == ["s3"]  # lower is better
    assert ids(rank_metric="contribution_pct", top_n=1) == ["s1"]  # = total_pnl
    assert ids(rank_metric="win_rate") == ["s1", "s2", "s3", "s4"]  # all equal: ties by id
    # filters run before the top_n cut: top_n picks the best of what is left
    assert ids(exclude_tickers=["SPY"], top_n=1) == ["s3"]
    chosen, stats = select_sessions(sessions, include_tickers=["SPY", "QQQ"], min_return=0.0, top_n=1)
    assert [s["session_id"] for s in chosen] == ["s1"]
    assert stats["order"] == list(FILTER_ORDER)
    assert stats["counts"] == {"input": 4, "after_include_tickers": 3, "after_exclude_tickers": 3,
                               "after_include_strategies": 3, "after_exclude_strategies": 3,
                               "after_min_return": 2, "after_max_drawdown": 2, "after_latest_per_source_run": 2,
                               "after_top_n": 1}
    assert stats["excluded"] == {"s3": "include_tickers", "s2": "min_return", "s4": "top_n"}
    with pytest.raises(DataError, match=r"no forward session under .*fr matches the selection \(min_return=0.5"):
        select_sessions(sessions, min_return=0.5)


def test_latest_per_source_run_compares_parsed_times(tmp_path):
    r = tmp_path / "fr"
    # string order: "2026-11-25T09…" > "2026-11-25T07…"; time order: 06:00Z < 07:00Z
    make_session(r, "old", A_EQ, source="sweep_1", updated_at="2026-11-25T09:00:00+03:00")
    make_session(r, "new", [10_000, 10_010], source="sweep_1", updated_at="2026-11-25T07:00:00Z")
    make_session(r, "alone", B_EQ, source="sweep_2", updated_at="2020-01-01T00:00:00Z")
    make_session(r, "naive", C_EQ, first_day=2, cash=5_000.0, source="sweep_2", updated_at="2019-12-31T23:00:00")
    sessions, _ = scan_sessions(r)
    chosen, stats = select_sessions(sessions, latest_per_source_run=True)
    assert sorted(s["session_id"] for s in chosen) == ["alone", "new"]
    assert stats["excluded"] == {"old": "latest_per_source_run", "naive": "latest_per_source_run"}
    assert parse_time("2026-11-25T09:00:00+03:00") < parse_time("2026-11-25T07:00:00Z")
    assert parse_time("garbage") is None


@pytest.mark.parametrize("criteria, match", [
    ({"rank_metric": "sharpe"}, r"unknown portfolio rank metric 'sharpe'; valid: total_return, cagr, sharpe_simple"),
    ({"top_n": -1}, r"top_n must be a whole number"),
    ({"top_n": 2.5}, r"top_n must be a whole number"),
    ({"max_drawdown": 0.2}, r"max_drawdown must be a drawdown fraction in \[-1, 0\]"),
    ({"min_return": float("nan")}, r"min_return must be a finite number"),
    ({"include_tickers": 5}, r"include_tickers must be a list"),
    ({"latest_per_source_run": "yes"}, r"latest_per_source_run must be true or false"),
])
def test_bad_selection_is_a_config_error(root, criteria, match):
    sessions, _ = scan_sessions(root)
    with pytest.raises(ConfigError, match=match):
        select_sessions(sessions, **criteria)


def test_selection_accepts_prefixed_keys_and_rejects_unknown_ones():
    from quantlab.metrics import METRIC_KEYS

    assert rank_metrics() == tuple(METRIC_KEYS) + ("total_pnl",)
    crit = normalise_selection({"portfolio_top_n": 3.0, "portfolio_rank_metric": "sharpe_simple"})
    assert crit["top_n"] == 3 and crit["rank_metric"] == "sharpe_simple"
    with pytest.raises(ConfigError, match="unknown portfolio selection key.*top_k"):
        normalise_selection({"top_k": 3})


# ------------------------------------------------------------------------------- publishing
def claim(out_dir, run_id):
    staging = out_dir / f".tmp_{run_id}"
    staging.mkdir(parents=True)
    (staging / ".owner").write_text("12345")


def check_strict_tree(path):
    for f in path.rglob("*.json"):
        strict_json(f.read_text())


def test_step_mode_and_publish_write_the_full_file_set(root, tmp_path):
    mode_json = tmp_path / "work" / "equal_weight.json"
    spec = {"root": str(root), "mode": "equal_weight", "weights": None,
            "selection": {"top_n": None, "rank_metric": "total_return"}}
    step_portfolio_mode(spec, str(mode_json))
    mode = strict_json(mode_json.read_text())
    assert mode["mode"] == "equal_weight" and mode["scan"]["eligible"] == 3 and len(mode["series"]["equity"]) == 7
    # deterministic: identical inputs give byte-identical mode files
    again = tmp_path / "work" / "again.json"
    step_portfolio_mode(spec, str(again))
    assert again.read_bytes() == mode_json.read_bytes()
    assert sorted(p.name for p in mode_json.parent.iterdir()) == ["again.json", "equal_weight.json"]  # no temp

    out_dir = tmp_path / "outputs" / "portfolio"
    run_id = "20261125_070102_portfolio_abcdef0"
    claim(out_dir, run_id)
    record = {"run_id": run_id, "created_at": "2026-11-25T07:01:02Z", "request_id": "req-1",
              "out_dir": str(out_dir), "root": str(root), "modes": ["equal_weight"], "compare": False,
              "warnings": ["params key 'foo' ignored"]}
    marker = tmp_path / "work" / "published.json"
    result = step_publish_portfolio(record, [str(mode_json)], str(marker))
    final = out_dir / run_id
    assert [p.name for p in out_dir.iterdir()] == [run_id]  # no .tmp_ dir left
    assert sorted(p.name for p in final.iterdir()) == sorted(ARTIFACTS.values())
    check_strict_tree(final)
    report = strict_json((final / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["schema_version"] == "1.0" and mc["contract_type"] == "quantlab.portfolio.result"
    assert mc["command"] == "portfolio" and mc["status"] == "success" and mc["request_id"] == "req-1"
    assert mc["run_id"] == run_id and mc["mode"] == "equal_weight"
    assert set(mc["summary"]) == set(summary_names()) and mc["summary"]["trades"] == 0
    assert mc["summary"]["win_rate"] is None and report["summary"] == mc["summary"]
    assert mc["artifacts"] == ARTIFACTS and mc["warnings"] == ["params key 'foo' ignored"]
    expected, _ = hand_portfolio((1 / 3, 1 / 3, 1 / 3))
    assert mc["summary"]["total_return"] == pytest.approx(expected[-1] / 25_000 - 1)
    assert result == strict_json(marker.read_text())
    assert result == {"run_id": run_id, "mode": "equal_weight", "artifacts_path": str(final),
                      "report_path": str(final / "report.json"), "summary": mc["summary"],
                      "warnings": mc["warnings"]}  # main.py prints the ones found while combining
    table = read_parquet(final / "portfolio_equity.parquet")
    assert column_to_numpy(table, "equity").tolist() == pytest.approx(expected, rel=1e-12)
    assert str(column_to_numpy(table, "timestamp")[2]) == "2026-01-05T00:00:00.000000000"  # Monday
    assert (final / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    assert Image.open(io.BytesIO((final / "equity.png").read_bytes())).size == (960, 640)
    weights = strict_json((final / "weights.json").read_text())
    assert weights["modes"]["equal_weight"]["weights"] == pytest.approx({"sess_a": 1 / 3, "sess_b": 1 / 3,
                                                                          "sess_c": 1 / 3})
    corr = strict_json((final / "correlation.json").read_text())
    assert corr["matrix"][0][0] == 1.0
    metrics = strict_json((final / "metrics.json").read_text())
    assert metrics["command"] == "portfolio" and list(metrics["modes"]) == ["equal_weight"]
    meta = strict_json((final / "metadata.json").read_text())
    assert meta["run_id"] == run_id and meta["session_ids"] == ["sess_c", "sess_a", "sess_b"]  # ranked
    assert "sess_c" in (final / "report.md").read_text()


def test_publish_compare_holds_every_mode_side_by_side(root, tmp_path):
    weights = {"sess_a": 2, "sess_b": 1}
    modes = compare_modes(weights)
    assert modes == ["equal_weight", "inverse_vol", "custom_weight"]
    paths = []
    for mode in modes:
        path = tmp_path / "work" / f"{mode}.json"
        step_portfolio_mode({"root": str(root), "mode": mode, "weights": weights, "selection": {}}, str(path))
        paths.append(str(path))
    out_dir = tmp_path / "out"
    run_id = "20261125_070102_portfolio_1234567"
    claim(out_dir, run_id)
    record = {"run_id": run_id, "created_at": "2026-11-25T07:01:02Z", "request_id": None, "out_dir": str(out_dir),
              "root": str(root), "modes": modes, "compare": True, "warnings": []}
    result = step_publish_portfolio(record, paths, str(tmp_path / "work" / "published.json"))
    final = out_dir / run_id
    assert result["mode"] == "compare" and not (out_dir / f".tmp_{run_id}").exists()
    check_strict_tree(final)
    report = strict_json((final / "report.json").read_text())
    mc = report["machine_contract"]
    assert "request_id" not in mc and mc["mode"] == "compare" and mc["modes"] == modes
    metrics = strict_json((final / "metrics.json").read_text())
    assert set(metrics["modes"]) == set(modes) == set(report["modes"])
    for mode in modes:
        assert set(metrics["modes"][mode]) >= {"summary", "metrics", "weights"}
    assert metrics["modes"]["custom_weight"]["weights"] == pytest.approx({"sess_a": 2 / 3, "sess_b": 1 / 3,
                                                                           "sess_c": 0.0})
    assert mc["summary"] == metrics["modes"]["equal_weight"]["summary"]  # the first mode's KPIs
    assert any(w.startswith("custom_weight: ") for w in mc["warnings"])
    table = read_parquet(final / "portfolio_equity.parquet")
    assert {f"equity_{m}" for m in modes} <= set(table.column_names)
    config = strict_json((final / "config.json").read_text())
    assert config["weights"] == {"sess_a": 2.0, "sess_b": 1.0} and config["compare"] is True


def test_step_mode_reads_a_weights_file_and_reports_unknown_sessions(root, tmp_path):
    wfile = tmp_path / "weights.json"
    wfile.write_text(json.dumps({"sess_a": 1, "nobody": 1}))
    with pytest.raises(ConfigError, match="not selected: nobody"):
        step_portfolio_mode({"root": str(root), "mode": "custom_weight", "weights": str(wfile)},
                               str(tmp_path / "m.json"))
    with pytest.raises(ConfigError, match="not found"):
        load_weights(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="unknown portfolio mode"):
        step_portfolio_mode({"root": str(root), "mode": "bogus"}, str(tmp_path / "m.json"))
