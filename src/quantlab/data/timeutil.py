"""Time helpers for the data layer: parsing request dates, intervals and formatting timestamps.

Every timestamp in QuantLab is a UTC instant held as ``numpy.datetime64[ns]`` (numpy has no time
zones, so a naive ``datetime64`` *is* UTC by convention). This module has no dependency beyond
numpy and the standard library, so importing it is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np

from quantlab.dates import date_error
from quantlab.errors import ConfigError

NS = np.dtype("datetime64[ns]")
DAY_NS = 86_400 * 10**9

# datetime64[ns] covers 1677-09-21 .. 2262-04-11; anything outside would silently wrap around.
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_LOWEST, _HIGHEST = np.datetime64(f"{_MIN_YEAR}-01-01"), np.datetime64(f"{_MAX_YEAR + 1}-01-01")
#: Whole days that datetime64[ns] can hold: [first, last].
NS_DAYS = (np.datetime64("1677-09-22"), np.datetime64("2262-04-10"))

_INTERVAL_RE = re.compile(r"^([1-9][0-9]{0,4})(m|h|d|wk|mo)$")
_UNIT_SECONDS = {"m": 60, "h": 3_600, "d": 86_400, "wk": 7 * 86_400}


def _shorten(value: object, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_time(value: object, field: str = "time") -> np.datetime64:
    """Parse a request date into a UTC ``datetime64[ns]``.

    Accepts ``"YYYY-MM-DD"``, any ISO 8601 datetime understood by :meth:`datetime.fromisoformat`
    (``"2023-01-01T09:30"``, ``"2023-01-01 09:30:00Z"``, ``"2023-01-01T09:30+02:00"``), and
    ``date``/``datetime``/``numpy.datetime64`` objects (YAML turns unquoted dates into ``date``).
    Aware values are converted to UTC; naive ones are taken as UTC.

    Raises:
        ConfigError: naming ``field`` and the offending value when it cannot be parsed.
    """

    def invalid(reason: str | None = None) -> ConfigError:
        # the one date-error wording of every command (quantlab.dates)
        return date_error(field, value, reason, param=field != "time")

    if isinstance(value, np.datetime64):  # exact, nanoseconds included
        if np.isnat(value):
            raise invalid("not a time (NaT)")
        if not _LOWEST <= value < _HIGHEST:
            raise invalid(f"years {_MIN_YEAR}..{_MAX_YEAR} are supported")
        return value.astype(NS)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise invalid() from None
    else:
        raise invalid()
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    if not _MIN_YEAR <= moment.year <= _MAX_YEAR:
        raise invalid(f"years {_MIN_YEAR}..{_MAX_YEAR} are supported")
    return np.datetime64(moment, "ns")


def format_time(moment: np.datetime64) -> str:
    """Format a UTC instant compactly: ``2017-01-03`` at midnight, else ``2017-01-03T14:30:00Z``."""
    moment = np.datetime64(moment, "ns")
    if np.isnat(moment):
        return "NaT"
    ns = int(moment.astype(np.int64))
    if ns % DAY_NS == 0:
        return str(moment.astype("datetime64[D]"))
    unit = "s" if ns % 10**9 == 0 else "ns"
    return str(np.datetime_as_string(moment, unit=unit)) + "Z"


def floor_day(moment: np.datetime64) -> np.datetime64:
    """Midnight (UTC) of the day containing ``moment``, as ``datetime64[D]``."""
    return np.datetime64(moment, "ns").astype("datetime64[D]")


def ceil_day(moment: np.datetime64) -> np.datetime64:
    """First midnight at or after ``moment``, as ``datetime64[D]``."""
    day = floor_day(moment)
    return day if day == np.datetime64(moment, "ns") else day + np.timedelta64(1, "D")


@dataclass(frozen=True)
class Interval:
    """A bar interval in yfinance notation: ``<count><unit>`` with unit m, h, d, wk or mo."""

    text: str
    count: int
    unit: str  # "m" minute, "h" hour, "d" day, "wk" week, "mo" month

    @property
    def is_intraday(self) -> bool:
        return self.unit in ("m", "h")

    @property
    def step(self) -> np.timedelta64 | None:
        """Fixed length of one bar, or ``None`` for calendar months."""
        if self.unit == "mo":
            return None
        return np.timedelta64(self.count * _UNIT_SECONDS[self.unit] * 10**9, "ns")

    @property
    def approx_days(self) -> float:
        """Approximate calendar length of one bar in days (months count 30.44 days)."""
        if self.unit == "mo":
            return self.count * 30.436875
        return self.count * _UNIT_SECONDS[self.unit] / 86_400


def parse_interval(text: object) -> Interval:
    """Parse ``"1d"``, ``"1h"``, ``"15m"``, ``"1wk"``, ``"1mo"`` ... (lower case, yfinance style).

    Raises:
        ConfigError: when the text is not ``<positive count><m|h|d|wk|mo>``.
    """
    match = _INTERVAL_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"Invalid interval '{_shorten(text)}': expected <count><unit> with unit m, h, d, wk or mo "
            "(for example 1d, 1h, 15m, 1wk, 1mo)"
        )
    return Interval(text=text, count=int(match.group(1)), unit=match.group(2))
