"""Robustness pictures of a sweep (Pillow, like the heatmap): the PBO logit histogram and the
in-sample vs out-of-sample Sharpe scatter of the CSCV splits (docs/robustness.md, "Pictures")."""

from __future__ import annotations

import io
import math

from quantlab.artifacts.plots import BG, DD, FG, GRID, STRATEGY

W, H = 760, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 50, 60


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _canvas(title: str):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H), BG)
    draw = ImageDraw.Draw(img)
    draw.text((LEFT, 14), title[:110], fill=FG)
    return img, draw


def _frame(draw, x_lo: float, x_hi: float, y_lo: float, y_hi: float, x_label: str, y_label: str,
           y_fmt: str = "{:.2f}") -> tuple:
    """Axes with five ticks each; returns the data -> pixel mappings (fx, fy)."""
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM
    sx = (x1 - x0) / ((x_hi - x_lo) or 1.0)
    sy = (y1 - y0) / ((y_hi - y_lo) or 1.0)

    def fx(v):
        return x0 + (v - x_lo) * sx

    def fy(v):
        return y1 - (v - y_lo) * sy

    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        xv, yv = x_lo + frac * (x_hi - x_lo), y_lo + frac * (y_hi - y_lo)
        draw.line([(fx(xv), y0), (fx(xv), y1)], fill=GRID)
        draw.line([(x0, fy(yv)), (x1, fy(yv))], fill=GRID)
        draw.text((fx(xv) - 14, y1 + 6), f"{xv:.2f}", fill=FG)
        draw.text((4, fy(yv) - 6), y_fmt.format(yv), fill=FG)
    draw.rectangle([x0, y0, x1, y1], outline=FG)
    draw.text(((x0 + x1) // 2 - 60, H - 24), x_label, fill=FG)
    draw.text((4, TOP - 18), y_label, fill=FG)
    return fx, fy


def pbo_logit_png(histogram: dict, pbo: float | None, title: str) -> bytes:
    """Bars of the CSCV logit histogram (``edges``, ``counts``); bars at or left of 0 (the IS
    winner fell to the bottom half OOS: what PBO counts) in red, the others in blue."""
    img, draw = _canvas(f"{title}: PBO {pbo:.3f}" if pbo is not None else f"{title}: PBO n/a")
    edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
    if not counts:
        draw.text((LEFT, H // 2), "no CSCV splits", fill=FG)
        return _png(img)
    top = max(max(counts), 1)
    fx, fy = _frame(draw, edges[0], edges[-1], 0.0, top * 1.05, "logit of the IS winner's OOS rank",
                    "splits", "{:.0f}")
    for lo, hi, c in zip(edges[:-1], edges[1:], counts):
        if c:
            draw.rectangle([fx(lo) + 1, fy(c), fx(hi) - 1, fy(0.0)], fill=DD if hi <= 0 else STRATEGY)
    draw.line([(fx(0.0), TOP), (fx(0.0), H - BOTTOM)], fill=FG, width=2)
    return _png(img)


def is_oos_scatter_png(is_sharpe: list, oos_sharpe: list, degradation: dict, title: str) -> bytes:
    """One dot per CSCV split: the selected combination's IS Sharpe (x) and OOS Sharpe (y),
    annualised, with the least-squares degradation line and the zero lines."""
    img, draw = _canvas(title)
    pts = [(x, y) for x, y in zip(is_sharpe, oos_sharpe)
           if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if not pts:
        draw.text((LEFT, H // 2), "no CSCV splits", fill=FG)
        return _png(img)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x_lo, x_hi = min(min(xs), 0.0), max(max(xs), 0.0)
    y_lo, y_hi = min(min(ys), 0.0), max(max(ys), 0.0)
    pad_x, pad_y = (x_hi - x_lo) * 0.05 or 0.1, (y_hi - y_lo) * 0.05 or 0.1
    x_lo, x_hi, y_lo, y_hi = x_lo - pad_x, x_hi + pad_x, y_lo - pad_y, y_hi + pad_y
    fx, fy = _frame(draw, x_lo, x_hi, y_lo, y_hi, "in-sample Sharpe (annualised)", "out-of-sample Sharpe")
    draw.line([(fx(0.0), TOP), (fx(0.0), H - BOTTOM)], fill=FG)
    draw.line([(LEFT, fy(0.0)), (W - RIGHT, fy(0.0))], fill=FG)
    for x, y in pts:
        draw.ellipse([fx(x) - 2, fy(y) - 2, fx(x) + 2, fy(y) + 2], fill=DD if y < 0 else STRATEGY)
    slope, intercept = degradation.get("slope"), degradation.get("intercept")
    if slope is not None and intercept is not None:
        ends = _clip_line(slope, intercept, x_lo, x_hi, y_lo, y_hi)
        if ends:
            draw.line([(fx(x), fy(y)) for x, y in ends], fill=FG, width=2)
        draw.text((W - RIGHT - 230, TOP + 6), f"OOS = {slope:.2f} x IS + {intercept:.2f}", fill=FG)
    draw.text((W - RIGHT - 230, TOP + 20), "red: the IS winner lost out of sample", fill=DD)
    return _png(img)


def _clip_line(slope: float, intercept: float, x_lo: float, x_hi: float, y_lo: float, y_hi: float):
    """The part of y = slope * x + intercept inside the box, as two points (None if outside)."""
    xs = [x_lo, x_hi]
    if slope:
        xs += [(y_lo - intercept) / slope, (y_hi - intercept) / slope]
    inside = sorted(x for x in xs if x_lo <= x <= x_hi and y_lo - 1e-12 <= slope * x + intercept <= y_hi + 1e-12)
    if len(inside) < 2:
        return None
    return [(inside[0], slope * inside[0] + intercept), (inside[-1], slope * inside[-1] + intercept)]
