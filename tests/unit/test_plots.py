"""The static PNGs: dated ticks spread along the time axis, trade markers from the position
column, a price panel when the close is given, heatmap titles whose parts stay apart."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from quantlab.artifacts.heatmap import heatmap_png, heatmap_title
from quantlab.artifacts.plots import ENTRY, EXIT, date_ticks, equity_png, spaced_length, trade_marks


@given(st.integers(1, 3000))
def test_date_ticks_span_the_series_in_order(n):
    stamps = (np.datetime64("2010-01-01") + np.arange(n)).astype(str)
    ticks = date_ticks(stamps)
    idx = [i for i, _ in ticks]
    assert idx[0] == 0 and idx[-1] == n - 1 and idx == sorted(set(idx))
    assert len(ticks) == min(6, n)
    assert all(label == stamps[i][:10] for i, label in ticks)


@given(st.lists(st.sampled_from([-1, 0, 1]), max_size=60))
def test_trade_marks_match_position_changes(pos):
    entries, exits = trade_marks(np.array(pos, dtype=np.int8))
    prev = [0] + pos[:-1]
    assert list(entries) == [i for i, (a, b) in enumerate(zip(prev, pos)) if b != 0 and b != a]
    assert list(exits) == [i for i, (a, b) in enumerate(zip(prev, pos)) if a != 0 and b != a]


def test_equity_png_has_a_price_panel_with_markers():
    n = 300
    close = 100 * np.cumprod(1 + np.random.default_rng(1).normal(0, 0.01, n))
    position = np.zeros(n, dtype=np.int8)
    position[50:80] = 1
    position[150:200] = 1
    equity = 10_000 * close / close[0]
    stamps = (np.datetime64("2017-01-02") + np.arange(n)).astype(str)
    plain = Image.open(io.BytesIO(equity_png(stamps, equity, equity, "t")))
    full = Image.open(io.BytesIO(equity_png(stamps, equity, equity, "t", close=close, position=position)))
    assert full.size[0] == plain.size[0] == 960 and full.size[1] > plain.size[1] + 150
    colours = {c: k for k, c in full.convert("RGB").getcolors(1 << 16)}
    assert colours.get(ENTRY, 0) > 50 and colours.get(EXIT, 0) > 50  # the triangles


def test_heatmap_title_keeps_its_parts_apart():
    title = heatmap_title("sma_crossover", "sharpe_simple", "fast", "slow")
    assert title == "sma_crossover · mean sharpe_simple by fast (x) and slow (y)"
    assert spaced_length("a b", 14) - spaced_length("ab", 14) >= 4  # a visible gap per space
    rows = [{"params": {"fast": f, "slow": s}, "metrics": {"sharpe_simple": f - s / 10}}
            for f in (5, 10, 20) for s in (50, 100)]
    img = Image.open(io.BytesIO(heatmap_png(rows, ["fast", "slow"], "sharpe_simple", "a_rather_long_strategy_name")))
    assert img.size[0] >= spaced_length(heatmap_title("a_rather_long_strategy_name", "sharpe_simple", "fast",
                                                      "slow"), 14)  # the title is not cut off
