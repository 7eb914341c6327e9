"""Robustness statistics of a sweep, read from its shards' return files (issue #12).

Each shard job keeps its combinations' per-bar net returns in ``<shard>.returns.npy`` (float32,
combos x bars, rows in the shard's key order). The merge step reads them memory-mapped, in
that layout, through :class:`quantlab.robustness.rows.RowSource`: no (bars x combinations)
matrix is ever assembled (docs/robustness.md, "In a sweep" and "Cost").
"""

from __future__ import annotations

import json
import math
import os


def returns_path(shard_parquet) -> str:
    """The per-bar returns file of a shard (beside its parquet)."""
    return str(shard_parquet)[: -len(".parquet")] + ".returns.npy"


class ReturnsFile:
    """A shard's returns file, written in place: :meth:`buffer` memory-maps a zero-filled float32
    ``.npy`` at a temporary path beside the target for the grid kernel to write into (no
    in-memory copy, no second write); leaving the ``with`` block renames it into place, or
    deletes it on an error."""

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

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from quantlab.artifacts.io import file_mode

        if self.array is None and kind is None:  # nothing kept: an empty (0, 0) array
            self.buffer(0, 0)
        # no flush(): it is msync, a synchronous disk write; the pages are in the page cache,
        # which every reader sees (like any file written without fsync)
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

    from quantlab.commands.sweep.steps import shard_threads

    return RowSource(len(keys), t, parts, column, threads=shard_threads()), ppy  # the merge's passes


ROBUST_OBJECTIVES = ("psr", "deflated_sharpe")  # per-combination columns a sweep can rank by


def robust_requested(params: dict, exp) -> bool:
    """Whether a sweep computes the robustness statistics: yes unless ``robustness: false``
    (default on since their cost fits the 25 % budget: docs/robustness.md, "Cost"). Ranking by
    ``psr`` / ``deflated_sharpe`` needs them: ConfigError (exit 2) when they are switched off."""
    from quantlab.errors import ConfigError

    on = params.get("robustness") is not False
    wanted = [m for m in exp.sort_by if m in ROBUST_OBJECTIVES]
    if wanted and not on:
        raise ConfigError(f"ranking by {wanted[0]} needs the robustness statistics: drop "
                          "params.robustness = false (docs/robustness.md)")
    return on


def rank_robust(shard_paths: list[str], rows: list[dict], rank):
    """``rank(rows)`` after giving every row its per-combination ``psr`` and ``deflated_sharpe``
    (in ``row["metrics"]``, so ``objective: psr`` / ``deflated_sharpe`` rank by them), from one
    pass over the shards' returns. Returns ``(ranked rows, stats)``; ``stats`` (for
    :func:`report_for`) is None when the shards kept no returns (the rows then get no columns)."""
    from quantlab.robustness.report import sweep_stats

    source, ppy = shard_source(shard_paths, [r["combo_key"] for r in rows]) if rows else (None, None)
    if source is None or source.t < 2:
        return rank(rows), None
    stats = sweep_stats(source)
    for r, psr, dsr in zip(rows, stats.psr.tolist(), stats.dsr.tolist()):
        r["metrics"]["psr"] = psr if math.isfinite(psr) else None
        r["metrics"]["deflated_sharpe"] = dsr if math.isfinite(dsr) else None
    return rank(rows), (stats, ppy, {r["combo_key"]: i for i, r in enumerate(rows)})


def psr_of_rows(returns) -> list:
    """Per-row PSR vs 0 of a (series, bars) float32 return matrix, as a sweep's ``psr`` column
    gets it (:func:`sweep_stats`); None where undefined (fewer than 2 bars, no variance). A
    walk-forward's test rows: the selected combinations on the test window."""
    from quantlab.robustness.report import sweep_stats
    from quantlab.robustness.rows import matrix_source

    n, t = returns.shape
    if n == 0 or t < 2:
        return [None] * n
    return [v if math.isfinite(v) else None for v in sweep_stats(matrix_source(returns.T)).psr.tolist()]


def rank_and_report(on: bool, shard_paths: list[str], rows: list[dict], rank, pick=None) -> tuple[list, dict]:
    """The merge steps' hook: ``(ranked rows, {"robustness": report})`` with robustness ``on``
    (:func:`rank_robust`, then :func:`report_for` with ``pick(ranked)`` as the selected
    combination, default the first), ``(rank(rows), {})`` with it off."""
    if not on:
        return rank(rows), {}
    ranked, stats = rank_robust(shard_paths, rows, rank)
    best = (pick or (lambda rs: rs[0] if rs else None))(ranked)
    return ranked, {"robustness": report_for(stats, best, ranked)}


def report_for(stats, best: dict | None, ranked: list[dict]) -> dict | None:
    """The sweep's robustness report (``machine_contract.robustness``, with the CSCV ``points``
    for the scatter picture) with ``best`` as the selected combination (its ``best_index``: its
    position in the ranked leaderboard, 0 = rank 1); None without stats."""
    from quantlab.robustness.report import report_from_stats

    if stats is None or best is None:
        return None
    st, ppy, where = stats
    report = report_from_stats(st, where[best["combo_key"]], ppy, seed=0, points=True)
    report["best_index"] = next(i for i, r in enumerate(ranked) if r is best)
    return report


def pictures(directory, robustness: dict | None, title: str, files: dict | None = None) -> dict | None:
    """Draw ``pbo_logits.png`` and ``is_vs_oos.png`` into ``directory`` from a report of
    :func:`report_for` and return the report without its ``points`` (what the contract shows);
    ``files`` (the contract's artifact map) gets the two names when given."""
    from pathlib import Path

    from quantlab.artifacts.io import atomic_write_bytes
    from quantlab.artifacts.robustness_png import is_oos_scatter_png, pbo_logit_png

    if not robustness:
        return robustness
    robustness = dict(robustness)
    points = robustness.pop("points", None)
    if points is None or not robustness["pbo"]["splits"]:
        return robustness
    directory = Path(directory)
    atomic_write_bytes(directory / "pbo_logits.png",
                       pbo_logit_png(robustness["pbo"]["logit"]["histogram"], robustness["pbo"]["pbo"], title))
    atomic_write_bytes(directory / "is_vs_oos.png",
                       is_oos_scatter_png(points["is_sharpe"], points["oos_sharpe"],
                                          robustness["pbo"]["degradation"], f"{title}: IS vs OOS Sharpe"))
    if files is not None:
        files.update(pbo_logits="pbo_logits.png", is_vs_oos="is_vs_oos.png")
    return robustness
