"""Robustness statistics of a sweep, read from its shards' return files (issue #12).

Each shard job keeps its combinations' per-bar net returns in ``<shard>.returns.npy`` (float32,
combos x bars, rows in the shard's key order). The merge step reads them memory-mapped, in
that layout, through :class:`quantlab.robustness.rows.RowSource`: no (bars x combinations)
matrix is ever assembled (docs/robustness.md, "In a sweep" and "Cost").
"""

from __future__ import annotations

import json
import os


def returns_path(shard_parquet) -> str:
    """The per-bar returns file of a shard (beside its parquet)."""
    return str(shard_parquet)[: -len(".parquet")] + ".returns.npy"


class ReturnsFile:
    """A shard's returns file, written in place: :meth:`buffer` memory-maps a zero-filled float32
    ``.npy`` at a temporary path beside the target for the grid kernel to write into (no
    in-memory copy, no second write); leaving the ``with`` block renames it into place, or
    deletes it on an error. :meth:`psr` gives each combination's PSR vs 0 from it."""

    def __init__(self, shard_parquet):
        self.path = returns_path(shard_parquet)
        self.tmp: str | None = None
        self.array = None

    def buffer(self, rows: int, bars: int):
        import tempfile

        import numpy as np

        fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp",
                                        dir=os.path.dirname(self.path) or ".")
        os.close(fd)
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=(rows, bars))
        return self.array

    def psr(self, rows: int):
        """Each combination's PSR vs 0 (the leaderboard's ``psr`` column; NaN where undefined)."""
        import numpy as np

        from quantlab.robustness import probabilistic_sharpe_columns

        if self.array is None or not self.array.shape[1]:
            return np.full(rows, np.nan)
        return probabilistic_sharpe_columns(np.asarray(self.array).T)  # rows as they are: no copy

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from quantlab.artifacts.io import file_mode

        if self.array is None and kind is None:  # nothing kept: an empty (0, 0) array
            self.buffer(0, 0)
        if self.array is not None:
            self.array.flush()
            self.array = None
        if kind is None:
            os.chmod(self.tmp, file_mode())
            os.replace(self.tmp, self.path)
        elif self.tmp is not None and os.path.exists(self.tmp):
            os.unlink(self.tmp)
        return False


def shard_source(shard_paths: list[str], keys: list[str]):
    """A ``RowSource`` over the combinations ``keys`` (series ``j`` = ``keys[j]``) and the bars'
    periods per year, read from the shards' returns files; (None, None) when a shard kept none."""
    import numpy as np

    from quantlab.columnar import metadata_of, read_parquet
    from quantlab.robustness.rows import RowSource

    where = {key: j for j, key in enumerate(keys)}
    files, ppy, t = [], None, None
    for path in shard_paths:
        rpath = returns_path(path)
        meta = metadata_of(read_parquet(path))
        if not os.path.isfile(rpath) or "periods_per_year" not in meta:
            return None, None
        ppy = float(meta["periods_per_year"])
        shard_keys = json.loads(meta["keys"])
        data = np.load(rpath, mmap_mode="r", allow_pickle=False)
        if data.shape[0] != len(shard_keys) or (t is not None and data.shape[1] != t):
            return None, None  # a shard that did not keep its returns
        t = data.shape[1]
        pairs = [(i, where[k]) for i, k in enumerate(shard_keys) if k in where]
        if pairs:
            rows, cols = (np.array(v, dtype=np.int64) for v in zip(*pairs))
            files.append((rpath, rows, cols))
    if t is None or not files:
        return None, None
    home = {int(c): (rpath, int(r)) for rpath, rows, cols in files for r, c in zip(rows, cols)}
    if len(home) != len(keys):
        return None, None  # a combination without a series

    def parts():
        for rpath, rows, cols in files:
            yield np.asarray(np.load(rpath, mmap_mode="r", allow_pickle=False)), rows, cols

    def column(j: int):
        rpath, r = home[j]
        return np.asarray(np.load(rpath, mmap_mode="r", allow_pickle=False)[r], dtype=np.float64)

    return RowSource(len(keys), t, parts, column), ppy


def robustness_of(shard_paths: list[str], rows: list[dict]) -> dict | None:
    """``robustness.report_from_source`` over the ranked ``rows`` (trials: every row, best: the
    first); None without rows or without return series."""
    from quantlab.robustness.report import report_from_source

    if not rows:
        return None
    source, ppy = shard_source(shard_paths, [r["combo_key"] for r in rows])
    if source is None or source.t < 2:
        return None
    return report_from_source(source, 0, ppy, seed=0)
