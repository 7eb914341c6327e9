"""The entry points: every statistic of one sweep (:func:`robustness_report`, or in steps:
:func:`sweep_stats` then :func:`report_from_stats`) or of one run (:func:`single_run_report`),
as strict-JSON-safe dicts."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from quantlab.robustness.bootstrap import bootstrap_sharpe_ci
from quantlab.robustness.core import (as_matrix, finite_or_none, sharpe_from_sums, json_safe, moments,
                                      moments_from_central)
from quantlab.robustness.cscv import block_starts, empty_pbo, logit_summary, pbo_from_blocks
from quantlab.robustness.rows import RowSource, matrix_source, row_stats_z
from quantlab.robustness.stats import (effective_trials_from_sums, deflated_sharpe, expected_max_sharpe,
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
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    return report_from_source(matrix_source(as_matrix(returns_matrix)), best_index, periods_per_year,
                              seed=seed, blocks=blocks, max_splits=max_splits, n_boot=n_boot,
                              block_length=block_length, confidence=confidence)


@dataclass
class SweepStats:
    """What one pass over a sweep's N return series gives (:func:`sweep_stats`): per-block sums
    for CSCV, every series' Sharpe, moments, PSR vs 0 and DSR, and the DSR benchmark."""
    source: RowSource
    blocks: int
    starts: np.ndarray
    with_pbo: bool
    b_sum: np.ndarray
    b_sq: np.ndarray
    moments: dict                  # per series: mean, std, sharpe, skewness, kurtosis (moments_from_central)
    sharpe: np.ndarray             # per series, per period (from the sums)
    sharpe_variance: float
    sharpe_variance_null: float
    expected_max: float            # per period, against N = trials
    psr: np.ndarray                # per series: PSR vs 0
    dsr: np.ndarray                # per series: PSR vs expected_max (a per-combination DSR)
    z_sum: np.ndarray | None = None  # sum of series / sd (pass 2 fused into pass 1), or None


def sweep_stats(source: RowSource, blocks: int = 16) -> SweepStats:
    """Pass 1 over every bar of every series, and the per-combination PSR and DSR (the
    leaderboard's ``psr`` and ``deflated_sharpe`` columns, and what ``objective: psr`` /
    ``deflated_sharpe`` rank by)."""
    t, n = source.t, source.n
    if n < 1 or t < 2:
        raise ValueError(f"robustness_report needs at least 2 bars and 1 combination, got {t} x {n}")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    starts = sweep_starts(t, n, blocks)
    return stats_from_sums(source, blocks, starts, *row_stats_z(source, starts))


def sweep_starts(t: int, n: int, blocks: int = 16) -> np.ndarray:
    """The start rows of the blocks pass 1 sums over: ``blocks`` CSCV blocks when PBO can run
    (at least 2 series and 2 bars a block), else one block."""
    return block_starts(t, blocks) if n >= 2 and t >= 2 * blocks else np.array([0])


def stats_from_sums(source: RowSource, blocks: int, starts, b_sum, b_sq, mom, z_sum=None) -> SweepStats:
    """:func:`sweep_stats` from pass 1's numbers over ``source`` (``rows.row_stats_z``, or a
    sweep's shard summaries: ``commands/robust_sweep.py``); ``starts``: :func:`sweep_starts`."""
    t, n = source.t, source.n
    with_pbo = len(starts) > 1
    all_sr = sharpe_from_sums(t, b_sum.sum(axis=0), b_sq.sum(axis=0))
    m = moments_from_central(mom, t)
    sr_var = float(all_sr.var(ddof=1)) if n > 1 else 0.0
    sr_var_null = 1.0 / (t - 1)         # variance of an unskilled strategy's Sharpe estimate
    e_max = expected_max_sharpe(n, max(sr_var, sr_var_null))
    psr = np.atleast_1d(probabilistic_sharpe(all_sr, t, m["skewness"], m["kurtosis"]))
    dsr = np.atleast_1d(deflated_sharpe(all_sr, t, n, max(sr_var, sr_var_null), m["skewness"], m["kurtosis"]))
    return SweepStats(source, blocks, starts, with_pbo, b_sum, b_sq, m, all_sr, sr_var, sr_var_null, e_max,
                      psr, dsr, z_sum)


def report_from_source(source: RowSource, best_index: int | None = None, periods_per_year: float = 252.0, *,
                       seed: int = 0, blocks: int = 16, max_splits: int | None = None, n_boot: int = 1000,
                       block_length: float | None = None, confidence: float = 0.95) -> dict:
    """:func:`robustness_report` over series read from a :class:`~quantlab.robustness.rows.RowSource`
    (a sweep's shard files, memory-mapped, in their own row-major layout)."""
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    return report_from_stats(sweep_stats(source, blocks), best_index, periods_per_year, seed=seed,
                             max_splits=max_splits, n_boot=n_boot, block_length=block_length,
                             confidence=confidence)


def report_from_stats(st: SweepStats, best_index: int | None = None, periods_per_year: float = 252.0, *,
                      seed: int = 0, max_splits: int | None = None, n_boot: int = 1000,
                      block_length: float | None = None, confidence: float = 0.95,
                      points: bool = False) -> dict:
    """The report from :func:`sweep_stats` (one more pass over the raw returns, for the
    effective number of trials). ``points``: also the CSCV splits' (IS, OOS) Sharpe pairs of the
    selected combination, annualised, under ``points`` (for the scatter picture)."""
    source, t, n = st.source, st.source.t, st.source.n
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    ann = math.sqrt(periods_per_year)
    all_sr = st.sharpe
    if best_index is None:
        best_index = int(np.argmax(all_sr))
    if not 0 <= best_index < n:
        raise ValueError(f"best_index {best_index} out of range for {n} combinations")
    skew, kurt = float(st.moments["skewness"][best_index]), float(st.moments["kurtosis"][best_index])
    sr_best = float(all_sr[best_index])
    eff = effective_trials_from_sums(source, st.b_sum.sum(axis=0), st.b_sq.sum(axis=0), st.z_sum)  # pass 2
    e_max = st.expected_max
    psr, dsr = float(st.psr[best_index]), float(st.dsr[best_index])

    def interval():  # the selected series (a sweep evaluates it again) and its bootstrap interval
        return bootstrap_sharpe_ci(source.column(best_index), n_boot=n_boot, block_length=block_length,
                                   confidence=confidence, seed=seed, periods_per_year=periods_per_year)
    with _beside(interval, st.with_pbo and source.threads > 1) as ci:  # beside CSCV's numba passes
        if st.with_pbo:
            cscv = pbo_from_blocks(st.b_sum, st.b_sq, np.diff(np.append(st.starts, t)),
                                   max_splits=max_splits, seed=seed, threads=source.threads)
        else:
            cscv = empty_pbo(st.blocks)
    ci = ci.result()
    degradation = dict(cscv["degradation"])
    if degradation["intercept"] is not None:
        degradation["intercept"] *= ann     # OOS = slope * IS + intercept, annualised Sharpe
    decided = verdict(cscv["pbo"], finite_or_none(dsr), ci["low"])
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
        "skewness": skew,
        "kurtosis": kurt,
        "sharpe_variance_per_period": st.sharpe_variance,
        "sharpe_variance_null_per_period": st.sharpe_variance_null,
        "expected_max_sharpe": e_max * ann,
        "expected_max_sharpe_per_period": e_max,
        "probabilistic_sharpe": psr,
        "deflated_sharpe": dsr,
        "minimum_track_record": _track_record(sr_best, skew, kurt, t, periods_per_year),
        "pbo": {
            "pbo": cscv["pbo"], "blocks": cscv["blocks"], "splits": cscv["splits"],
            "splits_total": cscv["splits_total"], "sampled": cscv["sampled"], "seed": seed,
            "logit": logit_summary(cscv["logits"]),
            "degradation": degradation,
            "prob_oos_loss": cscv["prob_oos_loss"],
        },
        "sharpe_ci": ci,
        "verdict": decided["verdict"],
        "verdict_reasons": decided["reasons"],
    }
    if points:
        report["points"] = {"is_sharpe": cscv["is_sharpe"] * ann, "oos_sharpe": cscv["oos_sharpe"] * ann}
    return json_safe(report)


@contextmanager
def _beside(work, threaded: bool):
    """A future of ``work()``: computed on a thread of its own during the ``with`` block
    (``threaded``), else when the block ends; the same value either way."""
    from concurrent.futures import Future, ThreadPoolExecutor

    if threaded:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quantlab-report") as pool:
            yield pool.submit(work)
        return
    done: Future = Future()
    yield done
    try:
        done.set_result(work())
    except BaseException as exc:
        done.set_exception(exc)


def _track_record(sr: float, skew: float, kurt: float, t: int, periods_per_year: float) -> dict:
    """The ``minimum_track_record`` block: MinTRL at 95 % vs a zero Sharpe, and whether T reaches it."""
    bars = min_track_record_length(sr, skew, kurt, 0.0, 0.95)
    return {"bars": bars, "years": bars / periods_per_year, "confidence": 0.95, "benchmark_sharpe": 0.0,
            "sufficient": bool(t >= bars)}


def single_run_report(returns, periods_per_year: float = 252.0, *, seed: int = 0, n_boot: int = 1000,
                      confidence: float = 0.95) -> dict:
    """The statistics that make sense for one strategy run (no selection among trials): its
    Sharpe, skewness and kurtosis, PSR vs 0, MinTRL and the stationary-bootstrap Sharpe
    interval. Strict-JSON-safe; ``bars`` < 2 gives nulls."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    out = {"bars": len(r), "periods_per_year": periods_per_year, "sharpe": None, "sharpe_per_period": None,
           "skewness": None, "kurtosis": None, "probabilistic_sharpe": None, "minimum_track_record": None,
           "sharpe_ci": bootstrap_sharpe_ci(r, n_boot=n_boot, confidence=confidence, seed=seed,
                                            periods_per_year=periods_per_year)}
    if len(r) >= 2:
        m = moments(r)
        out.update(sharpe=m["sharpe"] * math.sqrt(periods_per_year), sharpe_per_period=m["sharpe"],
                   skewness=m["skewness"], kurtosis=m["kurtosis"],
                   probabilistic_sharpe=probabilistic_sharpe(m["sharpe"], len(r), m["skewness"], m["kurtosis"]),
                   minimum_track_record=_track_record(m["sharpe"], m["skewness"], m["kurtosis"], len(r),
                                                      periods_per_year))
    return json_safe(out)
