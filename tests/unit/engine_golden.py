"""Digests of the engine's results with every risk control off, for the byte-identity test.

``python tests/unit/engine_golden.py`` (from the repository root) rewrote
``tests/unit/data/engine_off_golden.json`` once, with the engine as it was *before* stops and
sizing were added (commit fce9eac); ``test_risk.py`` recomputes the digests with today's engine
and compares: equity, positions, returns, every trade column and every metric that existed then
must be bit for bit the same, in single runs and in grids.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "engine_off_golden.json"
TRADE_COLUMNS = ("entry_idx", "exit_idx", "side", "entry_price", "exit_price", "qty", "entry_fee",
                 "exit_fee", "pnl", "ret", "bars_held")
METRICS = ("total_return", "cagr", "sharpe_simple", "sortino", "max_drawdown", "calmar", "volatility_ann",
           "trades", "win_rate", "profit_factor", "exposure", "avg_trade_return", "bars", "benchmark_return")
CASES = (("sma_crossover", {"fast": 5, "slow": 30}), ("rsi_ma_cross_v2", {}),
         ("bollinger_reversion", {"window": 20, "num_std": 1.5}), ("donchian_breakout", {}),
         ("buy_and_hold", {}))
GRIDS = (("sma_crossover", [{"fast": f, "slow": s} for f in (3, 5, 10) for s in (20, 40)]),
         ("rsi_ma_cross_v2", [{"rsi_buy_max": b, "ma_window": w} for b in (50.0, 60.0) for w in (10, 20)]),
         ("donchian_breakout", [{"entry_window": e} for e in (10, 20)]))


def bars(n: int = 1500, seed: int = 11):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.012, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.008)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.008)
    return open_, high, low, close


def configs():
    from quantlab.engine import EngineConfig

    for fill in ("next_open", "close"):
        for short in (False, True):
            for slip in ("fixed", "atr"):
                yield f"{fill}/{'short' if short else 'long'}/{slip}", EngineConfig(
                    fill=fill, allow_short=short, slippage_mode=slip, fee=0.001, k_atr=0.1)


def _h(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:20]


def digests() -> dict:
    from quantlab.engine import simulate
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.metrics import compute_metrics
    from quantlab.strategies import get_strategy

    o, h, l, c = bars()
    out = {}
    for label, cfg in configs():
        for name, params in CASES:
            strategy = get_strategy(name)
            sig = strategy.signals(o, h, l, c, params)
            start = 30
            res = simulate(o, h, l, c, sig, cfg, start=start)
            m = compute_metrics(res, c, start=start, periods_per_year=252.0, initial_cash=cfg.initial_cash)
            out[f"run {label} {name}"] = {
                "equity": _h(res.equity), "position": _h(res.position), "returns": _h(res.returns),
                **{col: _h(getattr(res.trades, col)) for col in TRADE_COLUMNS},
                "metrics": {k: m[k] for k in METRICS}, "open_position": res.open_position,
                "margin_call": res.margin_call}
        for name, combos in GRIDS:
            got = evaluate_grid(o, h, l, c, name, combos, cfg, start=30, periods_per_year=252.0)
            out[f"grid {label} {name}"] = {k: _h(got[k]) for k in METRICS}
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    GOLDEN.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
