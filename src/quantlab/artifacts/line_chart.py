"""Line charts of several series on one time axis, drawn with Pillow (the registry report's
equity curves): a legend under the title, value grid lines and five date ticks along the axis."""

from __future__ import annotations

import io
import math
from typing import Any, Sequence


def _downsample(xs: Sequence[float], ys: Sequence[float], limit: int = 1500) -> list[tuple[float, float]]:
    n = len(xs)
    step = max(1, math.ceil(n / limit))
    pts = [(xs[i], ys[i]) for i in range(0, n, step)]
    if n and (n - 1) % step:
        pts.append((xs[-1], ys[-1]))
    return pts


def line_chart_png(series: list[tuple[str, tuple[int, int, int], Any, Any]], title: str, *,
                   width: int = 960, height: int = 400, y_format: str = "{:.2f}") -> bytes:
    """PNG of line series ``(label, rgb, x_ns int64 array, y float array)`` on a shared time axis."""
    import numpy as np
    from PIL import Image, ImageDraw

    clean = []
    for label, color, x, y in series:
        x = np.asarray(x, dtype=np.int64)
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(y)
        if ok.any():
            clean.append((label, color, x[ok], y[ok]))
    font = _font(13)
    small = _font(11)
    line_h = 16
    left, right, bottom = 78, 24, 40
    top = 34 + line_h * len(clean)  # the legend sits between the title and the plot
    height += line_h * len(clean)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title[:140], fill=(30, 30, 30), font=font)
    for i, (label, color, _, _) in enumerate(clean):
        ly = 30 + i * line_h
        draw.rectangle([left, ly + 3, left + 12, ly + 12], fill=color)
        draw.text((left + 18, ly), label[:90], fill=(30, 30, 30), font=small)
    pw, ph = width - left - right, height - top - bottom
    if not clean:
        draw.rectangle([left, top, left + pw, top + ph], outline=(150, 150, 150))
        draw.text((left + 10, top + ph // 2), "no data", fill=(30, 30, 30), font=font)
    else:
        x0 = min(int(s[2].min()) for s in clean)
        x1 = max(int(s[2].max()) for s in clean)
        y0 = min(float(s[3].min()) for s in clean)
        y1 = max(float(s[3].max()) for s in clean)
        pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
        xspan = (x1 - x0) or 1
        for i in range(5):
            frac = i / 4
            yy = top + ph - frac * ph
            draw.line([(left + 1, yy), (left + pw - 1, yy)], fill=(228, 228, 228))
            draw.text((4, yy - 7), y_format.format(y0 + frac * (y1 - y0)), fill=(60, 60, 60), font=small)
        draw.rectangle([left, top, left + pw, top + ph], outline=(150, 150, 150))
        for i in range(5):
            frac = i / 4
            text = str(np.datetime64(int(x0 + frac * xspan), "ns").astype("datetime64[D]"))
            xx = left + frac * pw
            draw.line([(xx, top + ph), (xx, top + ph + 4)], fill=(150, 150, 150))
            tw = draw.textlength(text, font=small)
            draw.text((min(max(xx - tw / 2, 2), width - tw - 2), top + ph + 8), text, fill=(60, 60, 60), font=small)
        for label, color, x, y in clean:
            px = (left + (x - x0) / xspan * pw).tolist()
            py = (top + ph - (y - y0) / (y1 - y0) * ph).tolist()
            pts = _downsample(px, py)
            if len(pts) == 1:
                draw.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=color)
            else:
                draw.line(pts, fill=color, width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font (needs FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()
