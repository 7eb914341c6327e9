"""trades.csv through the numba kernel (artifacts/trades_csv_kernel.py) is byte for byte the
Python path's (``trades_csv_text``): ``%.10g`` of any double (the cells the kernel cannot round
exactly go to Python), the ISO times of ``dates.bar_times_iso``, ints and labels; a small log stays
in Python without importing numba."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from quantlab.artifacts import trades_csv, trades_csv_kernel as kern
from quantlab.dates import bar_times_iso
from quantlab.engine import jit
from quantlab.engine.risk import EXIT_REASONS

SRC = Path(__file__).resolve().parents[2] / "src"
NS_MIN, NS_MAX = -(2**63) + 1, 2**63 - 1  # datetime64[ns] without NaT: 1677-09-21 .. 2262-04-11


@pytest.fixture(autouse=True, scope="module")
def _kernel_left_cold():
    """The kernel runs warm here; afterwards it is cold again (``engine.jit._warm``), so a later
    test's small log takes the Python path as in a fresh process."""
    before = set(jit._warm)
    yield
    jit._warm.intersection_update(before)


def g10(x: float) -> str | None:
    """The kernel's ``%.10g`` of ``x``, or None for a hard cell."""
    buf = np.zeros(64, dtype=np.uint8)
    end = jit.jitted(kern.put_g10)(buf, 0, float(x))
    return None if end < 0 else buf[:end].tobytes().decode()


def must_be_hard(x: float) -> bool:
    """Whether an exact rounding of ``|x|`` to 10 significant digits is within the kernel's
    guard of a tie, or ``|x|`` is outside the kernel's range."""
    ax = abs(x)
    if ax == 0.0:
        return False
    if not kern.X_MIN <= ax < kern.X_MAX:
        return True
    v = Fraction(ax)
    e = 9 - int(np.floor(np.log10(ax)))
    while v * Fraction(10) ** e >= 10**10:
        e -= 1
    while v * Fraction(10) ** e < 10**9:
        e += 1
    scaled = v * Fraction(10) ** e
    return abs(scaled - int(scaled) - Fraction(1, 2)) < Fraction(kern.TIE_GUARD)


def exact_ties():
    """Doubles whose 10-digit rounding is an exact tie (Python rounds those half-to-even)."""
    mantissa = st.integers(10**9, 10**10 - 1)
    return st.one_of(mantissa.map(lambda m: m + 0.5), mantissa.map(lambda m: float(10 * m + 5)),
                     st.integers(10**8, 10**9 - 1).map(lambda m: m + 0.25),
                     st.tuples(mantissa, st.integers(1, 4)).map(lambda t: float((10 * t[0] + 5) * 10 ** t[1])))


def near_powers_of_ten():
    return st.tuples(st.integers(-300, 300), st.integers(-3, 3)).map(
        lambda t: float(np.nextafter(10.0 ** t[0], np.inf if t[1] > 0 else -np.inf)) if t[1] else 10.0 ** t[0])


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), exact_ties(), near_powers_of_ten(),
                 st.floats(0.001, 1e6).map(lambda x: round(x, 4)), st.floats(-1e-3, 1e-3)))
@example(0.0)
@example(-0.0)
@example(1.5e-05)
@example(1e20)
@example(9999999999.7)
@example(5e-324)
@example(1234567890.5)
@example(1234567891.5)
@example(12345678905.0)
@example(123456789.25)
@example(1e-290)
@example(float(np.nextafter(1e300, 0)))
@example(1e300)
@example(0.0001)
@example(0.00009999999999)
def test_g10_is_percent_10g_or_hands_the_cell_to_python(x):
    got = g10(x)
    if got is None:
        assert must_be_hard(x), x
    else:
        assert got == "%.10g" % x and not must_be_hard(x)


@settings(max_examples=200, deadline=None)
@given(exact_ties())
def test_exact_ties_always_go_to_python(x):
    """``|frac - 1/2| < TIE_GUARD`` is what keeps the kernel from rounding a tie the wrong way."""
    assert must_be_hard(x) and g10(x) is None and g10(-x) is None


def test_non_finite_and_zero_cells():
    for x in (float("nan"), -float("nan"), float("inf"), -float("inf"), 0.0, -0.0):
        assert g10(x) == "%.10g" % x


def trade_log(rows) -> dict:
    cols = list(zip(*rows)) or [()] * 13
    col = {"side": np.asarray(cols[0], dtype=np.int8),
           "entry_time": np.asarray(cols[1], dtype=np.int64).astype("datetime64[ns]"),
           "exit_time": np.asarray(cols[2], dtype=np.int64).astype("datetime64[ns]")}
    for name, values in zip(trades_csv.FLOAT_COLUMNS, cols[3:10]):
        col[name] = np.asarray(values, dtype=np.float64)
    col["bars_held"] = np.asarray(cols[10], dtype=np.int64)
    col["open"] = np.asarray(cols[11], dtype=np.int8)
    col["exit_reason"] = np.asarray(cols[12], dtype=np.int8)
    return col


def kernel_bytes(col) -> bytes:
    parts = trades_csv.trades_csv_parts(col)
    return b"".join(bytes(p) for p in parts)


times = st.integers(NS_MIN, NS_MAX)
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
rows = st.lists(st.tuples(st.sampled_from([1, -1]), times, times, floats, floats, floats, floats, floats, floats,
                          floats, st.integers(-2**62, 2**62), st.integers(0, 1),
                          st.integers(0, len(EXIT_REASONS) - 1)), max_size=30)


@pytest.mark.parametrize("mode", ["always", "never"])
@settings(max_examples=150, deadline=None)
@given(rows=rows)
def test_whole_csv_is_the_python_paths_bytes(mode, rows):
    col = trade_log(rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANTLAB_JIT", mode)
        assert kernel_bytes(col) == trades_csv.trades_csv_text(col).encode()


DATES = ["1677-09-21T00:12:44", "1677-09-22T00:00:00", "1899-12-31T23:59:59", "1900-02-28T12:00:00", "1900-03-01T00:00:00",
         "1969-12-31T23:59:59", "1970-01-01T00:00:00", "1972-02-29T06:07:08", "2000-02-29T23:59:59",
         "2000-03-01T00:00:00", "2020-12-31T23:59:59", "2024-02-29T00:00:01", "2100-02-28T23:59:59",
         "2100-03-01T00:00:00", "2262-04-11T23:47:15"]


@settings(max_examples=300, deadline=None)
@given(st.lists(times, min_size=1, max_size=40))
@example([int(np.datetime64(d, "ns").astype(np.int64)) + 999_999_999 for d in DATES])
@example([int(np.datetime64(d, "ns").astype(np.int64)) for d in DATES])
def test_times_are_bar_times_iso(ns):
    n = len(ns)
    t = np.asarray(ns, dtype=np.int64).astype("datetime64[ns]")
    col = trade_log([(1, 0, 0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1, 0, 0)] * n)
    col["entry_time"], col["exit_time"] = t, t[::-1].copy()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANTLAB_JIT", "always")
        lines = kernel_bytes(col).decode().splitlines()[1:]
    assert [line.split(",")[2] for line in lines] == bar_times_iso(t)
    assert [line.split(",")[3] for line in lines] == bar_times_iso(t[::-1])


def test_real_trade_logs_every_exit_reason_open_position_and_edges(monkeypatch):
    """Logs from the engine (long/short, stops, take-profits, trailing stops, max bars, an open
    position at the end), the empty log and a one-trade log: the same bytes either way."""
    from quantlab.engine import EngineConfig, simulate
    from quantlab.engine.simulator import Signals

    monkeypatch.setenv("QUANTLAB_JIT", "always")
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 3000)))
    wave = np.sin(np.arange(3000) / 9.0)
    sig = Signals(wave > 0.5, wave < -0.5)
    index = np.datetime64("1999-12-30", "ns") + np.arange(3000) * np.timedelta64(7, "h")
    seen = set()
    for cfg in (EngineConfig(allow_short=True, stop_loss=0.02, take_profit=0.03, max_bars_held=12),
                EngineConfig(allow_short=True, trailing_stop=0.025), EngineConfig(max_bars_held=5),
                EngineConfig(fee=0.01)):
        res = simulate(close, close * 1.01, close * 0.99, close, sig, cfg, start=0)
        col = {name: np.asarray(v) for name, v in res.trades.as_columns().items()}
        col["entry_time"], col["exit_time"] = index[col["entry_idx"]], index[col["exit_idx"]]
        col["open"] = np.zeros(len(col["side"]), dtype=np.int8)
        col["open"][-1] = res.open_position != 0
        seen.update(EXIT_REASONS[r] for r in col["exit_reason"].tolist())
        for part in (col, {k: v[:1] for k, v in col.items()}, {k: v[:0] for k, v in col.items()}):
            assert kernel_bytes(part) == trades_csv.trades_csv_text(part).encode()
    assert {"signal", "stop_loss", "take_profit", "trailing_stop", "max_bars"} <= seen


def test_hard_cells_are_spliced_in_and_too_many_go_to_python(monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    hard = [1234567890.5, 1e-300, -2e305, 12345678905.0]
    col = trade_log([(1, 0, 10**9, *(hard * 2)[:7], 3, 0, 1)] * 3)
    text = trades_csv.trades_csv_text(col).encode()
    parts = trades_csv.trades_csv_parts(col)
    assert len(parts) == 2 + 7 * 3 * 2 and b"".join(bytes(p) for p in parts) == text
    monkeypatch.setattr(trades_csv, "HARD_CELLS", 5)
    assert trades_csv.trades_csv_parts(col) == [text]


def test_inputs_the_kernel_does_not_take_go_to_python(monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    base = trade_log([(1, 0, 10**9, 1.5, 2.5, 3.0, 0.1, 0.1, 1.0, 0.5, 3, 0, 1)] * 2)
    nat = {**base, "exit_time": np.array(["NaT", "2020-01-01"], dtype="datetime64[ns]")}
    wrapped = {**base, "exit_reason": np.array([-1, 2], dtype=np.int8)}  # Python indexes from the end
    ints = {**base, "qty": np.array([3, 4])}
    seconds = {**base, "entry_time": base["entry_time"].astype("datetime64[s]")}
    for col in (nat, wrapped, ints, seconds):
        assert trades_csv.trades_csv_parts(col) == [trades_csv.trades_csv_text(col).encode()]
    assert b"NaTZ" in trades_csv.trades_csv_parts(nat)[0]


def test_a_failing_kernel_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", "always")

    def broken(*args):
        raise RuntimeError("cannot format")
    monkeypatch.setattr(trades_csv, "_kernel_parts", broken)
    with pytest.raises(RuntimeError, match="cannot format"):
        trades_csv.write_trades_csv(tmp_path / "trades.csv", trade_log([(1, 0, 0, *[1.0] * 7, 1, 0, 0)]))
    assert not list(tmp_path.iterdir())


def test_small_logs_stay_in_python_and_never_import_numba(tmp_path):
    code = f"""
import json, sys
import numpy as np
from quantlab.artifacts.trades_csv import write_trades_csv, trades_csv_text
n = 2000
col = {{name: np.linspace(0.5, 9.5, n) for name in ("entry_price", "exit_price", "qty", "entry_fee",
                                                    "exit_fee", "pnl", "ret")}}
col.update(side=np.ones(n, np.int8), entry_time=np.arange(n).astype("datetime64[m]").astype("datetime64[ns]"),
           exit_time=np.arange(n).astype("datetime64[m]").astype("datetime64[ns]"), bars_held=np.ones(n, np.int64),
           open=np.zeros(n, np.int8), exit_reason=np.zeros(n, np.int8))
write_trades_csv({str(tmp_path / "t.csv")!r}, col)
same = open({str(tmp_path / "t.csv")!r}).read() == trades_csv_text(col)
print(json.dumps({{"numba": "numba" in sys.modules, "same": same}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "QUANTLAB_JIT"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(SRC)}, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"numba": False, "same": True}


def test_a_big_log_uses_the_kernel_once_numba_is_warm(monkeypatch):
    """``auto``: past ``jit.LOADED_THRESHOLD`` work with numba started (a big run's worker), the
    kernel formats the log (no call of the Python path)."""
    monkeypatch.delenv("QUANTLAB_JIT", raising=False)
    monkeypatch.setattr(jit, "_warm", {object()})  # numba started by another kernel
    n = jit.LOADED_THRESHOLD // trades_csv.WORK_PER_ROW + 1
    col = trade_log([(1, 0, 60 * 10**9, 1.5, 2.5, 3.0, 0.1, 0.1, 1.0, 0.5, 3, 0, 1)] * n)
    text = trades_csv.trades_csv_text(col).encode()

    def no_python(col):
        raise AssertionError("the Python path ran")
    monkeypatch.setattr(trades_csv, "trades_csv_text", no_python)
    assert b"".join(bytes(p) for p in trades_csv.trades_csv_parts(col)) == text
