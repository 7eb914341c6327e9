"""trades.csv from a simulation's trades.parquet (runs, paper sessions and forward sessions).
"""

from __future__ import annotations

from quantlab.columnar import column_to_numpy, read_parquet
from quantlab.dates import bar_times_iso
from quantlab.engine.risk import EXIT_REASONS


def trades_csv(trades_path: str) -> str:
    """trades.csv: header row, comma-separated, no embedded commas, no empty cells. ``status``
    is ``open`` for a position still open at the end (exit = the last bar's close, no exit fee);
    ``exit_reason`` is why the trade closed (``engine.risk.EXIT_REASONS``, docs/engine.md).
    Built column by column (the timestamps in one numpy call)."""
    tr = read_parquet(trades_path)
    n = tr.num_rows
    col = {name: column_to_numpy(tr, name) for name in tr.column_names}
    fmt = "{:.10g}".format
    columns = [[str(i) for i in range(1, n + 1)], ["long" if s > 0 else "short" for s in col["side"].tolist()],
               bar_times_iso(col["entry_time"]), bar_times_iso(col["exit_time"])]
    columns += [list(map(fmt, col[name].tolist())) for name in
                ("entry_price", "exit_price", "qty", "entry_fee", "exit_fee", "pnl", "ret")]
    columns.append([str(int(b)) for b in col["bars_held"].tolist()])
    is_open = col["open"].tolist() if "open" in col else [0] * n
    columns.append(["open" if o else "closed" for o in is_open])
    columns.append([EXIT_REASONS[int(r)] for r in col["exit_reason"].tolist()])
    header = ["trade_id", "side", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
              "entry_fee", "exit_fee", "pnl", "return", "bars_held", "status", "exit_reason"]
    return "\n".join([",".join(header), *map(",".join, zip(*columns))]) + "\n"
