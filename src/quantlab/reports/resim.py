"""Equity curves a sweep does not store: a grid keeps one row of metrics per combination, so the
report re-simulates the few combinations it draws (the best and the median by the ranking
metric) with the same loader, strategy and engine as a ``run`` of those parameters. The result
is checked against the leaderboard's ``total_return`` before it is drawn (a mismatch is a note in
the page, never a silently different curve)."""

from __future__ import annotations

import math

from quantlab.commands.run.plan import ENGINE_KEYS
from quantlab.contract.paths import outputs_root


def simulate_params(config: dict, params: dict):
    """(timestamps, equity) of ``config``'s window traded with strategy ``params``."""
    import numpy as np

    from quantlab.data import DataRequest, load_bars
    from quantlab.engine import EngineConfig, simulate
    from quantlab.strategies import get_strategy

    strategy = get_strategy(config["strategy"])
    resolved = strategy.resolve_params(dict(params))
    req = DataRequest(ticker=config["ticker"], start=config["start"], end=config["end"],
                      interval=config.get("interval", "1d"), source=config.get("source", "auto"),
                      data_path=config.get("data_path"), lookback_bars=int(strategy.warmup_bars(resolved)),
                      seed=int(config.get("seed", 7)), cache_dir=str(outputs_root() / "cache"),
                      adjust=config.get("adjust") or "auto", date_format=config.get("date_format"))
    bars = load_bars(req)
    extra = {"volume": bars.volume} if getattr(strategy, "uses_volume", False) else {}
    signals = strategy.signals(bars.open, bars.high, bars.low, bars.close, resolved, **extra)
    cfg = EngineConfig(**{k: config[k] for k in ENGINE_KEYS if k in config})
    start = bars.index_of(config["start"])
    result = simulate(bars.open, bars.high, bars.low, bars.close, signals, cfg, start=start)
    return bars.index[start:].astype("datetime64[ns]"), np.asarray(result.equity, dtype=float)


def checked_equity(config: dict, row: dict, notes: list[str], label: str):
    """The re-simulated equity of a leaderboard row, or None (with a note) when it cannot be
    made or does not reproduce the row's total_return."""
    try:
        ts, equity = simulate_params(config, row["params"])
    except Exception as exc:  # data gone, plugin strategy missing ...: the page says so
        notes.append(f"{label}: equity not re-simulated ({type(exc).__name__}: {exc})")
        return None
    expected = row.get("total_return")
    start_cash = float(config.get("initial_cash", equity[0] if len(equity) else 1.0))
    got = equity[-1] / start_cash - 1.0 if len(equity) else float("nan")
    close = math.isfinite(got) and abs(got - float(expected or 0)) <= 1e-6 * max(1.0, abs(expected or 0))
    if isinstance(expected, (int, float)) and not close:
        notes.append(f"{label}: re-simulated total_return {got:.6f} differs from the leaderboard's "
                     f"{expected:.6f}; curve not drawn")
        return None
    return ts, equity
