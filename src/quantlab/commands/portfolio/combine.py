"""Combining the selected sessions (step 3 of a portfolio mode): weights (equal_weight,
custom_weight, inverse_vol, raw_capital) and the buy-and-hold portfolio on their union calendar.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

from quantlab import metric_registry
from quantlab._lazy import np
from quantlab.commands.portfolio.selection import short_list
from quantlab.commands.portfolio.sessions import (calendar_gaps, empty_tradelog, iso_text, iso_texts, own_returns, session_periods_per_year)
from quantlab.errors import ConfigError, DataError


MODES = ("equal_weight", "custom_weight", "inverse_vol", "raw_capital")


ZERO_RETURN = 1e-12                          # |portfolio return| below this: contributions are 0


def compare_modes(weights: Mapping | None) -> list[str]:
    """The modes ``portfolio_compare`` evaluates: equal_weight, inverse_vol, and custom_weight
    when weights were supplied."""
    return ["equal_weight", "inverse_vol"] + (["custom_weight"] if weights else [])


def load_weights(path: str | os.PathLike) -> dict[str, float]:
    """Read a custom weights file ``{session_id: weight}`` (values are checked by :func:`combine`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"portfolio weights file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"portfolio weights file {path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"portfolio weights file {path} must be a non-empty JSON object {{session_id: weight}}")
    return data


def _custom_weights(ids: list[str], weights: Any) -> tuple[Any, dict, list[str]]:
    if weights is None:
        raise ConfigError("portfolio mode custom_weight needs weights: {session_id: weight}")
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError("portfolio weights must be a non-empty object {session_id: weight}")
    unknown = sorted(str(k) for k in weights if str(k) not in ids)
    if unknown:
        raise ConfigError(f"portfolio weights name sessions that are not selected: {short_list(unknown)} "
                          f"(selected: {short_list(ids)})")
    raw: dict[str, float] = {}
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
                or value < 0:
            raise ConfigError(f"portfolio weight of session {key} must be a finite number >= 0, got {value!r}")
        raw[str(key)] = float(value)
    total = math.fsum(raw.values())
    if not total > 0:
        raise ConfigError("portfolio weights sum to 0: at least one selected session needs a positive weight")
    w = np.array([raw.get(i, 0.0) / total for i in ids])
    missing = [i for i in ids if i not in raw]
    normalised = abs(total - 1.0) > 1e-12
    warnings = []
    if normalised:
        warnings.append(f"custom weights sum to {total:.10g}: normalised to sum 1")
    if missing:
        warnings.append(f"selected sessions absent from the weights get weight 0: {short_list(missing)}")
    info = {"input": raw, "input_sum": total, "normalised": normalised, "zero_weight_sessions": missing}
    return w, info, warnings


def _inverse_vol_weights(selected: list[dict]) -> tuple[Any, dict, list[str]]:
    vols: dict[str, float | None] = {}
    zero: list[str] = []
    inv = np.zeros(len(selected))
    for k, s in enumerate(selected):
        r = s["returns"]
        std = float(np.std(r, ddof=1)) if len(r) >= 2 else float("nan")
        mean = float(np.mean(r))
        if not math.isfinite(std) or std == 0.0 or std <= 1e-12 * abs(mean):
            vols[s["session_id"]] = None if not math.isfinite(std) else 0.0
            zero.append(s["session_id"])
        else:
            vols[s["session_id"]] = std
            inv[k] = 1.0 / std
    warnings = []
    fallback = None
    if inv.sum() > 0:
        w = inv / inv.sum()
        if zero:
            warnings.append(f"inverse_vol: zero-volatility sessions get weight 0: {short_list(zero)}")
    else:
        w = np.full(len(selected), 1.0 / len(selected))
        fallback = "equal_weight"
        warnings.append("inverse_vol: every selected session has zero volatility; equal weights used")
    info = {"volatility": vols, "volatility_basis": "sample std (ddof=1) of the session's own per-bar returns",
            "zero_volatility_sessions": zero, "fallback": fallback}
    return w, info, warnings


def _weights(mode: str, selected: list[dict], weights: Any) -> tuple[Any, dict, list[str]]:
    ids = [s["session_id"] for s in selected]
    n = len(ids)
    info: dict[str, Any] = {"mode": mode}
    warnings: list[str] = []
    if mode == "equal_weight":
        w = np.full(n, 1.0 / n)
    elif mode == "raw_capital":
        cash = np.array([s["initial_cash"] for s in selected])
        w = cash / cash.sum()
    elif mode == "custom_weight":
        w, extra, warnings = _custom_weights(ids, weights)
        info.update(extra)
    else:
        w, extra, warnings = _inverse_vol_weights(selected)
        info.update(extra)
    info["weights"] = {i: float(x) for i, x in zip(ids, w)}
    return w, info, warnings


def _correlation(ids: list[str], rets, live) -> dict:
    n = len(ids)
    matrix: list[list[float | None]] = [[None] * n for _ in range(n)]
    overlap = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            mask = live[i] & live[j]
            m = int(mask.sum())
            overlap[i][j] = overlap[j][i] = m
            value = None
            if m >= 2:
                x = rets[i][mask]
                y = rets[j][mask]
                dx, dy = x - x.mean(), y - y.mean()
                sx, sy = math.sqrt(float(dx @ dx)), math.sqrt(float(dy @ dy))
                tiny_x = sx == 0.0 or sx <= 1e-12 * abs(float(x.mean())) * math.sqrt(m)
                tiny_y = sy == 0.0 or sy <= 1e-12 * abs(float(y.mean())) * math.sqrt(m)
                if not (tiny_x or tiny_y):
                    value = 1.0 if i == j else max(-1.0, min(1.0, float(dx @ dy) / (sx * sy)))
            matrix[i][j] = matrix[j][i] = value
    return {"session_ids": ids, "matrix": matrix, "overlap_bars": overlap,
            "method": "Pearson correlation of per-bar returns on the common calendar, pairwise over the bars "
                      "where both sessions are live (first..last bar); null when fewer than 2 shared bars "
                      "or a constant series"}


def combine(selected: list[dict], mode: str, weights: Mapping[str, float] | None = None) -> dict:
    """Combine the selected sessions into one portfolio (see the module doc and docs/portfolio.md).

    ``weights`` is used by ``custom_weight`` only: ``{session_id: weight}``, every key a selected
    session, every value finite and >= 0, sum > 0; normalised to sum 1 (the result says so),
    selected sessions absent from it get 0. ``inverse_vol``: w ∝ 1/std of the session's own
    per-bar returns; zero-volatility sessions get 0 (all zero: equal weights). ``raw_capital``:
    w ∝ initial_cash. Returns a JSON-ready dict (``series`` holds numpy arrays).
    Raises ``ConfigError`` (mode, weights) or ``DataError`` (no session, mixed intervals).
    """
    from quantlab.engine import SimResult
    from quantlab.metrics import compute_metrics

    if mode not in MODES:
        raise ConfigError(f"unknown portfolio mode {mode!r}; valid: {', '.join(MODES)}")
    if not selected:
        raise DataError("no forward session to combine")
    ids = [s["session_id"] for s in selected]
    if len(set(ids)) != len(ids):
        raise ConfigError("the same session is selected twice")
    intervals = sorted({s["interval"] for s in selected})
    if len(intervals) > 1:
        raise DataError(f"the selected sessions mix bar intervals ({', '.join(intervals)}): one portfolio needs "
                        "one bar interval; narrow the selection")
    interval = intervals[0]
    w, winfo, warnings = _weights(mode, selected, weights)

    cal = np.unique(np.concatenate([s["timestamps"] for s in selected]))
    gaps = calendar_gaps(cal)
    if gaps:
        holes = ", ".join(f"{g['from']} -> {g['to']} ({g['days']:g} days)" for g in gaps[:5])
        warnings.append(f"calendar gap{'s' if len(gaps) > 1 else ''}: no selected session has bars {holes}"
                        f"{' ...' if len(gaps) > 5 else ''}; the portfolio is held flat through "
                        f"{'them' if len(gaps) > 1 else 'it'}, and CAGR, volatility and Sharpe count bars, "
                        "not calendar time (see calendar.gaps)")
    multi = [f"{s['session_id']} ({s['candidates']} candidates, uses {s['candidate_used']})"
             for s in selected if s.get("candidates", 1) > 1]
    if multi:
        warnings.append("sessions with several candidates enter with their first candidate only: "
                        + short_list(multi))
    warnings += [f"leg {s['session_id']}: {w}" for s in selected for w in s.get("leg_warnings", [])]
    n, t = len(selected), len(cal)
    norm = np.empty((n, t))
    bench = np.empty((n, t))
    live = np.zeros((n, t), dtype=bool)
    pos = np.zeros((n, t), dtype=np.int8)
    has_bench = True
    for k, s in enumerate(selected):
        idx = np.searchsorted(s["timestamps"], cal, side="right") - 1
        before = idx < 0
        j = np.maximum(idx, 0)
        norm[k] = np.where(before, 1.0, s["norm_equity"][j])
        live[k] = ~before & (cal <= s["timestamps"][-1])
        pos[k] = np.where(live[k], s["position"][j], 0)
        if s["norm_benchmark"] is None:
            has_bench = has_bench and w[k] == 0
            bench[k] = norm[k]
        else:
            bench[k] = np.where(before, 1.0, s["norm_benchmark"][j])
    start_value = math.fsum(s["initial_cash"] for s in selected)
    port_norm = w @ norm
    equity = start_value * port_norm
    returns = own_returns(port_norm)
    exposure = (live & (pos != 0) & (w[:, None] > 0)).any(axis=0).astype(np.int8)
    bench_value = start_value * (w @ bench)
    ppy, crypto = session_periods_per_year(cal, interval)  # the union calendar's own weekdays
    result = SimResult(equity=equity, position=exposure, returns=returns, trades=empty_tradelog(), open_position=0)
    metrics = compute_metrics(result, bench_value, start=0, periods_per_year=ppy, initial_cash=start_value)
    if not has_bench:
        metrics["benchmark_return"] = None
    peak = np.maximum.accumulate(np.maximum(equity, start_value))
    drawdown = np.where(peak > 0, equity / peak - 1.0, 0.0)

    final = norm[:, -1]
    port_return = float(port_norm[-1]) - 1.0
    if abs(port_return) > ZERO_RETURN:
        contrib = w * (final - 1.0) / port_return
    else:
        contrib = np.zeros(n)
    pnl = start_value * w * (final - 1.0)
    cal_returns = np.vstack([own_returns(norm[k]) for k in range(n)])
    rows = []
    for k, s in enumerate(selected):
        m = s["metrics"]
        rows.append({
            "session_id": s["session_id"], "ticker": s["ticker"], "interval": s["interval"],
            "strategy": s["strategy"], "strategy_params": s["strategy_params"],
            "source_run_id": s["source_run_id"], "forward_start": s["forward_start"],
            "forward_end": s["forward_end"], "created_at": s["created_at"], "updated_at": s["updated_at"],
            "first_bar": s["first_bar"], "last_bar": s["last_bar"], "bars": s["bars"],
            "initial_cash": s["initial_cash"], "ending_equity": s["initial_cash"] * float(s["norm_equity"][-1]),
            "total_return": m.get("total_return"), "max_drawdown": m.get("max_drawdown"),
            "sharpe_simple": m.get("sharpe_simple"), "trades": m.get("trades"), "win_rate": m.get("win_rate"),
            "total_pnl": m.get("total_pnl"), "weight": float(w[k]), "contribution": float(contrib[k]),
            "pnl_contribution": float(pnl[k]), "path": s["path"],
            "candidates": s.get("candidates", 1), "candidate_used": s.get("candidate_used"),
        })
    plot_idx = np.unique(np.linspace(0, t - 1, min(t, 1500)).round().astype(np.int64))
    summary = {k: metrics.get(k) for k in metric_registry.summary_names()}
    summary["trades"] = int(summary["trades"] or 0)
    return {
        "mode": mode, "n_sessions": n, "session_ids": ids,
        "weights": winfo, "summary": summary, "metrics": metrics,
        "portfolio": {"start_value": start_value, "end_value": float(equity[-1]), "total_pnl": float(equity[-1])
                      - start_value, "total_return": port_return, "rebalancing": "none (buy and hold of the "
                      "initial weights)", "calendar": "union of the selected sessions' bars"},
        "contributions": {i: float(c) for i, c in zip(ids, contrib)},
        "sessions": rows,
        "correlation": _correlation(ids, cal_returns, live),
        "calendar": {"bars": t, "first_bar": iso_text(cal[0]), "last_bar": iso_text(cal[-1]), "interval": interval,
                     "periods_per_year": ppy, "crypto": crypto, "gaps": gaps},
        "series": {"timestamps": iso_texts(cal), "equity": equity, "normalised": port_norm, "returns": returns,
                   "drawdown": drawdown, "benchmark_equity": bench_value, "exposure": exposure},
        "plot": {"index": plot_idx, "sessions": {i: norm[k][plot_idx] for k, i in enumerate(ids)}},
        "warnings": warnings,
    }
