"""evaluate_grid's fixed per-call work: overrides validated once per distinct set, small grids on
the calling thread, helper threads only past ``sweep.SERIAL_WORK``; none of it changes a result."""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quantlab import _lazy
from quantlab.engine import EngineConfig, grid_combos, sweep
from quantlab.engine.sweep import evaluate_grid
from quantlab.errors import ConfigError, StrategyError
from quantlab.strategies import get_strategy

from test_sweep_engine import jit_mode, make_bars

CFG = EngineConfig(fee=0.0005, slippage_bps=2.0, fill="close")
STOPS = [{"fast": f, "slow": s, "stop_loss": sl, "take_profit": tp}
         for f, s in ((3, 10), (5, 20), (8, 30)) for sl in (0.0, 0.02) for tp in (0.0, 0.05)]


def same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=True), key


def grid(bars, combos, threads, name="sma_crossover"):
    return evaluate_grid(*bars, name, combos, CFG, start=30, periods_per_year=252, threads=threads)


def no_thread(*args, **kwargs):
    raise AssertionError("a helper thread was started")


def test_small_grid_runs_on_the_calling_thread(monkeypatch):
    bars = make_bars(300, 4)
    with jit_mode("always"):
        one = grid(bars, STOPS, 1)
        monkeypatch.setattr(sweep._thread, "start_new_thread", no_thread)
        assert len(STOPS) * 270 < sweep.SERIAL_WORK
        same(one, grid(bars, STOPS, 2))  # under SERIAL_WORK: no thread started
        monkeypatch.setattr(sweep, "SERIAL_WORK", 0)
        with pytest.raises(AssertionError, match="helper thread"):
            grid(bars, STOPS, 2)


@pytest.mark.parametrize("name,combos", [("sma_crossover", STOPS),
                                         ("donchian_breakout", [{"stop_loss": s} for s in (0.0, 0.01, 0.03)])])
def test_threaded_grid_matches_the_calling_thread(monkeypatch, name, combos):
    bars = make_bars(400, 5)
    with jit_mode("always"):
        one = grid(bars, combos, 1, name)
        monkeypatch.setattr(sweep, "SERIAL_WORK", 0)  # threads however small the grid
        monkeypatch.setattr(sweep, "CHUNK_WORK", 0)  # and chunks of one combo at the end
        for threads in (2, 3):
            same(one, grid(bars, combos, threads, name))


def test_an_error_on_a_helper_thread_reaches_the_caller(monkeypatch):
    bars = make_bars(200, 6)
    strategy = get_strategy("donchian_breakout")
    signals = strategy.signals
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise StrategyError("boom on combo 3")
        return signals(*args, **kwargs)

    monkeypatch.setattr(strategy, "signals", failing)
    monkeypatch.setattr(sweep, "SERIAL_WORK", 0)
    monkeypatch.setattr(sweep, "CHUNK_WORK", 0)
    with jit_mode("always"), pytest.raises(StrategyError, match="boom"):
        grid(bars, [{"stop_loss": 0.01 * i} for i in range(8)], 2, "donchian_breakout")


def split(combos, cfg=CFG):
    return grid_combos.split_overrides(get_strategy("sma_crossover"), combos, cfg)


def counting_replace(monkeypatch) -> list:
    real = dataclasses.replace
    made = []
    monkeypatch.setattr(grid_combos.dataclasses, "replace", lambda cfg, **over: made.append(over) or real(cfg, **over))
    return made


def test_each_distinct_override_set_is_validated_once(monkeypatch):
    real = dataclasses.replace
    monkeypatch.setattr(grid_combos, "_SETTINGS", {})  # nothing remembered from other tests
    made = counting_replace(monkeypatch)
    params, fees, slips, k_atrs, risks, cfgs = split(STOPS + [{"fast": 2, "slow": 9}])
    assert len(made) == 4  # 2 stop_loss x 2 take_profit, whatever the strategy parameters
    assert params[0] == {"fast": 3, "slow": 10} and params[-1] == {"fast": 2, "slow": 9}
    assert risks.shape == (len(STOPS) + 1, risks.shape[1])
    for i, combo in enumerate(STOPS):
        want = real(CFG, stop_loss=combo["stop_loss"], take_profit=combo["take_profit"])
        assert fees[i] == want.fee and slips[i] == want.slippage_bps / 10_000.0 and k_atrs[i] == want.k_atr
        assert risks[i].tolist() == grid_combos.risk.row(want)
    assert len(cfgs) == 5 and cfgs[0] is CFG


def test_an_override_equal_to_a_valid_one_but_of_another_type_is_still_checked():
    combos = [{"max_bars_held": 1}, {"max_bars_held": True}]  # 1 == True: same hash, another repr
    with pytest.raises(ConfigError, match="max_bars_held"):
        split(combos)
    split(combos[:1])  # the valid one is remembered now: the other is still checked
    with pytest.raises(ConfigError, match="max_bars_held"):
        split(combos[1:])


def test_settings_are_remembered_across_calls_per_config(monkeypatch):
    monkeypatch.setattr(grid_combos, "_SETTINGS", {})
    first = split(STOPS)
    other = dataclasses.replace(CFG, fee=0.001)  # another base config: its own settings
    made = counting_replace(monkeypatch)
    again = split([dict(c) for c in STOPS])  # equal values, other objects: nothing validated again
    assert made == []
    for a, b in zip(first[1:5], again[1:5]):
        assert np.array_equal(a, b)
    fees = split(STOPS, other)[1]
    assert len(made) == 4 and (fees == 0.001).all()
    assert split(STOPS, EngineConfig(fee=0.0005, slippage_bps=2.0, fill="close"))[1].tolist() == first[1].tolist()
    assert len(made) == 4  # an equal config (another object) finds CFG's settings


def test_a_bad_setting_is_never_remembered(monkeypatch):
    monkeypatch.setattr(grid_combos, "_SETTINGS", {})
    for _ in range(2):
        with pytest.raises(ConfigError, match="stop_loss"):
            split([{"stop_loss": 2.0}])
    assert grid_combos._SETTINGS == {}


def test_the_settings_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(grid_combos, "_SETTINGS", {})
    monkeypatch.setattr(grid_combos, "SETTINGS_MEMO", 3)
    _, fees, *_ = split([{"fee": 0.001 * i} for i in range(10)])
    assert len(grid_combos._SETTINGS) <= 3
    assert fees.tolist() == [0.001 * i for i in range(10)]


def test_lazy_numpy_skips_the_import_machinery_once_imported(monkeypatch):
    monkeypatch.setattr(importlib, "import_module", lambda name: pytest.fail("import_module called"))
    assert _lazy.np.float64 is np.float64


def chunk_log(monkeypatch, k: int, m: int, threads: int = 2, chunk=None) -> list:
    """The (lo, hi) chunks ``_Runner.chunks`` hands out over ``k`` combos of ``m`` bars, in order."""
    import threading
    import types

    monkeypatch.setattr(sweep, "SERIAL_WORK", 0)
    runner = types.SimpleNamespace(threads=threads, m=m, scratch=lambda: None)
    done, lock = [], threading.Lock()

    def work(lo, hi, scratch):
        with lock:
            done.append((lo, hi))

    sweep._Runner.chunks(runner, k, work, chunk)
    return sorted(done)


def test_guided_chunks_cover_every_combo_once_and_shrink(monkeypatch):
    for k, m in ((160, 2500), (7, 100_000), (1000, 50), (2, 10)):
        done = chunk_log(monkeypatch, k, m)
        assert [lo for lo, _ in done] == [0] + [hi for _, hi in done[:-1]] and done[-1][1] == k
        sizes = [hi - lo for lo, hi in done]
        least = -(-sweep.CHUNK_WORK // m)
        assert all(a >= b for a, b in zip(sizes, sizes[1:-1])), sizes  # never growing (the last: what is left)
        assert all(s >= min(least, k) for s in sizes[:-1])
        if k >= 160:
            assert sizes[0] == -(-k // 4) and sizes[-2] <= max(least, 3)  # a quarter first, small ones last
    assert chunk_log(monkeypatch, 5, 10, chunk=1) == [(i, i + 1) for i in range(5)]  # a fixed chunk stays fixed


VALUES = st.sampled_from([0, 0.0, -0.0, 0.01, 0.02, 1, 1.0, 2, True, False, -1, 0.5, 7, math.nan, math.inf,
                          2 ** 1100, np.float64(0.01), np.int64(3), "x", None, 1e-300])
OVERRIDES = ("stop_loss", "take_profit", "max_bars_held", "fee", "position_size")


def outcome(fn, *args):
    try:
        return fn(*args)
    except (ConfigError, OverflowError) as exc:  # OverflowError: an int too large for a float
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.sampled_from(OVERRIDES), min_size=1, max_size=3, unique=True),
       rows=st.lists(st.lists(VALUES, min_size=3, max_size=3), min_size=1, max_size=12),
       with_params=st.booleans())
@example(names=["stop_loss"], rows=[[0.0, 0, 0], [-0.0, 0, 0]], with_params=False)  # == but another repr
@example(names=["max_bars_held"], rows=[[1, 0, 0], [True, 0, 0]], with_params=True)  # True == 1: invalid
@example(names=["fee", "stop_loss"], rows=[[0, 0.01, 0], [0.0, 0.01, 0], [0.0, 0.02, 0]], with_params=True)
def test_the_uniform_split_is_the_per_combo_split(names, rows, with_params):
    combos = [{**({"fast": 3 + i % 2, "slow": 20} if with_params else {}), **dict(zip(names, row))}
              for i, row in enumerate(rows)]
    strategy = get_strategy("sma_crossover")
    keys = frozenset(grid_combos.ENGINE_OVERRIDES)
    fast = outcome(grid_combos._uniform, combos, keys, CFG)
    plain = all(type(v) in (int, float) and not (type(v) is int and abs(v) >= 2 ** 1024)
                and math.copysign(1.0, v) > 0 for row in rows for v in row[:len(names)])
    assert (fast is not None) == plain  # the fast path takes exactly the plain grids
    a = outcome(grid_combos.split_overrides, strategy, combos, CFG)
    b = outcome(lambda: grid_combos.split_overrides(strategy, combos, CFG, per_combo=True))
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert a[0] == b[0]
    for x, y in zip(a[1:5], b[1:5]):
        assert x.tobytes() == y.tobytes()
    assert set(a[5]) == set(b[5])  # the configs used (per combo: 0 and 0.0 give two equal ones)


def test_a_config_repr_names_every_field():
    """The settings memo keys a config by its repr: no field may be left out of it."""
    assert all(f.repr for f in dataclasses.fields(EngineConfig))
    other = dataclasses.replace(CFG, allow_short=True)
    assert repr(other) != repr(CFG)
