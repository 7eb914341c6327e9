"""The registry report's leaderboard: result rows grouped by (ticker, window, strategy) so Sharpe
ratios are only ranked against comparable runs, a parameters column, a link to each result's own
report.html, zero-trade results never marked best, and a filter box / sortable headers (a small
inline script allowed by the page's Content-Security-Policy through its hash)."""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from quantlab.reports.readers import read_json

SCRIPT = """
document.querySelectorAll('th[data-k]').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
var rs=Array.prototype.slice.call(b.rows);rs.sort(function(x,y){var a=x.cells[i].dataset.v,c=y.cells[i].dataset.v;
var na=parseFloat(a),nc=parseFloat(c);var r=(isNaN(na)||isNaN(nc))?String(a).localeCompare(String(c)):na-nc;
return asc?r:-r;});rs.forEach(function(r){b.appendChild(r);});});});
var f=document.getElementById('filter');if(f){f.addEventListener('input',function(){var q=f.value.toLowerCase();
document.querySelectorAll('section.group').forEach(function(g){var n=0;g.querySelectorAll('tbody tr').forEach(function(r){
var ok=(g.dataset.key+' '+r.textContent).toLowerCase().indexOf(q)>=0;r.hidden=!ok;if(ok)n++;});g.hidden=n===0;});});}
"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

WIDTHS = (3, 18, 8, 9, 22, 6, 7, 7, 6, 5, 9)  # percent of the table, one per column: never wider than the page
COLUMNS = (("#", "int"), ("result", "text"), ("kind", "text"), ("created_at", "text"), ("parameters", "params"),
           ("sharpe_simple", "float"), ("total_return", "pct"), ("max_drawdown", "pct"), ("win_rate", "pct"),
           ("trades", "int"), ("notes", "text"))


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, kind: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "&ndash;"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value)}"
    return f"{value:.3f}"


def finite(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def eligible(row: dict) -> bool:
    """May be called "best": a finite sharpe_simple and at least one trade (a flat, zero-trade
    result has no returns to rank)."""
    trades = row.get("trades")
    no_trades = isinstance(trades, (int, float)) and trades <= 0 and row.get("kind") != "portfolio"
    return finite(row.get("sharpe_simple")) is not None and not no_trades  # a portfolio counts no trades


def rank_order(rows: list[dict]) -> list[dict]:
    """Eligible rows by sharpe_simple (best first), then the rest (zero-trade or no sharpe)."""
    return sorted(rows, key=lambda r: (not eligible(r), -(finite(r.get("sharpe_simple")) or 0.0), str(r.get("run_id"))))


def parameters(row: dict) -> dict:
    """The strategy parameters of a result: a run's or session's own, a sweep's best combination's,
    a portfolio's mode and sessions."""
    path = Path(row["path"])
    report = read_json(path / "report.json") or {}
    contract = report.get("machine_contract") or {}
    best = contract.get("best_result") or {}
    if isinstance(best, dict) and best.get("params"):
        return {f"best {k}": v for k, v in best["params"].items()}
    config = read_json(path / "config.json") or {}
    params = config.get("strategy_params") or (read_json(path / "session_metadata.json") or {}).get("strategy_params")
    if params:
        return dict(params)
    if contract.get("contract_type") == "quantlab.portfolio.result":
        return {"mode": contract.get("mode"), "sessions": len(contract.get("session_ids") or [])}
    return {}


def group_key(row: dict) -> tuple[str, str, str]:
    if row.get("kind") == "portfolio":
        return ("portfolios", "–", "forward sessions combined")
    window = f"{row.get('start') or '?'} → {row.get('end') or '?'}" if row.get("start") or row.get("end") else "–"
    return (str(row.get("ticker") or "–"), window, str(row.get("strategy") or "–"))


def _cell(row: dict, col: str, kind: str, rank: int, root: Path, link: str | None) -> str:
    if col == "#":
        return f'<td class="num" data-v="{rank}">{rank}</td>'
    if col == "result":
        rid = e(row.get("run_id"))
        shown = rid.replace("_", "_<wbr>")
        inner = f'<a href="{e(link)}"><code>{shown}</code></a>' if link else f"<code>{shown}</code>"
        return f'<td data-v="{rid}" title="{e(row.get("path"))}">{inner}</td>'
    if col == "notes":
        notes = list(row.get("problems") or [])
        if not eligible(row) and finite(row.get("sharpe_simple")) is not None:
            notes.append("no trades: not ranked")
        return f'<td class="problem">{e("; ".join(notes))}</td>'
    if kind == "params":
        text = ", ".join(f"{k}={v}" for k, v in row.get("parameters", {}).items())
        return f'<td class="params" data-v="{e(text)}">{e(text)}</td>'
    if kind == "text":
        return f'<td data-v="{e(row.get(col))}">{e(row.get(col))}</td>'
    v = finite(row.get(col))
    return f'<td class="num" data-v="{"" if v is None else v}">{num(row.get(col), kind)}</td>'


LABELS = {"created_at": "created", "sharpe_simple": "sharpe", "total_return": "return", "max_drawdown": "max DD",
          "win_rate": "win rate"}
COLGROUP = "<colgroup>" + "".join(f'<col style="width:{w}%">' for w in WIDTHS) + "</colgroup>"


def group_tables(rows: list[dict], root: Path) -> str:
    """One section per (ticker, window, strategy), best group first, rows ranked inside it."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[group_key(row)].append(row)
    ordered = sorted(groups.items(), key=lambda kv: (not any(eligible(r) for r in kv[1]),
                                                    -max((finite(r.get("sharpe_simple")) or 0.0)
                                                         for r in kv[1] if eligible(r)) if any(eligible(r) for r in kv[1]) else 0,
                                                    kv[0]))
    head = "".join(f'<th scope="col" data-k="{c}"{" class=num" if k in ("int", "float", "pct") else ""}>{e(LABELS.get(c, c))}</th>'
                   for c, k in COLUMNS)
    parts = []
    for key, members in ordered:
        body = []
        for rank, row in enumerate(rank_order(members), 1):
            link = row.get("report_html")
            cls = ' class="top"' if rank == 1 and eligible(row) else ""
            body.append(f"<tr{cls}>" + "".join(_cell(row, c, k, rank, root, link) for c, k in COLUMNS) + "</tr>")
        ticker, window, strategy = key
        label = f"{ticker} · {window} · {strategy}"
        parts.append(f'<section class="group" data-key="{e(label)}"><h3>{e(label)} '
                     f'<span class="count">({len(members)})</span></h3>'
                     f'<table class="board">{COLGROUP}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
                     "</section>")
    return "".join(parts)


def kinds_summary(rows: list[dict]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.get("kind") or "run"] += 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def script_tag() -> str:
    return f"<script>{SCRIPT}</script>"
