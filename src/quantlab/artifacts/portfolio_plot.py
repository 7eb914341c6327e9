"""The portfolio chart, drawn with Pillow (matplotlib is not a dependency).

Top panel: every portfolio curve (one per mode) and every session, all normalised to 1.0 at the
start of the calendar (a session is cash at 1.0 before its first bar). Bottom panel: the
drawdown of the first portfolio.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

from quantlab.artifacts import plots

W, H = 960, 640
MARGIN_L, MARGIN_R, MARGIN_T = 80, 200, 40
TOP_H, GAP, BOTTOM_H = 380, 40, 130
BG, FG, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
DD = (214, 39, 40)
PORTFOLIO_COLOURS = ((20, 20, 20), (31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))
SESSION_COLOURS = ((158, 202, 225), (253, 190, 133), (161, 217, 155), (218, 218, 235), (252, 187, 161),
                   (199, 199, 199), (201, 148, 199), (188, 189, 34), (23, 190, 207), (255, 152, 150))
MAX_LEGEND_SESSIONS = 12


def _xs(n: int) -> np.ndarray:
    return plots._xs(n, MARGIN_L, W - MARGIN_R)


def _axis(draw, top: int, height: int, lo: float, hi: float, fmt: str) -> None:
    plots._axis(draw, top, height, lo, hi, fmt, MARGIN_L, W - MARGIN_R)


def _line(draw, xs: np.ndarray, ys: np.ndarray, colour, width: int) -> None:
    finite = np.isfinite(ys)
    pts = list(zip(xs[finite].tolist(), ys[finite].tolist()))
    if len(pts) == 1:
        pts = pts * 2
    if pts:
        draw.line(pts, fill=colour, width=width)


def portfolio_png(timestamps: Sequence[str], portfolios: Mapping[str, np.ndarray],
                  sessions: Mapping[str, np.ndarray], title: str, drawdown: np.ndarray | None = None) -> bytes:
    """PNG bytes. ``portfolios``: label -> normalised portfolio value; ``sessions``: session id ->
    normalised session value, all on the same (possibly downsampled) bars; ``timestamps``: the
    first and last bar (axis labels)."""
    from PIL import Image, ImageDraw

    img = Image.new("P", (W, H), 0)
    img.putpalette([*BG, 0, 0, 0])
    draw = ImageDraw.Draw(img)
    draw.text((MARGIN_L, 12), title[:120], fill=FG)
    curves = [np.asarray(v, dtype=float) for v in (*portfolios.values(), *sessions.values())]
    n = max((len(c) for c in curves), default=0)
    if n == 0:
        draw.text((MARGIN_L, H // 2), "no bars", fill=FG)
    else:
        finite = np.concatenate([c[np.isfinite(c)] for c in curves] + [np.array([1.0])])
        lo, hi = float(finite.min()), float(finite.max())
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
        _axis(draw, MARGIN_T, TOP_H, lo, hi, "{:.3f}")
        base = plots._scale(np.array([1.0]), lo, hi, MARGIN_T, TOP_H)[0]
        draw.line([(MARGIN_L, base), (W - MARGIN_R, base)], fill=(170, 170, 170))
        legend_x, legend_y = W - MARGIN_R + 10, MARGIN_T
        for k, (sid, values) in enumerate(sessions.items()):
            colour = SESSION_COLOURS[k % len(SESSION_COLOURS)]
            values = np.asarray(values, dtype=float)
            _line(draw, _xs(len(values)), plots._scale(values, lo, hi, MARGIN_T, TOP_H), colour, 1)
        for k, (label, values) in enumerate(portfolios.items()):
            colour = PORTFOLIO_COLOURS[k % len(PORTFOLIO_COLOURS)]
            values = np.asarray(values, dtype=float)
            _line(draw, _xs(len(values)), plots._scale(values, lo, hi, MARGIN_T, TOP_H), colour, 3)
            draw.rectangle([legend_x, legend_y + 4, legend_x + 14, legend_y + 7], fill=colour)
            draw.text((legend_x + 20, legend_y), f"portfolio {label}"[:28], fill=colour)
            legend_y += 16
        legend_y += 6
        for k, sid in enumerate(list(sessions)[:MAX_LEGEND_SESSIONS]):
            colour = SESSION_COLOURS[k % len(SESSION_COLOURS)]
            draw.rectangle([legend_x, legend_y + 5, legend_x + 14, legend_y + 6], fill=colour)
            draw.text((legend_x + 20, legend_y), str(sid)[-26:], fill=FG)
            legend_y += 14
        if len(sessions) > MAX_LEGEND_SESSIONS:
            draw.text((legend_x + 20, legend_y), f"+{len(sessions) - MAX_LEGEND_SESSIONS} more sessions", fill=FG)
        top2 = MARGIN_T + TOP_H + GAP
        if drawdown is not None and len(drawdown):
            dd = np.nan_to_num(np.asarray(drawdown, dtype=float), nan=0.0)
            dd_lo = float(min(dd.min(), -1e-6))
            _axis(draw, top2, BOTTOM_H, dd_lo, 0.0, "{:.0%}" if dd_lo < -0.2 else "{:.1%}")
            dxs = _xs(len(dd))
            pts = list(zip(dxs.tolist(), plots._scale(dd, dd_lo, 0.0, top2, BOTTOM_H).tolist()))
            draw.polygon([(pts[0][0], top2)] + pts + [(pts[-1][0], top2)], fill=(246, 200, 200), outline=DD)
            draw.text((MARGIN_L + 6, top2 + 4), f"drawdown ({next(iter(portfolios), 'portfolio')})", fill=DD)
        bottom = top2 + BOTTOM_H + 6
        if timestamps:
            draw.text((MARGIN_L, bottom), str(timestamps[0])[:10], fill=FG)
            draw.text((W - MARGIN_R - 70, bottom), str(timestamps[-1])[:10], fill=FG)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
