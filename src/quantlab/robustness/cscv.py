"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV;
Bailey, Borwein, López de Prado & Zhu 2015)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from quantlab.robustness.core import as_matrix, block_sums, sharpe_from_sums
from quantlab.robustness.rows import in_threads, jit_kernel


_SPLIT_BUDGET = 10_000_000    # split x combination cells evaluated by pbo() by default
_MIN_SPLITS = 1000            # ... but at least this many splits (when C(S, S/2) allows)
_ENUMERATE_LIMIT = 200_000    # enumerate C(S, S/2) up to this size, sample subsets above it


# ----------------------------------------------------------------------------- PBO by CSCV

def block_starts(t: int, blocks: int) -> np.ndarray:
    """Start rows of ``blocks`` contiguous blocks of near-equal size (the first T mod S blocks
    get one extra row, as ``numpy.array_split``)."""
    sizes = np.full(blocks, t // blocks)
    sizes[: t % blocks] += 1
    return np.concatenate(([0], np.cumsum(sizes)[:-1]))


def cscv_splits(blocks: int, max_splits: int | None, seed: int) -> tuple[np.ndarray, int]:
    """The in-sample halves used by CSCV, as a (K, S) 0/1 matrix, and C(S, S/2).

    All C(S, S/2) halves when there are at most ``max_splits`` of them, else ``max_splits``
    distinct halves drawn with ``numpy.random.default_rng(seed)`` (uniformly, without
    replacement). Each half's complement is its out-of-sample set.
    """
    total = math.comb(blocks, blocks // 2)
    k = total if max_splits is None else min(max(int(max_splits), 1), total)
    rng = np.random.default_rng(seed)
    if total <= _ENUMERATE_LIMIT:
        chosen = np.array(list(itertools.combinations(range(blocks), blocks // 2)), dtype=np.int64)
        if k < total:
            chosen = chosen[np.sort(rng.choice(total, size=k, replace=False))]
    else:
        seen: set[tuple[int, ...]] = set()
        rows = []
        while len(rows) < k:
            half = tuple(sorted(rng.choice(blocks, size=blocks // 2, replace=False).tolist()))
            if half not in seen:
                seen.add(half)
                rows.append(half)
        chosen = np.array(rows, dtype=np.int64)
    member = np.zeros((len(chosen), blocks))
    np.put_along_axis(member, chosen, 1.0, axis=1)
    return member, total


def pbo(returns_matrix, blocks: int = 16, *, max_splits: int | None = None, seed: int = 0,
        chunk: int = 256) -> dict:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu 2015).

    The T rows are cut into ``blocks`` (S, even) contiguous blocks. For each way of choosing S/2
    blocks as in-sample (IS; the other S/2 are out-of-sample, OOS), the combination with the best
    IS Sharpe is selected and its OOS Sharpe is ranked among all N combinations' OOS Sharpe:
    relative rank w = rank / (N + 1) (rank 1 = worst, N = best; ties get the average rank),
    logit l = ln(w / (1 - w)). PBO is the share of splits with l <= 0, i.e. where the IS winner
    ends in the bottom half OOS. Per split the work is done on per-block sums and sums of
    squares (S x N numbers), never on raw bars.

    ``max_splits``: cap on the number of splits out of C(S, S/2) (12,870 for S = 16); None picks
    ``clamp(10,000,000 // N, 1000, C(S, S/2))``; over the cap, a seeded uniform subsample.

    Returns ``pbo``, ``logits`` (array, one per split), ``is_sharpe``/``oos_sharpe`` of the
    selected combination per split (per period), ``degradation`` (least-squares OOS = slope *
    IS + intercept, and r2), ``prob_oos_loss`` (share of splits whose selected combination has
    OOS Sharpe < 0), ``blocks``, ``splits``, ``splits_total``, ``sampled``. ``pbo`` and the rest
    are None with fewer than 2 combinations.
    """
    mat = as_matrix(returns_matrix)
    t = mat.shape[0]
    _check_blocks(t, blocks)
    starts = block_starts(t, blocks)
    b_sum, b_sq = block_sums(mat, starts)
    return pbo_from_blocks(b_sum, b_sq, np.diff(np.append(starts, t)), max_splits=max_splits,
                            seed=seed, chunk=chunk)


def _check_blocks(t: int, blocks: int) -> None:
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    if t < 2 * blocks:
        raise ValueError(f"pbo needs at least 2 bars per block: {t} bars for {blocks} blocks")


def empty_pbo(blocks: int) -> dict:
    return {"blocks": blocks, "splits": 0, "splits_total": math.comb(blocks, blocks // 2),
            "sampled": False, "pbo": None, "logits": np.empty(0), "is_sharpe": np.empty(0),
            "oos_sharpe": np.empty(0), "prob_oos_loss": None,
            "degradation": {"slope": None, "intercept": None, "r2": None}}


def pbo_from_blocks(b_sum: np.ndarray, b_sq: np.ndarray, counts, *, max_splits: int | None,
                     seed: int, chunk: int = 256, threads: int = 1) -> dict:
    """:func:`pbo` from per-block sums / sums of squares (S x N) and block sizes (S); the numba
    kernel runs its splits on ``threads`` threads (each split's numbers are its own)."""
    blocks, n = b_sum.shape
    result = empty_pbo(blocks)
    total = result["splits_total"]
    if max_splits is None:
        max_splits = min(max(_SPLIT_BUDGET // max(n, 1), _MIN_SPLITS), total)
    if n < 2:
        return result
    member, total = cscv_splits(blocks, max_splits, seed)
    counts = np.asarray(counts, dtype=np.float64)
    all_sum, all_sq, all_cnt = b_sum.sum(axis=0), b_sq.sum(axis=0), counts.sum()
    k = len(member)
    logits = np.empty(k)
    is_best = np.empty(k)
    oos_best = np.empty(k)
    fn = jit_kernel(cscv_kernel, k * n * blocks // 8)
    if fn is not None:
        halves = np.ascontiguousarray(np.nonzero(member)[1].reshape(k, blocks // 2).astype(np.int64))
        sums, sqs = np.ascontiguousarray(b_sum.T), np.ascontiguousarray(b_sq.T)
        in_threads(lambda lo, hi: fn(halves[lo:hi], sums, sqs, counts, all_sum, all_sq, np.empty(n),
                                     logits[lo:hi], is_best[lo:hi], oos_best[lo:hi]), k, threads)
        chunk = k  # done: skip the numpy loop
    for lo in range(0, k if fn is None else 0, chunk):
        m = member[lo:lo + chunk]
        is_cnt = np.einsum("ks,s->k", m, counts)
        is_sum = np.einsum("ks,sn->kn", m, b_sum)     # einsum, not BLAS: small products, and
        is_sq = np.einsum("ks,sn->kn", m, b_sq)       # no thread spin-up on a shared machine
        sr_is = sharpe_from_sums(is_cnt[:, None], is_sum, is_sq)
        sr_oos = sharpe_from_sums((all_cnt - is_cnt)[:, None], all_sum - is_sum, all_sq - is_sq)
        best = np.argmax(sr_is, axis=1)
        rows = np.arange(len(m))
        chosen_oos = sr_oos[rows, best]
        below = (sr_oos < chosen_oos[:, None]).sum(axis=1)
        ties = (sr_oos == chosen_oos[:, None]).sum(axis=1)
        rank = below + (ties + 1) / 2.0
        w = rank / (n + 1.0)
        logits[lo:lo + len(m)] = np.log(w / (1.0 - w))
        is_best[lo:lo + len(m)] = sr_is[rows, best]
        oos_best[lo:lo + len(m)] = chosen_oos
    result.update(splits=k, sampled=k < total, logits=logits, is_sharpe=is_best,
                  oos_sharpe=oos_best, pbo=float(np.mean(logits <= 0.0)),
                  prob_oos_loss=float(np.mean(oos_best < 0.0)),
                  degradation=_regression(is_best, oos_best))
    return result


def _sharpe_of(count, total, total_sq):  # pragma: no cover - numba (cscv_kernel)
    """One per-period Sharpe from sums, exactly as ``core.sharpe_from_sums`` (flat rule included)."""
    mean = total / count
    var = (total_sq - count * mean * mean) / max(count - 1.0, 1.0)
    if var <= total_sq * (1e-12 / count):
        return 0.0
    return mean / np.sqrt(var)


def _sharpe_key(count, inv_count, inv_dof, total, total_sq):  # pragma: no cover - numba (cscv_kernel)
    """sign(SR) * SR^2 of :func:`_sharpe_of` (0 where it is 0): the same order as the Sharpe
    ratio, without its square root (reciprocals of the counts precomputed by the caller)."""
    mean = total * inv_count
    var = (total_sq - count * mean * mean) * inv_dof
    if var <= total_sq * (1e-12 * inv_count):
        return 0.0
    return mean * abs(mean) / var


def cscv_kernel(halves, sums, sqs, counts, all_sum, all_sq, oos, logits, is_best,
                oos_best):  # pragma: no cover - numba
    """The CSCV loop of :func:`pbo` for numba: split ``k``'s in-sample blocks are ``halves[k]``;
    ``sums``/``sqs`` are per-combination block sums (N x S), ``all_sum``/``all_sq`` their totals;
    ``oos`` is an N scratch buffer. Writes each split's logit and the selected combination's IS
    and OOS Sharpe. Selection and ranks compare :func:`_sharpe_key` (order-equivalent to the
    Sharpe ratio, no square root per combination); the reported Sharpe ratios are
    :func:`_sharpe_of`'s."""
    n = sums.shape[0]
    all_cnt = 0.0
    for b in range(counts.shape[0]):
        all_cnt += counts[b]
    for k in range(halves.shape[0]):
        is_cnt = 0.0
        for h in range(halves.shape[1]):
            is_cnt += counts[halves[k, h]]
        oos_cnt = all_cnt - is_cnt
        inv_is, inv_is_dof = 1.0 / is_cnt, 1.0 / max(is_cnt - 1.0, 1.0)
        inv_oos, inv_oos_dof = 1.0 / oos_cnt, 1.0 / max(oos_cnt - 1.0, 1.0)
        best_key = -np.inf
        best = 0
        for c in range(n):
            s = 0.0
            q = 0.0
            for h in range(halves.shape[1]):
                s += sums[c, halves[k, h]]
                q += sqs[c, halves[k, h]]
            key = _sharpe_key(is_cnt, inv_is, inv_is_dof, s, q)
            oos[c] = _sharpe_key(oos_cnt, inv_oos, inv_oos_dof, all_sum[c] - s, all_sq[c] - q)
            if key > best_key:
                best_key = key
                best = c
        chosen = oos[best]
        below = 0
        ties = 0
        for c in range(n):
            if oos[c] < chosen:
                below += 1
            elif oos[c] == chosen:
                ties += 1
        w = (below + (ties + 1) / 2.0) / (n + 1.0)
        logits[k] = np.log(w / (1.0 - w))
        s = 0.0
        q = 0.0
        for h in range(halves.shape[1]):
            s += sums[best, halves[k, h]]
            q += sqs[best, halves[k, h]]
        is_best[k] = _sharpe_of(is_cnt, s, q)
        oos_best[k] = _sharpe_of(oos_cnt, all_sum[best] - s, all_sq[best] - q)


def _regression(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares y = slope * x + intercept, with r2; None where undefined (constant x)."""
    if len(x) < 2:
        return {"slope": None, "intercept": None, "r2": None}
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    syy = float(((y - ym) ** 2).sum())
    if sxx <= 0:
        return {"slope": None, "intercept": None, "r2": None}
    slope = float(((x - xm) * (y - ym)).sum()) / sxx
    r2 = slope * slope * sxx / syy if syy > 0 else None
    return {"slope": slope, "intercept": float(ym - slope * xm), "r2": r2}


# ----------------------------------------------------------------------------- one entry point

def logit_summary(logits: np.ndarray, bins: int = 20) -> dict:
    """Mean, median and a fixed-range histogram of the CSCV logits (for the report and plots)."""
    if not len(logits):
        return {"mean": None, "median": None, "histogram": {"edges": [], "counts": []}}
    bound = float(max(1.0, np.ceil(np.abs(logits).max())))
    counts, edges = np.histogram(logits, bins=bins, range=(-bound, bound))
    return {"mean": float(logits.mean()), "median": float(np.median(logits)),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}


