"""The notebook API in one script (docs/python-api.md pastes its output).

    python examples/notebook_api.py

Offline: the bundled S&P 500 sample (SPX). Results go where main.py puts them (outputs/, or
$QUANTLAB_OUTPUTS_DIR). Prints only what does not depend on the day it runs (no run ids).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # a checkout without pip install

import quantlab  # noqa: E402

# one backtest: engine parameters (fee) and strategy parameters (fast, slow) as keyword arguments
res = quantlab.run(ticker="SPX", strategy="sma_crossover", start="2015-01-01", end="2018-01-01",
                   fee=0.001, fast=10, slow=50, risk_free_rate=0.02, benchmark="^IXIC")
m = res.metrics
print("run")
for key in ("total_return", "sharpe_simple", "max_drawdown", "trades", "sqn", "expectancy", "var_95",
            "alpha", "beta", "max_drawdown_duration_days"):
    print(f"  {key:28s} {m[key]:.4f}" if isinstance(m[key], float) else f"  {key:28s} {m[key]}")
print("  trades frame:", res.trades.shape, "equity frame:", res.equity.shape)
print(res.trades[["entry_time", "exit_time", "return", "bars_held"]].head(3).to_string(index=False))

# a grid sweep: lists and ranges of strategy parameters are the grid
sw = quantlab.sweep(ticker="SPX", strategy="sma_crossover", start="2015-01-01", end="2018-01-01",
                    fee=0.001, fast=range(5, 30, 10), slow=[50, 100])
board = sw.leaderboard
print("sweep: best 3 of", len(board))
print(board[["rank", "fast", "slow", "sharpe_simple", "sqn", "max_drawdown_duration_bars"]].head(3)
      .to_string(index=False, float_format=lambda x: f"{x:.4f}"))

# the sweep's best candidate carried forward over the next five months
fw = quantlab.forward(sw, forward_end="2018-06-01")
print("forward total_return", f"{fw.metrics['total_return']:.4f}", "trades", fw.metrics["trades"])

fig = res.plot(show=False)  # a Bokeh layout; in Jupyter, res.plot() shows it inline
from bokeh.models import LayoutDOM  # noqa: E402

print("plot is a Bokeh layout:", isinstance(fig, LayoutDOM))
