"""Parameter sweeps: every combo of a grid simulated and scored, one metrics array per key.

:func:`evaluate_grid` gives, combo by combo, exactly what the single-run path gives::

    compute_metrics(simulate(o, h, l, c, strategy.signals(o, h, l, c, params), cfg_for_combo,
                             start=start),
                    close[start:], start=0, periods_per_year=ppy, initial_cash=cfg.initial_cash)

without ever holding a (bars x combos) matrix, nor even one combo's equity curve or trade log:
``kernels.sweep_kernel`` simulates a combo (``simulate_kernel``'s rules, operation for
operation) and keeps only the sums the metrics are made of, in numpy's own summation order
(``kernels.pairwise_sum``), so the numbers are the same to the last bit or nearly (the final
formulas are the metric registry's, the very ones ``compute_metrics`` applies to one run).

Two ways to get a combo's signals, chosen by the strategy, never by the engine:

* fused: ``strategy.grid_path(close, params)`` returns a :class:`GridPath`, a numba-compilable
  signal function of the strategy's own module plus the data it shares between combos
  (``sma_crossover``: one cumulative sum for every SMA; ``rsi_ma_cross_v2``: one RSI row per
  distinct ``rsi_window`` and one MA row per distinct ``ma_window``, built in blocks of combos
  under ``TABLE_BUDGET_BYTES``). The function is bound into ``kernels.sweep_kernel``
  (``jit.jitted_calling(..., bind=...)``), which calls it per combo to fill a per-thread signal
  buffer the simulation loop then reads: nothing per combo leaves the kernel but its sums.
* generic (``grid_path`` returns None, the default): ``strategy.signals`` per combo (numpy),
  then the same kernel.

Memory: per thread, three float arrays of the simulated length, three of the trade capacity and
two booleans per bar (~3 MB at 100,000 bars), plus the shared cumulative sum (sma_crossover) or
indicator tables (rsi_ma_cross_v2), and ``kernels.SWEEP_STATS`` (32) floats per combo.

Execution mode: the kernels run under numba when ``jit.use_jit(bars x combos)`` says so
(``QUANTLAB_JIT=always|never`` forces it), else in pure Python on lists; both give identical
results. ``threads > 1``: the calling thread and ``threads - 1`` helpers share the combos in guided chunks
(nogil numba kernel) once combos x simulated bars reach ``SERIAL_WORK`` (below, a helper's ~80 us
start and join costs more than it saves); results never depend on it (each combo is computed
alone, in the same order of operations). Pure-Python mode runs the combos one after another.
"""

from __future__ import annotations

import _thread
import dataclasses
import math
import numbers
import threading

import numpy as np  # a sweep needs it at once (the planner never imports this module)

from quantlab import metric_registry
from quantlab.engine import jit, kernels, risk
from quantlab.engine.grid_combos import ENGINE_OVERRIDES, split_overrides
from quantlab.engine.simulator import ATR_WINDOW, EngineConfig, price_array, trade_capacity
from quantlab.errors import ConfigError, DataError, StrategyError
from quantlab.series_metrics import bench_terms

SERIAL_WORK = 30_000  # bar-steps (combos x simulated bars) under which a grid runs on the calling thread
CHUNK_WORK = 5_000  # bar-steps a thread's chunk of combos holds at least (a kernel call costs ~4 us)
TABLE_BUDGET_BYTES = 64 * 1024 * 1024  # indicator tables of a fused path held at once (per block)
_K = kernels.SWEEP_STATS

__all__ = ["ENGINE_OVERRIDES", "GridBlock", "GridPath", "evaluate_grid", "empty_result", "grid_column"]


def empty_result() -> dict:
    """The result of an empty grid: every metric key with a zero-length array."""
    ints = metric_registry.integer_names()
    return {k: np.empty(0, dtype=np.int64 if k in ints else np.float64) for k in metric_registry.grid_metric_names()}


def evaluate_grid(open_, high, low, close, strategy_name: str, combos: list[dict], cfg: EngineConfig,
                  *, start: int, periods_per_year: float, threads: int = 1, keep_returns: bool = False,
                  volume=None, returns_out=None, risk_free_rate: float = 0.0, timestamps=None,
                  series: bool = True):
    """Metrics of every combo of ``strategy_name`` on the same bars, as arrays over combos.

    ``combos``: resolved strategy parameter dicts (``strategy.resolve_params``; not validated
    again here beyond what the kernels need). A combo may also carry engine overrides under
    ``fee``, ``slippage_bps``, ``k_atr`` and the risk controls (``risk.RISK_KEYS``: stops, time
    exit, sizing) unless the strategy declares a parameter of that name: they are taken out of
    the strategy parameters and applied to a copy of ``cfg`` for that combo (validated by
    ``EngineConfig``); a fused path still runs, signals computed per combo in the kernel. ``start``: warm-up bars, never traded, not scored.

    Returns ``{metric: array of len(combos)}`` for every grid metric of the registry
    (``metric_registry.grid_metric_names()``: the keys of ``compute_metrics``, same order): float64,
    except the integer metrics (``trades``, ``bars``: int64). Where
    ``compute_metrics`` reports ``None`` (undefined or non-finite: e.g. ``sortino`` without a
    negative bar, trade metrics without a closed trade, ``profit_factor`` without a loss,
    ``calmar`` without a drawdown) the array holds NaN. An empty grid gives empty arrays.

    Raises ``ConfigError`` (bad start, threads, periods_per_year, overrides, parameters),
    ``DataError`` (bad prices, nothing left after warm-up), ``StrategyError`` (signals).

    ``keep_returns``: also return each combo's per-bar net returns (the series ``simulate``
    gives from ``start`` on), as ``(metrics, returns)`` with ``returns`` a C-ordered float32
    array of shape (combos, bars - start) written by the kernel itself (4 bytes per bar-combo,
    the only per-bar memory of a sweep; the caller chunks combos to bound it). ``returns_out``:
    a zero-filled array of that shape and dtype to write into instead (a memory-mapped ``.npy``
    file, so the series go to disk without a second copy); implies ``keep_returns``.

    ``volume``: the bars' volume, passed to strategies that declare ``uses_volume`` (as a run does).
    ``risk_free_rate``: annual, as a run's ``params.risk_free_rate`` (Sharpe, Sortino, alpha).
    ``timestamps``: the bars' times (all ``len(close)``), for ``max_drawdown_duration_days``
    (NaN without). The benchmark of alpha, beta, tracking_error and information_ratio is buy
    and hold of ``close[start:]``. ``series=False`` leaves the series metrics out of the kernel
    (NaN: var_95, cvar_95, alpha, beta, tracking_error, information_ratio; benchmarks compare).
    """
    from quantlab.strategies import get_strategy

    strategy = get_strategy(strategy_name)
    cfg = cfg if cfg is not None else EngineConfig()
    if not isinstance(cfg, EngineConfig):
        raise ConfigError(f"cfg must be an EngineConfig, got {type(cfg).__name__}")
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    raw = (open_, high, low, close)
    close = price_array("close", close, None)
    n = len(close)
    open_ = price_array("open", open_, n)
    if isinstance(start, bool) or int(start) != start or start < 0:
        raise ConfigError(f"start must be a non-negative integer, got {start!r}")
    start = int(start)
    if start >= n:
        raise DataError(f"no bar left to trade: {n} bars, {start} needed for warm-up")
    ppy, rf = metric_registry.scoring_scalars(periods_per_year, risk_free_rate)
    if not isinstance(combos, (list, tuple)):
        combos = list(combos)
    k = len(combos)
    if k == 0:
        return (empty_result(), np.zeros((0, n - start), dtype=np.float32)) if keep_returns else empty_result()
    threads = int(threads)

    params, fees, slips, k_atrs, risks, cfgs = split_overrides(strategy, combos, cfg)
    atr = np.empty(0)
    if cfg.slippage_mode == "atr" or any(risk.uses_stops(c) for c in cfgs):
        high = price_array("high", high, n)
        low = price_array("low", low, n)
    if cfg.slippage_mode == "atr":
        from quantlab.engine.indicators import atr as atr_indicator

        atr = atr_indicator(high, low, close, ATR_WINDOW, fill_warmup=True)  # slippage_fractions' ATR
    risk_series = risk.series(high, low, close, cfgs, ppy, atr=atr)  # (high, low, atr_sig, vol) the combos need
    path = strategy.grid_path(close, params)  # the strategy's own fused path, or None
    bind = {"grid_signals": path.signals} if path is not None else None
    use_numba = jit.use_jit(n * k)
    if use_numba and jit.jit_mode() == "auto":
        try:
            jit.jitted_calling(kernels.sweep_kernel, kernels.pairwise_sum, bind=bind)
        except ImportError:  # numba missing or broken: auto mode degrades to pure Python
            use_numba = False
    bench_r, bench_dx = bench_terms(close[start:])
    run = _Runner(use_numba, open_, close, atr, risk_series, start, cfg, fees, slips, k_atrs, risks, threads,
                  bind, risk_on=not all(risk.is_default(c) for c in cfgs), bench_dx=bench_dx if series else np.zeros(0))
    returns = _returns_buffer(returns_out, k, n - start) if keep_returns or returns_out is not None else run.no_returns
    if path is not None:
        stats = _fused(run, path, k, returns)
    else:
        stats = _generic(run, strategy, params, raw, returns, volume)
    if timestamps is not None and len(timestamps) != n:
        raise ConfigError(f"timestamps has {len(timestamps)} values, close {n}")
    stats = metric_registry.RunStats.from_kernel(
        stats.reshape(k, _K), bars=n - start, periods_per_year=ppy, initial_cash=cfg.initial_cash,
        benchmark=float(close[-1]) / float(close[start]) - 1.0, risk_free_rate=rf, bench_returns=bench_r,
        timestamps=None if timestamps is None else np.asarray(timestamps)[start:])
    metrics = metric_registry.evaluate(stats)
    return (metrics, returns) if keep_returns or returns_out is not None else metrics


def _returns_buffer(returns_out, k: int, width: int) -> np.ndarray:
    """The kernels' (k, width) float32 returns array: ``returns_out`` (checked) or a new one."""
    if returns_out is None:
        return np.zeros((k, width), dtype=np.float32)
    out = np.asarray(returns_out)  # a memmap's plain ndarray view (what numba accepts)
    if out.shape != (k, width) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ConfigError(f"returns_out must be a C-ordered float32 array of shape {(k, width)}, "
                          f"got {out.dtype} {out.shape}")
    return out


# ------------------------------------------------------------------------------- combos
def grid_column(strategy, params, name: str, integer: bool, lo: float):
    """One parameter over the combos (defaults fill a missing one), sanity-checked: for a
    strategy's :meth:`~quantlab.strategies.base.Strategy.grid_path`."""
    default = strategy.defaults()[name]
    try:
        values = np.array([p.get(name, default) for p in params], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy '{strategy.name}' parameter '{name}' must be numeric ({exc})") from exc
    bad = ~np.isfinite(values) | (values < lo)
    if integer:
        bad |= values != np.floor(values)
    if bad.any():
        raise ConfigError(f"strategy '{strategy.name}' parameter '{name}' = "
                          f"{values[np.argmax(bad)]!r} is invalid (combo {int(np.argmax(bad))})")
    return values.astype(np.int64) if integer else values


@dataclasses.dataclass
class GridBlock:
    """Combos of a fused grid path that share their data (``grid_signals``' arguments).

    ``combos``: their indices in the grid (None: every combo, in order); per-combo arrays
    (``p_i1``, ``p_i2`` int64, ``p_f1``, ``p_f2`` float64, ``cooldowns`` int64) have one entry
    per combo of the block; ``f_vec`` (float64), ``i_vec`` (int64), ``tab_a``, ``tab_b``
    (2-D float64) are shared by the block. What each means is the strategy's business.
    """

    combos: np.ndarray | None = None
    f_vec: np.ndarray | None = None
    i_vec: np.ndarray | None = None
    tab_a: np.ndarray | None = None
    tab_b: np.ndarray | None = None
    p_i1: np.ndarray | None = None
    p_i2: np.ndarray | None = None
    p_f1: np.ndarray | None = None
    p_f2: np.ndarray | None = None
    cooldowns: np.ndarray | None = None


@dataclasses.dataclass
class GridPath:
    """A strategy's fused grid path (returned by ``Strategy.grid_path``).

    ``signals``: a plain module-level function in numba's nopython subset (scalars, loops,
    indexing, ``math``; it may call nothing but builtins), ``signals(c, start, close, f_vec,
    i_vec, tab_a, tab_b, p_i1, p_i2, p_f1, p_f2, sig_enter, sig_exit)``, writing combo ``c``'s
    entries/exits for bars ``start - 1`` .. ``len(close) - 1`` (at least ``start`` ..) into the
    boolean buffers; it must give exactly what ``Strategy.signals`` gives. ``blocks``: an
    iterable of :class:`GridBlock` covering every combo once (a generator keeps one block's
    tables in memory at a time; see ``TABLE_BUDGET_BYTES``).
    """

    signals: object
    blocks: object


# ------------------------------------------------------------------------------- execution
class _Runner:
    """Calls ``sweep_kernel`` over chunks of combos, in one mode, with per-thread scratch."""

    def __init__(self, use_numba, open_, close, atr, series, start, cfg, fees, slips, k_atrs, risks, threads,
                 bind=None, risk_on=False, bench_dx=None):
        self.numba = use_numba
        self.fn = (jit.jitted_calling(kernels.sweep_kernel, kernels.pairwise_sum, bind=bind) if use_numba
                   else jit.python_calling(kernels.sweep_kernel, bind))
        self.n = len(close)
        self.m = self.n - start
        self.cap = trade_capacity(self.n, cfg.allow_short, risk_on)
        self.threads = threads if use_numba else 1
        high, low, atr_sig, vol = series
        self.fixed = (self.arr(open_), self.arr(high), self.arr(low), self.arr(close), self.arr(atr),
                      self.arr(atr_sig), self.arr(vol), start, cfg.fill == "close", cfg.allow_short,
                      float(cfg.initial_cash), self.arr(np.asarray(bench_dx, dtype=np.float64)))
        self.fees, self.slips, self.k_atrs, self.risks = fees, slips, k_atrs, risks
        self.no_bool = self.arr(np.zeros(0, dtype=bool))
        self.no_float = self.arr(np.zeros(0))
        self.no_int = self.arr(np.zeros(0, dtype=np.int64))
        self.no_table = self.arr(np.full((1, 1), np.nan))
        self.no_returns = np.zeros((0, 0), dtype=np.float32)  # an ndarray in both modes (written in place)

    def arr(self, a):
        return np.ascontiguousarray(a) if self.numba else a.tolist()

    def scratch(self):
        m, cap, s = self.m, self.cap, kernels.PAIRWISE_STACK
        if self.numba:
            return (np.empty(m), np.empty(m), np.empty(cap), np.empty(cap), np.empty(cap),
                    np.zeros(s, dtype=np.int64), np.zeros(s // 3 + 1),
                    np.zeros(self.n, dtype=bool), np.zeros(self.n, dtype=bool), np.full(m + 1, np.nan))
        return ([0.0] * m, [0.0] * m, [0.0] * cap, [0.0] * cap, [0.0] * cap, [0] * s, [0.0] * (s // 3 + 1),
                [False] * self.n, [False] * self.n, [math.nan] * (m + 1))

    def stats_buffer(self, k: int):
        return np.zeros(k * _K) if self.numba else [0.0] * (k * _K)

    def call(self, mode, lo, hi, scratch, stats, *, entries=None, exits=None, f_vec=None, i_vec=None,
             tab_a=None, tab_b=None, p_i1, p_i2, p_f1, p_f2, cooldowns, fees, slips, k_atrs, risks, returns=None):
        self.fn(mode, lo, hi, *self.fixed,
                self.no_bool if entries is None else entries, self.no_bool if exits is None else exits,
                self.no_float if f_vec is None else f_vec, self.no_int if i_vec is None else i_vec,
                self.no_table if tab_a is None else tab_a, self.no_table if tab_b is None else tab_b,
                p_i1, p_i2, p_f1, p_f2, cooldowns, fees, slips, k_atrs, risks, stats,
                self.no_returns if returns is None else returns, *scratch)
        if self.numba:
            jit._warm.add(kernels.sweep_kernel)

    def chunks(self, k: int, work, chunk: int | None = None) -> None:
        """``work(lo, hi, scratch)`` over ``0..k`` in chunks, on ``self.threads`` threads: the
        calling thread and ``threads - 1`` helpers; all on the calling thread (one chunk) when the
        work is under ``SERIAL_WORK`` bar-steps, where starting a thread costs more than it saves.

        ``chunk`` None: guided, each thread takes ``1 / (2 x threads)`` of the combos left (at
        least ``CHUNK_WORK`` bar-steps' worth), so the chunks shrink towards the end and the threads
        finish together (a fixed chunk leaves one idle for half a chunk on average)."""
        threads = self.threads if k * self.m >= SERIAL_WORK else 1
        if threads == 1 or k <= (chunk or 1):
            scratch = self.scratch()
            step = chunk or k
            for lo in range(0, k, step):
                work(lo, min(lo + step, k), scratch)
            return
        least = chunk or max(1, -(-CHUNK_WORK // max(self.m, 1)))
        share = 2 * threads
        lock = threading.Lock()
        state = {"next": 0, "failed": None}

        def worker():
            try:
                scratch = self.scratch()
                while True:
                    with lock:
                        lo = state["next"]
                        size = chunk or max(least, -(-(k - lo) // share))
                        state["next"] = lo + size
                        if lo >= k or state["failed"] is not None:
                            return
                    work(lo, min(lo + size, k), scratch)
            except BaseException as exc:  # re-raised on the calling thread
                state["failed"] = exc

        def helper(done):
            try:
                worker()
            finally:
                done.release()

        finished = []
        for _ in range(1, threads):  # not waited for: threading.Thread.start waits ~45 us (more when loaded)
            done = _thread.allocate_lock()
            done.acquire()
            _thread.start_new_thread(helper, (done,))
            finished.append(done)
        worker()
        for done in finished:
            done.acquire()
        if state["failed"] is not None:
            raise state["failed"]

    def finish(self, stats) -> np.ndarray:
        return stats if self.numba else np.array(stats, dtype=np.float64)


def _fused(run: _Runner, path: GridPath, k: int, returns: np.ndarray) -> np.ndarray:
    """Every block of a strategy's fused path through the kernel it is bound into."""
    stats_all = np.empty((k, _K))
    done = 0
    for block in path.blocks:
        sel = slice(None) if block.combos is None else np.asarray(block.combos, dtype=np.int64)
        kb = k if block.combos is None else len(sel)
        zeros_f, zeros_i = np.zeros(kb), np.zeros(kb, dtype=np.int64)

        def arr(a, default, dtype):
            return run.arr(default if a is None else np.ascontiguousarray(a, dtype=dtype))

        a = {"f_vec": arr(block.f_vec, np.zeros(0), np.float64), "i_vec": arr(block.i_vec, np.zeros(0, np.int64), np.int64),
             "tab_a": arr(block.tab_a, np.full((1, 1), np.nan), np.float64),
             "tab_b": arr(block.tab_b, np.full((1, 1), np.nan), np.float64),
             "p_i1": arr(block.p_i1, zeros_i, np.int64), "p_i2": arr(block.p_i2, zeros_i, np.int64),
             "p_f1": arr(block.p_f1, zeros_f, np.float64), "p_f2": arr(block.p_f2, zeros_f, np.float64),
             "cooldowns": arr(block.cooldowns, zeros_i, np.int64), "fees": run.arr(run.fees[sel]),
             "slips": run.arr(run.slips[sel]), "k_atrs": run.arr(run.k_atrs[sel]),
             "risks": run.arr(np.ascontiguousarray(run.risks[sel]).reshape(-1))}
        stats = run.stats_buffer(kb)
        if returns.shape[0] == 0 or block.combos is None:
            a["returns"] = returns          # every combo in grid order (or none kept)
        else:
            a["returns"] = np.zeros((kb, returns.shape[1]), dtype=np.float32)
        run.chunks(kb, lambda lo, hi, scratch, a=a, stats=stats: run.call(1, lo, hi, scratch, stats, **a))
        stats_all[sel] = run.finish(stats).reshape(kb, _K)
        if a["returns"] is not returns:
            returns[sel] = a["returns"]
        done += kb
    if done != k:
        raise StrategyError(f"the fused grid path covered {done} of {k} combos")
    return stats_all.reshape(-1)


def _generic(run: _Runner, strategy, params, raw, returns: np.ndarray, volume=None) -> np.ndarray:
    extra = {"volume": volume} if volume is not None and getattr(strategy, "uses_volume", False) else {}
    k = len(params)
    n = run.n
    zeros_f = np.zeros(k)
    a = {"p_i1": run.arr(np.zeros(k, dtype=np.int64)), "p_i2": run.arr(np.zeros(k, dtype=np.int64)),
         "p_f1": run.arr(zeros_f), "p_f2": run.arr(zeros_f), "fees": run.arr(run.fees),
         "slips": run.arr(run.slips), "k_atrs": run.arr(run.k_atrs), "risks": run.arr(run.risks.reshape(-1)),
         "returns": returns}
    cooldowns = np.zeros(k, dtype=np.int64)
    cool_buf = run.arr(cooldowns)
    stats = run.stats_buffer(k)

    def one(lo, hi, scratch):
        for c in range(lo, hi):
            sig = strategy.signals(*raw, params[c], **extra)
            cooldown = sig.cooldown
            if isinstance(cooldown, bool) or int(cooldown) != cooldown or cooldown < 0:
                raise StrategyError(f"cooldown must be a non-negative integer, got {cooldown!r}")
            entries = np.ascontiguousarray(sig.entries)
            exits = np.ascontiguousarray(sig.exits)
            if entries.shape != (n,) or exits.shape != (n,):
                raise StrategyError(f"signals have shape {entries.shape}/{exits.shape}, expected ({n},)")
            cool_buf[c] = int(cooldown)
            run.call(0, c, c + 1, scratch, stats, entries=run.arr(entries), exits=run.arr(exits),
                     cooldowns=cool_buf, **a)

    run.chunks(k, one, chunk=1)
    return run.finish(stats)
