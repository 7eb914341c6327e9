"""Equity charts drawn with Pillow.

Pillow imports in ~20 ms where matplotlib takes ~400 ms, and a single ``run`` has a budget of a
few hundred milliseconds beyond Snakemake's own start-up; the chart is simple enough to draw
directly: the price (close) with entry and exit markers when the caller passes the bars' close and
position, equity vs buy and hold, the drawdown, and dated ticks along the shared time axis.
"""

from __future__ import annotations

import functools
import io
from typing import Sequence

import numpy as np

W = 960
MARGIN_L, MARGIN_R, MARGIN_T = 80, 20, 44
PRICE_H, TOP_H, GAP, BOTTOM_H, AXIS_H = 200, 300, 34, 130, 36
BG, FG, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
STRATEGY, BENCH, DD = (31, 119, 180), (255, 127, 14), (214, 39, 40)
PRICE, ENTRY, EXIT = (60, 60, 60), (44, 160, 44), (214, 39, 40)
N_TICKS = 6


@functools.lru_cache(maxsize=None)
def font(size: int = 12):
    """Pillow's bundled TrueType font at ``size`` px (the bitmap default when FreeType is absent)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def warm() -> None:
    """Import what drawing and encoding a chart need, ahead of the first chart: Pillow and the
    image plugins its first ``save`` loads (``Image.preinit``), ~20-60 ms holding the GIL, and
    the fonts. A big run's simulate step calls it on a thread while its files are written
    (commands/run/steps.py), so the plot, which runs beside the score, does not import."""
    import importlib

    from PIL import Image

    for module in ("PIL.ImageDraw", "PIL.PngImagePlugin"):
        importlib.import_module(module)
    Image.preinit()
    for size in (11, 12, 13, 15):
        font(size)


def spaced_length(text: str, size: int) -> float:
    """The width :func:`spaced_text` draws ``text`` at."""
    face = font(size)
    words = text.split(" ")
    return sum(face.getlength(w) for w in words) + max(4.0, size / 3) * (len(words) - 1)


def spaced_text(draw, xy: tuple[float, float], text: str, size: int, fill) -> None:
    """Text whose words are drawn one by one a third of the font size apart: the bundled font's
    own space is ~2 px wide, which glued titles such as "sma_crossover sharpe_simple" together."""
    face = font(size)
    x, y = xy
    for word in text.split(" "):
        if word:
            draw.text((x, y), word, fill=fill, font=face)
            x += draw.textlength(word, font=face)
        x += max(4.0, size / 3)


def _scale(values: np.ndarray, lo: float, hi: float, top: int, height: int) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return top + height - (values - lo) / span * height


def _xs(n: int, left: int = MARGIN_L, right: int = W - MARGIN_R) -> np.ndarray:
    return _xs_at(np.arange(n), n, left, right)


def _xs_at(idx: np.ndarray, n: int, left: int = MARGIN_L, right: int = W - MARGIN_R) -> np.ndarray:
    """``_xs(n)[idx]``, computed for those bars only (the same operations on each element)."""
    return left + (idx / max(n - 1, 1)) * (right - left)


def _sampled(n: int, max_points: int = 2000) -> np.ndarray:
    """The bars a line through ``n`` bars is drawn through: all of them, or ``max_points`` spread evenly."""
    return np.linspace(0, n - 1, max_points).astype(int) if n > max_points else np.arange(n)


def _line_points(values: np.ndarray, lo: float, hi: float, top: int, height: int) -> list[tuple[float, float]]:
    """The points of a panel's line: scaling is per element, so only the sampled bars are scaled
    (a 1M-bar run: 2,000 values instead of 1M, the same points)."""
    idx = _sampled(len(values))
    return list(zip(_xs_at(idx, len(values)).tolist(), _scale(values[idx], lo, hi, top, height).tolist()))


def _axis(draw, top: int, height: int, lo: float, hi: float, fmt: str, left: int = MARGIN_L,
          right: int = W - MARGIN_R) -> None:
    """Grid lines with value labels at 0/25/50/75/100% of [lo, hi], and the panel's frame."""
    small = font(11)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + height - frac * height
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((4, y - 7), fmt.format(lo + frac * (hi - lo)), fill=FG, font=small)
    draw.rectangle([left, top, right, top + height], outline=FG)


def date_ticks(timestamps: Sequence, n_ticks: int = N_TICKS) -> list[tuple[int, str]]:
    """``(bar index, YYYY-MM-DD)`` for up to ``n_ticks`` bars spread evenly over the series (the
    first and the last included); bars are placed by index, so the ticks follow the bars."""
    n = len(timestamps)
    if n == 0:
        return []
    idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n_ticks, n))})
    return [(i, str(timestamps[i])[:10]) for i in idx]


def trade_marks(position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bar indices where a position opens (or flips) and where one closes, from the per-bar
    position column (the bar whose close first holds, or no longer holds, the position)."""
    pos = np.sign(np.asarray(position))  # int8 stays int8: no float copy of a 1M-bar column
    if len(pos) == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    changed = np.flatnonzero(pos[1:] != pos[:-1]) + 1  # bars whose position differs from the bar before
    if pos[0] != 0:  # before the first bar, nothing is held
        changed = np.concatenate([[0], changed])
    entries = changed[pos[changed] != 0]
    exits = changed[changed > 0]
    exits = exits[pos[exits - 1] != 0]  # bar 0 never closes one
    return entries, exits


def _triangle(draw, x: float, y: float, up: bool, colour) -> None:
    s = 6
    pts = [(x, y - s), (x - s, y + s), (x + s, y + s)] if up else [(x, y + s), (x - s, y - s), (x + s, y - s)]
    draw.polygon(pts, fill=colour, outline=FG)


def _price_panel(draw, close, position, top: int) -> None:
    close = np.asarray(close, dtype=float)
    n = len(close)
    lo, hi = float(np.nanmin(close)), float(np.nanmax(close))
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    _axis(draw, top, PRICE_H, lo, hi, "{:,.2f}" if hi < 100 else "{:,.0f}")
    draw.line(_line_points(close, lo, hi, top, PRICE_H), fill=PRICE, width=1)
    label = font(12)
    draw.text((MARGIN_L + 6, top + 4), "price (close)", fill=PRICE, font=label)
    if position is not None:
        entries, exits = trade_marks(position)
        for marks, up, colour in ((entries[:500], True, ENTRY), (exits[:500], False, EXIT)):
            xs, ys = _xs_at(marks, n), _scale(close[marks], lo, hi, top, PRICE_H)  # only the marked bars
            for x, y in zip(xs, ys):
                _triangle(draw, x, y + 9 if up else y - 9, up, colour)
        _triangle(draw, MARGIN_L + 118, top + 11, True, ENTRY)
        draw.text((MARGIN_L + 128, top + 4), f"entry ({len(entries)})", fill=ENTRY, font=label)
        _triangle(draw, MARGIN_L + 218, top + 11, False, EXIT)
        draw.text((MARGIN_L + 228, top + 4), f"exit ({len(exits)})", fill=EXIT, font=label)


def equity_png(timestamps: Sequence, equity: np.ndarray, benchmark: np.ndarray, title: str,
               drawdown: np.ndarray | None = None, *, close: np.ndarray | None = None,
               position: np.ndarray | None = None) -> bytes:
    """Price with entry/exit markers (when ``close`` is given), equity vs buy and hold, and the
    strategy's drawdown, as PNG bytes. ``timestamps``: one per bar (dated ticks along the axis), or
    just the first and the last."""
    from PIL import Image, ImageDraw

    equity = np.asarray(equity, dtype=float)
    benchmark = np.asarray(benchmark, dtype=float)
    n = len(equity)
    with_price = close is not None and len(close) == n and n > 0
    height = MARGIN_T + (PRICE_H + GAP if with_price else 0) + TOP_H + GAP + BOTTOM_H + AXIS_H
    img = Image.new("P", (W, height), 0)  # palette image: a third of the bytes to compress
    img.putpalette([*BG, 0, 0, 0])
    draw = ImageDraw.Draw(img)
    spaced_text(draw, (MARGIN_L, 12), title[:110], 15, FG)
    if n == 0:
        draw.text((MARGIN_L, height // 2), "no bars", fill=FG, font=font(13))
    else:
        top = MARGIN_T
        if with_price:
            _price_panel(draw, close, position, top)
            top += PRICE_H + GAP
        lo = float(min(equity.min(), benchmark.min()))
        hi = float(max(equity.max(), benchmark.max()))
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
        _axis(draw, top, TOP_H, lo, hi, "{:,.0f}")
        draw.line(_line_points(benchmark, lo, hi, top, TOP_H), fill=BENCH, width=2)
        draw.line(_line_points(equity, lo, hi, top, TOP_H), fill=STRATEGY, width=2)
        label = font(12)
        draw.text((W - 260, top + 6), "strategy", fill=STRATEGY, font=label)
        draw.text((W - 160, top + 6), "buy and hold", fill=BENCH, font=label)
        if drawdown is None:
            peak = np.maximum.accumulate(equity)
            dd = np.where(peak > 0, equity / peak - 1.0, 0.0)
        else:
            dd = np.asarray(drawdown, dtype=float)
        dd_lo = float(min(dd.min(), -1e-6))
        top2 = top + TOP_H + GAP
        _axis(draw, top2, BOTTOM_H, dd_lo, 0.0, "{:.0%}")
        pts = _line_points(dd, dd_lo, 0.0, top2, BOTTOM_H)
        draw.polygon([(pts[0][0], top2)] + pts + [(pts[-1][0], top2)], fill=(246, 200, 200), outline=DD)
        draw.text((MARGIN_L + 6, top2 + 4), "drawdown", fill=DD, font=label)
        _time_axis(draw, timestamps, n, MARGIN_T, top2 + BOTTOM_H)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # fast encode; the chart compresses well anyway
    return buf.getvalue()


def _time_axis(draw, timestamps: Sequence, n: int, top: int, bottom: int) -> None:
    """Dated ticks under the last panel, with faint vertical lines through every panel."""
    small = font(11)
    if len(timestamps) == n:
        ticks = [(_xs_at(i, n), text) for i, text in date_ticks(timestamps)]
    else:  # only the first and last stamps are known
        ticks = [(_xs_at(0, n), str(timestamps[0])[:10]), (_xs_at(n - 1, n), str(timestamps[-1])[:10])] \
            if len(timestamps) else []
    for x, text in ticks:
        draw.line([(x, bottom), (x, bottom + 5)], fill=FG)
        width = draw.textlength(text, font=small)
        draw.text((min(max(x - width / 2, MARGIN_L - 30), W - width - 4), bottom + 8), text, fill=FG, font=small)
