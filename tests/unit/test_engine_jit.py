"""The two execution modes (pure Python, numba) of the same kernels, and the dispatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab.engine import EngineConfig, Signals, jit, kernels, simulate
from quantlab.engine import indicators as ind
from quantlab.errors import ConfigError
from quantlab.metrics import compute_metrics

SRC = Path(__file__).resolve().parents[2] / "src"


def in_mode(monkeypatch, mode, fn, *args, **kwargs):
    monkeypatch.setenv("QUANTLAB_JIT", mode)
    return fn(*args, **kwargs)


def assert_same_result(a, b):
    for name in ("equity", "position", "returns"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for f in fields(a.trades):
        x, y = getattr(a.trades, f.name), getattr(b.trades, f.name)
        assert x.dtype == y.dtype and np.array_equal(x, y), f.name
    assert a.open_position == b.open_position


# ---------------------------------------------------------------------------------- dispatcher
def test_jit_env_var(monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", "never")
    assert not jit.use_jit(10**9)
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    assert jit.use_jit(1)
    monkeypatch.setenv("QUANTLAB_JIT", "Auto")
    assert jit.jit_mode() == "auto"
    monkeypatch.delenv("QUANTLAB_JIT")
    assert jit.jit_mode() == "auto"
    monkeypatch.setenv("QUANTLAB_JIT", "sometimes")
    with pytest.raises(ConfigError, match="QUANTLAB_JIT"):
        jit.use_jit(1)


def test_auto_thresholds(monkeypatch):
    monkeypatch.delenv("QUANTLAB_JIT", raising=False)
    monkeypatch.setattr(jit, "_warm", set())
    assert not jit.use_jit(jit.COLD_THRESHOLD - 1)
    assert jit.use_jit(jit.COLD_THRESHOLD)
    monkeypatch.setattr(jit, "_warm", {kernels.rsi_kernel})  # numba already initialised
    assert not jit.use_jit(jit.LOADED_THRESHOLD - 1, kernels.simulate_kernel)
    assert jit.use_jit(jit.LOADED_THRESHOLD, kernels.simulate_kernel)
    assert jit.use_jit(max(jit.WARM_THRESHOLD, 1), kernels.rsi_kernel)
    assert jit.WARM_THRESHOLD < jit.LOADED_THRESHOLD < jit.COLD_THRESHOLD
    monkeypatch.setenv("QUANTLAB_JIT", "never")  # forcing wins over every threshold
    assert not jit.use_jit(10**9, kernels.rsi_kernel)


def test_kernels_reach_their_helpers_transitively_and_compile_without_refcounting():
    """``sweep_kernel`` calls the trading loop, which calls the stop and fill helpers: numba needs
    every one of them as a dispatcher. The engine kernels never allocate, so they (and a grid
    path bound into them) compile without NRT; other modules' kernels keep it."""
    calls = jit._module_calls(kernels.sweep_kernel)
    assert {"trade_loop", "book_trade", "stop_hit", "close_leg", "open_leg", "slippage_at", "pairwise_sums",
            "leaf_sums", "sum_terms"} <= set(calls)
    assert "trade_loop" in jit._module_calls(kernels.simulate_kernel)
    assert jit.jitted(kernels.simulate_kernel).targetoptions["_nrt"] is False
    from quantlab.robustness import rows
    assert jit.jitted(rows.weighted_row_sum_kernel).targetoptions["_nrt"] is True


def test_call_returns_numpy_outputs_in_both_modes(monkeypatch):
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    results = []
    for use in (False, True):
        ret, (queue, out) = jit.call(kernels.rolling_extreme_kernel, len(x), x, 3, True,
                                     jit.Out(len(x), np.int64), jit.Out(len(x)), jit=use)
        assert ret is None and queue.dtype == np.int64 and out.dtype == np.float64
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0][2:], [4, 4, 5, 9, 9, 9])


def test_small_pipeline_imports_no_heavy_module():
    """A run-sized request (strategy -> simulate -> metrics) must not import numba or pandas."""
    code = """
import json, sys
import numpy as np
from quantlab.strategies import get_strategy
from quantlab.engine import EngineConfig, simulate
from quantlab.metrics import compute_metrics, periods_per_year
rng = np.random.default_rng(0)
n = 5000
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
high, low = close * 1.01, close * 0.99
for name in ("rsi_ma_cross_v2", "donchian_breakout", "bollinger_reversion"):
    s = get_strategy(name)
    p = s.resolve_params({})
    sig = s.signals(close, high, low, close, p)
    for mode in ("fixed", "atr"):
        r = simulate(close, high, low, close, sig, EngineConfig(slippage_mode=mode), start=s.warmup_bars(p))
        m = compute_metrics(r, close, start=s.warmup_bars(p), periods_per_year=periods_per_year(True, "1d"),
                            initial_cash=10000.0)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "pandas", "scipy", "matplotlib", "llvmlite"))
print(json.dumps({"heavy": heavy}))
"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("QUANTLAB_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []  # its speed: benchmarks/bench_run.py


# ------------------------------------------------------------------------- identical results
prices = st.lists(st.floats(min_value=0.5, max_value=2.0, allow_nan=False), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moves=prices,
    data=st.data(),
    fee=st.sampled_from([0.0, 0.001, 0.02]),
    slippage_mode=st.sampled_from(["fixed", "atr"]),
    slippage_bps=st.sampled_from([0.0, 8.0, 150.0]),
    fill=st.sampled_from(["next_open", "close"]),
    allow_short=st.booleans(),
    cooldown=st.integers(0, 4),
)
def test_jit_and_python_modes_agree_and_metrics_are_safe(moves, data, fee, slippage_mode, slippage_bps,
                                                         fill, allow_short, cooldown):
    n = len(moves)
    close = 100.0 * np.cumprod(np.asarray(moves)) ** 0.25
    gaps = np.asarray(data.draw(st.lists(st.floats(0.97, 1.03), min_size=n, max_size=n)))
    open_ = close * gaps
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    entries = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    exits = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    start = data.draw(st.integers(0, n - 1))
    cfg = EngineConfig(fee=fee, slippage_mode=slippage_mode, slippage_bps=slippage_bps, k_atr=0.1,
                       fill=fill, allow_short=allow_short)
    signals = Signals(entries, exits, cooldown)
    results = []
    for mode in ("never", "always"):
        os.environ["QUANTLAB_JIT"] = mode
        try:
            results.append(simulate(open_, high, low, close, signals, cfg, start=start))
        finally:
            del os.environ["QUANTLAB_JIT"]
    py, nb = results
    assert_same_result(py, nb)

    m = compute_metrics(py, close, start=start, periods_per_year=365.0, initial_cash=cfg.initial_cash)
    json.dumps(m, allow_nan=False)  # strict JSON: no NaN / Infinity
    assert all(v is None or type(v) in (int, float) for v in m.values())
    assert 0.0 <= m["exposure"] <= 1.0
    assert m["max_drawdown"] <= 0.0
    assert m["bars"] == n - start and m["trades"] == len(py.trades)
    assert m["sharpe_simple"] is None or isinstance(m["sharpe_simple"], float)
    if not allow_short:
        assert np.all(py.equity > 0) and set(np.unique(py.position)) <= {0, 1}
        if py.open_position == 0:
            assert py.equity[-1] == pytest.approx(cfg.initial_cash + py.trades.pnl.sum(), rel=1e-9)


@pytest.mark.parametrize("window", [1, 2, 3, 14, 50])
def test_indicator_kernels_agree_across_modes(monkeypatch, window):
    rng = np.random.default_rng(window)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    close[100:130] = close[100]  # a flat stretch
    high, low = close * 1.01, close * 0.98
    calls = [
        lambda: ind.rsi(close, max(window, 2)),
        lambda: ind.atr(high, low, close, window),
        lambda: ind.atr(high, low, close, window, fill_warmup=True),
        lambda: ind.rolling_max(high, window),
        lambda: ind.rolling_min(low, window),
        lambda: ind.rolling_mean_std(close, max(window, 2), ddof=1),
        lambda: ind.ewm(close, 1.0 / window, window),
    ]
    for fn in calls:
        a = in_mode(monkeypatch, "never", fn)
        b = in_mode(monkeypatch, "always", fn)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_numba_for_decides_once_for_every_kernel_caller(monkeypatch):
    """jit.numba_for: the dispatcher when numba is picked and imports; None for the Python or
    numpy path; without numba a forced QUANTLAB_JIT=always raises unless the caller is lenient
    (the robustness passes, rows.jit_kernel), which then also gets None."""
    from quantlab.engine import jit, kernels
    from quantlab.robustness.rows import jit_kernel

    monkeypatch.setenv("QUANTLAB_JIT", "always")
    assert jit.numba_for(kernels.pairwise_sum, 1) is jit.jitted(kernels.pairwise_sum)
    monkeypatch.setenv("QUANTLAB_JIT", "never")
    assert jit.numba_for(kernels.pairwise_sum, 10**9) is None

    def missing(kernel):
        raise ImportError("no numba")
    monkeypatch.setattr(jit, "jitted", missing)
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    with pytest.raises(ImportError):
        jit.numba_for(kernels.pairwise_sum, 1)
    assert jit.numba_for(kernels.pairwise_sum, 1, strict=False) is None
    assert jit_kernel(kernels.pairwise_sum, 1) is None
    monkeypatch.setenv("QUANTLAB_JIT", "auto")
    assert jit.numba_for(kernels.pairwise_sum, 10**9) is None
