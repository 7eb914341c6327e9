"""Bokeh building blocks shared by the interactive reports: time-axis figures whose x ranges and
crosshair are linked, equity/drawdown/position panels, sortable tables, the monthly-returns
heatmap, and the self-contained page (Bokeh's JavaScript inlined: the file works offline from
``file://`` and loads nothing from the network).

Bokeh is imported here only, and only when a report is built (never on a request's critical
path: docs/reports.md)."""

from __future__ import annotations

import html
import math
from typing import Any, Iterable

STRATEGY, BENCH, DD, UP, DOWN, STOP = "#1f77b4", "#7f7f7f", "#d62728", "#2ca02c", "#d62728", "#ff7f0e"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, kind: str = "float") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–" if value is None or isinstance(value, (int, float)) else esc(value)
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int" or float(value).is_integer() and abs(value) < 1e9 and kind != "float":
        return f"{int(value)}"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


PCT_KEYS = ("return", "drawdown", "cagr", "win_rate", "exposure", "volatility")


def metric_kind(key: str) -> str:
    if key in ("trades", "bars"):
        return "int"
    return "pct" if any(k in key for k in PCT_KEYS) else "float"


class Linked:
    """Figures on one time axis: a shared x range, one crosshair (a vertical line drawn on every
    panel), wheel zoom and pan along time only."""

    def __init__(self):
        from bokeh.models import CrosshairTool, Span

        self.vline = Span(dimension="height", line_dash="dotted", line_color="#555")
        self.crosshair_tool = CrosshairTool
        self.figures: list = []

    def figure(self, title: str, height: int, y_label: str = "", **kw):
        from bokeh.plotting import figure

        args = dict(title=title, height=height, x_axis_type="datetime", tools=TOOLS,
                    active_scroll="xwheel_zoom", sizing_mode="stretch_width", min_border_left=70, **kw)
        if self.figures:
            args["x_range"] = self.figures[0].x_range
        fig = figure(**args)
        fig.add_tools(self.crosshair_tool(overlay=[self.vline, _hline()]))
        fig.yaxis.axis_label = y_label
        fig.xaxis.major_label_orientation = 0
        fig.title.text_font_size = "13px"
        fig.toolbar.logo = None
        self.figures.append(fig)
        return fig


def _hline():
    from bokeh.models import Span

    return Span(dimension="width", line_dash="dotted", line_color="#999")


def equity_panel(linked: Linked, ts, equity, benchmark=None, *, title: str = "Equity vs buy and hold",
                 label: str = "strategy"):
    from bokeh.models import ColumnDataSource, HoverTool

    fig = linked.figure(title, 260, "equity")
    data = {"t": ts, "equity": equity}
    if benchmark is not None:
        data["bench"] = benchmark
    src = ColumnDataSource(data)
    tips = [("date", "@t{%F}"), (label, "@equity{0,0.00}")]
    if benchmark is not None:
        fig.line("t", "bench", source=src, color=BENCH, line_width=1.5, legend_label="buy and hold")
        tips.append(("buy and hold", "@bench{0,0.00}"))
    line = fig.line("t", "equity", source=src, color=STRATEGY, line_width=2, legend_label=label)
    fig.add_tools(HoverTool(renderers=[line], tooltips=tips, mode="vline", formatters={"@t": "datetime"}))
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def drawdown_panel(linked: Linked, ts, drawdown):
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter

    fig = linked.figure("Drawdown (underwater)", 150, "drawdown")
    src = ColumnDataSource({"t": ts, "dd": drawdown, "zero": [0.0] * len(drawdown)})
    fig.varea("t", "dd", "zero", source=src, fill_color=DD, fill_alpha=0.3)
    line = fig.line("t", "dd", source=src, color=DD, line_width=1)
    fig.yaxis.formatter = NumeralTickFormatter(format="0%")
    fig.add_tools(HoverTool(renderers=[line], tooltips=[("date", "@t{%F}"), ("drawdown", "@dd{0.00%}")],
                            mode="vline", formatters={"@t": "datetime"}))
    return fig


def position_panel(linked: Linked, ts, position, *, title: str = "Position (+1 long, -1 short, 0 flat)"):
    from bokeh.models import ColumnDataSource, HoverTool

    fig = linked.figure(title, 120, "position")
    src = ColumnDataSource({"t": ts, "pos": position})
    line = fig.step("t", "pos", source=src, mode="after", color="#9467bd", line_width=1.5)
    fig.add_tools(HoverTool(renderers=[line], tooltips=[("date", "@t{%F}"), ("position", "@pos")],
                            mode="vline", formatters={"@t": "datetime"}))
    return fig


def monthly_returns(ts, returns):
    """(year, month, return) of compounded per-bar returns, one row per calendar month with bars."""
    import numpy as np
    import pandas as pd

    series = pd.Series(np.asarray(returns, dtype=float), index=pd.DatetimeIndex(ts)).fillna(0.0)
    if series.empty:
        return []
    monthly = (1.0 + series).groupby([series.index.year, series.index.month]).prod() - 1.0
    return [(int(y), int(m), float(v)) for (y, m), v in monthly.items()]


def monthly_heatmap(ts, returns, *, title: str = "Monthly returns"):
    from bokeh.models import BasicTicker, ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.models import NumeralTickFormatter
    from bokeh.palettes import RdYlGn11
    from bokeh.plotting import figure

    cells = monthly_returns(ts, returns)
    years = sorted({str(y) for y, _, _ in cells})
    fig = figure(title=title, height=max(140, 40 + 28 * len(years)), x_range=list(MONTHS), y_range=years,
                 tools="save", sizing_mode="stretch_width", toolbar_location=None)
    if cells:
        bound = max(abs(v) for _, _, v in cells) or 0.01
        mapper = LinearColorMapper(palette=list(reversed(RdYlGn11)), low=-bound, high=bound)
        src = ColumnDataSource({"month": [MONTHS[m - 1] for _, m, _ in cells], "year": [str(y) for y, _, _ in cells],
                                "ret": [v for _, _, v in cells],
                                "label": [f"{v * 100:.1f}%" for _, _, v in cells]})
        rect = fig.rect("month", "year", 1, 1, source=src, fill_color={"field": "ret", "transform": mapper},
                        line_color="white")
        fig.text("month", "year", text="label", source=src, text_align="center", text_baseline="middle",
                 text_font_size="10px")
        fig.add_tools(HoverTool(renderers=[rect], tooltips=[("month", "@month @year"), ("return", "@ret{0.00%}")]))
        fig.add_layout(ColorBar(color_mapper=mapper, ticker=BasicTicker(),
                                formatter=NumeralTickFormatter(format="0%"), width=10), "right")
    fig.grid.grid_line_color = None
    fig.axis.major_tick_line_color = None
    return fig


def table(frame, *, height: int = 280, formats: dict[str, str] | None = None, name: str | None = None):
    """A sortable, scrollable DataTable of a DataFrame (click a header to sort)."""
    from bokeh.models import (ColumnDataSource, DataTable, DateFormatter, NumberFormatter, StringFormatter,
                              TableColumn)

    formats = formats or {}
    columns = []
    data = {}
    for col in frame.columns:
        series = frame[col]
        key = str(col)
        if str(series.dtype).startswith("datetime"):
            formatter = DateFormatter(format="%Y-%m-%d %H:%M" if _has_time(series) else "%Y-%m-%d")
        elif series.dtype.kind in "fi":
            formatter = NumberFormatter(format=formats.get(key, "0,0.[0000]"), text_align="right")
        else:
            formatter = StringFormatter()
            series = series.astype(str).where(series.notna(), "")
        data[key] = series.to_numpy() if str(series.dtype).startswith("datetime") else series.tolist()
        columns.append(TableColumn(field=key, title=key, formatter=formatter, sortable=True))
    return DataTable(source=ColumnDataSource(data), columns=columns, sizing_mode="stretch_width",
                     height=min(height, 30 + 25 * max(len(frame), 1)), index_position=None, name=name, reorderable=False,
                     autosize_mode="force_fit")


def _has_time(series) -> bool:
    values = series.dropna()
    return bool((values != values.dt.normalize()).any())


def metrics_html(metrics: dict, keys: Iterable[str] | None = None) -> str:
    cells = "".join(f"<div class='ql-m'><span>{esc(k)}</span><b>{fmt(metrics.get(k), metric_kind(k))}</b></div>"
                    for k in (keys or metrics) if not isinstance(metrics.get(k), (dict, list)))
    return f"<div class='ql-metrics'>{cells}</div>"


HEAD_CSS = """<style>
.ql-h h1{font:600 20px system-ui,sans-serif;margin:4px 0}.ql-h p{font:13px system-ui,sans-serif;color:#444;margin:2px 0}
.ql-metrics{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}.ql-m{border:1px solid #ddd;border-radius:4px;
padding:3px 8px;font:12px system-ui,sans-serif}.ql-m span{color:#666;margin-right:6px}
.ql-note{font:13px system-ui,sans-serif;color:#8a6d00}
</style>"""


def header(title: str, lines: Iterable[str], metrics_block: str = "", notes: Iterable[str] = ()):
    from bokeh.models import Div

    body = "".join(f"<p>{line}</p>" for line in lines)
    note = "".join(f"<p class='ql-note'>{esc(n)}</p>" for n in notes)
    return Div(text=f"{HEAD_CSS}<div class='ql-h'><h1>{esc(title)}</h1>{body}{metrics_block}{note}</div>",
               sizing_mode="stretch_width")


def section(title: str):
    from bokeh.models import Div

    return Div(text=f"<div style='font:600 15px system-ui,sans-serif;margin:14px 0 2px'>{esc(title)}</div>",
               sizing_mode="stretch_width")


def page(layout_items: list) -> Any:
    from bokeh.layouts import column

    return column(*[item for item in layout_items if item is not None], sizing_mode="stretch_width")


CSP_META = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src data: blob:; font-src data:\">")


def page_html(layout, title: str) -> str:
    """The self-contained HTML of a layout: Bokeh's JS and CSS inlined, no external resource."""
    from bokeh.embed import file_html
    from bokeh.resources import Resources

    # inline JS/CSS (no network), and a quiet browser console (Bokeh logs at "info" by default)
    page = file_html(layout, Resources(mode="inline", log_level="warn"), title)
    # the page may load nothing from anywhere: a blocked load would be a console error (tested)
    return page.replace('<meta charset="utf-8">', f'<meta charset="utf-8">\n    {CSP_META}', 1)
