"""Equity charts drawn with Pillow.

Pillow imports in ~20 ms where matplotlib takes ~400 ms, and a single ``run`` has a budget of a
few hundred milliseconds beyond Snakemake's own start-up; the chart is simple enough (two lines,
a drawdown area, labelled axes) to draw directly.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

W, H = 960, 600
MARGIN_L, MARGIN_R, MARGIN_T = 80, 20, 40
TOP_H, GAP, BOTTOM_H = 340, 40, 140
BG, FG, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
STRATEGY, BENCH, DD = (31, 119, 180), (255, 127, 14), (214, 39, 40)


def _scale(values: np.ndarray, lo: float, hi: float, top: int, height: int) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return top + height - (values - lo) / span * height


def _xs(n: int, left: int = MARGIN_L, right: int = W - MARGIN_R) -> np.ndarray:
    return left + (np.arange(n) / max(n - 1, 1)) * (right - left)


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> list[tuple[float, float]]:
    if len(x) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).astype(int)
        x, y = x[idx], y[idx]
    return list(zip(x.tolist(), y.tolist()))


def _axis(draw, top: int, height: int, lo: float, hi: float, fmt: str, left: int = MARGIN_L,
          right: int = W - MARGIN_R) -> None:
    """Grid lines with value labels at 0/25/50/75/100% of [lo, hi], and the panel's frame."""
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + height - frac * height
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((4, y - 6), fmt.format(lo + frac * (hi - lo)), fill=FG)
    draw.rectangle([left, top, right, top + height], outline=FG)


def equity_png(timestamps: Sequence[str], equity: np.ndarray, benchmark: np.ndarray, title: str,
               drawdown: np.ndarray | None = None) -> bytes:
    """Equity vs buy and hold (top) and the strategy's drawdown (bottom), as PNG bytes."""
    from PIL import Image, ImageDraw

    equity = np.asarray(equity, dtype=float)
    benchmark = np.asarray(benchmark, dtype=float)
    img = Image.new("P", (W, H), 0)  # palette image: a third of the bytes to compress
    img.putpalette([*BG, 0, 0, 0])
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN_L, 12), title[:120], fill=FG)
    n = len(equity)
    if n == 0:
        draw.text((MARGIN_L, H // 2), "no bars", fill=FG)
    else:
        xs = _xs(n)
        lo = float(min(equity.min(), benchmark.min()))
        hi = float(max(equity.max(), benchmark.max()))
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
        _axis(draw, MARGIN_T, TOP_H, lo, hi, "{:,.0f}")
        draw.line(_downsample(xs, _scale(benchmark, lo, hi, MARGIN_T, TOP_H)), fill=BENCH, width=2)
        draw.line(_downsample(xs, _scale(equity, lo, hi, MARGIN_T, TOP_H)), fill=STRATEGY, width=2)
        draw.text((W - 260, MARGIN_T + 8), "strategy", fill=STRATEGY)
        draw.text((W - 160, MARGIN_T + 8), "buy and hold", fill=BENCH)
        if drawdown is None:
            peak = np.maximum.accumulate(equity)
            dd = np.where(peak > 0, equity / peak - 1.0, 0.0)
        else:
            dd = np.asarray(drawdown, dtype=float)
        dd_lo = float(min(dd.min(), -1e-6))
        top2 = MARGIN_T + TOP_H + GAP
        _axis(draw, top2, BOTTOM_H, dd_lo, 0.0, "{:.0%}")
        ys = _scale(dd, dd_lo, 0.0, top2, BOTTOM_H)
        pts = _downsample(xs, ys)
        draw.polygon([(pts[0][0], top2)] + pts + [(pts[-1][0], top2)], fill=(246, 200, 200), outline=DD)
        draw.text((MARGIN_L + 6, top2 + 4), "drawdown", fill=DD)
        bottom = top2 + BOTTOM_H + 6
        draw.text((MARGIN_L, bottom), str(timestamps[0])[:10], fill=FG)
        draw.text((W - MARGIN_R - 70, bottom), str(timestamps[-1])[:10], fill=FG)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # fast encode; the chart compresses well anyway
    return buf.getvalue()
