"""One self-contained HTML research report for a root of results.

``write_html_report(root)`` writes ``<root>/report.html`` (atomically). ``root`` is a directory of
results (``outputs/runs``, ``outputs/forward_runs``, ``outputs/portfolio``) or a directory of such
roots (``outputs/``): runs, sweeps, forward sessions and portfolios are all listed. The page has:

* the leaderboard, grouped by (ticker, window, strategy) so Sharpe ratios are ranked only against
  comparable results; a parameters column; each row links to the result's own interactive
  ``report.html`` (made when missing or older than the result's report.json, unless
  ``result_pages=False``); zero-trade results are listed but never ranked "best";
* the equity curves of the best group leaders (Pillow PNGs embedded as ``data:`` URIs);
* the ``heatmap.png`` of every grid sweep.

Its only script is the filter box and sortable headers (inline, allowed by hash in the
Content-Security-Policy, which forbids every external load); every string from the result
directories is HTML-escaped. The layout fits 1,000 px and wider windows without horizontal
scrolling (long cells wrap).
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from pathlib import Path

from quantlab.artifacts.io import atomic_write_text
from quantlab.artifacts.report_doc import REPORT_HTML
from quantlab.errors import ConfigError
from quantlab.registry.html_board import SCRIPT_HASH, e, eligible, group_key, group_tables, kinds_summary, num
from quantlab.registry.html_board import rank_order, parameters, script_tag
from quantlab.registry.runs import format_time, is_run_dir, list_runs

TOP_N = 5
MAX_EMBED_BYTES = 10 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
BENCH_COLOR = (127, 127, 127)
CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.2rem auto;max-width:1400px;
 padding:0 1rem;color:#222;background:#fff}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}.count{color:#777;font-weight:normal}
.meta{color:#555;margin:.2rem 0}
#filter{width:100%;max-width:28rem;padding:.35rem .5rem;font-size:.9rem;margin:.4rem 0}
table{border-collapse:collapse;width:100%;font-size:.8rem;table-layout:fixed}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .35rem;text-align:left;vertical-align:top}
th{background:#f5f5f5;cursor:pointer;overflow-wrap:anywhere}
td{overflow-wrap:anywhere}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.top td{background:#eef6ee}
.problem{color:#b00020;overflow-wrap:anywhere}
figure{margin:1rem 0}figcaption{color:#444;font-size:.9rem;margin-bottom:.3rem}
img{max-width:100%;height:auto;border:1px solid #eee}
.legend span{display:inline-block;margin-right:1.2rem;font-size:.85rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:middle}
.note{color:#8a6d00}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{e(alt)}">'


def result_kind(path: Path, row: dict) -> str:
    if (path / "session_metadata.json").is_file():
        return "forward"
    if (path / "portfolio_equity.parquet").is_file():
        return "portfolio"
    return str(row.get("mode") or "run")


def collect(root: Path) -> list[dict]:
    """Every result under ``root`` and under its sub-directories that are roots of results."""
    rows = list(list_runs(root))
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not is_run_dir(child):
            try:
                rows.extend(list_runs(child))
            except (ConfigError, OSError):
                continue
    for row in rows:
        path = Path(row["path"])
        row["kind"] = result_kind(path, row)
        row["parameters"] = parameters(row)
    return rows


def ensure_result_page(row: dict, root: Path, notes: list[str]) -> None:
    """Make the result's report.html when it is missing or older than its report.json, and set
    ``row["report_html"]`` to its path relative to ``root`` (the link in the page)."""
    path = Path(row["path"])
    page = path / REPORT_HTML
    source = path / "report.json"
    try:
        stale = not page.is_file() or (source.is_file() and source.stat().st_mtime_ns > page.stat().st_mtime_ns)
        if stale:
            from quantlab.reports import write_report_html

            write_report_html(path)
    except Exception as exc:  # one broken result never stops the page
        notes.append(f"{row.get('run_id')}: report.html not made ({type(exc).__name__}: {exc})")
    if page.is_file():
        row["report_html"] = os.path.relpath(page, root)


def _equity_section(rows: list[dict], notes: list[str]) -> tuple[list[str], set]:
    import numpy as np

    from quantlab.artifacts.line_chart import line_chart_png
    from quantlab.reports.readers import read_frame

    curves = []
    done: set = set()  # groups that have their curve: the best readable result of each group
    for row in rank_order(rows):
        key = group_key(row)
        if len(curves) == TOP_N or not eligible(row):
            break
        if key in done or row.get("kind") not in ("run", "paper", "forward", "portfolio"):
            continue
        path = Path(row["path"])
        name = "portfolio_equity.parquet" if row["kind"] == "portfolio" else "equity.parquet"
        frame = read_frame(path / name)
        if frame is None or frame.empty or "equity" not in frame.columns or "timestamp" not in frame.columns:
            notes.append(f"{row['run_id']}: {name} unreadable or empty (the next result of its group is drawn)")
            continue
        done.add(key)
        ts = frame["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        bench = frame["benchmark_equity"].to_numpy(float) if "benchmark_equity" in frame.columns else None
        curves.append((row, ts, frame["equity"].to_numpy(float), bench))
    if not curves:
        return ["<p>No ranked result (a finite sharpe_simple and at least one trade) with an equity curve.</p>"], set()
    parts = []
    combined = [(f"#{i + 1} {row['run_id']}", PALETTE[i % len(PALETTE)], ts, eq / eq[0] if eq[0] else eq)
                for i, (row, ts, eq, _) in enumerate(curves)]
    legend = "".join(
        f'<span><span class="swatch" style="background:rgb{PALETTE[i % len(PALETTE)]}"></span>'
        f"#{i + 1} <code>{e(row['run_id'])}</code> ({e(' · '.join(group_key(row)))}, sharpe "
        f"{num(row.get('sharpe_simple'), 'float')})</span>" for i, (row, *_rest) in enumerate(curves))
    parts.append("<figure><figcaption>Growth of 1 of the best result of each group (ticker, window, "
                 "strategy)</figcaption>"
                 + _img(line_chart_png(combined, "Equity, normalised to 1.0 at each result's first bar"),
                        "normalised equity curves of the group leaders")
                 + f'<div class="legend">{legend}</div></figure>')
    for i, (row, ts, eq, bench) in enumerate(curves):
        series = [("strategy", PALETTE[i % len(PALETTE)], ts, eq)]
        if bench is not None:
            series.append(("buy and hold", BENCH_COLOR, ts, bench))
        caption = (f"#{i + 1} <code>{e(row['run_id'])}</code> &middot; {e(' · '.join(group_key(row)))} &middot; "
                   f"sharpe {num(row.get('sharpe_simple'), 'float')} &middot; return "
                   f"{num(row.get('total_return'), 'pct')}")
        parts.append(f"<figure><figcaption>{caption}</figcaption>"
                     + _img(line_chart_png(series, f"{row['run_id']}: equity vs buy and hold", height=320,
                                           y_format="{:,.0f}"), f"equity curve of {row['run_id']}")
                     + "</figure>")
    return parts, {c[0]["path"] for c in curves}


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


def _heatmaps(rows: list[dict], notes: list[str]) -> list[str]:
    """Each grid sweep's heatmap, with its robustness pictures beside it when it has them."""
    parts = []
    for row in rank_order(rows):
        run_dir = Path(row["path"])
        if not (run_dir / "heatmap.png").is_file():
            if row.get("mode") == "grid":
                notes.append(f"{row['run_id']}: sweep without heatmap.png")
            continue
        data = _embeddable(run_dir / "heatmap.png", row["run_id"], notes)
        if data is None:
            continue
        caption = (f"<code>{e(row['run_id'])}</code> &middot; {e(row.get('mode'))} &middot; "
                   f"{e(' · '.join(group_key(row)))} &middot; best sharpe {num(row.get('sharpe_simple'), 'float')}")
        pictures = [_img(data, "parameter heatmap of " + str(row["run_id"]))]
        for name, alt in ROBUSTNESS_PICTURES:
            extra = _embeddable(run_dir / name, row["run_id"], notes) if (run_dir / name).is_file() else None
            if extra is not None:
                pictures.append(_img(extra, f"{alt} of {row['run_id']}"))
        parts.append(f"<figure><figcaption>{caption}</figcaption>{''.join(pictures)}</figure>")
    return parts or ["<p>No sweep heatmaps under this root.</p>"]


def build_html(root: str | os.PathLike, *, result_pages: bool = True) -> str:
    """The report page for ``root`` as a string (see :func:`write_html_report`)."""
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise ConfigError(f"runs root not found: {root}")
    if not root.is_dir():
        raise ConfigError(f"runs root is not a directory: {root}")
    rows = collect(root)
    if not rows and is_run_dir(root):
        raise ConfigError(f"{root} is a run directory; pass the directory that holds the runs (its parent)")
    notes: list[str] = []
    for row in rows:
        if result_pages:
            ensure_result_page(row, root, notes)
        elif (Path(row["path"]) / REPORT_HTML).is_file():
            row["report_html"] = os.path.relpath(Path(row["path"]) / REPORT_HTML, root)
    equity_parts, _ = _equity_section(rows, notes)
    heat_parts = _heatmaps(rows, notes)

    from quantlab import __version__

    generated = format_time(datetime.now(timezone.utc))
    ranked = [r for r in rank_order(rows) if eligible(r)]
    best = ranked[0] if ranked else None
    best_text = (f"best sharpe_simple (any group): <code>{e(best['run_id'])}</code> "
                 f"({num(best.get('sharpe_simple'), 'float')})" if best else "no ranked result")
    flat = sum(1 for r in rows if not eligible(r))
    problems_count = sum(1 for r in rows if r.get("problems"))
    notes_html = ""
    if notes or problems_count:
        items = "".join(f"<li>{e(n)}</li>" for n in notes)
        if problems_count:
            items += f"<li>{problems_count} result(s) have unreadable files: see the notes column.</li>"
        notes_html = f'<section id="notes"><h2>Notes</h2><ul class="note">{items}</ul></section>'
    board = (group_tables(rows, root) if rows else "<p>No runs under this root.</p>")
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        f"<title>QuantLab research report &ndash; {e(root.name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>QuantLab research report</h1>",
        f'<p class="meta">root <code>{e(root)}</code> &middot; generated {e(generated)} '
        f"&middot; quantlab {e(__version__)}</p>",
        f'<p class="meta">{len(rows)} results ({e(kinds_summary(rows))}) &middot; {best_text}'
        + (f" &middot; {flat} without trades or sharpe (listed, not ranked)" if flat else "") + "</p>",
        "</header>",
        "<main>",
        '<section id="leaderboard"><h2>Leaderboard by ticker, window and strategy</h2>'
        '<input id="filter" type="search" placeholder="filter: ticker, window, strategy, parameter, id" '
        f'aria-label="filter results">{board}</section>',
        f'<section id="equity"><h2>Equity curves &ndash; the best of each group (top {TOP_N})</h2>'
        f"{''.join(equity_parts)}</section>",
        f'<section id="heatmaps"><h2>Sweep heatmaps</h2>{"".join(heat_parts)}</section>',
        notes_html,
        "</main>",
        script_tag(),
        "</body>",
        "</html>",
        "",
    ])


def write_html_report(root: Path, out_path: Path | None = None, *, result_pages: bool = True) -> Path:
    """Write the report of ``root`` to ``out_path`` (default ``<root>/report.html``) atomically and
    return its absolute path. Raises ConfigError when ``root`` is missing or not a directory."""
    page = build_html(root, result_pages=result_pages)
    out = Path(os.path.abspath(out_path if out_path is not None else Path(root) / "report.html"))
    atomic_write_text(out, page)
    return out
