"""The metrics quants expect (issue #17) against independent computations: alpha/beta vs a numpy
least-squares fit, VaR/CVaR vs the sorted returns, SQN/expectancy/best/worst/holding time from the
trade log by hand, drawdown durations by a plain loop; grid == single run for every metric,
the series ones (VaR/CVaR, alpha, beta, tracking error, information ratio, drawdown days) included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.engine import EngineConfig, Signals, simulate
from quantlab.engine.sweep import evaluate_grid
from quantlab.metric_registry import grid_metric_names, metric_names
from quantlab.metrics import compute_metrics

PPY = 252.0


def _path(n: int, seed: int, drift: float = 0.0004):
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(drift, 0.012, n)))


def _run(close, entries, exits, cfg=None, start=0):
    cfg = cfg or EngineConfig(fee=0.001, slippage_bps=2.0)
    res = simulate(close, close, close, close, Signals(np.asarray(entries), np.asarray(exits)), cfg, start=start)
    return res, cfg


def _every(n, period, offset):
    t = np.arange(n)
    return t % period == offset


@pytest.fixture
def case():
    n = 400
    close = _path(n, 3)
    res, cfg = _run(close, _every(n, 23, 0), _every(n, 23, 11))
    stamps = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + n).astype("datetime64[ns]")
    bench = _path(n, 11)
    return close, res, cfg, stamps, bench


def test_alpha_beta_agree_with_numpy_least_squares(case):
    close, res, cfg, stamps, bench = case
    rf = 0.03
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash,
                        risk_free_rate=rf, timestamps=stamps, benchmark_close=bench)
    rf_bar = (1 + rf) ** (1 / PPY) - 1
    b = np.concatenate(([0.0], bench[1:] / bench[:-1] - 1.0))
    r = np.asarray(res.equity) / np.concatenate(([cfg.initial_cash], res.equity[:-1])) - 1.0
    (intercept, slope), *_ = np.linalg.lstsq(np.column_stack([np.ones(len(b)), b - rf_bar]), r - rf_bar, rcond=None)
    assert m["beta"] == pytest.approx(slope, rel=1e-9)
    assert m["alpha"] == pytest.approx(intercept * PPY, rel=1e-9)
    active = r - b
    assert m["tracking_error"] == pytest.approx(np.std(active, ddof=1) * math.sqrt(PPY), rel=1e-9)
    assert m["information_ratio"] == pytest.approx(active.mean() / np.std(active, ddof=1) * math.sqrt(PPY), rel=1e-9)
    # without a named benchmark: buy and hold of the run's own closes
    own = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash)
    b_own = np.concatenate(([0.0], close[1:] / close[:-1] - 1.0))
    slope_own = np.polyfit(b_own, r, 1)[0]
    assert own["beta"] == pytest.approx(slope_own, rel=1e-9)


def test_sharpe_and_sortino_subtract_the_per_bar_risk_free_rate(case):
    close, res, cfg, _, _ = case
    r = np.asarray(res.returns)
    for rf in (0.0, 0.05):
        m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash, risk_free_rate=rf)
        rf_bar = (1 + rf) ** (1 / PPY) - 1
        assert m["sharpe_simple"] == pytest.approx((r.mean() - rf_bar) / r.std(ddof=1) * math.sqrt(PPY), rel=1e-9)
        down = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
        assert m["sortino"] == pytest.approx((r.mean() - rf_bar) / down * math.sqrt(PPY), rel=1e-9)
    with pytest.raises(Exception, match="risk_free_rate"):
        compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=1.0, risk_free_rate=float("nan"))


def test_var_cvar_are_the_empirical_left_tail(case):
    close, res, cfg, _, _ = case
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash)
    r = np.sort(np.asarray(res.returns))
    # numpy's default (linear) quantile at 5 %, from the sorted returns by hand
    pos = 0.05 * (len(r) - 1)
    lo = int(math.floor(pos))
    var = r[lo] + (r[lo + 1] - r[lo]) * (pos - lo)
    assert m["var_95"] == pytest.approx(var, rel=1e-12)
    assert m["cvar_95"] == pytest.approx(r[r <= var].mean(), rel=1e-12)
    assert m["cvar_95"] <= m["var_95"] < 0


def test_trade_metrics_by_hand_from_the_trade_log(case):
    close, res, cfg, _, _ = case
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash)
    pnl, ret = list(res.trades.pnl), list(res.trades.ret)
    held = [int(x) - int(e) for e, x in zip(res.trades.entry_idx, res.trades.exit_idx)]
    n = len(pnl)
    assert n >= 10
    mean = sum(ret) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in ret) / (n - 1))
    assert m["sqn"] == pytest.approx(math.sqrt(n) * mean / std, rel=1e-9)
    assert m["expectancy"] == pytest.approx(sum(pnl) / n, rel=1e-9)
    assert m["best_trade"] == max(ret) and m["worst_trade"] == min(ret)
    assert m["avg_holding_bars"] == pytest.approx(sum(held) / n) == pytest.approx(np.mean(res.trades.bars_held))
    assert m["exposure_adjusted_return"] == pytest.approx(m["total_return"] / m["exposure"], rel=1e-12)


def test_drawdown_durations_by_a_plain_loop(case):
    close, res, cfg, stamps, _ = case
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash, timestamps=stamps)
    stamps = stamps[np.cumsum(np.arange(len(stamps)) % 3 == 0)]  # irregular gaps between bars (1 or 3 days)
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash, timestamps=stamps)
    peak, run, best, best_days, since = cfg.initial_cash, 0, 0, 0.0, None
    stretches = []  # (bars under water, calendar days from the peak bar to the recovery or last bar)
    for i, eq in enumerate(res.equity):
        if eq >= peak:
            if since is not None:  # recovered at bar i
                stretches.append((run, (stamps[i] - stamps[since]) / np.timedelta64(1, "D")))
            peak, run, since = max(peak, eq), 0, None
        else:
            if since is None:
                since = max(i - 1, 0)
            run += 1
    if since is not None:
        stretches.append((run, (stamps[-1] - stamps[since]) / np.timedelta64(1, "D")))
    best = max(bars for bars, _ in stretches)
    best_days = next(days for bars, days in stretches if bars == best)  # the first longest in bars
    assert m["max_drawdown_duration_bars"] == best > 0
    assert m["max_drawdown_duration_days"] == pytest.approx(best_days, abs=0)
    assert compute_metrics(res, close, start=0, periods_per_year=PPY,
                           initial_cash=cfg.initial_cash)["max_drawdown_duration_days"] is None


def test_zero_trades_give_null_trade_metrics_never_nan():
    n = 60
    close = _path(n, 5)
    res, cfg = _run(close, np.zeros(n, bool), np.zeros(n, bool))
    m = compute_metrics(res, close, start=0, periods_per_year=PPY, initial_cash=cfg.initial_cash)
    for key in ("sqn", "expectancy", "best_trade", "worst_trade", "avg_holding_bars", "exposure_adjusted_return"):
        assert m[key] is None, key
    assert m["max_drawdown_duration_bars"] == 0 and m["beta"] == 0.0 and m["var_95"] == 0.0
    assert all(v is None or math.isfinite(v) for v in m.values())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), period=st.integers(3, 40), rf=st.sampled_from([0.0, 0.02, -0.01]),
       short=st.booleans(), fill=st.sampled_from(["next_open", "close"]))
def test_grid_equals_single_run_for_every_metric(seed, period, rf, short, fill):
    """The kernel's sums (best/worst trade, holding bars, trade-return deviations, bars under
    the peak), its series statistics (the 5 % quantile and its tail, the sums against the
    benchmark, the longest drawdown's peak bar) and the risk-free rate give every metric, the
    seven series ones included, exactly the single run's value."""
    n = 220
    close = _path(n, seed, drift=0.0)
    opens = close * (1 + 0.001 * np.sin(np.arange(n)))
    stamps = np.datetime64("2021-01-04") + np.cumsum(np.random.default_rng(seed).integers(1, 4, n)).astype("timedelta64[D]")
    cfg = EngineConfig(fee=0.001, slippage_bps=3.0, allow_short=short, fill=fill)
    got = evaluate_grid(opens, close, close, close, "sma_crossover", [{"fast": 2, "slow": period}], cfg, start=period,
                        periods_per_year=PPY, risk_free_rate=rf, timestamps=stamps)
    from quantlab.strategies import get_strategy

    sig = get_strategy("sma_crossover").signals(opens, close, close, close, {"fast": 2, "slow": period})
    res = simulate(opens, close, close, close, sig, cfg, start=period)
    want = compute_metrics(res, close, start=period, periods_per_year=PPY, initial_cash=cfg.initial_cash,
                           risk_free_rate=rf, timestamps=stamps[period:])
    assert tuple(got) == grid_metric_names() == metric_names() == tuple(want)
    _same(got, want, 0)


def _same(got, want, j):
    for key in want:
        value, single = got[key][j], want[key]
        if single is None:
            assert math.isnan(value), key
        else:
            assert value == single, (key, value, single)  # to the last bit


@pytest.mark.parametrize("jit", ["always", "never"])
def test_numba_and_python_grids_equal_single_runs_for_the_series_metrics(monkeypatch, jit):
    """Both execution modes of the kernel, several combos per call (the per-thread scratch
    reused), a 1,000-bar series: each row is the single run's metrics, the series ones to the bit."""
    monkeypatch.setenv("QUANTLAB_JIT", jit)
    from quantlab.strategies import get_strategy

    n, start = 1000, 30
    close = _path(n, 7)
    rng = np.random.default_rng(2)
    opens = close * (1 + rng.normal(0, 0.002, n))
    high, low = np.maximum(opens, close) * 1.004, np.minimum(opens, close) * 0.996
    stamps = np.datetime64("2019-06-03") + np.cumsum(rng.integers(1, 5, n)).astype("timedelta64[D]")
    strategy = get_strategy("sma_crossover")
    combos = [strategy.resolve_params({"fast": f, "slow": s}) for f in (2, 5, 9) for s in (12, 30)]
    cfg = EngineConfig(fee=0.0005, slippage_bps=1.0, allow_short=True)
    got = evaluate_grid(opens, high, low, close, "sma_crossover", combos, cfg, start=start, periods_per_year=PPY,
                        risk_free_rate=0.03, timestamps=stamps, threads=2)
    for j, combo in enumerate(combos):
        res = simulate(opens, high, low, close, strategy.signals(opens, high, low, close, combo), cfg, start=start)
        want = compute_metrics(res, close, start=start, periods_per_year=PPY, initial_cash=cfg.initial_cash,
                               risk_free_rate=0.03, timestamps=stamps[start:])
        assert want["var_95"] < 0 and want["beta"] is not None and want["max_drawdown_duration_days"] > 0
        _same(got, want, j)
    off = evaluate_grid(opens, high, low, close, "sma_crossover", combos, cfg, start=start, periods_per_year=PPY,
                        risk_free_rate=0.03, series=False)  # left out: NaN, the other metrics unchanged
    assert np.isnan(off["var_95"]).all() and np.isnan(off["beta"]).all()
    assert np.isnan(off["max_drawdown_duration_days"]).all() and (off["sharpe_simple"] == got["sharpe_simple"]).all()


def test_named_benchmark_is_aligned_as_of_each_bar(monkeypatch):
    """A benchmark bar missing at a run bar: its previous close stands in (a warning past 5 % of
    the bars); no benchmark bar at or before the run's first bar: DataError (exit 3)."""
    import quantlab.data as data
    from quantlab import scoring
    from quantlab.data.bars import Bars
    from quantlab.errors import DataError

    days = np.arange(np.datetime64("2021-01-04"), np.datetime64("2021-01-24")).astype("datetime64[ns]")
    kept = days[[0, 1, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]  # days 2, 6, 7 missing
    close = np.arange(1.0, len(kept) + 1)
    bars = Bars(kept, close, close, close, close, np.ones(len(kept)), "B", "1d", "test")
    monkeypatch.setattr(data, "load_bars", lambda req: bars)
    spec = {"ticker": "B", "start": "2021-01-04", "end": "2021-01-24", "interval": "1d", "source": "sample"}
    warnings: list[str] = []
    got = scoring.benchmark_close(spec, days, warnings)
    assert got.tolist() == [1, 2, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert len(warnings) == 1 and "no bar at 3 of the run's 20 bars" in warnings[0]
    assert scoring.benchmark_close(spec, days[8:], warnings := []).tolist() == close[5:].tolist() and warnings == []
    with pytest.raises(DataError, match="benchmark B has no bar at or before the run's first bar"):
        scoring.benchmark_close(spec, days - np.timedelta64(1, "D"), [])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 0.0, -0.01, 0.02, -0.03]) | st.floats(-0.2, 0.2), min_size=1,
                       max_size=300),
       guess=st.sampled_from([float("nan"), -1.0, -0.02, 0.0, 0.05, float("inf")]))
def test_series_stats_quantile_and_tail_are_numpys_whatever_the_threshold(values, guess):
    """``kernels.series_stats`` (pure Python and numba): var_95 is ``np.quantile(r, 0.05)`` bit for
    bit (ties, zeros, short series), the tail is ``r[r <= var]``, for any threshold guess left by
    the previous combo (too low, NaN, or letting every return through)."""
    from quantlab.engine import jit, kernels

    r = np.asarray(values, dtype=np.float64)
    m = len(r)
    want = np.quantile(r, 1.0 - kernels.VAR_LEVEL)
    tail = r[r <= want]
    dx = np.linspace(-1.0, 1.0, m)
    for use_jit in (False, True):
        cand = np.full(m + 1, np.nan)
        cand[m] = guess
        _, (_, stats) = jit.call(kernels.series_stats, m, r, m, float(r.sum()), dx, cand, jit.Out(m),
                                 jit.Out(kernels.SWEEP_STATS), 0, jit=use_jit)
        assert stats[kernels.ST_VAR_95] == want, (use_jit, stats[kernels.ST_VAR_95], want)
        assert stats[kernels.ST_TAIL_BARS] == len(tail)
        assert stats[kernels.ST_TAIL_SUM] == pytest.approx(tail.sum(), rel=1e-12, abs=1e-15)
        assert stats[kernels.ST_SUM_XY] == pytest.approx((dx * r).sum(), rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.sampled_from([-0.01, 0.02, -0.03]) | st.floats(-0.2, 0.2), min_size=2, max_size=300),
       guess=st.sampled_from([float("nan"), -0.02, 0.05, float("inf")]),
       hint=st.sampled_from([float("nan"), -float("inf"), float("inf"), -0.1, -0.03, -0.01, 0.0, 0.1])
       | st.floats(-0.2, 0.2))
def test_series_stats_pivot_left_by_the_previous_combo_changes_nothing(values, guess, hint):
    """The pivot ``series_stats`` leaves in ``scratch[m - 1]`` for the next combo (the values
    below it are left out of the quickselect) gives ``np.quantile`` bit for bit whatever it is:
    too high (a rank needed below it), too low, infinite or NaN; and the one it leaves works too."""
    from quantlab.engine import jit, kernels

    r = np.asarray(values, dtype=np.float64)
    m = len(r)
    want = np.quantile(r, 1.0 - kernels.VAR_LEVEL)
    tail = r[r <= want]
    for fn, arr in ((kernels.series_stats, list), (jit.jitted(kernels.series_stats), np.asarray)):
        cand = arr([np.nan] * m + [guess])
        scratch = arr([hint] * m)
        stats = arr([0.0] * kernels.SWEEP_STATS)
        for _ in range(2):  # the second time with the pivot (and threshold) the first left
            fn(arr(r.tolist()), m, float(r.sum()), arr([0.0] * m), cand, scratch, stats, 0)
            assert stats[kernels.ST_VAR_95] == want, (fn, stats[kernels.ST_VAR_95], want)
            assert stats[kernels.ST_TAIL_BARS] == len(tail)
            assert stats[kernels.ST_TAIL_SUM] == pytest.approx(tail.sum(), rel=1e-12, abs=1e-15)
