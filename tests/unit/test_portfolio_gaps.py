"""calendar_gaps: weekends and holidays are not gaps; a hole where no session trades is."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.commands.portfolio.sessions import calendar_gaps


def _business_days(start: str, n: int) -> np.ndarray:
    days = np.arange(np.datetime64(start), np.datetime64(start) + n * 2, dtype="datetime64[D]")
    return days[np.is_busday(days)][:n].astype("datetime64[ns]")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.integers(30, 400), st.integers(0, 5))
def test_business_day_calendars_with_holidays_have_no_gap(offset, n, holidays):
    cal = _business_days(str(np.datetime64("2000-01-03") + offset), n)
    # drop a few isolated days (holidays, long weekends)
    keep = np.ones(len(cal), dtype=bool)
    keep[np.linspace(5, len(cal) - 5, holidays).astype(int)] = False
    assert calendar_gaps(cal[keep]) == []


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.integers(40, 300), st.integers(10, 400), st.floats(0.2, 0.8))
def test_a_hole_longer_than_a_week_is_one_gap(offset, n, hole_days, where):
    cal = _business_days(str(np.datetime64("2000-01-03") + offset), n)
    cut = int(len(cal) * where)
    shifted = np.concatenate([cal[:cut], cal[cut:] + np.timedelta64(hole_days, "D")])
    gaps = calendar_gaps(shifted)
    assert len(gaps) == 1
    step = (shifted[cut] - shifted[cut - 1]) / np.timedelta64(1, "D")
    assert gaps[0]["days"] == round(float(step), 2) and step > 7


def test_short_calendars_and_hourly_nights_are_not_gaps():
    assert calendar_gaps(_business_days("2020-01-06", 2)) == []
    hours = np.concatenate([np.datetime64("2020-01-06T14") + np.arange(7) * np.timedelta64(1, "h")
                            + d * np.timedelta64(1, "D") for d in (0, 1, 2, 3, 4, 7, 8)]).astype("datetime64[ns]")
    assert calendar_gaps(hours) == []
