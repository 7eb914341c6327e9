"""The interactive report of a sweep directory. Grid: the sortable leaderboard with every
parameter, the objective's heatmap over the two most influential parameters, the best and the
median combination's equity (re-simulated, checked against the leaderboard: resim.py) and the
robustness block when the sweep computed one. Walk-forward: in-sample vs out-of-sample per split,
the stitched out-of-sample equity and its drawdown, and the leaderboard."""

from __future__ import annotations

import math
from pathlib import Path

from quantlab.reports import figures as F
from quantlab.reports.readers import read_csv, read_frame, read_json

HEADLINE = ("total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate")


def _objective(config: dict) -> str:
    selection = config.get("selection") or {}
    return (selection.get("sort_by") or [config.get("objective") or "sharpe_simple"])[0]


def heatmap(rows: list[dict], objective: str, grid_keys: list[str]):
    """Bokeh heatmap of the mean objective per cell of the two most influential parameters."""
    from collections import defaultdict

    from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.palettes import RdYlGn11
    from bokeh.plotting import figure

    from quantlab.artifacts.heatmap import most_influential

    axes = most_influential(rows, grid_keys, objective)
    if not axes:
        return None
    x_key, y_key = axes[0], (axes[1] if len(axes) > 1 else None)
    cells: dict = defaultdict(list)
    for r in rows:
        v = r["metrics"].get(objective)
        if isinstance(v, (int, float)) and math.isfinite(v):
            cells[(str(r["params"].get(x_key)), str(r["params"].get(y_key)) if y_key else "")].append(v)
    if not cells:
        return None
    order = lambda vals: sorted(vals, key=lambda s: (float(s) if _numeric(s) else math.inf, s))  # noqa: E731
    xs = order({k[0] for k in cells})
    ys = order({k[1] for k in cells})
    means = {k: sum(v) / len(v) for k, v in cells.items()}
    lo, hi = min(means.values()), max(means.values())
    mapper = LinearColorMapper(palette=list(reversed(RdYlGn11)), low=lo, high=hi if hi > lo else lo + 1e-9)
    src = ColumnDataSource({"x": [k[0] for k in means], "y": [k[1] for k in means], "v": list(means.values()),
                            "n": [len(cells[k]) for k in means], "label": [f"{v:.3f}" for v in means.values()]})
    title = f"Mean {objective} by {x_key}" + (f" (x) and {y_key} (y)" if y_key else "")
    fig = figure(title=title, x_range=xs, y_range=ys, height=max(180, 60 + 40 * len(ys)), tools="save",
                 toolbar_location=None, sizing_mode="stretch_width")
    rect = fig.rect("x", "y", 1, 1, source=src, fill_color={"field": "v", "transform": mapper}, line_color="white")
    fig.text("x", "y", text="label", source=src, text_align="center", text_baseline="middle", text_font_size="11px")
    fig.add_tools(HoverTool(renderers=[rect], tooltips=[(x_key, "@x"), (y_key or "", "@y"), (objective, "@v{0.000}"),
                                                        ("combinations", "@n")]))
    fig.xaxis.axis_label = x_key
    fig.yaxis.axis_label = y_key or ""
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    fig.grid.grid_line_color = None
    return fig


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def best_vs_median(run_dir: Path, config: dict, rows: list[dict], notes: list[str]):
    from quantlab.reports.resim import checked_equity

    ranked = [r for r in rows if r.get("params")]
    if not ranked:
        return None
    picks = [("best (rank 1)", ranked[0]), (f"median (rank {len(ranked) // 2 + 1})", ranked[len(ranked) // 2])]
    linked = F.Linked()
    fig = linked.figure("Equity of the best and the median combination", 280, "equity")
    from bokeh.models import ColumnDataSource, HoverTool

    drawn = 0
    for i, (label, row) in enumerate(picks[: 1 if len(ranked) == 1 else 2]):
        curve = checked_equity(config, {**row, **row["metrics"]}, notes, label)
        if curve is None:
            continue
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        src = ColumnDataSource({"t": curve[0], "equity": curve[1]})
        line = fig.line("t", "equity", source=src, color=F.PALETTE[i], line_width=2, legend_label=label)
        fig.add_tools(HoverTool(renderers=[line], mode="vline", formatters={"@t": "datetime"},
                                tooltips=[("", label), ("params", params), ("date", "@t{%F}"),
                                          ("equity", "@equity{0,0.00}")]))
        drawn += 1
    fig.legend.location = "top_left"
    return fig if drawn else None


def robustness(contract: dict):
    block = contract.get("robustness")
    if not isinstance(block, dict):
        return None
    from bokeh.models import Div

    flat = {k: v for k, v in block.items() if not isinstance(v, (dict, list))}
    for key, value in block.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
    rows = "".join(f"<tr><td>{F.esc(k)}</td><td style='text-align:right'>{F.fmt(v) if not isinstance(v, str) else F.esc(v)}"
                   "</td></tr>" for k, v in flat.items())
    return Div(text=f"<table style='font:12px system-ui,sans-serif;border-collapse:collapse'>{rows}</table>",
               sizing_mode="stretch_width")


def walkforward_splits(summary):
    """In-sample (best train) vs out-of-sample (rank 1 on test) per split: Sharpe and total
    return side by side, each on its own scale."""
    from bokeh.layouts import row
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool, NumeralTickFormatter
    from bokeh.plotting import figure
    from bokeh.transform import factor_cmap

    figs = []
    for metric, is_col, oos_col, tick in (("Sharpe", "best_train_sharpe", "test_sharpe_rank1", "0.00"),
                                          ("total return", "best_train_return", "test_return_rank1", "0%")):
        if is_col not in summary.columns or oos_col not in summary.columns:
            continue
        factors, values = [], []
        for _, rec in summary.iterrows():
            for phase, col in (("IS", is_col), ("OOS", oos_col)):
                factors.append((str(rec["split"]), phase))
                values.append(float(rec[col]) if rec[col] == rec[col] else 0.0)
        src = ColumnDataSource({"x": factors, "v": values})
        fig = figure(title=f"{metric}: in-sample (best train) vs out-of-sample (rank 1 on test)",
                     x_range=FactorRange(*factors), height=280, tools="save", toolbar_location=None,
                     sizing_mode="stretch_width")
        bars = fig.vbar("x", top="v", width=0.85, source=src,
                        fill_color=factor_cmap("x", palette=[F.BENCH, F.STRATEGY], factors=["IS", "OOS"], start=1))
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[("", "@x"), (metric, "@v{0.0000}")]))
        fig.yaxis.formatter = NumeralTickFormatter(format=tick)
        fig.xgrid.grid_line_color = None
        figs.append(fig)
    return row(*figs, sizing_mode="stretch_width") if figs else None


def board_rows(board, grid_keys: list[str], param_keys: list[str]) -> list[dict]:
    """Leaderboard rows (in rank order) as ``{params, metrics}``: report.json keeps only the top
    results, leaderboard.csv has every evaluated combination."""
    if board is None:
        return []
    from quantlab.metric_registry import metric_names

    params = [c for c in dict.fromkeys([*param_keys, *grid_keys]) if c in board.columns]
    metrics = [m for m in metric_names() if m in board.columns]
    rows = []
    for rec in board.to_dict("records"):
        rows.append({"params": {k: _plain(rec[k]) for k in params},
                     "metrics": {k: _plain(rec[k]) for k in metrics}})
    return rows


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def build(run_dir: Path, kind: str):
    run_dir = Path(run_dir)
    notes: list[str] = []
    report = read_json(run_dir / "report.json") or {}
    contract = report.get("machine_contract") or {}
    config = read_json(run_dir / "config.json") or {}
    metadata = read_json(run_dir / "metadata.json") or {}
    objective = _objective(config)
    notes.extend(str(w) for w in contract.get("warnings") or [])
    best = contract.get("best_result") or {}
    lines = [f"<b>{F.esc(config.get('ticker'))}</b> &middot; {F.esc(config.get('strategy'))} &middot; "
             f"{F.esc(config.get('start'))} &rarr; {F.esc(config.get('end'))} &middot; {F.esc(kind)} sweep &middot; "
             f"{F.esc(contract.get('combinations_evaluated'))} combinations evaluated, ranked by {F.esc(objective)}",
             "grid: " + F.esc("; ".join(f"{k} in {v}" for k, v in (config.get("param_grid") or {}).items())),
             "best parameters: " + F.esc(", ".join(f"{k}={v}" for k, v in (best.get("params") or {}).items())),
             f"<code>{F.esc(run_dir)}</code>"]
    items = [None]
    board = read_csv(run_dir / "leaderboard.csv")
    if kind == "grid":
        rows = board_rows(board, list(config.get("param_grid") or {}), list((best.get("params") or {})))
        items.append(F.section("Parameter heatmap"))
        items.append(heatmap(rows, objective, list(config.get("param_grid") or {})))
        items.append(F.section("Best vs median combination"))
        items.append(best_vs_median(run_dir, config, rows, notes))
    else:
        summary = read_csv(run_dir / "walkforward_summary.csv")
        if summary is not None and len(summary):
            items.append(F.section("Walk-forward splits"))
            items.append(walkforward_splits(summary))
        oos = read_frame(run_dir / "oos_equity.parquet")
        if oos is not None and len(oos):
            import numpy as np

            items.append(F.section("Stitched out-of-sample equity"))
            linked = F.Linked()
            eq = oos["equity"].to_numpy()
            items.append(F.equity_panel(linked, oos["timestamp"].to_numpy(), eq, None,
                                        title="Out-of-sample equity (test windows stitched)", label="OOS"))
            peak = np.maximum.accumulate(eq)
            items.append(F.drawdown_panel(linked, oos["timestamp"].to_numpy(), np.where(peak > 0, eq / peak - 1, 0.0)))
        else:
            notes.append("oos_equity.parquet is missing: no stitched equity")
    robust = robustness(contract)
    if robust is not None:
        items.append(F.section("Robustness (machine_contract.robustness)"))
        items.append(robust)
    items.append(F.section(f"Leaderboard ({0 if board is None else len(board)} rows; click a header to sort)"))
    if board is not None and len(board):
        items.append(F.table(board, height=420, name="leaderboard"))
    else:
        notes.append("leaderboard.csv is missing or empty")
    headline = contract.get("summary") or metadata.get("summary") or {}
    items[0] = F.header(f"QuantLab {kind} sweep {metadata.get('run_id') or run_dir.name}", lines,
                        F.metrics_html(headline, HEADLINE), notes)
    return F.page(items)
