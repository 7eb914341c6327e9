"""The figure behind ``Result.plot()`` (the notebook API): a Bokeh layout of a result directory.

When the interactive report module (``quantlab.reports``, the panels of ``report.html``) is
installed, its figure is used as is. Until then, a run (or any result directory with an
``equity.parquet``) gets a minimal stand-in: equity vs benchmark and the drawdown, with linked
x ranges; other results raise ``ConfigError``. Bokeh is imported only here, on demand.
"""

from __future__ import annotations

from pathlib import Path


def result_figure(path: Path | None):
    from quantlab.errors import ConfigError

    if path is None or not Path(path).is_dir():
        raise ConfigError("this result has no directory to plot")
    try:
        from quantlab.reports import figure
    except ImportError:
        return _equity_figure(Path(path))
    return figure(path)


def _equity_figure(path: Path):
    from quantlab.errors import ConfigError

    if not (path / "equity.parquet").is_file():
        raise ConfigError(f"{path} has no equity.parquet: plotting a sweep needs the report module "
                          "(quantlab.reports)")
    import pandas as pd
    from bokeh.layouts import column
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    eq = pd.read_parquet(path / "equity.parquet")
    t = eq["timestamp"]
    top = figure(title=f"{path.name}: equity vs benchmark", x_axis_type="datetime", height=320,
                 sizing_mode="stretch_width", tools="pan,xwheel_zoom,box_zoom,reset,save")
    top.line(t, eq["equity"], color="#1f77b4", line_width=2, legend_label="equity")
    top.line(t, eq["benchmark_equity"], color="#999999", legend_label="benchmark (buy and hold)")
    top.legend.location = "top_left"
    bottom = figure(title="drawdown", x_axis_type="datetime", height=160, x_range=top.x_range,
                    sizing_mode="stretch_width", tools="pan,xwheel_zoom,box_zoom,reset")
    bottom.varea(t, eq["drawdown"], 0.0, color="#d62728", alpha=0.4)
    for fig in (top, bottom):
        fig.add_tools(HoverTool(tooltips=[("date", "$x{%F}"), ("value", "$y{0,0.0000}")],
                                formatters={"$x": "datetime"}, mode="vline"))
    return column(top, bottom, sizing_mode="stretch_width")
