"""trades.csv from a simulation's trades.parquet (runs, paper sessions and forward sessions).
"""

from __future__ import annotations

from quantlab.columnar import column_to_numpy, read_parquet
from quantlab.dates import bar_time_iso


def trades_csv(trades_path: str) -> str:
    """trades.csv: header row, comma-separated, no embedded commas, no empty cells. ``status``
    is ``open`` for a position still open at the end (exit = the last bar's close, no exit fee)."""
    tr = read_parquet(trades_path)
    n = tr.num_rows
    cols = {name: column_to_numpy(tr, name) for name in tr.column_names}
    for name in ("entry_time", "exit_time"):
        cols[name] = [bar_time_iso(t) for t in cols[name]]
    cols = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in cols.items()}
    header = ["trade_id", "side", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
              "entry_fee", "exit_fee", "pnl", "return", "bars_held", "status"]
    is_open = cols.get("open", [0] * n)
    lines = [",".join(header)]
    for i in range(n):
        side = "long" if cols["side"][i] > 0 else "short"
        lines.append(",".join([
            str(i + 1), side, cols["entry_time"][i], cols["exit_time"][i],
            f"{cols['entry_price'][i]:.10g}", f"{cols['exit_price'][i]:.10g}", f"{cols['qty'][i]:.10g}",
            f"{cols['entry_fee'][i]:.10g}", f"{cols['exit_fee'][i]:.10g}", f"{cols['pnl'][i]:.10g}",
            f"{cols['ret'][i]:.10g}", str(int(cols["bars_held"][i])), "open" if is_open[i] else "closed",
        ]))
    return "\n".join(lines) + "\n"
