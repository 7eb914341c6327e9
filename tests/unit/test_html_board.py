"""The registry report's ranking: zero-trade results (and results without a finite Sharpe) are
listed but never ranked ahead of a result that traded, whatever their Sharpe; portfolios, which
count no trades, are ranked on Sharpe alone; groups keep tickers and windows apart."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from quantlab.registry.html_board import eligible, group_key, rank_order

row = st.fixed_dictionaries({
    "run_id": st.text("abc123", min_size=1, max_size=6),
    "sharpe_simple": st.one_of(st.none(), st.floats(-5, 5), st.just(math.nan)),
    "trades": st.one_of(st.none(), st.integers(0, 3)),
    "kind": st.sampled_from(["run", "grid", "forward", "portfolio"]),
})


@given(st.lists(row, max_size=12))
def test_ranked_results_come_first_best_sharpe_first(rows):
    ordered = rank_order(rows)
    flags = [eligible(r) for r in ordered]
    assert flags == sorted(flags, reverse=True)  # every eligible row before every other
    sharpes = [r["sharpe_simple"] for r in ordered if eligible(r)]
    assert sharpes == sorted(sharpes, reverse=True)
    for r in ordered:
        if eligible(r):
            assert math.isfinite(r["sharpe_simple"])
            assert r["kind"] == "portfolio" or not (r["trades"] is not None and r["trades"] <= 0)


def test_a_flat_zero_trade_run_is_never_best():
    flat = {"run_id": "flat", "sharpe_simple": 0.0, "trades": 0, "kind": "run"}
    losing = {"run_id": "losing", "sharpe_simple": -1.2, "trades": 4, "kind": "run"}
    assert [r["run_id"] for r in rank_order([flat, losing])] == ["losing", "flat"]
    assert eligible({"run_id": "p", "sharpe_simple": 0.4, "trades": 0, "kind": "portfolio"})


def test_groups_separate_tickers_windows_and_strategies():
    a = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "x", "kind": "run"}
    assert group_key(a) != group_key({**a, "ticker": "NASDAQ"})
    assert group_key(a) != group_key({**a, "end": "2019-01-01"})
    assert group_key(a) != group_key({**a, "strategy": "y"})
    assert group_key(a) == group_key({**a, "kind": "grid"})
