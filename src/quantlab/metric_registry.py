"""The metric registry: every performance metric once, with its direction and its formula.

A :class:`Metric` is ``(name, higher_is_better, in_summary, formula)``. Everything that lists
metric names reads this table: ``metrics.compute_metrics`` (metrics.json), the grid engine
(``engine.sweep``), the sweep leaderboard and its CSV, the objective/sort_by enums of the sweep
schema, the runs index and registry (the summary metrics), the portfolio's rank metrics and the
forward candidates' ranking direction.

One formula set: a formula takes :class:`RunStats` -- the per-run sums the grid kernel emits
(``kernels.ST_*``), as float64 arrays over runs (one element for a single run, one per combo for
a grid) -- and returns an array. Single runs get their :class:`RunStats` from the engine's result
(:func:`RunStats.from_result`, numpy's summation order), grids from ``kernels.sweep_kernel``
(:func:`RunStats.from_kernel`, the same order re-implemented), so single-run/grid parity holds by
construction. A result that is NaN or infinite means "undefined" (``null`` in JSON).

The series metrics (VaR/CVaR, the benchmark-relative ones, drawdown duration in days:
:mod:`quantlab.series_metrics`) read statistics beyond plain sums (a quantile and its tail, sums
against the benchmark's returns, where the longest drawdown starts); the grid kernel keeps those
per combo too (``kernels.series_stats``), so every metric is in a run's metrics.json and in a
sweep's leaderboard alike.

Adding a metric: one entry in ``_BUILTIN`` and its test, or one :func:`register` call in a
``QUANTLAB_PLUGINS`` module (loaded before any name is read); see docs/extending.md. This module imports no numpy until a formula runs (the request planner reads
the names).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quantlab import _lazy
from quantlab._lazy import np

# The metric a ranking uses when nobody names one, listed first in the runs index and registry.
HEADLINE = "sharpe_simple"


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    in_summary: bool  # in every summary (report machine_contract, runs index, leaderboard rows)
    formula: Callable[["RunStats"], Any] = field(repr=False)
    integer: bool = False  # int64 in grids, int in JSON
    description: str = ""


# the per-run statistics, named after the grid kernel's ``kernels.ST_*`` slots (st_final_equity ...)
STATS = ("final_equity", "sum_returns", "sum_sq_dev", "negative_bars", "sum_sq_down", "max_drawdown",
         "trades", "wins", "losses", "gross_profit", "loss_sum", "sum_trade_returns", "exposed_bars",
         "margin_calls", "exits_signal", "exits_stop_loss", "exits_take_profit", "exits_trailing_stop",
         "exits_max_bars", "exits_end_of_data", "exits_margin_call", "ambiguous_bars", "best_trade", "worst_trade",
         "holding_bars", "sum_sq_trade_dev", "max_dd_bars",
         # the series statistics (kernels.series_stats, series_metrics.run_series_stats)
         "var_95", "tail_sum", "tail_bars", "sum_xy", "max_dd_top")
EXIT_STATS = STATS[14:21]  # trades by exit reason, in engine.risk.EXIT_REASONS order


class RunStats:
    """Per-run statistics, each a float64 array over runs, plus the run-wide scalars.

    Arrays (see ``kernels.ST_*``): ``final_equity``, ``sum_returns``, ``sum_sq_dev``,
    ``negative_bars``, ``sum_sq_down``, ``max_drawdown``, ``trades``, ``wins``, ``losses``,
    ``gross_profit``, ``loss_sum``, ``sum_trade_returns``, ``exposed_bars``, ``margin_calls``,
    ``exits_<reason>`` (trades per exit reason), ``ambiguous_bars``, ``best_trade``, ``worst_trade``,
    ``holding_bars``, ``sum_sq_trade_dev``, ``max_dd_bars``, and the series statistics
    ``var_95``, ``tail_sum``, ``tail_bars``, ``sum_xy``, ``max_dd_top`` (see ``kernels.ST_*``).
    Scalars: ``bars``, ``periods_per_year``, ``initial_cash``, ``benchmark`` (buy and hold over
    the same bars), ``risk_free_rate`` (annual) and ``rf`` (its per-bar rate,
    ``(1 + risk_free_rate) ** (1 / periods_per_year) - 1``); ``bench_returns`` (the benchmark's
    per-bar returns, or None) and ``timestamps`` (int64 seconds of the simulated bars, or None).
    Derived (computed once): ``mean``, ``std`` (ddof 1, 0 under 2 bars or when
    it is rounding noise), ``ann`` = sqrt(periods_per_year), ``bench_mean`` and ``bench_sxx``
    (the benchmark returns' mean and sum of squared deviations; NaN without them). ``metrics`` holds the metrics
    already computed, in registry order (a formula may read earlier ones: calmar reads cagr).
    """

    def __init__(self, columns: dict, *, bars: int, periods_per_year: float, initial_cash: float,
                 benchmark: float, risk_free_rate: float = 0.0, bench_returns=None, timestamps=None,
                 bench_terms: tuple[float, float] | None = None):
        _lazy.bind(globals())  # formulas run from here on: numpy itself, ~200 attributes per evaluate
        for name in STATS:
            setattr(self, name, np.asarray(columns[name], dtype=np.float64))
        self.k = len(self.final_equity)
        self.bars = int(bars)
        self.periods_per_year = float(periods_per_year)
        self.initial_cash = float(initial_cash)
        self.benchmark = float(benchmark)
        self.risk_free_rate = float(risk_free_rate)
        self.rf = per_bar_rate(self.risk_free_rate, self.periods_per_year)
        self._stamps = None if timestamps is None else np.asarray(timestamps)
        self.bench_mean = self.bench_sxx = math.nan
        if bench_terms is not None:
            self.bench_mean, self.bench_sxx = bench_terms
        elif bench_returns is not None and len(bench_returns):
            from quantlab.series_metrics import bench_terms_of_returns

            self.bench_mean, self.bench_sxx = bench_terms_of_returns(bench_returns)
        self.ann = math.sqrt(self.periods_per_year)
        self.mean = (self.sum_returns + 0.0) / self.bars  # + 0.0: numpy sums start from +0.0
        if self.bars >= 2:
            std = np.sqrt((self.sum_sq_dev + 0.0) / (self.bars - 1))
        else:
            std = np.zeros(self.k)
        self.std = np.where(std <= 1e-12 * np.abs(self.mean), 0.0, std)  # constant returns
        self.metrics: dict = {}

    @property
    def timestamps(self):
        """int64 seconds of the simulated bars, or None."""
        return None if self._stamps is None else _seconds(self._stamps)

    def seconds_at(self, index):
        """:attr:`timestamps` at ``index`` (converted there only), or None without a timestamp per bar."""
        if self._stamps is None or len(self._stamps) != self.bars:
            return None
        return _seconds(self._stamps[index])

    @classmethod
    def from_kernel(cls, stats, **scalars) -> "RunStats":
        """From ``sweep_kernel``'s output reshaped to (combos, ``kernels.SWEEP_STATS``)."""
        from quantlab.engine import kernels  # lazy: the planner reads the names only

        rows = np.ascontiguousarray(np.asarray(stats, dtype=np.float64).T)  # a contiguous row per statistic
        return cls({name: rows[getattr(kernels, "ST_" + name.upper())] for name in STATS}, **scalars)

    @classmethod
    def from_result(cls, result, close, *, start: int, periods_per_year: float, initial_cash: float,
                    risk_free_rate: float = 0.0, timestamps=None, benchmark_close=None) -> "RunStats":
        """From one simulation's result: the sums ``sweep_kernel`` keeps, in numpy's order, and
        the series statistics as ``kernels.series_stats`` computes them (``timestamps`` of the
        simulated bars, for durations in days; ``benchmark_close``: a benchmark's closes on the
        simulated bars, default the run's own ``close[start:]``, i.e. buy and hold of the same
        instrument)."""
        from quantlab.bar_stats import bar_stats, trade_stats

        returns = np.asarray(result.returns, dtype=np.float64)
        equity = np.asarray(result.equity, dtype=np.float64)
        close = np.asarray(close, dtype=np.float64)
        bench = close[start:] if benchmark_close is None else np.asarray(benchmark_close, dtype=np.float64)
        cols, bench_terms = bar_stats(returns, equity, initial_cash, bench)
        cols.update(trade_stats(result.trades), final_equity=equity[-1],
                    exposed_bars=np.count_nonzero(np.asarray(result.position)),
                    margin_calls=0.0 if getattr(result, "margin_call", None) is None else 1.0)
        benchmark = float(close[-1]) / float(close[start]) - 1.0
        return cls({k: np.array([v], dtype=np.float64) for k, v in cols.items()}, bars=len(equity),
                   periods_per_year=periods_per_year, initial_cash=initial_cash, benchmark=benchmark,
                   risk_free_rate=risk_free_rate, bench_terms=bench_terms, timestamps=timestamps)


def _seconds(stamps):
    """Timestamps (datetime64, or int64 seconds) as int64 seconds since the epoch."""
    return np.asarray(stamps).astype("datetime64[s]").astype(np.int64)


def per_bar_rate(annual: float, periods_per_year: float) -> float:
    """The per-bar rate compounding to ``annual`` over a year of ``periods_per_year`` bars."""
    return math.expm1(math.log1p(annual) / periods_per_year) if annual > -1 else math.nan


def scoring_scalars(periods_per_year, risk_free_rate) -> tuple[float, float]:
    """``(periods_per_year, risk_free_rate)`` as floats, checked (``ConfigError``, one line):
    the scalars every scoring of a run or a grid takes."""
    from quantlab.errors import ConfigError

    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ConfigError(f"periods_per_year must be positive, got {periods_per_year!r}")
    rf = float(risk_free_rate)
    if not (math.isfinite(rf) and rf > -1):
        raise ConfigError(f"risk_free_rate must be a finite annual rate above -1, got {risk_free_rate!r}")
    return ppy, rf


def growth_rate(final_ratio: float, years: float) -> float | None:
    """(final_ratio ** (1/years)) - 1, None when it overflows or is undefined."""
    if years <= 0 or not math.isfinite(final_ratio):
        return None
    if final_ratio <= 0:
        return -1.0
    try:
        return math.expm1(math.log(final_ratio) / years)
    except OverflowError:
        return None


def _where(cond, value):
    return np.where(cond, value, np.nan)


def _cagr(s: RunStats):
    """:func:`growth_rate` of every run (None: NaN), its ``math.log``, division and ``math.expm1`` mapped."""
    years = s.bars / s.periods_per_year
    ratios = s.final_equity / s.initial_cash
    finite = np.isfinite(ratios) & (years > 0)
    out = np.where(finite & (ratios <= 0), -1.0, np.nan)
    up = finite & (ratios > 0)
    logs = np.fromiter(map(math.log, ratios[up].tolist()), dtype=np.float64, count=int(up.sum()))
    try:
        out[up] = list(map(math.expm1, (logs / years).tolist()))
    except OverflowError:  # a growth beyond float range somewhere: growth_rate's None there
        out[up] = [math.nan if (g := growth_rate(r, years)) is None else g for r in ratios[up].tolist()]
    return out


def _sharpe(s: RunStats):
    return _where(s.std > 0, (s.mean - s.rf) / s.std * s.ann)


def _sortino(s: RunStats):
    downside_dev = np.sqrt((s.sum_sq_down + 0.0) / s.bars)
    return _where((s.negative_bars > 0) & (downside_dev > 0), (s.mean - s.rf) / downside_dev * s.ann)


def _sqn(s: RunStats):
    std = np.sqrt((s.sum_sq_trade_dev + 0.0) / np.maximum(s.trades - 1, 1))
    mean = (s.sum_trade_returns + 0.0) / np.maximum(s.trades, 1)
    return _where((s.trades >= 2) & (std > 0), np.sqrt(s.trades) * mean / std)


def _series(name: str):
    """A formula of :mod:`quantlab.series_metrics` (imported when a formula runs)."""
    def formula(s: RunStats):
        from quantlab import series_metrics

        return getattr(series_metrics, name)(s)
    return formula


def _calmar(s: RunStats):
    cagr, mdd = s.metrics["cagr"], s.metrics["max_drawdown"]
    return _where(~np.isnan(cagr) & (mdd < 0), cagr / np.abs(mdd))


_EXIT_NOTES = {"exits_end_of_data": " (the position still open after the last bar)",
               "exits_margin_call": " (a short bought back because it wiped the account out)"}

_BUILTIN = (
    Metric("total_return", True, True, lambda s: s.final_equity / s.initial_cash - 1.0,
           description="Final equity over initial cash, minus 1."),
    Metric("cagr", True, False, _cagr, description="Compound annual growth rate."),
    Metric("sharpe_simple", True, True, _sharpe,
           description="Mean per-bar return minus the per-bar risk-free rate (params.risk_free_rate, "
                       "default 0), over the std of the per-bar returns, annualised."),
    Metric("sortino", True, False, _sortino,
           description="Mean per-bar return minus the per-bar risk-free rate, over the downside deviation "
                       "(returns below 0), annualised."),
    Metric("max_drawdown", True, True, lambda s: s.max_drawdown.copy(),
           description="Worst fall from a running peak (<= 0; closer to 0 is better)."),
    Metric("calmar", True, False, _calmar, description="CAGR over |max_drawdown|."),
    Metric("volatility_ann", False, False, lambda s: s.std * s.ann,
           description="Std of the per-bar returns, annualised."),
    Metric("trades", True, True, lambda s: s.trades, integer=True,
           description="Round trips, plus one still open at the end."),
    Metric("win_rate", True, True, lambda s: _where(s.trades > 0, s.wins / s.trades),
           description="Share of trades with a positive pnl."),
    Metric("profit_factor", True, False,
           lambda s: _where((s.trades > 0) & (s.loss_sum < 0), (s.gross_profit + 0.0) / -(s.loss_sum + 0.0)),
           description="Gross profit over gross loss."),
    Metric("exposure", True, False, lambda s: s.exposed_bars / s.bars,
           description="Share of bars holding a position."),
    Metric("avg_trade_return", True, False,
           lambda s: _where(s.trades > 0, (s.sum_trade_returns + 0.0) / s.trades),
           description="Mean pnl over entry notional per trade."),
    *(Metric(name, True, False, lambda s, name=name: getattr(s, name), integer=True,
             description=f"Trades with exit_reason {name[6:]}" + _EXIT_NOTES.get(name, "") + ".")
      for name in EXIT_STATS),
    Metric("ambiguous_bars", False, False, lambda s: s.ambiguous_bars, integer=True,
           description="Exit bars whose range touched both the stop and the take-profit (the stop was "
                       "assumed first)."),
    Metric("bars", True, False, lambda s: np.full(s.k, s.bars), integer=True,
           description="Bars simulated (after warm-up)."),
    Metric("benchmark_return", True, False, lambda s: np.full(s.k, s.benchmark),
           description="Buy and hold over the same bars."),
    Metric("expectancy", True, False, lambda s: _where(s.trades > 0, (s.gross_profit + s.loss_sum) / s.trades),
           description="Mean net pnl per trade, in account currency (win rate x mean win + loss rate x mean loss)."),
    Metric("sqn", True, False, _sqn,
           description="System quality number: sqrt(trades) x mean / std (ddof 1) of the trade returns."),
    Metric("best_trade", True, False, lambda s: s.best_trade.copy(), description="Largest trade return."),
    Metric("worst_trade", True, False, lambda s: s.worst_trade.copy(), description="Smallest trade return."),
    Metric("avg_holding_bars", False, False, lambda s: _where(s.trades > 0, s.holding_bars / s.trades),
           description="Mean bars from entry fill to exit fill (a trade open at the end: to the last bar)."),
    Metric("exposure_adjusted_return", True, False,
           lambda s: _where(s.exposed_bars > 0, (s.final_equity / s.initial_cash - 1.0) / (s.exposed_bars / s.bars)),
           description="total_return over exposure: the return per unit of time in the market."),
    Metric("max_drawdown_duration_bars", False, False, lambda s: s.max_dd_bars, integer=True,
           description="Longest run of bars below the running equity peak (initial cash included)."),
    Metric("max_drawdown_duration_days", False, False, _series("drawdown_days"),
           description="Calendar days of the longest stretch below the running peak (the longest in "
                       "bars, the first of equal ones): from its peak bar (the first bar if the peak is the "
                       "initial cash) to its recovery bar, or to the last bar."),
    Metric("var_95", True, False, _series("var_95"),
           description="Historical value at risk: the 5 % quantile of the per-bar returns "
                       "(numpy linear interpolation; a loss is negative)."),
    Metric("cvar_95", True, False, _series("cvar_95"),
           description="Expected shortfall: the mean of the per-bar returns at or below var_95."),
    Metric("beta", True, False, _series("beta"),
           description="OLS slope of the per-bar returns on the benchmark's (params.benchmark, "
                       "default buy and hold of the same ticker; a sweep's leaderboard: buy and hold). Its "
                       "ranking direction is nominal."),
    Metric("alpha", True, False, _series("alpha"),
           description="OLS intercept of the per-bar excess returns (over the risk-free rate) "
                       "on the benchmark's, times periods_per_year."),
    Metric("tracking_error", False, False, _series("tracking_error"),
           description="Std (ddof 1) of the per-bar active returns (run - benchmark), annualised."),
    Metric("information_ratio", True, False, _series("information_ratio"),
           description="Mean active return over its std (ddof 1), annualised."),
)

METRICS: dict[str, Metric] = {m.name: m for m in _BUILTIN}


def register(metric: Metric) -> Metric:
    """Add a metric (plugins, tests); ``ValueError`` if its name is taken by another metric."""
    if not isinstance(metric, Metric) or not metric.name.isidentifier():
        raise ValueError("register expects a Metric with an identifier name")
    existing = METRICS.get(metric.name)
    if existing is not None and existing != metric:
        raise ValueError(f"metric '{metric.name}' is already registered")
    METRICS[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric added with :func:`register` (tests); built-ins cannot be removed."""
    if any(m.name == name for m in _BUILTIN):
        raise ValueError(f"metric '{name}' is built in")
    METRICS.pop(name, None)


def _all() -> list[Metric]:
    """The registered metrics, after the ``QUANTLAB_PLUGINS`` modules (which may register some)
    are loaded; without plugins nothing is imported."""
    if os.environ.get("QUANTLAB_PLUGINS", "").strip():
        from quantlab.strategies import load_plugins

        load_plugins()
    return list(METRICS.values())


def metric_names() -> tuple[str, ...]:
    """Every metric, in registry order (the order of metrics.json and the grid engine)."""
    return tuple(m.name for m in _all())


def grid_metric_names() -> tuple[str, ...]:
    """The metrics the grid engine computes (every metric): a sweep's leaderboard columns, its
    objective and sort_by choices, the forward candidates' ranking metric."""
    return metric_names()


def summary_names() -> tuple[str, ...]:
    """The summary metrics, in registry order (report summaries, leaderboard rows)."""
    return tuple(m.name for m in _all() if m.in_summary)


def headline_first(names) -> tuple[str, ...]:
    """``names`` with :data:`HEADLINE` moved to the front (the runs index and registry order)."""
    names = tuple(names)
    return ((HEADLINE,) if HEADLINE in names else ()) + tuple(n for n in names if n != HEADLINE)


def describe_metrics() -> list[dict]:
    """Every metric as JSON-safe data for agents (``--list-metrics``, the schema's ``x-metrics``):
    where it appears (``in_sweep``: the grid engine and the leaderboard compute it; ``in_summary``)."""
    return [{"name": m.name, "higher_is_better": m.higher_is_better, "in_summary": m.in_summary,
             "in_sweep": True, "integer": m.integer, "description": m.description} for m in _all()]


def lower_is_better() -> tuple[str, ...]:
    """Metrics whose smaller values rank first."""
    return tuple(m.name for m in _all() if not m.higher_is_better)


def integer_names() -> tuple[str, ...]:
    return tuple(m.name for m in _all() if m.integer)


def evaluate(stats: RunStats) -> dict:
    """Every metric as an array over runs: int64 for integer metrics, else float64 with NaN
    wherever the value is undefined or not finite."""
    out = {}
    add = np.add.reduce
    with np.errstate(all="ignore"):
        for metric in _all():
            value = metric.formula(stats)
            if metric.integer:
                value = np.asarray(value).astype(np.int64)
            else:
                value = np.array(value, dtype=np.float64).reshape(stats.k)
                if not math.isfinite(add(value)):  # a finite sum: every value is finite (one pass)
                    value[~np.isfinite(value)] = np.nan
            stats.metrics[metric.name] = value
            out[metric.name] = value
    return out
