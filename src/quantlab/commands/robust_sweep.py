"""Robustness statistics of a sweep, from its shards' summaries (issue #12).

A shard job does not keep its combinations' per-bar returns (2 GB at 100,000 combinations x
5,031 bars): it evaluates them a chunk of ``CHUNK`` combinations at a time into one small
float32 buffer and keeps what the merge's statistics need of them, ``<shard>.robust.npz``
(:class:`ShardSummary`; ``robustness.rows.row_summary``, the kernel of pass 1): per combination
the per-block sums and sums of squares (CSCV) and the mean and central moments (PSR, DSR), and
the Z-sums of the effective number of trials per ``Z_CHUNK`` combinations. The merge adds
them up (:func:`summary_stats`) and evaluates one combination again, the selected one, for its
bootstrap interval (its series: :func:`series_of`). The numbers are those of one pass over the
returns in the shards' order (docs/robustness.md, "In a sweep" and "Cost").
"""

from __future__ import annotations

import io
import json
import math
import os

CHUNK = 2048            # combinations evaluated per call in a shard (a multiple of rows.Z_CHUNK)
SUMMARY_BLOCKS = 16     # CSCV blocks (robustness.report.sweep_stats's default)


def summary_path(shard_parquet) -> str:
    """The robustness summary of a shard (beside its parquet)."""
    from quantlab.store_layout import SHARD_SUMMARY, shard_sibling

    return shard_sibling(shard_parquet, SHARD_SUMMARY)


def _recompute_spec(spec: dict) -> dict:
    """What evaluating a shard's combinations again needs (kept in its summary)."""
    return {k: spec[k] for k in ("data", "strategy", "engine", "start", "ticker", "interval", "risk_free_rate")
            if k in spec}


def _chunks(bars, spec: dict, combos: list[dict], threads, on_chunk):
    """Evaluate ``combos`` ``CHUNK`` at a time with their returns (one float32 buffer, reused),
    ``on_chunk(metrics, returns)`` per chunk; returns the periods per year."""
    import numpy as np

    from quantlab.commands.sweep.steps import _evaluate

    buf, ppy = None, None
    for lo in range(0, len(combos), CHUNK):
        part = combos[lo:lo + CHUNK]

        def into(k, t):  # the kernel writes into a zero-filled array
            nonlocal buf
            if buf is None or buf.shape[1] != t:
                buf = np.zeros((min(CHUNK, len(combos)), t), dtype=np.float32)
            else:
                buf[:k] = 0.0
            return buf[:k]
        metrics, returns, ppy = _evaluate(bars, spec, part, threads, keep_returns=into)
        on_chunk(metrics, returns)
    return ppy


class ShardSummary:
    """A shard's summary, chunk by chunk (:meth:`add`: consecutive ``(k, T)`` series of the
    kept combinations, every chunk but the last a multiple of ``Z_CHUNK`` rows), written by
    :meth:`write` (atomically: a killed shard leaves no summary)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self.parts: list = []
        self.t = None

    def add(self, returns) -> None:
        from quantlab.robustness.report import sweep_starts
        from quantlab.robustness.rows import row_summary

        self.t = returns.shape[1]
        self.parts.append(row_summary(returns, sweep_starts(self.t, 2, SUMMARY_BLOCKS), self.threads))

    def arrays(self) -> dict:
        import numpy as np

        t = self.t or 0
        s = len(self.parts[0][0]) if self.parts else 1
        empty = (np.zeros((s, 0)), np.zeros((s, 0)), np.zeros((4, 0)), np.zeros((0, t)))
        joined = [np.concatenate([p[i] for p in self.parts], axis=1 if i < 3 else 0) if self.parts else empty[i]
                  for i in range(4)]
        return dict(zip(("b_sum", "b_sq", "mom", "zparts"), joined))

    def write(self, path: str, keys: list[str], spec: dict) -> None:
        import numpy as np

        from quantlab.artifacts.io import atomic_write_bytes

        atomic_write_bytes(path, npz_bytes({"keys": np.array(json.dumps(keys)),
                                            "spec": np.array(json.dumps(_recompute_spec(spec))),
                                            "t": np.array(self.t or 0), **self.arrays()}))


def npz_bytes(arrays: dict) -> bytes:
    """``numpy.savez``'s file (``numpy.load`` reads it) with a fixed time stamp on its members:
    the same arrays give the same bytes (a speculated shard is byte for byte the step's)."""
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    return buf.getvalue()


def summarise_shard(bars, spec: dict, threads, out_path: str):
    """A shard's metrics (``{metric: array}`` over ``spec["combos"]``) and periods per year, its
    combinations evaluated ``CHUNK`` at a time; their summary goes to ``out_path``. (Every
    combination is summarised: a merge that drops some for want of bars, or a request using
    part of the shard, summarises its own again: :func:`summary_stats`.)"""
    import numpy as np

    summary = ShardSummary(threads)
    pieces: list = []

    def on_chunk(metrics, returns):
        pieces.append(metrics)
        summary.add(returns)
    ppy = _chunks(bars, spec, spec["combos"], threads, on_chunk)
    summary.write(out_path, spec["combo_keys"], spec)
    if not pieces:
        from quantlab.commands.sweep.steps import _evaluate

        return _evaluate(bars, spec, [], threads), None
    return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}, ppy


def series_of(spec: dict, combos: list[dict], threads: int | None = None):
    """The per-bar returns (float32, ``(len(combos), T)``) of ``combos`` as their shard computed
    them (``spec``: a summary's recompute spec), from the data store's bars."""
    from quantlab.commands.sweep.steps import _evaluate
    from quantlab.data import read_bars
    from quantlab.store_layout import data_files

    bars = read_bars(data_files(spec["data"])[0])
    return _evaluate(bars, spec, combos, threads, keep_returns=True)[1]


def _shard_params(shard_parquet: str) -> dict:
    from quantlab.artifacts.io import read_json
    from quantlab.store_layout import SHARD_SIDECAR, shard_sibling

    side = read_json(shard_sibling(shard_parquet, SHARD_SIDECAR))
    return {item["key"]: item["params"] for item in side["combos"]}


def summary_stats(shard_paths: list[str], keys: list[str], threads: int = 1):
    """``(SweepStats, periods per year)`` of the combinations ``keys`` (series ``j`` =
    ``keys[j]``) from the shards' summaries, or (None, None) when a shard kept none. A shard
    whose summarised combinations are not exactly the wanted ones of it (a later request reusing
    part of a shard) has those evaluated again and summarised (the same sums as a pass over them)."""
    import numpy as np

    from quantlab.columnar import metadata_of_file
    from quantlab.robustness.report import stats_from_sums, sweep_stats, sweep_starts
    from quantlab.robustness.rows import RowSource, matrix_source

    where = {key: j for j, key in enumerate(keys)}
    loaded, ppy, t, home, homes = [], None, None, {}, []
    for path in shard_paths:
        spath = summary_path(path)
        meta = metadata_of_file(path)
        if not os.path.isfile(spath) or "periods_per_year" not in meta:
            return None, None
        ppy = float(meta["periods_per_year"])
        with np.load(spath, allow_pickle=False) as npz:
            spec, have = json.loads(str(npz["spec"])), json.loads(str(npz["keys"]))
            wanted = [k for k in json.loads(meta["keys"]) if k in where]
            part = {name: npz[name] for name in ("b_sum", "b_sq", "mom", "zparts")} if have == wanted else None
            t_here = int(npz["t"])
        if not wanted:
            continue
        if part is None:  # summarised anew from the wanted combinations' series
            params = _shard_params(path)
            summary = ShardSummary(threads)
            for lo in range(0, len(wanted), CHUNK):
                summary.add(series_of(spec, [params[k] for k in wanted[lo:lo + CHUNK]], threads))
            part, t_here = summary.arrays(), summary.t
        if t is not None and t_here != t:
            return None, None
        t = t_here
        loaded.append((part, [where[k] for k in wanted]))
        home.update(dict.fromkeys(wanted, len(homes)))  # key -> its shard's (spec, path)
        homes.append((spec, path))
    if t is None or len(home) != len(keys) or t < 2:
        return None, None

    def column(j: int):
        spec, path = homes[home[keys[j]]]
        return np.asarray(series_of(spec, [_shard_params(path)[keys[j]]], threads)[0], dtype=np.float64)

    n = len(keys)
    if n < 2:  # one series: sums over one block, as one pass over it gives them
        return sweep_stats(matrix_source(column(0)[:, None])), ppy
    starts = sweep_starts(t, n, SUMMARY_BLOCKS)
    b_sum, b_sq, mom = np.zeros((len(starts), n)), np.zeros((len(starts), n)), np.zeros((4, n))
    z = np.zeros(t)
    for part, cols in loaded:
        cols = np.array(cols, dtype=np.int64)
        b_sum[:, cols], b_sq[:, cols], mom[:, cols] = part["b_sum"], part["b_sq"], part["mom"]
        for zpart in part["zparts"]:
            z += zpart

    def no_parts():
        raise RuntimeError("a sweep's returns are not kept: its summaries hold every pass's sums")
    source = RowSource(n, t, no_parts, column, threads=threads)
    return stats_from_sums(source, SUMMARY_BLOCKS, starts, b_sum, b_sq, mom, z), ppy


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
    pass over the shards' summaries. Returns ``(ranked rows, stats)``; ``stats`` (for
    :func:`report_for`) is None when the shards kept no returns (the rows then get no columns)."""
    from quantlab.commands.sweep.steps import shard_threads

    stats, ppy = summary_stats(shard_paths, [r["combo_key"] for r in rows], shard_threads()) if rows else (None, None)
    if stats is None:
        return rank(rows), None
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
