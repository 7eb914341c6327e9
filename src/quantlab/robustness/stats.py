"""PSR, MinTRL (Bailey & López de Prado 2012), expected maximum Sharpe and DSR (2014), and the
effective number of trials."""

from __future__ import annotations

import math

import numpy as np

from quantlab.robustness.core import as_matrix, norm_cdf, norm_ppf, moments_from_central
from quantlab.robustness.rows import RowSource, matrix_source, row_stats, weighted_row_sum


EULER_GAMMA = 0.5772156649015329


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
    out = norm_cdf(z)
    return float(out) if np.ndim(out) == 0 else out


def probabilistic_sharpe_columns(returns_matrix, sr_benchmark: float = 0.0):
    """PSR of every column against ``sr_benchmark`` (per period), each with its own T, skewness
    and kurtosis: the per-combination PSR a leaderboard can show or rank by. Array of N values
    (NaN where undefined; convert with :func:`json_safe`)."""
    mat = as_matrix(returns_matrix)
    _, _, mom = row_stats(matrix_source(mat), [0])
    return psr_from_central(mom, mat.shape[0], sr_benchmark)


def psr_from_central(mom: np.ndarray, t: int, sr_benchmark: float = 0.0):
    """:func:`probabilistic_sharpe_columns` from the (4, N) mean, m2, m3, m4 of ``rows.row_stats``."""
    m = moments_from_central(mom, t)
    return probabilistic_sharpe(m["sharpe"], t, m["skewness"], m["kurtosis"], sr_benchmark=sr_benchmark)


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
    z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n * math.e))
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
        out = 1.0 + factor2 * (norm_ppf(confidence) / gap) ** 2
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
    source = matrix_source(as_matrix(returns_matrix))
    b_sum, b_sq, _ = row_stats(source, [0])
    return effective_trials_from_sums(source, b_sum[0], b_sq[0])


def effective_trials_from_sums(source: RowSource, total: np.ndarray, total_sq: np.ndarray, z=None) -> dict:
    """:func:`effective_trials` given the series' sums and sums of squares (one more pass, or
    none with ``z``: the sum of the series / sd, from ``rows.row_stats_z``)."""
    t, n = source.t, source.n
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
    z_sum = weighted_row_sum(source, inv_sd) if z is None else np.array(z, dtype=np.float64)
    z_sum -= float(mean @ inv_sd)
    total_corr = float(z_sum @ z_sum) / (t - 1)      # sum of the k x k correlation matrix
    rho = (total_corr - k) / (k * (k - 1))
    rho = min(max(rho, -1.0), 1.0)
    n_eff = n / (1.0 + (n - 1) * rho) if rho > 0 else float(n)
    out["effective_trials"] = float(min(max(n_eff, 1.0), n))
    out["mean_correlation"] = rho
    return out


