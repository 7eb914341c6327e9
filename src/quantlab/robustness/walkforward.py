"""Walk-forward helpers: efficiency (Pardo 2008) and stability of the selected parameters."""

from __future__ import annotations

import numpy as np

from quantlab.robustness.core import finite_or_none, json_safe


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
    return {"efficiency": finite_or_none(overall), "per_split": json_safe(per_split),
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


