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

Modules: ``core`` (helpers, moments, Sharpe), ``stats`` (PSR, DSR, MinTRL, effective trials),
``cscv`` (PBO), ``bootstrap``, ``walkforward``, ``verdict``, ``report`` (the entry point).
Nothing here imports Snakemake, scipy or the engine; the module is not imported by the ``run``
planner (callers import it lazily).
"""

from quantlab.robustness.bootstrap import bootstrap_sharpe_ci, default_block_length, stationary_bootstrap_indices
from quantlab.robustness.core import json_safe, moments, sharpe
from quantlab.robustness.cscv import cscv_splits, pbo
from quantlab.robustness.report import robustness_report, single_run_report
from quantlab.robustness.stats import (
    EULER_GAMMA,
    deflated_sharpe,
    effective_trials,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe,
    probabilistic_sharpe_columns,
)
from quantlab.robustness.verdict import DSR_OVERFIT, DSR_ROBUST, PBO_OVERFIT, PBO_ROBUST, VERDICTS, verdict
from quantlab.robustness.walkforward import parameter_stability, walk_forward_efficiency

__all__ = [
    "DSR_OVERFIT", "DSR_ROBUST", "EULER_GAMMA", "PBO_OVERFIT", "PBO_ROBUST", "VERDICTS",
    "bootstrap_sharpe_ci", "cscv_splits", "default_block_length", "deflated_sharpe", "effective_trials",
    "expected_max_sharpe", "json_safe", "min_track_record_length", "moments", "parameter_stability", "pbo",
    "probabilistic_sharpe", "probabilistic_sharpe_columns", "robustness_report", "sharpe", "single_run_report",
    "stationary_bootstrap_indices", "verdict", "walk_forward_efficiency",
]
