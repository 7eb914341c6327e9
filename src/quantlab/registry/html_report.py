"""One self-contained HTML research report for a runs root.

``write_html_report(root)`` writes ``<root>/report.html`` (atomically): a leaderboard of every
run under ``root`` (the runs-index rows, best ``sharpe_simple`` first), the equity curves of
the top 5 runs by ``sharpe_simple`` that have an ``equity.parquet`` (sweep directories have none),
and the ``heatmap.png`` of every sweep. Charts are PNGs drawn with Pillow and embedded as
base64 ``data:`` URIs; the page has no script, no external resource (a Content-Security-Policy
meta tag forbids them), and every string from the run directories is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from quantlab.artifacts.io import atomic_write_text
from quantlab.errors import ConfigError
from quantlab.registry.runs import format_time, is_run_dir, list_runs

TOP_N = 5
MAX_EMBED_BYTES = 10 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
BENCH_COLOR = (127, 127, 127)
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1400px;
 padding:0 1rem;color:#222;background:#fff}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.meta{color:#555;margin:.2rem 0}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #e5e5e5;padding:.3rem .45rem;text-align:left;white-space:nowrap}
th{background:#f5f5f5;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.top td{background:#f3f8fd}
.problem{color:#b00020;white-space:normal}
figure{margin:1rem 0}figcaption{color:#444;font-size:.9rem;margin-bottom:.3rem}
img{max-width:100%;height:auto;border:1px solid #eee}
.legend span{display:inline-block;margin-right:1.2rem;font-size:.85rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:middle}
.note{color:#8a6d00}
.scroll{overflow-x:auto}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, kind: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "&ndash;"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value)}"
    return f"{value:.3f}"


# ------------------------------------------------------------------------------ charts (Pillow)
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
        for i, frac in enumerate((0.0, 0.5, 1.0)):
            stamp = np.datetime64(int(x0 + frac * xspan), "ns").astype("datetime64[D]")
            text = str(stamp)
            xx = left + frac * pw - (0 if i == 0 else 35 if i == 1 else 72)
            draw.text((xx, top + ph + 8), text, fill=(60, 60, 60), font=small)
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


ROBUSTNESS_PICTURES = (("pbo_logits.png", "PBO logit histogram"), ("is_vs_oos.png", "IS vs OOS Sharpe"))


def _embeddable(path: Path, run_id, notes: list[str]) -> bytes | None:
    """A run's PNG to embed, or None with a note (too large, unreadable, not a PNG)."""
    try:
        size = path.stat().st_size
        if size > MAX_EMBED_BYTES:
            notes.append(f"{run_id}: {path.name} too large to embed ({size} bytes)")
            return None
        data = path.read_bytes()
    except OSError as exc:
        notes.append(f"{run_id}: {path.name} unreadable ({type(exc).__name__})")
        return None
    if not data.startswith(PNG_MAGIC):
        notes.append(f"{run_id}: {path.name} is not a PNG file")
        return None
    return data


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


# ------------------------------------------------------------------------------ data
def _read_equity(run_dir: Path):
    import numpy as np

    from quantlab.columnar import column_to_numpy, read_parquet

    table = read_parquet(run_dir / "equity.parquet")
    names = set(table.column_names)
    for col in ("timestamp", "equity"):
        if col not in names:
            raise ValueError(f"column {col} missing")
    ts = column_to_numpy(table, "timestamp")
    if not np.issubdtype(ts.dtype, np.datetime64):
        raise ValueError("timestamp is not a timestamp column")
    ts = ts.astype("datetime64[ns]").astype(np.int64)
    equity = column_to_numpy(table, "equity").astype(float)
    bench = column_to_numpy(table, "benchmark_equity").astype(float) if "benchmark_equity" in names else None
    if len(ts) == 0 or len(equity) != len(ts) or (bench is not None and len(bench) != len(ts)):
        raise ValueError("empty or ragged equity columns")
    return ts, equity, bench


def _sharpe(row: dict) -> float | None:
    v = row.get("sharpe_simple")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _leaderboard_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (_sharpe(r) is None, -(_sharpe(r) or 0.0), str(r.get("run_id"))))


# ------------------------------------------------------------------------------ page
def _leaderboard(rows: list[dict], top_ids: set[str]) -> str:
    cols = [("#", "int"), ("run_id", "text"), ("mode", "text"), ("ticker", "text"), ("strategy", "text"),
            ("start", "text"), ("end", "text"), ("created_at", "text"), ("sharpe_simple", "float"),
            ("total_return", "pct"), ("max_drawdown", "pct"), ("win_rate", "pct"), ("trades", "int"),
            ("notes", "text")]
    head = "".join(f'<th class="num" scope="col">{_e(c)}</th>' if k != "text" else f'<th scope="col">{_e(c)}</th>'
                   for c, k in cols)
    body = []
    for rank, row in enumerate(rows, 1):
        cells = []
        for col, kind in cols:
            if col == "#":
                cells.append(f'<td class="num">{rank}</td>')
            elif col == "notes":
                notes = "; ".join(row.get("problems") or [])
                cells.append(f'<td class="problem">{_e(notes)}</td>')
            elif col == "run_id":
                cells.append(f'<td title="{_e(row.get("path"))}"><code>{_e(row.get("run_id"))}</code></td>')
            elif kind == "text":
                cells.append(f"<td>{_e(row.get(col))}</td>")
            else:
                cells.append(f'<td class="num">{_num(row.get(col), kind)}</td>')
        cls = ' class="top"' if row.get("path") in top_ids else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table id="leaderboard-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def build_html(root: str | os.PathLike) -> str:
    """The report page for ``root`` as a string (see :func:`write_html_report`)."""
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise ConfigError(f"runs root not found: {root}")
    if not root.is_dir():
        raise ConfigError(f"runs root is not a directory: {root}")
    rows = list_runs(root)
    if not rows and is_run_dir(root):
        raise ConfigError(f"{root} is a run directory; pass the directory that holds the runs (its parent)")
    board = _leaderboard_order(rows)
    notes: list[str] = []

    # equity curves: the top runs by sharpe_simple that have an equity.parquet
    curves = []
    for row in board:
        if len(curves) == TOP_N or _sharpe(row) is None:
            break
        run_dir = Path(row["path"])
        if not (run_dir / "equity.parquet").is_file():
            continue
        try:
            curves.append((row, *_read_equity(run_dir)))
        except Exception as exc:  # a broken file is reported in the page, never fatal
            notes.append(f"{row['run_id']}: equity.parquet unreadable ({type(exc).__name__})")
    equity_parts = []
    if curves:
        combined = [(f"#{i + 1} {row['run_id']}", PALETTE[i % len(PALETTE)], ts, eq / eq[0] if eq[0] else eq)
                    for i, (row, ts, eq, _) in enumerate(curves)]
        legend = "".join(
            f'<span><span class="swatch" style="background:rgb{PALETTE[i % len(PALETTE)]}"></span>'
            f"#{i + 1} <code>{_e(row['run_id'])}</code> (sharpe {_num(row.get('sharpe_simple'), 'float')})</span>"
            for i, (row, *_rest) in enumerate(curves))
        equity_parts.append(
            "<figure><figcaption>Growth of 1 (equity / first equity) of the top "
            f"{len(curves)} runs by sharpe_simple</figcaption>"
            + _img(line_chart_png(combined, "Equity, normalised to 1.0 at each run's first bar"),
                   "normalised equity curves of the top runs")
            + f'<div class="legend">{legend}</div></figure>')
        for i, (row, ts, eq, bench) in enumerate(curves):
            series = [("strategy", PALETTE[i % len(PALETTE)], ts, eq)]
            if bench is not None:
                series.append(("buy and hold", BENCH_COLOR, ts, bench))
            caption = (f"#{i + 1} <code>{_e(row['run_id'])}</code> &middot; {_e(row.get('ticker'))} "
                       f"{_e(row.get('start'))} &rarr; {_e(row.get('end'))} &middot; {_e(row.get('strategy'))} "
                       f"&middot; sharpe {_num(row.get('sharpe_simple'), 'float')} &middot; return "
                       f"{_num(row.get('total_return'), 'pct')}")
            equity_parts.append(
                f"<figure><figcaption>{caption}</figcaption>"
                + _img(line_chart_png(series, f"{row['run_id']}: equity vs buy and hold", height=320,
                                      y_format="{:,.0f}"), f"equity curve of {row['run_id']}")
                + "</figure>")
    else:
        equity_parts.append("<p>No run with an equity curve and a sharpe_simple value.</p>")

    # sweep heatmaps, with the robustness pictures beside them
    heat_parts = []
    for row in board:
        run_dir = Path(row["path"])
        if not (run_dir / "heatmap.png").is_file():
            if row.get("mode") == "grid":
                notes.append(f"{row['run_id']}: sweep without heatmap.png")
            continue
        data = _embeddable(run_dir / "heatmap.png", row["run_id"], notes)
        if data is None:
            continue
        caption = (f"<code>{_e(row['run_id'])}</code> &middot; {_e(row.get('mode'))} &middot; "
                   f"{_e(row.get('ticker'))} {_e(row.get('start'))} &rarr; {_e(row.get('end'))} &middot; "
                   f"{_e(row.get('strategy'))} &middot; best sharpe {_num(row.get('sharpe_simple'), 'float')}")
        pictures = [_img(data, "parameter heatmap of " + str(row["run_id"]))]
        for name, alt in ROBUSTNESS_PICTURES:
            extra = _embeddable(run_dir / name, row["run_id"], notes) if (run_dir / name).is_file() else None
            if extra is not None:
                pictures.append(_img(extra, f"{alt} of {row['run_id']}"))
        heat_parts.append(f"<figure><figcaption>{caption}</figcaption>{''.join(pictures)}</figure>")
        heat_parts.append("<p>No sweep heatmaps under this root.</p>")

    from quantlab import __version__

    generated = format_time(datetime.now(timezone.utc))
    n_sweeps = sum(1 for r in rows if r.get("mode") in ("grid", "walkforward"))
    best = board[0] if board and _sharpe(board[0]) is not None else None
    best_text = (f"best sharpe_simple: <code>{_e(best['run_id'])}</code> "
                 f"({_num(best.get('sharpe_simple'), 'float')})" if best else "no run with a sharpe_simple value")
    problems_count = sum(1 for r in rows if r.get("problems"))
    notes_html = ""
    if notes or problems_count:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes)
        if problems_count:
            items += f"<li>{problems_count} run(s) have unreadable files: see the notes column.</li>"
        notes_html = f'<section id="notes"><h2>Notes</h2><ul class="note">{items}</ul></section>'
    leaderboard = (_leaderboard(board, {c[0]["path"] for c in curves}) if rows
                   else "<p>No runs under this root.</p>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>QuantLab research report &ndash; {_e(root.name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>QuantLab research report</h1>",
        f'<p class="meta">root <code>{_e(root)}</code> &middot; generated {_e(generated)} '
        f"&middot; quantlab {_e(__version__)}</p>",
        f'<p class="meta">{len(rows)} runs ({n_sweeps} sweeps) &middot; {best_text}</p>',
        "</header>",
        "<main>",
        f'<section id="leaderboard"><h2>Leaderboard</h2>{leaderboard}</section>',
        f'<section id="equity"><h2>Equity curves &ndash; top {TOP_N} by sharpe_simple</h2>'
        f"{''.join(equity_parts)}</section>",
        f'<section id="heatmaps"><h2>Sweep heatmaps</h2>{"".join(heat_parts)}</section>',
        notes_html,
        "</main>",
        "</body>",
        "</html>",
        "",
    ])


def write_html_report(root: Path, out_path: Path | None = None) -> Path:
    """Write the report of ``root`` to ``out_path`` (default ``<root>/report.html``) atomically and
    return its absolute path. Raises ConfigError when ``root`` is missing or not a directory."""
    page = build_html(root)
    out = Path(os.path.abspath(out_path if out_path is not None else Path(root) / "report.html"))
    atomic_write_text(out, page)
    return out
