"""metric_registry.evaluate's fast paths give the very bits of the plain per-element rules:
CAGR through ``map(math.log)`` / ``map(math.expm1)`` equals :func:`growth_rate` run by run, and
the one-pass finiteness check turns every non-finite value (and nothing else) into NaN."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab import metric_registry
from quantlab.engine import kernels
from quantlab.metric_registry import Metric, RunStats, growth_rate

RATIOS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(min_value=1e-300, max_value=1e300),
                   st.floats(min_value=0.5, max_value=2.0),
                   st.sampled_from([0.0, -0.0, 1.0, 5e-324, 1.7976931348623157e308]))


def bits(a) -> list:
    """Each value's bit pattern, NaNs as one token (a NaN's payload is not a result)."""
    return ["nan" if math.isnan(x) else np.float64(x).view(np.uint64).item() for x in np.asarray(a).tolist()]


def stats_of(final_equity, *, bars=252, ppy=252.0, initial_cash=10_000.0) -> RunStats:
    k = len(final_equity)
    grid = np.zeros((k, kernels.SWEEP_STATS))
    grid[:, kernels.ST_FINAL_EQUITY] = final_equity
    return RunStats.from_kernel(grid, bars=bars, periods_per_year=ppy, initial_cash=initial_cash, benchmark=0.0)


@settings(max_examples=300, deadline=None)
@given(ratios=st.lists(RATIOS, min_size=1, max_size=40), bars=st.integers(1, 200_000),
       ppy=st.sampled_from([1.0, 12.0, 52.0, 252.0, 365.0, 8760.0, 98_280.0, 1e-6]),
       cash=st.sampled_from([1.0, 10_000.0, 3.3e5]))
def test_cagr_is_growth_rate_bit_for_bit(ratios, bars, ppy, cash):
    with np.errstate(all="ignore"):
        equity = np.array(ratios) * cash
        s = stats_of(equity, bars=bars, ppy=ppy, initial_cash=cash)
        got = metric_registry.evaluate(s)["cagr"]
    years = bars / ppy
    want = [math.nan if (g := growth_rate(r, years)) is None else g for r in (equity / cash).tolist()]
    want = [x if math.isfinite(x) else math.nan for x in want]
    assert bits(got) == bits(want)


def test_cagr_past_float_range_is_undefined_where_it_overflows_only():
    s = stats_of([1e300, 2e4, 0.0, -5.0], bars=1, ppy=1000.0)  # a 1e296x growth in 1/1000 year overflows
    got = metric_registry.evaluate(s)["cagr"]
    assert math.isnan(got[0]) and got[2] == -1.0 and got[3] == -1.0
    assert got[1] == growth_rate(2.0, 1 / 1000)


def test_no_years_no_cagr():
    with np.errstate(all="ignore"):  # no bar: no mean either
        s = stats_of([2e4, 5e3], bars=0)
    assert np.isnan(metric_registry.evaluate(s)["cagr"]).all()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                 st.sampled_from([1.7e308, -1.7e308, -0.0, math.inf, -math.inf])),
                       min_size=3, max_size=3))
def test_only_non_finite_values_become_nan(values):
    probe = Metric("probe_values", True, False, lambda s: np.array(values))
    metric_registry.register(probe)
    try:
        got = metric_registry.evaluate(stats_of([1e4, 1e4, 1e4]))["probe_values"]
    finally:
        metric_registry.unregister("probe_values")
    assert bits(got) == bits([x if math.isfinite(x) else math.nan for x in values])


def test_a_finite_sum_overflowing_keeps_every_finite_value():
    probe = Metric("probe_big", True, False, lambda s: np.array([1.7e308, 1.7e308, math.inf]))
    metric_registry.register(probe)
    try:
        got = metric_registry.evaluate(stats_of([1e4, 1e4, 1e4]))["probe_big"]
    finally:
        metric_registry.unregister("probe_big")
    assert got[:2].tolist() == [1.7e308, 1.7e308] and math.isnan(got[2])


def test_formulas_read_numpy_itself_once_a_run_is_scored():
    from quantlab import _lazy

    space = {"np": _lazy.np}
    _lazy.bind(space)
    assert space["np"] is np
    other = {"np": "not numpy"}
    _lazy.bind(other)  # only the stand-in is replaced
    assert other == {"np": "not numpy"}
    stats_of([1e4])
    assert metric_registry.np is np
