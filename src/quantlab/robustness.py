"""Overfitting guards: how much of a sweep's winner is luck (issue #12). Pure numpy.

Every function takes per-period (per-bar) simple returns: a 1-D array for one strategy, or a
``(T, N)`` matrix whose column ``n`` is the return series of combination ``n`` (float32 is fine;
sums are accumulated in float64, and column-wise work is done in chunks so a 10,000 x 5,031
float32 matrix is never copied whole). Sharpe ratios are **per period** (mean / sample standard
deviation, ``ddof=1``; 0.0 when the variance is zero, as ``metrics.sharpe_simple``) unless a name
says ``annualised``; multiply by ``sqrt(periods_per_year)`` to annualise.

What is here, with the papers it follows (formulas and plain-words meanings in docs/robustness.md):

* :func:`sharpe`, :func:`moments`: per-column Sharpe, skewness and (non-excess) kurtosis.
* :func:`probabilistic_sharpe` (PSR; per column: :func:`probabilistic_sharpe_columns`) and
  :func:`min_track_record_length` (MinTRL): Bailey & López de Prado, "The Sharpe Ratio
  Efficient Frontier", Journal of Risk 15(2), 2012.
* :func:`expected_max_sharpe` and :func:`deflated_sharpe` (DSR): Bailey & López de Prado, "The
  Deflated Sharpe Ratio", Journal of Portfolio Management 40(5), 2014.
* :func:`effective_trials`: N / (1 + (N - 1) * mean pairwise correlation), clipped to [1, N]
  (reported; DSR deflates against all trials, see :func:`robustness_report`).
* :func:`pbo`: probability of backtest overfitting by combinatorially symmetric cross-validation
  (CSCV), Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting",
  Journal of Computational Finance 20(4), 2017 (SSRN 2015).
* :func:`bootstrap_sharpe_ci`: stationary bootstrap (Politis & Romano 1994) percentile interval.
* :func:`walk_forward_efficiency` (Pardo 2008) and :func:`parameter_stability` for walk-forward.
* :func:`verdict`: ``robust`` | ``inconclusive`` | ``likely_overfit``.
* :func:`robustness_report`: all of the above for one sweep, as a strict-JSON-safe dict.

Nothing here imports Snakemake, scipy or the engine; the module is not imported by the ``run``
planner (callers import it lazily).
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
VERDICTS = ("robust", "inconclusive", "likely_overfit")

# verdict thresholds (docs/robustness.md, "The verdict")
PBO_OVERFIT = 0.5
DSR_OVERFIT = 0.5
PBO_ROBUST = 0.2
DSR_ROBUST = 0.95

_COLUMN_CHUNK = 1024          # columns processed at once by the column-wise passes
_SPLIT_BUDGET = 10_000_000    # split x combination cells evaluated by pbo() by default
_MIN_SPLITS = 1000            # ... but at least this many splits (when C(S, S/2) allows)
_ENUMERATE_LIMIT = 200_000    # enumerate C(S, S/2) up to this size, sample subsets above it
_STD = NormalDist()


# ----------------------------------------------------------------------------- small helpers

def _norm_cdf(x):
    """Standard normal CDF, scalar or array (NaN stays NaN)."""
    if np.ndim(x) == 0:
        x = float(x)
        return x if math.isnan(x) else 0.5 * math.erfc(-x / math.sqrt(2.0))
    arr = np.asarray(x, dtype=np.float64)
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-arr / math.sqrt(2.0))


def _norm_ppf(p: float) -> float:
    """Inverse standard normal CDF; -inf / +inf at 0 / 1."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return _STD.inv_cdf(p)


def _as_matrix(returns) -> np.ndarray:
    """(T, N) view of ``returns`` (a 1-D array becomes one column); rejects non-finite values."""
    arr = np.asarray(returns)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"returns must be 1-D or a (T, N) matrix, got {arr.ndim} dimensions")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"returns must be numeric, got dtype {arr.dtype}")
    step = _row_chunk(arr.shape[1])
    for lo in range(0, arr.shape[0], step):
        if not np.isfinite(arr[lo:lo + step]).all():
            raise ValueError("returns contain NaN or infinite values")
    return arr


def _safe_sharpe(mean, var):
    """mean / sqrt(var) where var > 0, else 0.0 (element-wise)."""
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    out = np.zeros(np.broadcast(mean, var).shape)
    ok = var > 0
    np.divide(mean, np.sqrt(np.where(ok, var, 1.0)), out=out, where=ok)
    return out


def _finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(obj):
    """``obj`` with numpy scalars/arrays turned into Python values and NaN/inf into None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(obj)
    return obj


# ----------------------------------------------------------------------------- moments, Sharpe

def _row_chunk(n_cols: int) -> int:
    """Rows per chunk so that one float64 chunk of ``n_cols`` columns stays around 32 MB."""
    return max(1, 4_000_000 // max(n_cols, 1))


def _block_sums(mat: np.ndarray, starts) -> tuple[np.ndarray, np.ndarray]:
    """Per-block sums and sums of squares of every column, float64, shape (S, N) each.

    Walks the rows once, in contiguous row chunks (converted to float64 one chunk at a time).
    """
    t, n = mat.shape
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.append(starts[1:], t)
    sums = np.zeros((len(starts), n))
    sumsq = np.zeros((len(starts), n))
    step = _row_chunk(n)
    for b, (s0, e0) in enumerate(zip(starts.tolist(), ends.tolist())):
        for lo in range(s0, e0, step):
            blk = np.asarray(mat[lo:min(lo + step, e0)], dtype=np.float64)
            sums[b] += blk.sum(axis=0)
            sumsq[b] += np.einsum("tn,tn->n", blk, blk)
    return sums, sumsq


def _sharpe_from_sums(count, total, total_sq):
    """Per-period Sharpe (ddof=1) from a count, a sum and a sum of squares (arrays broadcast).

    0.0 where the variance is zero, or below 1e-12 of the mean square (the cancellation residue
    of a constant series). Written with in-place operations: pbo() calls it on (splits x N).
    """
    count = np.asarray(count, dtype=np.float64)
    total_sq = np.asarray(total_sq, dtype=np.float64)
    mean = np.divide(total, count)
    var = mean * mean
    var *= -count
    var += total_sq
    var /= np.maximum(count - 1.0, 1.0)
    flat = var <= total_sq * (1e-12 / count)
    var[flat] = 1.0
    np.sqrt(var, out=var)
    mean /= var
    mean[flat] = 0.0
    return mean


def sharpe(returns, periods_per_year: float = 1.0):
    """Sharpe ratio of each column: mean / std (``ddof=1``) x sqrt(periods_per_year).

    0.0 for a column with zero variance or fewer than 2 rows. Returns a float for 1-D input and
    an array of N values for a (T, N) matrix.
    """
    arr = np.asarray(returns)
    mat = _as_matrix(arr)
    if mat.shape[0] < 2:
        out = np.zeros(mat.shape[1])
    else:
        sums, sumsq = _block_sums(mat, [0])
        out = _sharpe_from_sums(mat.shape[0], sums[0], sumsq[0]) * math.sqrt(periods_per_year)
    return float(out[0]) if arr.ndim == 1 else out


def moments(returns) -> dict:
    """Per-column ``mean``, ``std`` (ddof=1), ``sharpe`` (per period), ``skewness`` and
    ``kurtosis`` (non-excess: 3 for a normal distribution), as arrays (floats for 1-D input).

    Skewness and kurtosis are the population (biased) moment ratios m3 / m2^1.5 and m4 / m2^2,
    as in the PSR and DSR papers. A column whose variance is zero, or below 1e-12 of its mean
    square (a constant up to rounding), has Sharpe 0, skewness 0 and kurtosis 3.
    """
    arr = np.asarray(returns)
    mat = _as_matrix(arr)
    t, n = mat.shape
    out = {k: np.empty(n) for k in ("mean", "std", "sharpe", "skewness", "kurtosis")}
    for lo in range(0, n, _COLUMN_CHUNK):
        chunk = np.asarray(mat[:, lo:lo + _COLUMN_CHUNK], dtype=np.float64)
        sl = slice(lo, lo + chunk.shape[1])
        mean = chunk.mean(axis=0)
        dev = chunk - mean
        d2 = dev * dev
        m2 = d2.mean(axis=0)
        m3 = (d2 * dev).mean(axis=0)
        m4 = (d2 * d2).mean(axis=0)
        ok = m2 > 1e-12 * (m2 + mean * mean)        # else constant up to rounding: flat
        safe_m2 = np.where(ok, m2, 1.0)
        std = np.sqrt(m2 * t / (t - 1)) if t > 1 else np.zeros_like(m2)
        out["mean"][sl] = mean
        out["std"][sl] = std
        out["sharpe"][sl] = _safe_sharpe(mean, np.where(ok, std * std, 0.0))
        out["skewness"][sl] = np.where(ok, m3 / safe_m2 ** 1.5, 0.0)
        out["kurtosis"][sl] = np.where(ok, m4 / safe_m2 ** 2, 3.0)
    if arr.ndim == 1:
        return {k: float(v[0]) for k, v in out.items()}
    return out


# ----------------------------------------------------------------------------- PSR, DSR, MinTRL

def _sharpe_std_factor(sr, skew, kurt):
    """sqrt(1 - skew*SR + (kurt-1)/4 * SR^2): the non-normal Sharpe standard-error factor."""
    return np.sqrt(np.maximum(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, 0.0))


def probabilistic_sharpe(sr, n_obs, skew=0.0, kurt=3.0, sr_benchmark=0.0):
    """PSR: probability that the true Sharpe exceeds ``sr_benchmark`` (Bailey & López de Prado 2012).

        PSR = Z[ (SR - SR*) * sqrt(n - 1) / sqrt(1 - skew*SR + (kurt - 1)/4 * SR^2) ]

    ``sr`` and ``sr_benchmark`` are per-period Sharpe ratios, ``n_obs`` the number of returns,
    ``kurt`` the non-excess kurtosis (3 = normal). Arrays broadcast. NaN when undefined
    (fewer than 2 observations, or a non-positive variance factor).
    """
    sr = np.asarray(sr, dtype=np.float64)
    n_obs = np.asarray(n_obs, dtype=np.float64)
    factor = _sharpe_std_factor(sr, np.asarray(skew, dtype=np.float64),
                                np.asarray(kurt, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (sr - sr_benchmark) * np.sqrt(n_obs - 1.0) / factor
    z = np.where((n_obs >= 2) & (factor > 0), z, np.nan)
    out = _norm_cdf(z)
    return float(out) if np.ndim(out) == 0 else out


def probabilistic_sharpe_columns(returns_matrix, sr_benchmark: float = 0.0):
    """PSR of every column against ``sr_benchmark`` (per period), each with its own T, skewness
    and kurtosis: the per-combination PSR a leaderboard can show or rank by. Array of N values
    (NaN where undefined; convert with :func:`json_safe`)."""
    mat = _as_matrix(returns_matrix)
    m = moments(mat)
    return probabilistic_sharpe(m["sharpe"], mat.shape[0], m["skewness"], m["kurtosis"],
                                sr_benchmark=sr_benchmark)


def expected_max_sharpe(n_trials: float, sr_variance: float, sr_mean: float = 0.0) -> float:
    """Expected maximum Sharpe of ``n_trials`` unskilled strategies (Bailey & López de Prado 2014).

        E[max SR] ~= mean + sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))

    with g the Euler-Mascheroni constant, V the variance of the trials' Sharpe ratios and Z^-1 the
    inverse standard normal CDF (the extreme-value approximation of the maximum of N normals).
    ``n_trials`` may be fractional (an effective number of trials); ``mean`` for N <= 1.
    """
    n = float(n_trials)
    v = float(sr_variance)
    if not (math.isfinite(n) and math.isfinite(v)) or v < 0:
        return math.nan
    if n <= 1.0:
        return float(sr_mean)
    z = (1.0 - EULER_GAMMA) * _norm_ppf(1.0 - 1.0 / n) + EULER_GAMMA * _norm_ppf(1.0 - 1.0 / (n * math.e))
    return float(sr_mean) + math.sqrt(v) * z


def deflated_sharpe(sr, n_obs, n_trials, sr_variance, skew=0.0, kurt=3.0, sr_mean=0.0):
    """DSR: PSR of ``sr`` against the expected maximum Sharpe of ``n_trials`` unskilled trials.

        DSR = PSR(SR* = expected_max_sharpe(n_trials, sr_variance, sr_mean))

    Per-period units throughout; ``skew``/``kurt`` are the selected strategy's own moments.
    """
    benchmark = expected_max_sharpe(n_trials, sr_variance, sr_mean)
    return probabilistic_sharpe(sr, n_obs, skew, kurt, sr_benchmark=benchmark)


def min_track_record_length(sr, skew=0.0, kurt=3.0, sr_benchmark=0.0, confidence=0.95):
    """MinTRL: observations needed for PSR(``sr_benchmark``) to reach ``confidence`` (2012 paper).

        MinTRL = 1 + (1 - skew*SR + (kurt - 1)/4 * SR^2) * (Z^-1(confidence) / (SR - SR*))^2

    Per-period units; the result is a number of observations (bars). ``inf`` when SR <= SR*
    (no track record is long enough).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    sr = np.asarray(sr, dtype=np.float64)
    factor2 = _sharpe_std_factor(sr, np.asarray(skew, dtype=np.float64),
                                 np.asarray(kurt, dtype=np.float64)) ** 2
    gap = sr - sr_benchmark
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 + factor2 * (_norm_ppf(confidence) / gap) ** 2
    out = np.where(gap > 0, out, np.inf)
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- effective trials

def effective_trials(returns_matrix) -> dict:
    """Number of independent trials among N correlated combinations.

    Method (``average_correlation``): N_eff = N / (1 + (N - 1) * rho), clipped to [1, N], where
    rho is the mean pairwise Pearson correlation of the combinations' return series. It is the
    variance-inflation ("design effect") count: N series with common correlation rho carry the
    information of N_eff independent ones. Chosen over eigenvalue-based effective rank because
    it costs O(T*N) without forming the N x N correlation matrix (800 MB and ~5e11 flops for
    10,000 combinations): the sum of all correlations is ||Z 1||^2 / (T - 1) with Z the
    standardised returns, and Z 1 = R (1/sd) - sum(mean/sd) is one matrix-vector product.
    Combinations with zero variance (never traded) have no correlation and are left out of rho;
    they still count in N. Negative mean correlation gives N (clipped).

    Returns ``{"effective_trials", "trials", "mean_correlation", "method"}``.
    """
    mat = _as_matrix(returns_matrix)
    sums, sumsq = _block_sums(mat, [0])
    return _effective_trials(mat, sums[0], sumsq[0])


def _effective_trials(mat: np.ndarray, total: np.ndarray, total_sq: np.ndarray) -> dict:
    """:func:`effective_trials` given the columns' sums and sums of squares (one more pass)."""
    t, n = mat.shape
    out = {"trials": n, "effective_trials": float(n), "mean_correlation": None,
           "method": "average_correlation"}
    if t < 3 or n < 2:
        return out
    mean = total / t
    var = (total_sq - t * mean * mean) / (t - 1)
    live = var > total_sq * (1e-12 / t)
    k = int(live.sum())
    if k < 2:
        return out
    inv_sd = np.where(live, 1.0 / np.sqrt(np.where(live, var, 1.0)), 0.0)
    z_sum = np.empty(t)
    step = _row_chunk(n)
    for lo in range(0, t, step):
        z_sum[lo:lo + step] = np.einsum("tn,n->t", np.asarray(mat[lo:lo + step], dtype=np.float64),
                                        inv_sd)
    z_sum -= float(mean @ inv_sd)
    total_corr = float(z_sum @ z_sum) / (t - 1)      # sum of the k x k correlation matrix
    rho = (total_corr - k) / (k * (k - 1))
    rho = min(max(rho, -1.0), 1.0)
    n_eff = n / (1.0 + (n - 1) * rho) if rho > 0 else float(n)
    out["effective_trials"] = float(min(max(n_eff, 1.0), n))
    out["mean_correlation"] = rho
    return out


# ----------------------------------------------------------------------------- PBO by CSCV

def _block_starts(t: int, blocks: int) -> np.ndarray:
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
    mat = _as_matrix(returns_matrix)
    t = mat.shape[0]
    _check_blocks(t, blocks)
    starts = _block_starts(t, blocks)
    b_sum, b_sq = _block_sums(mat, starts)
    return _pbo_from_blocks(b_sum, b_sq, np.diff(np.append(starts, t)), max_splits=max_splits,
                            seed=seed, chunk=chunk)


def _check_blocks(t: int, blocks: int) -> None:
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    if t < 2 * blocks:
        raise ValueError(f"pbo needs at least 2 bars per block: {t} bars for {blocks} blocks")


def _empty_pbo(blocks: int) -> dict:
    return {"blocks": blocks, "splits": 0, "splits_total": math.comb(blocks, blocks // 2),
            "sampled": False, "pbo": None, "logits": np.empty(0), "is_sharpe": np.empty(0),
            "oos_sharpe": np.empty(0), "prob_oos_loss": None,
            "degradation": {"slope": None, "intercept": None, "r2": None}}


def _pbo_from_blocks(b_sum: np.ndarray, b_sq: np.ndarray, counts, *, max_splits: int | None,
                     seed: int, chunk: int = 256) -> dict:
    """:func:`pbo` from per-block sums / sums of squares (S x N) and block sizes (S)."""
    blocks, n = b_sum.shape
    result = _empty_pbo(blocks)
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
    for lo in range(0, k, chunk):
        m = member[lo:lo + chunk]
        is_cnt = np.einsum("ks,s->k", m, counts)
        is_sum = np.einsum("ks,sn->kn", m, b_sum)     # einsum, not BLAS: small products, and
        is_sq = np.einsum("ks,sn->kn", m, b_sq)       # no thread spin-up on a shared machine
        sr_is = _sharpe_from_sums(is_cnt[:, None], is_sum, is_sq)
        sr_oos = _sharpe_from_sums((all_cnt - is_cnt)[:, None], all_sum - is_sum, all_sq - is_sq)
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


# ----------------------------------------------------------------------------- bootstrap CI

def default_block_length(n_obs: int) -> int:
    """Mean block length of the bootstrap: ceil(T ** (1/3)), the T^(1/3) rate that is optimal
    for block-bootstrap variance estimation (Hall, Horowitz & Jing 1995); 18 for 5,031 bars."""
    return max(1, math.ceil(n_obs ** (1.0 / 3.0)))


def stationary_bootstrap_indices(n_obs: int, n_boot: int, block_length: float,
                                 rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_obs) row indices of the stationary bootstrap (Politis & Romano 1994).

    Each resample is a chain of blocks with geometric lengths (mean ``block_length``) starting at
    uniform random rows, wrapping around the end of the series.
    """
    p = 1.0 / float(block_length)
    new_block = rng.random((n_boot, n_obs)) < p
    new_block[:, 0] = True
    starts = rng.integers(0, n_obs, size=(n_boot, n_obs))
    pos = np.broadcast_to(np.arange(n_obs), (n_boot, n_obs))
    block_t0 = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)
    first = np.take_along_axis(starts, block_t0, axis=1)
    return (first + pos - block_t0) % n_obs


def bootstrap_sharpe_ci(returns, *, n_boot: int = 1000, block_length: float | None = None,
                        confidence: float = 0.95, seed: int = 0,
                        periods_per_year: float = 1.0) -> dict:
    """Percentile confidence interval of one strategy's Sharpe by stationary block bootstrap.

    Resamples keep runs of consecutive bars (mean length ``block_length``, default
    :func:`default_block_length`) so volatility clustering and autocorrelation survive. Seeded:
    the same inputs and ``seed`` give the same interval. Sharpe values are annualised with
    ``periods_per_year`` (1 = per period). Returns ``sharpe``, ``low``, ``high``, ``confidence``,
    ``n_boot``, ``block_length``, ``method``.
    """
    r = np.asarray(returns, dtype=np.float64).ravel()
    if not np.isfinite(r).all():
        raise ValueError("returns contain NaN or infinite values")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    t = len(r)
    bl = float(block_length) if block_length is not None else float(default_block_length(t))
    out = {"sharpe": None, "low": None, "high": None, "confidence": confidence,
           "n_boot": int(n_boot), "block_length": bl, "method": "stationary"}
    if t < 2 or n_boot < 1:
        return out
    if bl < 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}")
    ann = math.sqrt(periods_per_year)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    step = max(1, 4_000_000 // t)               # keep each index batch around 32 MB
    for lo in range(0, n_boot, step):
        idx = stationary_bootstrap_indices(t, min(step, n_boot - lo), bl, rng)
        sample = r[idx]
        stats[lo:lo + len(idx)] = _safe_sharpe(sample.mean(axis=1), sample.var(axis=1, ddof=1))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    out.update(sharpe=sharpe(r) * ann, low=float(low) * ann, high=float(high) * ann)
    return out


# ----------------------------------------------------------------------------- walk-forward

def walk_forward_efficiency(is_annual_returns, oos_annual_returns) -> dict:
    """Walk-forward efficiency (Pardo 2008): annualised OOS return / annualised IS return.

    Per split and overall (mean OOS / mean IS over the splits). None where the IS return is
    not positive (the ratio has no meaning there). Around 1: the out-of-sample periods earned
    what the optimisation promised; near or below 0: the in-sample edge did not carry forward.
    """
    is_r = np.asarray(is_annual_returns, dtype=np.float64).ravel()
    oos_r = np.asarray(oos_annual_returns, dtype=np.float64).ravel()
    if is_r.shape != oos_r.shape:
        raise ValueError("is_annual_returns and oos_annual_returns must have the same length")
    per_split = [float(o / i) if i > 0 else None for i, o in zip(is_r, oos_r)]
    overall = None
    if len(is_r) and is_r.mean() > 0:
        overall = float(oos_r.mean() / is_r.mean())
    return {"efficiency": _finite_or_none(overall), "per_split": json_safe(per_split),
            "splits": int(len(is_r))}


def parameter_stability(selected: list[dict]) -> dict:
    """How stable the selected parameters are across walk-forward splits.

    For each parameter: ``distinct`` values chosen, ``mode`` (most chosen value) and
    ``mode_share`` (share of splits that chose it), and for numbers ``cv`` (std / |mean|,
    None when the mean is 0). ``stability`` is the mean ``mode_share`` over parameters
    (1.0 = the same value every split; 1/splits = a different value every split).
    """
    if not selected:
        return {"splits": 0, "stability": None, "parameters": {}}
    names = sorted({k for params in selected for k in params})
    report = {}
    for name in names:
        values = [params.get(name) for params in selected]
        keys = [repr(v) for v in values]
        counts: dict[str, int] = {}
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        mode_key = max(counts, key=lambda key: (counts[key], -keys.index(key)))
        entry = {"distinct": len(counts), "mode": values[keys.index(mode_key)],
                 "mode_share": counts[mode_key] / len(values), "cv": None}
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == len(values):
            arr = np.asarray(nums, dtype=np.float64)
            if arr.mean() != 0:
                entry["cv"] = float(arr.std() / abs(arr.mean()))
        report[name] = entry
    shares = [e["mode_share"] for e in report.values()]
    return json_safe({"splits": len(selected), "stability": float(np.mean(shares)) if shares else None,
                      "parameters": report})


# ----------------------------------------------------------------------------- verdict

def verdict(pbo_value: float | None, dsr: float | None, sharpe_ci_low: float | None = None) -> dict:
    """``robust`` | ``inconclusive`` | ``likely_overfit``, with the reasons.

    Rule (in this order):

    1. ``likely_overfit`` if PBO >= 0.5 (the in-sample winner lands in the bottom half out of
       sample at least half the time) or DSR < 0.5 (the winner's Sharpe is below what the best
       of that many unskilled trials would be expected to reach, more likely than not).
    2. ``robust`` if PBO <= 0.2 and DSR >= 0.95, both known, and the lower end of the
       bootstrap Sharpe interval (when given) is above 0.
    3. ``inconclusive`` otherwise (including when PBO or DSR could not be computed).
    """
    reasons = []
    if pbo_value is not None and pbo_value >= PBO_OVERFIT:
        reasons.append(f"pbo {pbo_value:.3f} >= {PBO_OVERFIT}")
    if dsr is not None and dsr < DSR_OVERFIT:
        reasons.append(f"deflated_sharpe {dsr:.3f} < {DSR_OVERFIT}")
    if reasons:
        return {"verdict": "likely_overfit", "reasons": reasons}
    if pbo_value is None:
        reasons.append("pbo unavailable")
    elif pbo_value > PBO_ROBUST:
        reasons.append(f"pbo {pbo_value:.3f} > {PBO_ROBUST}")
    if dsr is None:
        reasons.append("deflated_sharpe unavailable")
    elif dsr < DSR_ROBUST:
        reasons.append(f"deflated_sharpe {dsr:.3f} < {DSR_ROBUST}")
    if sharpe_ci_low is not None and sharpe_ci_low <= 0:
        reasons.append(f"sharpe interval low {sharpe_ci_low:.3f} <= 0")
    if reasons:
        return {"verdict": "inconclusive", "reasons": reasons}
    return {"verdict": "robust", "reasons": [f"pbo {pbo_value:.3f} <= {PBO_ROBUST}",
                                             f"deflated_sharpe {dsr:.3f} >= {DSR_ROBUST}"]}


# ----------------------------------------------------------------------------- one entry point

def _logit_summary(logits: np.ndarray, bins: int = 20) -> dict:
    """Mean, median and a fixed-range histogram of the CSCV logits (for the report and plots)."""
    if not len(logits):
        return {"mean": None, "median": None, "histogram": {"edges": [], "counts": []}}
    bound = float(max(1.0, np.ceil(np.abs(logits).max())))
    counts, edges = np.histogram(logits, bins=bins, range=(-bound, bound))
    return {"mean": float(logits.mean()), "median": float(np.median(logits)),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}


def robustness_report(returns_matrix, best_index: int | None = None,
                      periods_per_year: float = 252.0, *, seed: int = 0, blocks: int = 16,
                      max_splits: int | None = None, n_boot: int = 1000,
                      block_length: float | None = None, confidence: float = 0.95) -> dict:
    """Every overfitting statistic of one sweep, as a strict-JSON-safe dict (None, never NaN).

    ``returns_matrix``: (T, N) per-bar returns, one column per evaluated combination (float32
    fine). ``best_index``: the column the sweep selected (default: the highest full-sample
    Sharpe). Sharpe-valued fields are annualised with ``periods_per_year`` except those ending in
    ``_per_period``.

    DSR deflates against the expected maximum Sharpe of N = ``trials`` unskilled strategies with
    V = max(cross-sectional variance of the N per-period Sharpe ratios, 1 / (T - 1)); 1 / (T - 1)
    is the sampling variance of an unskilled strategy's Sharpe estimate, a floor that keeps
    near-identical combinations (small cross-sectional spread) from hiding the luck of trying
    them. ``effective_trials`` is reported beside it, not used by DSR (docs/robustness.md says
    why). PBO is None with fewer than 2 combinations or fewer than 2 * ``blocks`` bars.
    Deterministic for a given ``seed``.
    """
    mat = _as_matrix(returns_matrix)
    t, n = mat.shape
    if n < 1 or t < 2:
        raise ValueError(f"robustness_report needs at least 2 bars and 1 combination, got {t} x {n}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    ann = math.sqrt(periods_per_year)
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    with_pbo = n >= 2 and t >= 2 * blocks
    starts = _block_starts(t, blocks) if with_pbo else np.array([0])
    b_sum, b_sq = _block_sums(mat, starts)          # the one pass over every bar and column
    total, total_sq = b_sum.sum(axis=0), b_sq.sum(axis=0)
    all_sr = _sharpe_from_sums(t, total, total_sq)
    if best_index is None:
        best_index = int(np.argmax(all_sr))
    if not 0 <= best_index < n:
        raise ValueError(f"best_index {best_index} out of range for {n} combinations")
    best = moments(np.asarray(mat[:, best_index], dtype=np.float64))
    sr_best = float(all_sr[best_index])
    eff = _effective_trials(mat, total, total_sq)
    sr_var = float(all_sr.var(ddof=1)) if n > 1 else 0.0
    sr_var_null = 1.0 / (t - 1)         # variance of an unskilled strategy's Sharpe estimate
    sr_var_used = max(sr_var, sr_var_null)
    e_max = expected_max_sharpe(n, sr_var_used)
    psr = probabilistic_sharpe(sr_best, t, best["skewness"], best["kurtosis"])
    dsr = deflated_sharpe(sr_best, t, n, sr_var_used, best["skewness"], best["kurtosis"])
    min_trl = min_track_record_length(sr_best, best["skewness"], best["kurtosis"], 0.0, 0.95)
    if with_pbo:
        cscv = _pbo_from_blocks(b_sum, b_sq, np.diff(np.append(starts, t)),
                                max_splits=max_splits, seed=seed)
    else:
        cscv = _empty_pbo(blocks)
    degradation = dict(cscv["degradation"])
    if degradation["intercept"] is not None:
        degradation["intercept"] *= ann     # OOS = slope * IS + intercept, annualised Sharpe
    ci = bootstrap_sharpe_ci(mat[:, best_index], n_boot=n_boot, block_length=block_length,
                             confidence=confidence, seed=seed, periods_per_year=periods_per_year)
    decided = verdict(cscv["pbo"], _finite_or_none(dsr), ci["low"])
    report = {
        "trials": n,
        "effective_trials": eff["effective_trials"],
        "effective_trials_method": eff["method"],
        "mean_correlation": eff["mean_correlation"],
        "bars": t,
        "periods_per_year": periods_per_year,
        "best_index": best_index,
        "sharpe": sr_best * ann,
        "sharpe_per_period": sr_best,
        "skewness": best["skewness"],
        "kurtosis": best["kurtosis"],
        "sharpe_variance_per_period": sr_var,
        "sharpe_variance_null_per_period": sr_var_null,
        "expected_max_sharpe": e_max * ann,
        "expected_max_sharpe_per_period": e_max,
        "probabilistic_sharpe": psr,
        "deflated_sharpe": dsr,
        "minimum_track_record": {
            "bars": min_trl, "years": min_trl / periods_per_year, "confidence": 0.95,
            "benchmark_sharpe": 0.0, "sufficient": bool(t >= min_trl),
        },
        "pbo": {
            "pbo": cscv["pbo"], "blocks": cscv["blocks"], "splits": cscv["splits"],
            "splits_total": cscv["splits_total"], "sampled": cscv["sampled"], "seed": seed,
            "logit": _logit_summary(cscv["logits"]),
            "degradation": degradation,
            "prob_oos_loss": cscv["prob_oos_loss"],
        },
        "sharpe_ci": ci,
        "verdict": decided["verdict"],
        "verdict_reasons": decided["reasons"],
    }
    return json_safe(report)
