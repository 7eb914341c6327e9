"""``DataRequest`` → validated :class:`Bars`: source resolution, loading and row selection."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from quantlab.data.bars import Bars, validate_bars
from quantlab.data.tickers import is_crypto, resolve_sample_ticker
from quantlab.data.timeutil import Interval, format_time, parse_interval, parse_time
from quantlab.errors import ConfigError, DataError

SOURCES = ("auto", "sample", "file", "yfinance", "synthetic")
ADJUST_MODES = ("auto", "none", "splits_only")  # = quantlab.data.adjust.ADJUST_MODES (not imported: cold path)


@dataclass(frozen=True)
class DataRequest:
    """What bars to load.

    ``start`` is inclusive and ``end`` exclusive (yfinance semantics), both UTC (``"YYYY-MM-DD"``
    or an ISO datetime). ``lookback_bars`` asks for up to that many extra bars before ``start``
    (indicator warm-up) when the source has them. ``data_path`` is used as given (the caller
    resolves it against the project root). ``cache_dir`` is where the yfinance cache lives
    (``<project>/outputs/cache``); ``None`` disables caching.
    """

    ticker: str
    start: str
    end: str
    interval: str = "1d"
    source: str = "auto"  # auto | sample | file | yfinance | synthetic
    data_path: str | None = None
    lookback_bars: int = 0
    seed: int = 7  # synthetic only
    cache_dir: str | None = None
    adjust: str = "auto"  # auto | none | splits_only (quantlab.data.adjust)
    date_format: str | None = None  # file source: strptime format of text dates
    require_coverage: bool = False  # file source: refuse a window the file does not cover (run path: on)


@dataclass(frozen=True)
class _Plan:
    """A checked request: parsed times and the text used in messages."""

    request: DataRequest
    source: str  # normalised source name
    ticker: str
    start: np.datetime64
    end: np.datetime64
    interval: Interval
    lookback: int

    def describe(self, ticker: str | None = None) -> str:
        req = self.request
        return f"{ticker or self.ticker} {req.start}..{req.end} ({req.interval})"


def _check(req: DataRequest) -> _Plan:
    if not isinstance(req.ticker, str) or not req.ticker.strip():
        raise ConfigError(f"Invalid ticker {req.ticker!r}: expected a non-empty string")
    source = req.source.strip().lower() if isinstance(req.source, str) else req.source
    if source not in SOURCES:
        raise ConfigError(f"Unknown data source '{req.source}': expected one of {', '.join(SOURCES)}")
    if source == "file" and not req.data_path:
        raise ConfigError("Data source 'file' needs data_path")
    if req.data_path and source not in ("file", "auto"):
        raise ConfigError(f"data_path is only used with source 'file' (got source '{source}')")
    if req.adjust not in ADJUST_MODES:
        raise ConfigError(f"Invalid adjust {req.adjust!r}: expected one of {', '.join(ADJUST_MODES)}")
    if req.date_format is not None and (not isinstance(req.date_format, str) or "%" not in req.date_format):
        raise ConfigError(f"Invalid date_format {req.date_format!r}: expected strptime codes such as %d/%m/%Y")
    lookback = req.lookback_bars
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 0:
        raise ConfigError(f"Invalid lookback_bars {lookback!r}: expected an integer >= 0")
    if isinstance(req.seed, bool) or not isinstance(req.seed, (int, np.integer)):
        raise ConfigError(f"Invalid seed {req.seed!r}: expected an integer")
    interval = parse_interval(req.interval)
    start, end = parse_time(req.start, "start"), parse_time(req.end, "end")
    plan = _Plan(req, source, req.ticker.strip(), start, end, interval, int(lookback))
    if start >= end:
        raise DataError(f"Invalid range for {plan.describe()}: start must be before end")
    return plan


def _window(bars: Bars, plan: _Plan, *, what: str, ticker: str | None = None) -> tuple[int, int]:
    """Positions ``[i, j)`` of the rows in ``[start, end)`` plus up to ``lookback`` rows before.

    Raises:
        DataError: no row falls in ``[start, end)``.
    """
    first = int(np.searchsorted(bars.index, plan.start, side="left"))
    stop = int(np.searchsorted(bars.index, plan.end, side="left"))
    if first >= stop:
        covers = (
            f"the {what} covers {format_time(bars.index[0])}..{format_time(bars.index[-1])}"
            if len(bars)
            else f"the {what} has no bars"
        )
        raise DataError(f"No bars for {plan.describe(ticker)} from source {bars.source}: {covers}")
    return max(0, first - plan.lookback), stop


def _select(bars: Bars, plan: _Plan, *, what: str) -> Bars:
    """The rows of :func:`_window` as a view."""
    return bars.slice(*_window(bars, plan, what=what))


def _sample_label(plan: _Plan, canonical: str) -> str:
    return canonical if plan.ticker == canonical else f"{plan.ticker} ({canonical})"


def _sample_covers(plan: _Plan, canonical: str) -> bool:
    from quantlab.data.sample import SAMPLES

    low, high = (np.datetime64(day, "ns") for day in SAMPLES[canonical].coverage)
    return bool(low <= plan.start and plan.end <= high)


def _load_sample(plan: _Plan) -> Bars:
    from quantlab.data.sample import sample_bars, sample_slice

    canonical = resolve_sample_ticker(plan.ticker)
    if canonical is None:
        aliases = "^GSPC/SPX/SP500, ^IXIC/NASDAQ/COMP, AAPL, IBM, MSFT, GOOG"
        raise DataError(
            f"No bars for {plan.describe()} from source sample: no bundled sample for this ticker "
            f"(available: {aliases})"
        )
    label = _sample_label(plan, canonical)
    if plan.interval.text != "1d":
        raise DataError(
            f"No bars for {plan.describe(label)} from source sample: the sample data is daily only "
            "(interval 1d)"
        )
    full = sample_bars(canonical, plan.request.adjust)
    window = _window(full, plan, what="sample data", ticker=label)
    if not _sample_covers(plan, canonical):  # partly covered: refuse rather than return a fragment
        span = f"{format_time(full.index[0])}..{format_time(full.index[-1])}"
        raise DataError(
            f"Incomplete bars for {plan.describe(label)} from source sample: the sample data covers "
            f"{span} only, not the whole requested range"
        )
    return sample_slice(canonical, *window, adjust=plan.request.adjust)


def _load_file(plan: _Plan) -> Bars:
    from quantlab.data.files import read_file_bars

    path = plan.request.data_path
    assert path is not None
    req = plan.request
    bars = read_file_bars(path, ticker=plan.ticker, interval=plan.interval.text, describe=plan.describe(),
                          adjust=req.adjust, date_format=req.date_format)
    validate_bars(bars, context=f"{plan.describe()} from file {path}")
    if req.require_coverage:
        _require_coverage(bars, plan, what=f"file {path}")
    return _select(bars, plan, what=f"file {path}")


def _require_coverage(bars: Bars, plan: _Plan, *, what: str) -> None:
    """DataError naming the coverage when ``[start, end)`` reaches clearly beyond the bars: more
    than a few bars' (at least a week's) slack at either end, so weekends and holidays at the
    window's edges are fine."""
    slack = np.timedelta64(int(max(7.0, 3 * plan.interval.approx_days) * 86_400), "s").astype("timedelta64[ns]")
    first, last = bars.index[0], bars.index[-1]
    if plan.start < first - slack or plan.end > last + slack:
        raise DataError(
            f"Incomplete bars for {plan.describe()}: the {what} covers {format_time(first)}.."
            f"{format_time(last)} only, not the whole requested range"
        )


def _yahoo_window(plan: _Plan) -> tuple[np.datetime64, np.datetime64]:
    from quantlab.data.yahoo import download_window

    return download_window(plan.start, plan.end, plan.interval, plan.lookback, is_crypto(plan.ticker))


def _load_yfinance(plan: _Plan, *, sample_hint: str | None = None) -> Bars:
    from quantlab.data.yahoo import fetch_bars

    start, end = _yahoo_window(plan)
    try:
        bars = fetch_bars(plan.ticker, start, end, plan.interval.text,
                          cache_dir=plan.request.cache_dir, describe=plan.describe(),
                          adjust=plan.request.adjust)
    except DataError as exc:
        if sample_hint is None:
            raise
        raise DataError(f"{exc}; {_sample_note(sample_hint)}") from None
    return _select(bars, plan, what="yfinance download")


def _sample_note(canonical: str) -> str:
    """Why the bundled sample did not serve an ``auto`` request for a sample ticker."""
    from quantlab.data.sample import sample_bars

    try:
        full = sample_bars(canonical)
    except DataError:
        return f"the bundled {canonical} sample is unavailable"
    span = f"{format_time(full.index[0])}..{format_time(full.index[-1])}"
    return f"the bundled {canonical} sample has daily (1d) bars for {span} only"


def _load_synthetic(plan: _Plan) -> Bars:
    from quantlab.data.synthetic import synthetic_range

    bars = synthetic_range(ticker=plan.ticker, start=plan.start, end=plan.end, interval=plan.interval,
                           seed=int(plan.request.seed), lookback=plan.lookback)
    if len(bars) == 0:  # synthetic_range returns no bars at all when the window has none
        raise DataError(
            f"No bars for {plan.describe()} from source synthetic: the synthetic calendar has no "
            "bar in the range"
        )
    return validate_bars(bars, context=f"{plan.describe()} from source synthetic")


def _load_imported(plan: _Plan) -> Bars | None:
    """The bars ``data import`` stored for this ticker and interval, else ``None``."""
    from quantlab.contract.paths import imported_path

    path = imported_path(plan.request.cache_dir, plan.ticker, plan.interval.text)
    if not path.is_file():
        return None
    from quantlab.data.store import read_bars

    bars = validate_bars(read_bars(path), context=f"{plan.describe()} from imported file {path}")
    if plan.request.require_coverage:
        _require_coverage(bars, plan, what=f"imported file {path}")
    return _select(bars, plan, what=f"imported file {path}")


def _load_auto(plan: _Plan) -> Bars:
    if plan.request.data_path:
        return _load_file(plan)
    if plan.request.cache_dir is not None:
        imported = _load_imported(plan)
        if imported is not None:
            return imported
        from quantlab.data.yahoo import cache_path, read_cache

        start, end = _yahoo_window(plan)
        path = cache_path(plan.request.cache_dir, plan.ticker, plan.interval.text, start, end,
                          plan.request.adjust)
        cached = read_cache(path, ticker=plan.ticker, interval=plan.interval.text)
        if cached is not None:
            return _select(cached, plan, what=f"cache file {path}")
    canonical = resolve_sample_ticker(plan.ticker)
    if canonical is not None and plan.interval.text == "1d" and _sample_covers(plan, canonical):
        return _load_sample(plan)
    return _load_yfinance(plan, sample_hint=canonical)


def load_bars(req: DataRequest) -> Bars:
    """Load validated bars for ``req``: the rows in ``[start, end)`` plus up to
    ``lookback_bars`` earlier rows when the source has them.

    Sources: ``sample`` (bundled real daily S&P 500 / NASDAQ bars, canonical ticker returned),
    ``file`` (``data_path``), ``yfinance`` (cached download), ``synthetic`` (seeded GBM) and
    ``auto``: ``data_path`` if given, else the bars ``data import`` stored for the ticker and
    interval (``<cache_dir>/imported``), else the yfinance cache file for this request if present,
    else the bundled sample when the ticker is a sample alias and the sample covers the daily
    range, else yfinance.

    Raises:
        ConfigError: unknown source, ``file`` without ``data_path``, invalid interval, dates,
            ticker, seed or ``lookback_bars``.
        DataError: ``start >= end``, no bars in the range, unreadable data, failed download,
            invalid bars, or bars whose median spacing does not fit ``interval``
            (``metrics.bar_calendar``); one line naming the ticker, the range and the reason.
    """
    plan = _check(req)
    loaders = {
        "auto": _load_auto,
        "sample": _load_sample,
        "file": _load_file,
        "yfinance": _load_yfinance,
        "synthetic": _load_synthetic,
    }
    bars = loaders[plan.source](plan)
    if bars.adjustment.startswith("none"):  # unadjusted prices: name split-like jumps in the window
        from quantlab.data.adjust import with_split_notes

        bars = with_split_notes(bars)
    from quantlab.metrics import bar_calendar

    try:
        bar_calendar(bars.index, plan.interval.text)  # the data's spacing must fit the interval
    except DataError as exc:
        raise DataError(f"Bars of {plan.describe()} from source {bars.source}: {exc}") from None
    return bars


def data_sources() -> dict[str, bool]:
    """Which sources can work in this environment (for health checks; imports nothing heavy)."""

    def installed(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    return {
        "sample": installed("arch"),
        "file": installed("pandas"),
        "yfinance": installed("yfinance"),
        "synthetic": True,
    }
