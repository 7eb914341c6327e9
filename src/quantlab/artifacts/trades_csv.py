"""trades.csv from a simulation's trades (runs, paper sessions and forward sessions).

The simulate step writes it beside trades.parquet in the store (from the trade arrays it has in
memory), so publishing a run (and a forward session) copies or reads a text file instead of
reading Parquet: an identical rerun then imports neither numpy nor pyarrow.
"""

from __future__ import annotations

from typing import Mapping

from quantlab.dates import bar_times_iso
from quantlab.engine.risk import EXIT_REASONS

HEADER = ("trade_id", "side", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
          "entry_fee", "exit_fee", "pnl", "return", "bars_held", "status", "exit_reason")
FLOAT_COLUMNS = ("entry_price", "exit_price", "qty", "entry_fee", "exit_fee", "pnl", "ret")  # as %.10g
ROW = ",".join(["%d", "%s", "%s", "%s", *["%.10g"] * len(FLOAT_COLUMNS), "%d", "%s", "%s"])


def trades_csv_text(col: Mapping) -> str:
    """trades.csv: header row, comma-separated, no embedded commas, no empty cells. ``status``
    is ``open`` for a position still open at the end (exit = the last bar's close, no exit fee);
    ``exit_reason`` is why the trade closed (``engine.risk.EXIT_REASONS``, docs/engine.md).
    ``col`` holds the trade log's columns as numpy arrays (the columns of trades.parquet).
    Each row is one ``%`` of :data:`ROW` (floats as ``%.10g``; the timestamps in one numpy call):
    a 1M-bar run's 60k trades format in a third of the time of a format call per cell."""
    n = len(col["side"])
    is_open = col["open"].tolist() if "open" in col else [0] * n
    columns = [range(1, n + 1), ["long" if s > 0 else "short" for s in col["side"].tolist()],
               bar_times_iso(col["entry_time"]), bar_times_iso(col["exit_time"])]
    columns += [col[name].tolist() for name in FLOAT_COLUMNS]
    columns += [col["bars_held"].tolist(), ["open" if o else "closed" for o in is_open],
                [EXIT_REASONS[int(r)] for r in col["exit_reason"].tolist()]]
    return "\n".join([",".join(HEADER), *map(ROW.__mod__, zip(*columns))]) + "\n"
