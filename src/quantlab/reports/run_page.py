"""The interactive report of a run directory (and of a forward session, whose primary candidate
is drawn the same way): price with entries, exits and stop levels, equity vs buy and hold,
drawdown, position, the trades table and the monthly-returns heatmap. The four time panels share
one x range, so zooming or panning one moves all, and one crosshair runs through them."""

from __future__ import annotations

from pathlib import Path

from quantlab.reports import figures as F
from quantlab.reports.readers import read_csv, read_frame, read_json, store_bars

STOP_COLUMNS = ("stop_price", "stop_level", "stop")
HEADLINE = ("total_return", "cagr", "sharpe_simple", "sortino", "max_drawdown", "calmar", "trades",
            "win_rate", "profit_factor", "exposure", "benchmark_return")


def _trades(run_dir: Path, candidate: str | None):
    trades = read_csv(run_dir / "trades.csv")
    if trades is None:
        return None
    if candidate is not None and "candidate" in trades.columns:
        trades = trades[trades["candidate"].astype(str) == candidate].reset_index(drop=True)
    return trades


def price_panel(linked: F.Linked, equity, bars, trades):
    """Candles when the store still has the run's bars (else the close line), entry and exit
    markers at their fill prices, and each trade's stop level when trades.csv carries one."""
    from bokeh.models import ColumnDataSource, HoverTool

    fig = linked.figure("Price with entries (▲) and exits (▼)", 300, "price")
    ts = equity["timestamp"]
    price_renderers = []
    if bars is not None:
        bars = bars[(bars["timestamp"] >= ts.iloc[0]) & (bars["timestamp"] <= ts.iloc[-1])]
        src = ColumnDataSource({"t": bars["timestamp"].to_numpy(), **{c: bars[c].to_numpy() for c in F_OHLC}})
        spacing = (bars["timestamp"].diff().median() if len(bars) > 1 else None)
        width_ms = spacing.total_seconds() * 1000 * 0.7 if spacing is not None else 12 * 3600 * 1000
        up = bars["close"] >= bars["open"]
        fig.segment("t", "high", "t", "low", source=src, color="#555")
        colors = ["#26a69a" if u else "#ef5350" for u in up]
        src.data["color"] = colors
        body = fig.vbar("t", width_ms, "open", "close", source=src, fill_color="color", line_color="color")
        price_renderers.append(body)
        tips = [("date", "@t{%F}"), ("open", "@open{0,0.00}"), ("high", "@high{0,0.00}"),
                ("low", "@low{0,0.00}"), ("close", "@close{0,0.00}")]
    elif "close" in equity.columns:
        src = ColumnDataSource({"t": ts.to_numpy(), "close": equity["close"].to_numpy()})
        price_renderers.append(fig.line("t", "close", source=src, color="#333", line_width=1.5,
                                        legend_label="close"))
        tips = [("date", "@t{%F}"), ("close", "@close{0,0.00}")]
    if price_renderers:
        fig.add_tools(HoverTool(renderers=price_renderers, tooltips=tips, mode="vline", formatters={"@t": "datetime"}))
    if trades is not None and len(trades):
        _trade_markers(fig, trades)
    return fig


F_OHLC = ("open", "high", "low", "close")


def _trade_markers(fig, trades) -> None:
    from bokeh.models import ColumnDataSource, HoverTool

    side = trades["side"].astype(str) if "side" in trades.columns else None
    reason = trades["exit_reason"].astype(str) if "exit_reason" in trades.columns else None
    entries = ColumnDataSource({
        "t": trades["entry_time"].to_numpy(), "price": trades["entry_price"].to_numpy(),
        "id": trades["trade_id"].astype(str).tolist() if "trade_id" in trades.columns else [""] * len(trades),
        "side": side.tolist() if side is not None else ["long"] * len(trades)})
    ent = fig.scatter("t", "price", source=entries, marker="triangle", size=11, color=F.UP,
                      line_color="black", legend_label="entry")
    closed = trades.dropna(subset=["exit_time", "exit_price"])
    if "status" in closed.columns:
        closed = closed[closed["status"].astype(str) != "open"]
    exits = ColumnDataSource({
        "t": closed["exit_time"].to_numpy(), "price": closed["exit_price"].to_numpy(),
        "id": closed["trade_id"].astype(str).tolist() if "trade_id" in closed.columns else [""] * len(closed),
        "ret": closed["return"].to_numpy() if "return" in closed.columns else [float("nan")] * len(closed),
        "reason": (closed["exit_reason"].astype(str).tolist() if reason is not None else ["signal"] * len(closed))})
    ext = fig.scatter("t", "price", source=exits, marker="inverted_triangle", size=11, color=F.DOWN,
                      line_color="black", legend_label="exit")
    fig.add_tools(HoverTool(renderers=[ent], tooltips=[("entry", "#@id @side"), ("date", "@t{%F}"),
                                                       ("price", "@price{0,0.00}")], formatters={"@t": "datetime"}))
    fig.add_tools(HoverTool(renderers=[ext], tooltips=[("exit", "#@id (@reason)"), ("date", "@t{%F}"),
                                                       ("price", "@price{0,0.00}"), ("return", "@ret{0.00%}")],
                            formatters={"@t": "datetime"}))
    stop_col = next((c for c in STOP_COLUMNS if c in trades.columns), None)
    if stop_col is not None:
        stops = trades.dropna(subset=[stop_col, "entry_time"])
        end = stops["exit_time"].fillna(stops["entry_time"])
        src = ColumnDataSource({"t0": stops["entry_time"].to_numpy(), "t1": end.to_numpy(),
                                "stop": stops[stop_col].to_numpy()})
        fig.segment("t0", "stop", "t1", "stop", source=src, color=F.STOP, line_dash="dashed", line_width=2,
                    legend_label="stop level")
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"


def build(run_dir: Path, *, candidate: str | None = None, kind: str = "run"):
    """The Bokeh layout of a run directory (``candidate`` picks a forward session's candidate)."""
    import numpy as np

    run_dir = Path(run_dir)
    notes: list[str] = []
    report = read_json(run_dir / "report.json") or {}
    metadata = read_json(run_dir / "metadata.json") or read_json(run_dir / "session_metadata.json") or {}
    config = {**metadata, **(read_json(run_dir / "config.json") or {})}  # a session keeps ticker etc. in metadata
    metrics = (read_json(run_dir / "metrics.json") or {}).get("metrics") or {}
    run_id = metadata.get("run_id") or metadata.get("session_id") or run_dir.name
    equity = read_frame(run_dir / "equity.parquet")
    trades = _trades(run_dir, candidate)
    lines = [f"<b>{F.esc(config.get('ticker'))}</b> &middot; {F.esc(config.get('strategy'))} &middot; "
             f"{F.esc(config.get('start') or config.get('forward_start'))} &rarr; "
             f"{F.esc(config.get('end') or config.get('forward_end'))} &middot; {F.esc(config.get('interval'))}",
             "parameters: " + F.esc(", ".join(f"{k}={v}" for k, v in (config.get("strategy_params") or {}).items())),
             f"<code>{F.esc(run_dir)}</code>"]
    warnings = ((report.get("machine_contract") or {}).get("warnings") or metadata.get("warnings") or [])
    notes.extend(str(w) for w in warnings)
    items = []
    if equity is None or equity.empty:
        notes.append("equity.parquet is missing or empty: no charts")
        items.append(F.header(f"QuantLab {kind} {run_id}", lines, F.metrics_html(metrics, HEADLINE), notes))
        return F.page(items)
    bars = store_bars(run_dir, metadata)
    if bars is None:
        notes.append("the run's OHLC bars are no longer in the store: the price panel shows the close")
    if trades is None:
        notes.append("trades.csv is missing or unreadable")
    elif not len(trades):
        notes.append("the run made no trades")
    items.append(F.header(f"QuantLab {kind} {run_id}", lines, F.metrics_html(metrics, HEADLINE), notes))
    linked = F.Linked()
    ts = equity["timestamp"].to_numpy()
    items.append(price_panel(linked, equity, bars, trades))
    bench = equity["benchmark_equity"].to_numpy() if "benchmark_equity" in equity.columns else None
    items.append(F.equity_panel(linked, ts, equity["equity"].to_numpy(), bench))
    eq = equity["equity"].to_numpy()
    peak = np.maximum.accumulate(eq)
    drawdown = equity["drawdown"].to_numpy() if "drawdown" in equity.columns else np.where(peak > 0, eq / peak - 1, 0.0)
    items.append(F.drawdown_panel(linked, ts, drawdown))
    if "position" in equity.columns:
        items.append(F.position_panel(linked, ts, equity["position"].to_numpy()))
    items.append(F.section(f"Trades ({0 if trades is None else len(trades)})"))
    if trades is not None and len(trades):
        items.append(F.table(trades, formats={"return": "0.00%"}, name="trades"))
    returns = equity["returns"].to_numpy() if "returns" in equity.columns else np.diff(eq, prepend=eq[0]) / eq
    items.append(F.monthly_heatmap(ts, returns))
    return F.page(items)
