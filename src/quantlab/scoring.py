"""What a run's score step needs beyond its own bars: the risk-free rate and the benchmark.

``scoring_spec(resolved)`` is planned into the simulation's spec (so both are in its content key
and, through the resolved params, in the run id digest and ``config_hash``);
``score_inputs(spec, timestamps, warnings)`` is what the score step passes on to
``metrics.compute_metrics``. A named benchmark (``params.benchmark``) is loaded like the run's
ticker, over the same window and interval; its closes are aligned as of each of the run's bars.
Without one, the benchmark is buy and hold of the run's own closes. Imports stay inside the
functions: the planner imports this module.
"""

from __future__ import annotations

# a named benchmark missing at more than this share of the run's bars is warned about
BENCHMARK_GAP_WARN = 0.05


def scoring_spec(resolved: dict) -> dict:
    """``{"risk_free_rate", "benchmark"}``: the benchmark as its data spec without the machine-local
    cache directory (it is part of the simulation's content key), None for the run's own."""
    from quantlab.commands.run.plan import make_data_spec

    bench = resolved.get("benchmark")
    spec = {"risk_free_rate": float(resolved.get("risk_free_rate") or 0.0), "benchmark": None}
    if bench and bench != resolved.get("ticker"):
        source = resolved["source"] if resolved["source"] in ("auto", "sample", "yfinance", "synthetic") else "auto"
        _, data = make_data_spec({**resolved, "ticker": bench, "data_path": None, "source": source},
                                 resolved["start"], resolved["end"], 1)
        spec["benchmark"] = {k: v for k, v in data.items() if k != "cache_dir"}
    return spec


def score_inputs(spec: dict, timestamps, warnings: list[str]) -> dict:
    """Keyword arguments of ``compute_metrics`` for a simulation spec planned with a ``scoring``
    entry (older specs and forward candidates: risk-free rate 0, buy and hold of the ticker)."""
    scoring = spec.get("scoring") or {}
    out = {"risk_free_rate": float(scoring.get("risk_free_rate") or 0.0), "timestamps": timestamps}
    if scoring.get("benchmark"):
        out["benchmark_close"] = benchmark_close(scoring["benchmark"], timestamps, warnings)
    return out


def scoring_info(spec: dict) -> dict:
    """What the score step used, for metrics.json: the benchmark ticker and the risk-free rate."""
    scoring = spec.get("scoring") or {}
    bench = scoring.get("benchmark")
    return {"benchmark": bench["ticker"] if bench else f"{spec.get('ticker')} (buy and hold)",
            "risk_free_rate": float(scoring.get("risk_free_rate") or 0.0)}


def benchmark_close(data_spec: dict, timestamps, warnings: list[str]):
    """The benchmark's last close at or before each of ``timestamps``. ``DataError`` (exit 3)
    when it cannot be loaded or has no bar at or before the run's first bar."""
    import numpy as np

    from quantlab.commands.run.steps import data_request
    from quantlab.contract.paths import outputs_root
    from quantlab.data import load_bars
    from quantlab.errors import DataError

    ticker = data_spec["ticker"]
    try:
        bars = load_bars(data_request({**data_spec, "cache_dir": str(outputs_root() / "cache")}))
    except DataError as exc:
        raise DataError(f"benchmark {ticker}: {exc}") from exc
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    index = np.asarray(bars.index).astype("datetime64[ns]")
    if len(ts) == 0:
        return np.empty(0)
    at = np.searchsorted(index, ts, side="right") - 1
    if at[0] < 0:
        raise DataError(f"benchmark {ticker} has no bar at or before the run's first bar {ts[0]} "
                        f"(its bars start {index[0] if len(index) else 'nowhere'})")
    missing = int(np.count_nonzero(index[at] != ts))
    if missing > BENCHMARK_GAP_WARN * len(ts):
        warnings.append(f"benchmark {ticker} has no bar at {missing} of the run's {len(ts)} bars: its "
                        "previous close stands in there (a zero benchmark return)")
    return np.asarray(bars.close, dtype=np.float64)[at]
