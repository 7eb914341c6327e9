"""Shared helpers of the robustness package: normal CDF, input checks, strict-JSON values,
per-column moments and Sharpe ratios (one pass, float64 sums over float32 input)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from quantlab.robustness.rows import matrix_source, row_stats


_STD = NormalDist()


# ----------------------------------------------------------------------------- small helpers

def norm_cdf(x):
    """Standard normal CDF, scalar or array (NaN stays NaN)."""
    if np.ndim(x) == 0:
        x = float(x)
        return x if math.isnan(x) else 0.5 * math.erfc(-x / math.sqrt(2.0))
    arr = np.asarray(x, dtype=np.float64)
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-arr / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF; -inf / +inf at 0 / 1."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return _STD.inv_cdf(p)


def as_matrix(returns) -> np.ndarray:
    """(T, N) view of ``returns`` (a 1-D array becomes one column). Non-finite values are
    rejected by the pass that reads them (``rows.row_stats``)."""
    arr = np.asarray(returns)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"returns must be 1-D or a (T, N) matrix, got {arr.ndim} dimensions")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"returns must be numeric, got dtype {arr.dtype}")
    return arr


def safe_sharpe(mean, var):
    """mean / sqrt(var) where var > 0, else 0.0 (element-wise)."""
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    out = np.zeros(np.broadcast(mean, var).shape)
    ok = var > 0
    np.divide(mean, np.sqrt(np.where(ok, var, 1.0)), out=out, where=ok)
    return out


def finite_or_none(x):
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
        return finite_or_none(obj)
    return obj


# ----------------------------------------------------------------------------- moments, Sharpe

def block_sums(mat: np.ndarray, starts) -> tuple[np.ndarray, np.ndarray]:
    """Per-block sums and sums of squares of every column of a (T, N) matrix, float64, (S, N)
    each (one pass: :func:`quantlab.robustness.rows.row_stats`)."""
    b_sum, b_sq, _ = row_stats(matrix_source(mat), starts)
    return b_sum, b_sq


def sharpe_from_sums(count, total, total_sq):
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
    mat = as_matrix(arr)
    if mat.shape[0] < 2:
        out = np.zeros(mat.shape[1])
    else:
        sums, sumsq = block_sums(mat, [0])
        out = sharpe_from_sums(mat.shape[0], sums[0], sumsq[0]) * math.sqrt(periods_per_year)
    return float(out[0]) if arr.ndim == 1 else out


def moments(returns) -> dict:
    """Per-column ``mean``, ``std`` (ddof=1), ``sharpe`` (per period), ``skewness`` and
    ``kurtosis`` (non-excess: 3 for a normal distribution), as arrays (floats for 1-D input).

    Skewness and kurtosis are the population (biased) moment ratios m3 / m2^1.5 and m4 / m2^2,
    as in the PSR and DSR papers. A column whose variance is zero, or below 1e-12 of its mean
    square (a constant up to rounding), has Sharpe 0, skewness 0 and kurtosis 3.
    """
    arr = np.asarray(returns)
    mat = as_matrix(arr)
    _, _, mom = row_stats(matrix_source(mat), [0])
    out = moments_from_central(mom, mat.shape[0])
    if arr.ndim == 1:
        return {k: float(v[0]) for k, v in out.items()}
    return out


def moments_from_central(mom: np.ndarray, t: int) -> dict:
    """:func:`moments` from the (4, N) mean, m2, m3, m4 of :func:`quantlab.robustness.rows.row_stats`."""
    mean, m2, m3, m4 = (np.asarray(v, dtype=np.float64) for v in mom)
    ok = m2 > 1e-12 * (m2 + mean * mean)        # else constant up to rounding: flat
    safe_m2 = np.where(ok, m2, 1.0)
    std = np.sqrt(m2 * t / (t - 1)) if t > 1 else np.zeros_like(m2)
    return {"mean": mean, "std": std, "sharpe": safe_sharpe(mean, np.where(ok, std * std, 0.0)),
            "skewness": np.where(ok, m3 / safe_m2 ** 1.5, 0.0),
            "kurtosis": np.where(ok, m4 / safe_m2 ** 2, 3.0)}
