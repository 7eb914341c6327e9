"""The verdict: ``robust`` | ``inconclusive`` | ``likely_overfit`` (docs/robustness.md, "The verdict")."""

from __future__ import annotations


VERDICTS = ("robust", "inconclusive", "likely_overfit")

# verdict thresholds (docs/robustness.md, "The verdict")
PBO_OVERFIT = 0.5
DSR_OVERFIT = 0.5
PBO_ROBUST = 0.2
DSR_ROBUST = 0.95


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


