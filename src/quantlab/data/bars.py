"""The canonical in-memory bar container and its validation rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from quantlab.data.timeutil import NS, NS_DAYS, format_time, parse_time
from quantlab.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PRICE_FIELDS = ("open", "high", "low", "close")
VALUE_FIELDS = (*PRICE_FIELDS, "volume")
_FINGERPRINT_VERSION = b"quantlab.bars.v1"


@dataclass(frozen=True, eq=False, repr=False)
class Bars:
    """OHLCV bars as plain numpy arrays.

    ``index`` is ``datetime64[ns]`` holding UTC instants; the five value arrays are ``float64`` of
    the same length. The constructor only normalises dtypes and checks shapes: use
    :func:`validate_bars` for the canonical rules (sorted, unique, finite, consistent OHLC).

    Treat the arrays as immutable: :meth:`slice` returns views that share memory with the parent.
    Equality is identity; compare contents with :meth:`fingerprint`. ``notes`` and ``adjustment``
    describe how the bars were prepared (they become run warnings / metadata); they are not
    part of the fingerprint.
    """

    index: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ticker: str
    interval: str
    source: str
    #: what the loader did or noticed (sorted input, possible unadjusted splits): run warnings
    notes: tuple[str, ...] = ()
    #: how prices were adjusted: "" (not applicable), "none", "auto (adj close / close)", ...
    adjustment: str = ""

    def __post_init__(self) -> None:
        index = np.asarray(self.index)
        if index.dtype.kind != "M":
            raise TypeError(f"Bars.index must be datetime64, got {index.dtype}")
        if index.dtype != NS:
            known = index[~np.isnat(index)]
            if known.size and (known.min() < NS_DAYS[0] or known.max() > NS_DAYS[1]):
                raise ValueError("Bars.index has times outside the datetime64[ns] range (1677..2262)")
            index = index.astype(NS)
        object.__setattr__(self, "index", index)
        if index.ndim != 1:
            raise ValueError(f"Bars.index must be one-dimensional, got shape {index.shape}")
        for name in VALUE_FIELDS:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != index.shape:
                raise ValueError(
                    f"Bars.{name} has shape {values.shape}, expected {index.shape} like the index"
                )
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __repr__(self) -> str:
        span = f"{format_time(self.index[0])}..{format_time(self.index[-1])}" if len(self) else "empty"
        return (
            f"Bars(ticker={self.ticker!r}, interval={self.interval!r}, source={self.source!r}, "
            f"n={len(self)}, {span})"
        )

    def slice(self, i: int, j: int) -> Bars:
        """Bars at positions ``[i, j)`` (Python slice semantics; the arrays are views)."""
        window = slice(i, j)
        return Bars(
            index=self.index[window],
            open=self.open[window],
            high=self.high[window],
            low=self.low[window],
            close=self.close[window],
            volume=self.volume[window],
            ticker=self.ticker,
            interval=self.interval,
            source=self.source,
            notes=self.notes,
            adjustment=self.adjustment,
        )

    def index_of(self, when: str | np.datetime64) -> int:
        """First position whose timestamp is ``>= when`` (``len(self)`` if there is none).

        ``when`` is parsed like a request date (strings, ``date``/``datetime``, ``datetime64``).
        """
        moment = parse_time(when, "time")
        return int(np.searchsorted(self.index, moment, side="left"))

    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame (copies) with a UTC ``DatetimeIndex`` named ``timestamp``.

        ``frame.attrs`` carries ``ticker``, ``interval`` and ``source``.
        """
        import pandas as pd

        index = pd.DatetimeIndex(self.index, name="timestamp").tz_localize("UTC")
        frame = pd.DataFrame(
            {name: getattr(self, name) for name in VALUE_FIELDS}, index=index, copy=True
        )
        frame.attrs.update(ticker=self.ticker, interval=self.interval, source=self.source)
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, ticker: str, interval: str, source: str) -> Bars:
        """Build bars from a DataFrame with OHLC(V) columns (any case) and a time index or column.

        The time comes from a ``date``/``datetime``/``timestamp``/``time`` column, else a
        ``DatetimeIndex``, else the first column. Aware times are converted to UTC, naive ones are
        taken as UTC. Nothing is sorted, dropped or repaired: call :func:`validate_bars` next.

        Raises:
            DataError: a required column is missing or the time cannot be parsed.
        """
        from quantlab.data.files import frame_to_bars

        return frame_to_bars(frame, ticker=ticker, interval=interval, source=source, where="frame")

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the arrays (little-endian bytes), ticker and interval.

        Stable across processes and platforms; the source label is deliberately not part of it, so
        the same bars read back from a cache have the same fingerprint as when downloaded.
        """
        digest = hashlib.sha256()
        for part in (_FINGERPRINT_VERSION, self.ticker.encode(), self.interval.encode()):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        digest.update(len(self).to_bytes(8, "little"))
        digest.update(np.ascontiguousarray(self.index.view(np.int64), dtype="<i8").tobytes())
        for name in VALUE_FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name), dtype="<f8").tobytes())
        return digest.hexdigest()


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _plainly_valid(bars: Bars) -> bool:
    """True only when every rule of :func:`validate_bars` holds, decided with comparisons and
    reductions (no float temporary of a column: at 1M bars the rule-by-rule masks cost ~3x);
    False sends :func:`validate_bars` through its rule-by-rule checks, which name the first
    violation. Strictly increasing int64 stamps after a first one that is not NaT (int64 min)
    hold no NaT at all. A comparison with NaN is False, so once low <= open, close <= high
    hold there is no NaN in the prices and every price lies in [min(low), max(high)]."""
    stamps, held = bars.index.view(np.int64), np.empty(len(bars), dtype=bool)  # one mask, reused
    if np.isnat(bars.index[0]) or not np.greater(stamps[1:], stamps[:-1], out=held[1:]).all():
        return False
    high, low, open_, close, volume = bars.high, bars.low, bars.open, bars.close, bars.volume
    for above, below in ((high, open_), (high, close), (open_, low), (close, low)):
        if not np.greater_equal(above, below, out=held).all():
            return False
    return bool(low.min() > 0 and high.max() < np.inf and volume.min() >= 0 and volume.max() < np.inf)


def validate_bars(bars: Bars, *, context: str) -> Bars:
    """Check the canonical rules and return ``bars`` unchanged.

    Rules: at least one bar; no NaT; timestamps strictly increasing (sorted and unique); OHLC
    finite and > 0; ``high >= max(open, close)``; ``low <= min(open, close)``; volume finite and
    >= 0. ``context`` says where the bars come from (e.g. ``"^GSPC 2017-01-01..2018-01-01 (1d)
    from source sample"``); the message always names the ticker.

    Raises:
        DataError: one line naming the ticker, the context and the first violated rule (with the
        number of offending rows and the first offending timestamp).
    """

    def fail(reason: str) -> DataError:
        if not context:
            subject = bars.ticker
        elif bars.ticker in context:
            subject = context
        else:
            subject = f"{bars.ticker} ({context})"
        return DataError(f"Invalid bars for {subject}: {reason}")

    def where(mask: np.ndarray, offset: int = 0) -> str:
        count = int(np.count_nonzero(mask))
        first = bars.index[_first(mask) + offset]
        return f"{count} row{'s' if count != 1 else ''} (first at {format_time(first)})"

    if len(bars) == 0:
        raise fail("no bars")
    if _plainly_valid(bars):
        return bars
    index = bars.index
    nat = np.isnat(index)
    if nat.any():
        raise fail(f"{int(np.count_nonzero(nat))} missing timestamps (NaT)")
    steps = np.diff(index.view(np.int64))
    backwards = steps < 0
    if backwards.any():
        raise fail(f"timestamps are not sorted: {where(backwards, 1)} earlier than the previous bar")
    repeated = steps == 0
    if repeated.any():
        raise fail(f"duplicate timestamps: {where(repeated, 1)}")
    for name in ("open", "close", "high", "low"):  # the body first: it is what the wicks derive from
        values = getattr(bars, name)
        not_finite = ~np.isfinite(values)
        if not_finite.any():
            raise fail(f"{name} is NaN or infinite in {where(not_finite)}")
        not_positive = values <= 0
        if not_positive.any():
            raise fail(f"{name} <= 0 in {where(not_positive)}")
    high_low = bars.high < np.maximum(bars.open, bars.close)
    if high_low.any():
        raise fail(f"high < max(open, close) in {where(high_low)}")
    low_high = bars.low > np.minimum(bars.open, bars.close)
    if low_high.any():
        raise fail(f"low > min(open, close) in {where(low_high)}")
    volume_bad = ~np.isfinite(bars.volume)
    if volume_bad.any():
        raise fail(f"volume is NaN or infinite in {where(volume_bad)}")
    volume_negative = bars.volume < 0
    if volume_negative.any():
        raise fail(f"volume < 0 in {where(volume_negative)}")
    return bars
