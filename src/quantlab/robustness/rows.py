"""The passes over raw returns, on row-major series (one row per combination, float32 fine).

A sweep's shards store their combinations' returns as ``(combos, bars)`` rows; reading them in
that layout, memory-mapped, with no ``(bars, N)`` matrix assembled, is what keeps the statistics
cheap (docs/robustness.md, "Cost"). Two passes, each over every kept bar of every combination:

1. :func:`row_stats`: per row, the per-block sums and sums of squares (the CSCV input, S x N)
   and the mean and central moments m2, m3, m4 (population, float64 accumulation).
2. :func:`weighted_row_sum`: sum over rows of ``weight[row] * row`` (a T vector): with weights
   1/sd it is Z·1, the input of :func:`quantlab.robustness.stats.effective_trials`. Each row's
   weight comes from its own sums, so under numba :func:`row_stats_z` does it inside pass 1,
   while the row is in cache (a sweep reads its returns once).

Each pass runs as a numba kernel when the work is big enough (``engine.jit.use_jit``; a sweep
has numba loaded already) and as numpy otherwise; both give the same numbers up to float64
rounding (``tests/unit/test_robustness_rows.py``). ``RowSource`` says where the rows are, and
on how many threads its passes run (``threads``: the numba kernels release the GIL; each thread
owns disjoint outputs and sums in the same order, so the numbers do not depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

Part = tuple  # (matrix (k, T) row-major, rows: int64 indices into it, cols: int64 output columns)


@dataclass
class RowSource:
    """N return series of T bars: ``parts()`` yields ``(matrix, rows, cols)`` (row ``rows[i]`` of
    ``matrix`` is series ``cols[i]``; may be called more than once), ``column(j)`` returns
    series ``j`` as float64; ``threads``: how many threads the numba passes over it may use."""
    n: int
    t: int
    parts: Callable[[], Iterator[Part]]
    column: Callable[[int], np.ndarray]
    threads: int = 1


def in_threads(work: Callable[[int, int], None], size: int, threads: int, grain: int = 64) -> None:
    """``work(lo, hi)`` over ``0..size`` cut in ``threads`` contiguous ranges, one thread each
    (here, in order, with one thread or fewer than ``grain`` items a thread): for nogil numba
    kernels whose ranges write disjoint outputs."""
    threads = max(1, min(int(threads), size // grain))
    if threads == 1:
        work(0, size)
        return
    from concurrent.futures import ThreadPoolExecutor

    edges = [size * i // threads for i in range(threads + 1)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quantlab-robust") as pool:
        for future in [pool.submit(work, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]:
            future.result()


def matrix_source(mat, chunk: int = 1024) -> RowSource:
    """A (T, N) matrix (columns = series) as a :class:`RowSource`: its transpose when that is
    row-major already (no copy), else row-major copies of ``chunk`` columns at a time."""
    t, n = mat.shape

    def parts():
        rows_view = mat.T
        if rows_view.flags.c_contiguous:
            yield rows_view, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
            return
        for lo in range(0, n, chunk):
            block = np.ascontiguousarray(mat[:, lo:lo + chunk].T)
            yield block, np.arange(len(block), dtype=np.int64), np.arange(lo, lo + len(block), dtype=np.int64)

    return RowSource(n, t, parts, lambda j: np.asarray(mat[:, j], dtype=np.float64))


# ----------------------------------------------------------------------------- numba kernels

def row_stats_kernel(mat, rows, cols, starts, ends, b_sum, b_sq, mom, z):  # pragma: no cover - numba
    """Row ``rows[i]`` of ``mat`` -> column ``cols[i]`` of ``b_sum``/``b_sq`` (S x N: per-block
    sum and sum of squares) and ``mom`` (4 x N: mean, m2, m3, m4 central, population). With a
    ``z`` of T values (not 0): ``z += row / sd`` for every row whose variance counts
    (``stats.effective_trials_from_sums``'s weights, from the same sums: the pass-2 sum of the
    rows given, while each row is in cache)."""
    t = mat.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        c = cols[i]
        total = 0.0
        total_sq = 0.0
        for b in range(starts.shape[0]):
            s = 0.0
            q = 0.0
            for j in range(starts[b], ends[b]):
                x = np.float64(mat[r, j])
                s += x
                q += x * x
            b_sum[b, c] = s
            b_sq[b, c] = q
            total += s
            total_sq += q
        if z.shape[0] > 0 and t > 1:
            zm = total / t
            var = (total_sq - t * zm * zm) / (t - 1)
            if var > total_sq * (1e-12 / t):
                w = 1.0 / np.sqrt(var)
                for j in range(t):
                    z[j] += np.float64(mat[r, j]) * w
        mean = total / t
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        for j in range(t):
            d = np.float64(mat[r, j]) - mean
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
        mom[0, c] = mean
        mom[1, c] = m2 / t
        mom[2, c] = m3 / t
        mom[3, c] = m4 / t


def weighted_row_sum_kernel(mat, rows, weights, out, lo, hi):  # pragma: no cover - numba
    """``out[lo:hi] += sum_i weights[i] * mat[rows[i], lo:hi]`` (rows with weight 0 skipped)."""
    for i in range(rows.shape[0]):
        w = weights[i]
        if w != 0.0:
            r = rows[i]
            for j in range(lo, hi):
                out[j] += np.float64(mat[r, j]) * w


def jit_kernel(kernel, work: int):
    """The numba version of ``kernel`` when ``work`` warrants it (and numba loads), else None:
    numba missing, numpy does it, even under ``QUANTLAB_JIT=always``."""
    from quantlab.engine import jit

    return jit.numba_for(kernel, work, strict=False)


# ----------------------------------------------------------------------------- the two passes

def _ends(starts, t: int) -> np.ndarray:
    return np.append(np.asarray(starts, dtype=np.int64)[1:], t).astype(np.int64)


Z_CHUNK = 256  # rows per partial Z-sum of the fused pass (fixed: the sum does not depend on threads)


def row_stats(source: RowSource, starts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass 1: ``(b_sum, b_sq, mom)``: per-block sums and sums of squares (S x N) and the rows'
    mean, m2, m3, m4 (4 x N), float64. Rejects NaN or infinite returns (ValueError)."""
    return _pass1(source, starts, False)[:3]


def row_stats_z(source: RowSource, starts):
    """:func:`row_stats` and, under numba, pass 2 for the effective number of trials fused into
    it: ``(b_sum, b_sq, mom, z)`` with ``z`` = sum over the series of series / sd (those with a
    variance, as ``stats.effective_trials_from_sums`` weighs them), or None (numpy: pass 2 runs
    on its own). ``z`` sums per chunk of ``Z_CHUNK`` series, then the chunks in order: the same
    numbers whatever the thread count (pass 2 alone adds the series one by one: the two agree
    to rounding)."""
    return _pass1(source, starts, True)


def _pass1(source: RowSource, starts, want_z: bool):
    starts = np.asarray(starts, dtype=np.int64)
    ends = _ends(starts, source.t)
    b_sum = np.zeros((len(starts), source.n))
    b_sq = np.zeros((len(starts), source.n))
    mom = np.zeros((4, source.n))
    fn = jit_kernel(row_stats_kernel, source.n * source.t)
    z = np.zeros(source.t) if fn is not None and want_z else None
    for mat, rows, cols in source.parts():
        if fn is not None:  # threads over chunks of rows: disjoint output columns, a Z-sum each
            chunks = -(-len(rows) // Z_CHUNK)
            zparts = np.zeros((chunks, source.t if z is not None else 0))

            def work(lo, hi):
                for ci in range(lo, hi):
                    a, b = ci * Z_CHUNK, min((ci + 1) * Z_CHUNK, len(rows))
                    fn(mat, rows[a:b], cols[a:b], starts, ends, b_sum, b_sq, mom, zparts[ci])
            in_threads(work, chunks, source.threads, grain=1)
            if z is not None:
                for part in zparts:
                    z += part
            continue
        step = max(1, 4_000_000 // max(source.t, 1))
        for lo in range(0, len(rows), step):
            blk = np.asarray(mat[rows[lo:lo + step]], dtype=np.float64)
            c = cols[lo:lo + step]
            b_sum[:, c] = np.add.reduceat(blk, starts, axis=1).T
            b_sq[:, c] = np.add.reduceat(blk * blk, starts, axis=1).T
            with np.errstate(invalid="ignore", over="ignore"):  # non-finite input: rejected below
                mean = blk.mean(axis=1)
                dev = blk - mean[:, None]
                d2 = dev * dev
                mom[:, c] = [mean, d2.mean(axis=1), (d2 * dev).mean(axis=1), (d2 * d2).mean(axis=1)]
    if not (np.isfinite(b_sq).all() and np.isfinite(mom).all()):
        raise ValueError("returns contain NaN or infinite values")
    return b_sum, b_sq, mom, z


def row_summary(mat: np.ndarray, starts, threads: int = 1):
    """Pass 1 (and, fused, pass 2) over the rows of one ``(k, T)`` row-major matrix, with the
    Z-sum kept per chunk of ``Z_CHUNK`` rows: ``(b_sum, b_sq, mom, zparts)``, ``zparts``
    ``(ceil(k / Z_CHUNK), T)``. Adding the ``zparts`` of consecutive matrices in order gives
    :func:`row_stats_z`'s ``z`` over them as one source whose parts are those matrices, and the
    other three are its columns: what a sweep shard keeps of its returns instead of the returns
    (``commands/robust_sweep.py``), computed while they are in cache. numpy (numba missing or
    the work too small) computes the same sums to float64 rounding (the Z-sums as
    :func:`weighted_row_sum` weighs the series)."""
    k, t = mat.shape
    starts = np.asarray(starts, dtype=np.int64)
    b_sum, b_sq, mom = np.zeros((len(starts), k)), np.zeros((len(starts), k)), np.zeros((4, k))
    chunks = -(-k // Z_CHUNK)
    zparts = np.zeros((chunks, t))
    fn = jit_kernel(row_stats_kernel, k * t)
    if fn is None:
        b_sum, b_sq, mom, _ = _pass1(RowSource(k, t, lambda: iter([(mat, np.arange(k), np.arange(k))]), None),
                                     starts, False)
        total, total_sq = b_sum.sum(axis=0), b_sq.sum(axis=0)
        var = (total_sq - t * (total / t) ** 2) / max(t - 1, 1)
        live = (var > total_sq * (1e-12 / t)) if t > 1 else np.zeros(k, dtype=bool)
        w = np.where(live, 1.0 / np.sqrt(np.where(live, var, 1.0)), 0.0)
        for ci in range(chunks):
            a, b = ci * Z_CHUNK, min((ci + 1) * Z_CHUNK, k)
            zparts[ci] = np.einsum("k,kt->t", w[a:b], np.asarray(mat[a:b], dtype=np.float64))
        return b_sum, b_sq, mom, zparts
    ends = _ends(starts, t)
    idx = np.arange(k, dtype=np.int64)

    def work(lo, hi):
        for ci in range(lo, hi):
            a, b = ci * Z_CHUNK, min((ci + 1) * Z_CHUNK, k)
            fn(mat, idx[a:b], idx[a:b], starts, ends, b_sum, b_sq, mom, zparts[ci])
    in_threads(work, chunks, threads, grain=1)
    if not (np.isfinite(b_sq).all() and np.isfinite(mom).all()):
        raise ValueError("returns contain NaN or infinite values")
    return b_sum, b_sq, mom, zparts


def weighted_row_sum(source: RowSource, weights: np.ndarray) -> np.ndarray:
    """Pass 2: sum over series ``j`` of ``weights[j] * series_j`` (float64, length T)."""
    out = np.zeros(source.t)
    weights = np.asarray(weights, dtype=np.float64)
    fn = jit_kernel(weighted_row_sum_kernel, int((weights != 0).sum()) * source.t)
    for mat, rows, cols in source.parts():
        w = weights[cols]
        if fn is not None:  # threads over bars: each sums its bars over the rows in the same order
            w = np.ascontiguousarray(w)
            in_threads(lambda lo, hi: fn(mat, rows, w, out, lo, hi), source.t, source.threads)
            continue
        step = max(1, 4_000_000 // max(source.t, 1))
        for lo in range(0, len(rows), step):
            out += np.einsum("k,kt->t", w[lo:lo + step], np.asarray(mat[rows[lo:lo + step]], dtype=np.float64))
    return out
