"""Sweep heatmap: the objective over the two most influential grid parameters (Pillow)."""

from __future__ import annotations

import io
import math
from collections import defaultdict

CELL_W, CELL_H, LEFT, TOP, RIGHT, BOTTOM = 70, 34, 110, 60, 30, 60


def _groups(rows: list[dict], key: str, metric: str) -> dict:
    groups: dict = defaultdict(list)
    for r in rows:
        v = r["metrics"].get(metric)
        if v is not None and math.isfinite(v):
            groups[r["params"].get(key)].append(v)
    return groups


def most_influential(rows: list[dict], grid_keys: list[str], metric: str) -> list[str]:
    """Up to two grid keys whose values move the metric most (variance of the group means)."""
    scored = []
    for key in grid_keys:
        groups = _groups(rows, key, metric)
        if len(groups) < 2:
            continue
        means = [sum(v) / len(v) for v in groups.values()]
        mu = sum(means) / len(means)
        scored.append((sum((m - mu) ** 2 for m in means) / len(means), key))
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


def heatmap_title(title: str, metric: str, x_key: str, y_key: str | None) -> str:
    """``<title> · mean <metric> by <x> (x) and <y> (y)``: the parts kept apart by a separator."""
    return f"{title} · mean {metric} by {x_key} (x)" + (f" and {y_key} (y)" if y_key else "")


def heatmap_png(rows: list[dict], axes: list[str], metric: str, title: str) -> bytes:
    """Mean of ``metric`` per (x, y) cell; one row when there is a single axis."""
    from PIL import Image, ImageDraw

    from quantlab.artifacts.plots import font, spaced_length, spaced_text

    x_key = axes[0]
    y_key = axes[1] if len(axes) > 1 else None
    xs = sorted({r["params"].get(x_key) for r in rows}, key=lambda v: (str(type(v)), v))
    ys = sorted({r["params"].get(y_key) for r in rows}, key=lambda v: (str(type(v)), v)) if y_key else [None]
    cells: dict = defaultdict(list)
    for r in rows:
        v = r["metrics"].get(metric)
        if v is not None and math.isfinite(v):
            cells[(r["params"].get(x_key), r["params"].get(y_key) if y_key else None)].append(v)
    means = {k: sum(v) / len(v) for k, v in cells.items()}
    lo = min(means.values(), default=0.0)
    hi = max(means.values(), default=1.0)
    width = LEFT + CELL_W * len(xs) + RIGHT
    height = TOP + CELL_H * len(ys) + BOTTOM
    heading = heatmap_title(title, metric, x_key, y_key)
    img = Image.new("RGB", (int(max(width, 620, spaced_length(heading, 14) + 24)), height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    spaced_text(draw, (10, 12), heading, 14, (30, 30, 30))
    label = font(12)
    for j, y in enumerate(ys):
        top = TOP + j * CELL_H
        draw.text((10, top + CELL_H // 2 - 7), f"{y_key}={_label(y)}" if y_key else "", fill=(30, 30, 30), font=label)
        for i, x in enumerate(xs):
            left = LEFT + i * CELL_W
            value = means.get((x, y))
            fill = (235, 235, 235) if value is None else _color((value - lo) / (hi - lo) if hi > lo else 0.5)
            draw.rectangle([left, top, left + CELL_W - 2, top + CELL_H - 2], fill=fill)
            draw.text((left + 6, top + CELL_H // 2 - 7), "n/a" if value is None else f"{value:.3f}",
                      fill=(20, 20, 20), font=label)
    for i, x in enumerate(xs):
        draw.text((LEFT + i * CELL_W + 6, TOP + len(ys) * CELL_H + 6), _label(x), fill=(30, 30, 30), font=label)
    spaced_text(draw, (LEFT, TOP + len(ys) * CELL_H + 26), f"{x_key} (x axis; low {lo:.3f} red, high {hi:.3f} green)",
                12, (30, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
