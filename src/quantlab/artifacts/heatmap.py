"""Sweep heatmap: the objective over the two most influential grid parameters (Pillow + numpy).

Size and text are bounded whatever the grid: an axis with more than ``MAX_BINS`` values is cut
into ``MAX_BINS`` contiguous groups of its sorted values (a cell is then the mean over every
combination in its group, labelled ``first..last``); cells shrink to fit ``MAX_PLOT`` pixels;
per-cell value labels are drawn only while cells are wide enough to hold them, and at most
``MAX_TICKS`` axis labels per axis. A 100,000-combination grid draws as fast as a 200-one.
"""

from __future__ import annotations

import io
import math

CELL_W, CELL_H, LEFT, TOP, RIGHT, BOTTOM = 70, 34, 110, 60, 30, 60
MAX_BINS = 60                  # cells per axis at most (values beyond are grouped)
MAX_PLOT = (1200, 720)         # plot area in pixels at most (width, height)
MAX_TICKS = 24                 # axis labels per axis at most
MIN_LABELLED_CELL_W = 60       # narrower cells carry no value label


def _metric_values(rows: list[dict], metric: str):
    import numpy as np

    return np.array([_num(r["metrics"].get(metric)) for r in rows], dtype=float)


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _order(values) -> list:
    return sorted(set(values), key=lambda v: (str(type(v)), v))


def _codes(combos: list[dict], key: str | None):
    """(sorted distinct values of ``key``, each combination's index into them)."""
    import numpy as np

    raw = [c.get(key) if key else None for c in combos]
    distinct = _order(raw)
    where = {v: i for i, v in enumerate(distinct)}
    return distinct, np.fromiter((where[v] for v in raw), dtype=np.int64, count=len(raw))


def _group_means(codes, vals, ok, n: int):
    import numpy as np

    sums = np.bincount(codes[ok], weights=vals[ok], minlength=n)
    counts = np.bincount(codes[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def most_influential(rows: list[dict], grid_keys: list[str], metric: str) -> list[str]:
    """Up to two grid keys whose values move the metric most (variance of the group means)."""
    return influential_columns([r["params"] for r in rows], _metric_values(rows, metric), grid_keys)


def influential_columns(combos: list[dict], values, grid_keys: list[str]) -> list[str]:
    """:func:`most_influential` of combinations and their metric values (NaN = undefined)."""
    import numpy as np

    vals = np.asarray(values, dtype=float)
    ok = np.isfinite(vals)
    scored = []
    for key in grid_keys:
        distinct, codes = _codes(combos, key)
        means = _group_means(codes, vals, ok, len(distinct))
        means = means[np.isfinite(means)]
        if len(means) < 2:
            continue
        scored.append((float(np.mean((means - means.mean()) ** 2)), key))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [k for _, k in scored[:2]]


def _color(t: float) -> tuple[int, int, int]:
    """Red (low) -> white -> green (high)."""
    t = min(max(t, 0.0), 1.0)
    if t < 0.5:
        u = t / 0.5
        return (214, int(39 + (255 - 39) * u), int(40 + (255 - 40) * u))
    u = (t - 0.5) / 0.5
    return (int(255 - (255 - 44) * u), int(255 - (255 - 160) * u), int(255 - (255 - 44) * u))


def _label(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _bins(distinct: list) -> tuple[list[str], list[int]]:
    """(label per bin, bin of each distinct value): one bin per value up to ``MAX_BINS``,
    else ``MAX_BINS`` contiguous groups."""
    n = len(distinct)
    if n <= MAX_BINS:
        return [_label(v) for v in distinct], list(range(n))
    of = [i * MAX_BINS // n for i in range(n)]
    labels = []
    for b in range(MAX_BINS):
        members = [distinct[i] for i in range(n) if of[i] == b]
        labels.append(f"{_label(members[0])}..{_label(members[-1])}" if len(members) > 1 else _label(members[0]))
    return labels, of


def heatmap_title(title: str, metric: str, x_key: str, y_key: str | None) -> str:
    """``<title> · mean <metric> by <x> (x) and <y> (y)``: the parts kept apart by a separator."""
    return f"{title} · mean {metric} by {x_key} (x)" + (f" and {y_key} (y)" if y_key else "")


def heatmap_png(rows: list[dict], axes: list[str], metric: str, title: str) -> bytes:
    """Mean of ``metric`` per (x, y) cell; one row when there is a single axis."""
    return heatmap_columns([r["params"] for r in rows], _metric_values(rows, metric), axes, metric, title)


def placeholder_png() -> bytes:
    """A 1x1 white PNG: the store's stand-in when a grid has no varying parameter to draw."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (255, 255, 255)).save(buf, format="PNG")
    return buf.getvalue()


def heatmap_columns(combos: list[dict], values, axes: list[str], metric: str, title: str) -> bytes:
    """:func:`heatmap_png` of combinations and their metric values (NaN = undefined)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from quantlab.artifacts.plots import font, spaced_length, spaced_text

    x_key = axes[0]
    y_key = axes[1] if len(axes) > 1 else None
    vals = np.asarray(values, dtype=float)
    ok = np.isfinite(vals)
    xd, xc = _codes(combos, x_key)
    yd, yc = _codes(combos, y_key)
    x_labels, x_of = _bins(xd)
    y_labels, y_of = _bins(yd)
    nx, ny = len(x_labels), len(y_labels)
    cell = np.asarray(y_of, dtype=np.int64)[yc] * nx + np.asarray(x_of, dtype=np.int64)[xc]
    means = _group_means(cell, vals, ok, nx * ny).reshape(ny, nx)
    finite = means[np.isfinite(means)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    cw = max(2, min(CELL_W, MAX_PLOT[0] // nx))
    ch = max(2, min(CELL_H, MAX_PLOT[1] // ny))
    width, height = LEFT + cw * nx + RIGHT, TOP + ch * ny + BOTTOM
    grouped = " (values grouped)" if len(xd) > nx or len(yd) > ny else ""
    heading = heatmap_title(title, metric, x_key, y_key) + grouped
    img = Image.new("RGB", (int(max(width, 620, spaced_length(heading, 14) + 24)), height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    spaced_text(draw, (10, 12), heading, 14, (30, 30, 30))
    label = font(12)
    # the cells as one array: each colour computed once per cell, drawn with a 2 px gap when they are big
    rgb = np.full((ny, nx, 3), 235, dtype=np.uint8)
    span = hi - lo
    for (j, i), value in np.ndenumerate(means):
        if math.isfinite(value):
            rgb[j, i] = _color((value - lo) / span if span > 0 else 0.5)
    block = np.repeat(np.repeat(rgb, ch, axis=0), cw, axis=1)
    if cw >= 20 and ch >= 10:
        gap = np.ones((ny * ch, nx * cw), dtype=bool)
        gap[:, [i * cw + k for i in range(nx) for k in (cw - 2, cw - 1)]] = False
        gap[[j * ch + k for j in range(ny) for k in (ch - 2, ch - 1)], :] = False
        block[~gap] = 255
    img.paste(Image.fromarray(block, "RGB"), (LEFT, TOP))
    y_step = max(1, math.ceil(ny / MAX_TICKS))
    for j in range(0, ny, y_step):
        text = f"{y_key}={y_labels[j]}" if y_key else ""
        draw.text((10, TOP + j * ch + ch // 2 - 7), text, fill=(30, 30, 30), font=label)
    if cw >= MIN_LABELLED_CELL_W:
        for (j, i), value in np.ndenumerate(means):
            draw.text((LEFT + i * cw + 6, TOP + j * ch + ch // 2 - 7),
                      "n/a" if not math.isfinite(value) else f"{value:.3f}", fill=(20, 20, 20), font=label)
    x_step = max(1, math.ceil(nx / MAX_TICKS))
    for i in range(0, nx, x_step):
        draw.text((LEFT + i * cw + 2, TOP + ny * ch + 6), x_labels[i], fill=(30, 30, 30), font=label)
    spaced_text(draw, (LEFT, TOP + ny * ch + 26), f"{x_key} (x axis; low {lo:.3f} red, high {hi:.3f} green)",
                12, (30, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
