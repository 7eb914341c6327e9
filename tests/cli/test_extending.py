"""docs/extending.md, proved: a throw-away metric and a throw-away strategy with a fused grid path.

The plugin below is one module (on ``QUANTLAB_PLUGINS``) holding one metric registry entry and
one strategy whose ``grid_path`` hands the grid engine its own numba-subset signal function.
Nothing else is touched: the metric then shows up in metrics.json, the report summary, the
sweep leaderboard, the runs index and the sweep schema; the fused grid gives exactly what the
single-run path gives.
"""

from __future__ import annotations

import csv
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import strict_json

PLUGIN = textwrap.dedent('''
    """Throw-away plugin: the loss_share metric and the rhythm_fused strategy."""
    from quantlab._lazy import np
    from quantlab.metric_registry import Metric, register
    from quantlab.strategies import Param, Signals, Strategy, register as register_strategy

    register(Metric("loss_share", higher_is_better=False, in_summary=True,
                    formula=lambda s: np.where(s.trades > 0, s.losses / s.trades, np.nan),
                    description="Share of trades with a negative pnl."))


    @register_strategy
    class RhythmFused(Strategy):
        name = "rhythm_fused"
        description = "enter every `every` bars, exit `every // 2` bars later (test plugin)"
        params = (Param("every", int, 10, 2, 500),)

        def compute(self, open_, high, low, close, params):
            i = np.arange(len(close))
            every = params["every"]
            return Signals(i % every == 0, i % every == every // 2)

        def grid_path(self, close, params):
            from quantlab.engine.sweep import GridBlock, GridPath, grid_column

            return GridPath(rhythm_signals, [GridBlock(p_i1=grid_column(self, params, "every", True, 2))])


    def rhythm_signals(c, start, close, f_vec, i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit):
        every = p_i1[c]
        for t in range(start, len(close)):
            sig_enter[t] = t % every == 0
            sig_exit[t] = t % every == every // 2
''')


def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "plugins"
    root.mkdir(exist_ok=True)
    (root / "ql_extend_plugin.py").write_text(PLUGIN)
    return root


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin loaded in this process (and removed again afterwards)."""
    import sys

    from quantlab import metric_registry, strategies

    monkeypatch.syspath_prepend(str(plugin_dir(tmp_path)))
    monkeypatch.setenv("QUANTLAB_PLUGINS", "ql_extend_plugin")
    yield strategies.get_strategy("rhythm_fused")
    metric_registry.unregister("loss_share")
    strategies.REGISTRY.pop("rhythm_fused", None)
    strategies._loaded_plugins.discard("ql_extend_plugin")
    sys.modules.pop("ql_extend_plugin", None)


def _bars(n=600, seed=3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return close, close * 1.01, close * 0.99, close


@pytest.mark.parametrize("jit_mode", ["never", "always"])
def test_fused_plugin_grid_equals_single_runs_and_carries_the_new_metric(plugin, monkeypatch, jit_mode):
    from quantlab.engine import EngineConfig, simulate
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.metrics import compute_metrics

    monkeypatch.setenv("QUANTLAB_JIT", jit_mode)
    calls = []
    real = type(plugin).grid_path
    monkeypatch.setattr(type(plugin), "grid_path", lambda self, c, p: calls.append(len(p)) or real(self, c, p))
    o, h, l, c = _bars()
    combos = [{"every": e} for e in (4, 7, 12, 30)]
    cfg = EngineConfig(fee=0.001)
    got = evaluate_grid(o, h, l, c, "rhythm_fused", combos, cfg, start=5, periods_per_year=252)
    assert calls == [4]  # the engine asked the strategy for its fused path
    assert "loss_share" in got
    for i, combo in enumerate(combos):
        res = simulate(o, h, l, c, plugin.signals(o, h, l, c, combo), cfg, start=5)
        want = compute_metrics(res, c, start=5, periods_per_year=252, initial_cash=cfg.initial_cash)
        assert list(got) == list(want)
        for key in got:
            value = want[key]
            g = float(got[key][i])
            assert (value is None and math.isnan(g)) or g == value, (key, combo)


def test_new_metric_in_the_schema_index_columns_and_directions(plugin):
    from quantlab import metric_registry
    from quantlab.artifacts import runs_index
    from quantlab.commands.experiment import sweep_schema

    schema = sweep_schema()
    assert "loss_share" in schema["properties"]["objective"]["enum"]
    assert "loss_share" in schema["properties"]["selection"]["properties"]["sort_by"]["items"]["enum"]
    assert "loss_share" in runs_index.columns()
    assert "loss_share" in metric_registry.lower_is_better()
    assert metric_registry.summary_names()[-1] == "loss_share"


def test_builtin_registry_is_what_every_list_reads():
    from quantlab import metric_registry as mr
    from quantlab.artifacts import runs_index
    from quantlab.commands import experiment
    from quantlab.registry import runs

    names = mr.metric_names()
    assert names == ("total_return", "cagr", "sharpe_simple", "sortino", "max_drawdown", "calmar",
                     "volatility_ann", "trades", "win_rate", "profit_factor", "exposure", "avg_trade_return",
                     "exits_signal", "exits_stop_loss", "exits_take_profit", "exits_trailing_stop",
                     "exits_max_bars", "exits_end_of_data", "exits_margin_call", "ambiguous_bars",
                     "bars", "benchmark_return", "expectancy", "sqn", "best_trade", "worst_trade",
                     "avg_holding_bars", "exposure_adjusted_return", "max_drawdown_duration_bars",
                     "max_drawdown_duration_days", "var_95", "cvar_95", "beta", "alpha", "tracking_error",
                     "information_ratio")
    assert mr.grid_metric_names() == names  # the leaderboard carries every metric
    assert mr.summary_names() == ("total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate")
    assert runs_index.METRIC_KEYS == runs.KPIS == ("sharpe_simple", "total_return", "max_drawdown", "trades",
                                                    "win_rate")
    assert experiment.METRIC_NAMES == names and runs.METRICS == mr.headline_first(names)
    assert mr.lower_is_better() == ("volatility_ann", "ambiguous_bars", "avg_holding_bars",
                                    "max_drawdown_duration_bars", "max_drawdown_duration_days", "tracking_error")
    with pytest.raises(ValueError, match="already registered"):
        mr.register(mr.Metric("cagr", False, False, lambda s: s.trades))
    with pytest.raises(ValueError, match="built in"):
        mr.unregister("cagr")


def test_plugin_metric_and_fused_strategy_through_main(ql, tmp_path):
    ql.env["PYTHONPATH"] = str(plugin_dir(tmp_path))
    ql.env["QUANTLAB_PLUGINS"] = "ql_extend_plugin"
    base = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "rhythm_fused"}
    res = ql.request({"schema_version": "1.0", "request_id": "ext-run", "command": "run",
                      "params": {**base, "strategy_params": {"every": 7}}})
    assert res.returncode == 0, res.stderr
    env = res.envelope
    run_dir = Path(env["artifacts_path"])
    metrics = strict_json((run_dir / "metrics.json").read_text())
    flat = json.dumps(metrics)
    assert "loss_share" in flat
    assert "loss_share" in env["summary"]
    single = env["summary"]["loss_share"]
    assert single is not None and 0.0 <= single <= 1.0

    res = ql.request({"schema_version": "1.0", "request_id": "ext-sweep", "command": "sweep",
                      "params": {**base, "param_grid": {"every": [5, 7, 9]}, "objective": "loss_share"}})
    assert res.returncode == 0, res.stderr
    sweep_dir = Path(res.envelope["artifacts_path"])
    with open(sweep_dir / "leaderboard.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all(r["loss_share"] != "" for r in rows)
    by_every = {int(float(r["every"])): float(r["loss_share"]) for r in rows}
    assert by_every[7] == pytest.approx(single, rel=1e-9)  # the CSV keeps 10 decimals
    mc = strict_json((sweep_dir / "report.json").read_text())["machine_contract"]
    assert "loss_share" in mc["summary"] and "loss_share" in mc["best_result"]

    index_csv = next(ql.outputs.rglob("runs_index.csv"))
    with open(index_csv) as fh:
        index_rows = list(csv.DictReader(fh))
    assert "loss_share" in index_rows[0]
    assert any(r["loss_share"] not in ("", None) for r in index_rows)
