"""One entry point: every statistic of one sweep as a strict-JSON-safe dict."""

from __future__ import annotations

import math

import numpy as np

from quantlab.robustness.bootstrap import bootstrap_sharpe_ci
from quantlab.robustness.core import _as_matrix, _finite_or_none, _sharpe_from_sums, json_safe, moments_from_central
from quantlab.robustness.rows import RowSource, matrix_source, row_stats
from quantlab.robustness.cscv import _block_starts, _empty_pbo, _logit_summary, _pbo_from_blocks
from quantlab.robustness.stats import (_effective_trials, deflated_sharpe, expected_max_sharpe,
                                       min_track_record_length, probabilistic_sharpe)
from quantlab.robustness.verdict import verdict


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
    return report_from_source(matrix_source(_as_matrix(returns_matrix)), best_index, periods_per_year,
                              seed=seed, blocks=blocks, max_splits=max_splits, n_boot=n_boot,
                              block_length=block_length, confidence=confidence)


def report_from_source(source: RowSource, best_index: int | None = None, periods_per_year: float = 252.0, *,
                       seed: int = 0, blocks: int = 16, max_splits: int | None = None, n_boot: int = 1000,
                       block_length: float | None = None, confidence: float = 0.95) -> dict:
    """:func:`robustness_report` over series read from a :class:`~quantlab.robustness.rows.RowSource`
    (a sweep's shard files, memory-mapped, in their own row-major layout): two passes over the
    raw returns (``rows.row_stats``, ``rows.weighted_row_sum``), the rest on per-block sums."""
    t, n = source.t, source.n
    if n < 1 or t < 2:
        raise ValueError(f"robustness_report needs at least 2 bars and 1 combination, got {t} x {n}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    ann = math.sqrt(periods_per_year)
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    with_pbo = n >= 2 and t >= 2 * blocks
    starts = _block_starts(t, blocks) if with_pbo else np.array([0])
    b_sum, b_sq, mom = row_stats(source, starts)    # pass 1 over every bar and series
    total, total_sq = b_sum.sum(axis=0), b_sq.sum(axis=0)
    all_sr = _sharpe_from_sums(t, total, total_sq)
    if best_index is None:
        best_index = int(np.argmax(all_sr))
    if not 0 <= best_index < n:
        raise ValueError(f"best_index {best_index} out of range for {n} combinations")
    best = {k: float(v[0]) for k, v in moments_from_central(mom[:, best_index:best_index + 1], t).items()}
    sr_best = float(all_sr[best_index])
    eff = _effective_trials(source, total, total_sq)  # pass 2
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
    ci = bootstrap_sharpe_ci(source.column(best_index), n_boot=n_boot, block_length=block_length,
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
