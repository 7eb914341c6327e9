"""The columnar grid board (commands/sweep/board.py) gives exactly what the row-by-row code gives:
the same ranking (undefined last, ties in input order) and the same leaderboard.csv bytes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from quantlab.commands.sweep import board as sb
from quantlab.commands.sweep.publish import leaderboard_csv
from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES as ROBUST
from quantlab.commands.sweep.results import rank_rows
from quantlab.metric_registry import grid_metric_names, integer_names

INTS = set(integer_names())
value = st.one_of(st.none(), st.sampled_from([0.0, 1.5, -2.25, 1e-12, 3.0]),
                  st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
param = st.one_of(st.none(), st.integers(-5, 500), st.floats(-10, 10, allow_nan=False), st.booleans(),
                  st.sampled_from(["a", "b,c"]))


@st.composite
def boards(draw):
    n = draw(st.integers(0, 25))
    trail = ROBUST if draw(st.booleans()) else ()
    names = grid_metric_names() + trail
    cols = {}
    for name in names:
        vals = draw(st.lists(value, min_size=n, max_size=n))
        cols[name] = np.array([math.nan if v is None else (float(round(v)) if name in INTS else v) for v in vals])
    combos = [{"fast": draw(param), "slow": draw(param)} for _ in range(n)]
    labels = draw(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y,z", "lbl"])), min_size=n, max_size=n))
    sort_by = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    ascending = draw(st.lists(st.booleans(), min_size=len(sort_by), max_size=len(sort_by)))
    return cols, combos, labels, trail, sort_by, ascending


def _rows(cols, combos, labels, trail):
    rows = []
    for i in range(len(combos)):
        metrics = {}
        for name in grid_metric_names() + trail:
            v = float(cols[name][i])
            metrics[name] = None if math.isnan(v) else (int(v) if name in INTS else v)
        rows.append({"index": i, "label": labels[i], "params": combos[i], "metrics": metrics,
                     "combo_key": f"k{i:04d}"})
    return rows


@settings(max_examples=150, deadline=None)
@given(boards())
def test_rank_order_and_csv_match_the_row_code(board):
    cols, combos, labels, trail, sort_by, ascending = board
    ranked = rank_rows(_rows(cols, combos, labels, trail), sort_by, ascending)
    order = sb.rank_order(cols, sort_by, ascending)
    assert [r["index"] for r in ranked] == order.tolist()
    keys = [f"k{i:04d}" for i in range(len(combos))]
    assert sb.leaderboard_csv_columns(order, labels, combos, keys, cols, trail, ["fast", "slow"]) == \
        leaderboard_csv(ranked, ["fast", "slow"])
    top = [sb._row(int(i), r + 1, labels, combos, keys, cols, trail) for r, i in enumerate(order.tolist())]
    assert top == ranked
