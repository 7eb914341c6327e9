"""trades.csv from a simulation's trades (runs, paper sessions and forward sessions).

The simulate step writes it beside trades.parquet in the store (from the trade arrays it has in
memory), so publishing a run (and a forward session) copies or reads a text file instead of
reading Parquet: an identical rerun then imports neither numpy nor pyarrow.

:func:`write_trades_csv` formats a big trade log (a 1M-bar run's 60k trades: 10 MB) with the
numba kernel of :mod:`.trades_csv_kernel` (no GIL held, ~15x less CPU), byte for byte what
:func:`trades_csv_text` gives; a small one (``engine.jit.use_jit`` with :data:`WORK_PER_ROW`)
stays in Python and never imports numba.
"""

from __future__ import annotations

from typing import Mapping

from quantlab.artifacts.io import atomic_write_with
from quantlab.dates import bar_times_iso
from quantlab.engine.risk import EXIT_REASONS

HEADER = ("trade_id", "side", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
          "entry_fee", "exit_fee", "pnl", "return", "bars_held", "status", "exit_reason")
FLOAT_COLUMNS = ("entry_price", "exit_price", "qty", "entry_fee", "exit_fee", "pnl", "ret")  # as %.10g
ROW = ",".join(["%d", "%s", "%s", "%s", *["%.10g"] * len(FLOAT_COLUMNS), "%d", "%s", "%s"])
# engine.jit work units ("bar-steps") per row: Python spends ~2.6 us a row, the kernel ~0.2 us, so a
# row saves ~3x what a bar of a Python kernel saves (jit.COLD_THRESHOLD: ~160k rows in a cold process)
WORK_PER_ROW = 3
# NaT, and the first second of datetime64[ns] (numpy's [ns] -> [s] overflows there): Python's
TIME_FLOOR = -(2**63) + 10**9
HARD_CELLS = 4096  # cells the kernel may leave to Python's %.10g before the whole log goes to Python


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


def write_trades_csv(path: str, col: Mapping) -> None:
    """Write trades.csv atomically: :func:`trades_csv_parts` one after the other."""
    parts = trades_csv_parts(col)
    atomic_write_with(path, lambda fh: [fh.write(part) for part in parts])


def trades_csv_parts(col: Mapping) -> list:
    """trades.csv's bytes as a list of bytes-like pieces (no copy of the kernel's buffer): the
    kernel's output with Python's ``%.10g`` of its hard cells spliced in, else
    ``trades_csv_text(col)`` encoded (a small log, ``QUANTLAB_JIT=never``, numba missing in
    ``auto`` mode, or an input the kernel does not take)."""
    from quantlab.artifacts import trades_csv_kernel as kern
    from quantlab.engine import jit

    n = len(col["side"])
    work = WORK_PER_ROW * n
    parts = None
    if n and jit.use_jit(work, kern.trades_csv_kernel):  # the inputs are checked only then
        args = _kernel_args(col)
        if args is not None and jit.numba_for(kern.trades_csv_kernel, work) is not None:
            parts = _kernel_parts(col, args, n)
    if parts is None:
        return [trades_csv_text(col).encode()]
    return parts


def warm_kernel() -> None:
    """Run the kernel once on a one-trade log (under ``QUANTLAB_JIT=always``: the caller's
    ``commands.warmup.forced_jit``): numba loads it from its on-disk cache now, and it counts as
    warm (``engine.jit.use_jit``), so the run's trade log goes through it whatever its size."""
    import numpy as np

    one = {name: np.ones(1) for name in FLOAT_COLUMNS}
    one.update(side=np.ones(1, dtype=np.int8), entry_time=np.zeros(1, dtype="datetime64[ns]"),
               exit_time=np.zeros(1, dtype="datetime64[ns]"), bars_held=np.zeros(1, dtype=np.int64),
               open=np.zeros(1, dtype=np.int8), exit_reason=np.zeros(1, dtype=np.int8))
    trades_csv_parts(one)


def _kernel_args(col: Mapping) -> list | None:
    """The kernel's array arguments (canonical dtypes, copies only where a dtype differs), or
    None for an input only the Python path formats exactly (other dtypes or time units, an
    exit reason outside the labels, the smallest int64, a time under :data:`TIME_FLOOR`)."""
    import numpy as np

    times = [np.asarray(col[name]) for name in ("entry_time", "exit_time")]
    floats = [np.asarray(col[name]) for name in FLOAT_COLUMNS]
    bars_held, reason = np.asarray(col["bars_held"]), np.asarray(col["exit_reason"])
    if (any(t.dtype not in (np.dtype("datetime64[ns]"), np.dtype(np.int64)) for t in times)
            or any(f.dtype.kind != "f" for f in floats) or bars_held.dtype.kind not in "iu"
            or bars_held.dtype == np.uint64 or reason.dtype.kind not in "iu"):
        return None
    bars_held = bars_held.astype(np.int64, copy=False)
    if (bars_held.min() == np.iinfo(np.int64).min or reason.min() < 0 or reason.max() >= len(EXIT_REASONS)
            or min(t.view(np.int64).min() for t in times) < TIME_FLOOR):
        return None
    is_open = np.asarray(col["open"]) != 0 if "open" in col else np.zeros(len(bars_held), dtype=bool)
    return [np.asarray(col["side"]) > 0, *(t.view(np.int64) for t in times),
            *(f.astype(np.float64, copy=False) for f in floats), bars_held, is_open, reason.astype(np.int8)]


def _word_table():
    """The kernel's words (``trades_csv_kernel.WORDS``, then ``EXIT_REASONS``) as one byte array
    and each word's end."""
    import numpy as np

    from quantlab.artifacts.trades_csv_kernel import WORDS

    words = [word.encode() for word in (*WORDS, *EXIT_REASONS)]
    return np.frombuffer(b"".join(words), dtype=np.uint8), np.cumsum([len(w) for w in words]).astype(np.int64)


def _kernel_parts(col: Mapping, args: list, n: int) -> list | None:
    import numpy as np

    from quantlab.artifacts import trades_csv_kernel as kern
    from quantlab.engine import jit

    buf = np.empty(kern.ROW_BOUND * n, dtype=np.uint8)
    hard = np.empty(1 + 2 * HARD_CELLS, dtype=np.int64)
    (end, _) = jit.call(kern.trades_csv_kernel, WORK_PER_ROW * n, buf, *args, *_word_table(), hard, jit=True)
    if end < 0:
        return None
    parts = [(",".join(HEADER) + "\n").encode()]
    start = 0
    for offset, cell in hard[1:1 + 2 * int(hard[0])].reshape(-1, 2).tolist():
        row, column = divmod(cell, kern.N_FLOATS)
        parts += [buf[start:offset], ("%.10g" % float(col[FLOAT_COLUMNS[column]][row])).encode()]
        start = offset
    parts.append(buf[start:end])
    return parts
