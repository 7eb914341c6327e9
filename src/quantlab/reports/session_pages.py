"""Interactive reports of a forward session (its primary candidate drawn like a run, plus every
candidate's equity from ledger.csv) and of a portfolio (equity vs the benchmark, drawdown,
exposure, weights, monthly returns)."""

from __future__ import annotations

from pathlib import Path

from quantlab.reports import figures as F
from quantlab.reports.readers import read_csv, read_frame, read_json

HEADLINE = ("total_return", "cagr", "sharpe_simple", "max_drawdown", "volatility_ann", "trades", "win_rate")


def forward(session: Path):
    from quantlab.reports.run_page import build

    contract = (read_json(session / "report.json") or {}).get("machine_contract") or {}
    primary = contract.get("primary_candidate") or "c1"
    layout = build(session, candidate=primary, kind="forward session")
    ledger = read_csv(session / "ledger.csv")
    if ledger is not None and "candidate" in ledger.columns and ledger["candidate"].nunique() > 1:
        from bokeh.models import ColumnDataSource, HoverTool

        linked = F.Linked()
        fig = linked.figure("Every candidate's equity (ledger.csv)", 260, "equity")
        for i, (name, part) in enumerate(ledger.groupby("candidate", sort=True)):
            src = ColumnDataSource({"t": part["timestamp"].to_numpy(), "equity": part["equity"].to_numpy()})
            line = fig.line("t", "equity", source=src, color=F.PALETTE[i % len(F.PALETTE)], line_width=2,
                            legend_label=f"{name}{' (primary)' if name == primary else ''}")
            fig.add_tools(HoverTool(renderers=[line], mode="vline", formatters={"@t": "datetime"},
                                    tooltips=[("candidate", str(name)), ("date", "@t{%F}"),
                                              ("equity", "@equity{0,0.00}")]))
        fig.legend.location = "top_left"
        fig.legend.click_policy = "hide"
        layout.children.insert(1, fig)
    return layout


def portfolio(run_dir: Path):
    import numpy as np

    notes: list[str] = []
    report = read_json(run_dir / "report.json") or {}
    contract = report.get("machine_contract") or {}
    metrics = (read_json(run_dir / "metrics.json") or {}).get("metrics") or contract.get("summary") or {}
    weights = read_json(run_dir / "weights.json") or {}
    notes.extend(str(w) for w in contract.get("warnings") or [])
    mode = contract.get("mode") or weights.get("mode")
    sessions = contract.get("session_ids") or weights.get("session_ids") or []
    lines = [f"mode <b>{F.esc(mode)}</b> &middot; {len(sessions)} forward sessions", f"<code>{F.esc(run_dir)}</code>"]
    items = [F.header(f"QuantLab portfolio {run_dir.name}", lines, F.metrics_html(metrics, HEADLINE), notes)]
    equity = read_frame(run_dir / "portfolio_equity.parquet")
    if equity is None or equity.empty:
        notes.append("portfolio_equity.parquet is missing or empty: no charts")
        return F.page(items)
    ts = equity["timestamp"].to_numpy()
    linked = F.Linked()
    bench = equity["benchmark_equity"].to_numpy() if "benchmark_equity" in equity.columns else None
    items.append(F.equity_panel(linked, ts, equity["equity"].to_numpy(), bench,
                                title="Portfolio equity vs benchmark", label="portfolio"))
    eq = equity["equity"].to_numpy()
    dd = equity["drawdown"].to_numpy() if "drawdown" in equity.columns else eq / np.maximum.accumulate(eq) - 1
    items.append(F.drawdown_panel(linked, ts, dd))
    if "exposure" in equity.columns:
        items.append(F.position_panel(linked, ts, equity["exposure"].to_numpy(),
                                      title="Exposure (sessions holding a position)"))
    per_mode = (weights.get("modes") or {}).get(mode) or {}
    table = per_mode.get("weights") or {}
    if table:
        import pandas as pd

        items.append(F.section("Weights"))
        items.append(F.table(pd.DataFrame({"session_id": list(table), "weight": list(table.values())}),
                             formats={"weight": "0.00%"}, name="weights"))
    if "returns" in equity.columns:
        items.append(F.monthly_heatmap(ts, equity["returns"].to_numpy()))
    return F.page(items)
