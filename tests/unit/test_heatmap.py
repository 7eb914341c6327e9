"""The sweep heatmap: bounded size whatever the grid, each cell the mean of its combinations."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st
from PIL import Image

from quantlab.artifacts import heatmap as hm


def _rows(nx: int, ny: int, value=lambda f, s: (f * 7 + s * 3) % 11 / 10.0):
    return [{"params": {"fast": f, "slow": 1000 + s}, "metrics": {"m": value(f, s)}}
            for f in range(nx) for s in range(ny)]


def _image(rows, axes=("fast", "slow")):
    return Image.open(io.BytesIO(hm.heatmap_png(rows, list(axes), "m", "t"))).convert("RGB")


def _pixel_of_cell(img, nx: int, ny: int, i: int, j: int):
    cw = max(2, min(hm.CELL_W, hm.MAX_PLOT[0] // nx))
    ch = max(2, min(hm.CELL_H, hm.MAX_PLOT[1] // ny))
    return img.getpixel((hm.LEFT + i * cw + 1, hm.TOP + j * ch + 1))


@settings(max_examples=12, deadline=None)
@given(nx=st.integers(1, 400), ny=st.integers(1, 400))
def test_size_is_bounded_whatever_the_grid(nx, ny):
    if nx * ny > 30_000:
        ny = max(1, 30_000 // nx)
    img = _image(_rows(nx, ny))
    assert img.size[0] <= max(620, hm.LEFT + hm.MAX_PLOT[0] + hm.RIGHT)
    assert img.size[1] <= hm.TOP + hm.MAX_PLOT[1] + hm.BOTTOM


def test_small_grid_cells_are_the_values():
    rows = _rows(3, 4)
    img = _image(rows)
    values = [r["metrics"]["m"] for r in rows]
    lo, hi = min(values), max(values)
    for r in rows:
        i, j = r["params"]["fast"], r["params"]["slow"] - 1000
        assert _pixel_of_cell(img, 3, 4, i, j) == hm._color((r["metrics"]["m"] - lo) / (hi - lo))


def test_large_axis_is_grouped_into_bounded_cells_holding_the_group_mean():
    nx = 3 * hm.MAX_BINS  # three values per group along x
    rows = _rows(nx, 2, value=lambda f, s: float(f + s))
    img = _image(rows)
    # group 0 holds fast 0, 1, 2; the mean over them (and slow 0) is 1.0
    values = [r["metrics"]["m"] for r in rows]
    group_means = [sum(range(3 * b, 3 * b + 3)) / 3 + s for b in range(hm.MAX_BINS) for s in (0, 1)]
    lo, hi = min(group_means), max(group_means)
    assert min(values) < lo  # grouping averaged the extremes away
    assert _pixel_of_cell(img, hm.MAX_BINS, 2, 0, 0) == hm._color((1.0 - lo) / (hi - lo))
    assert img.size[0] <= hm.LEFT + hm.MAX_PLOT[0] + hm.RIGHT


def test_undefined_values_are_grey_and_influence_ignores_them():
    rows = _rows(2, 2)
    rows[0]["metrics"]["m"] = None
    img = _image(rows)
    assert _pixel_of_cell(img, 2, 2, 0, 0) == (235, 235, 235)
    assert set(hm.most_influential(rows, ["fast", "slow"], "m")) == {"fast", "slow"}
