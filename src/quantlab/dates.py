"""Request dates: the one parser and the one error wording every command uses.

    params.<name> is not a valid date (YYYY-MM-DD or ISO 8601): '<value>'[: <reason>]
"""

from __future__ import annotations

from datetime import datetime, timezone

from quantlab.errors import ConfigError


def date_error(name: str, value: object, reason: str | None = None, *, param: bool = True) -> ConfigError:
    """The error for a bad date; ``name`` is the request parameter (``param=False``: a plain label)."""
    text = str(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    label = f"params.{name}" if param and not name.startswith("params.") else name
    return ConfigError(f"{label} is not a valid date (YYYY-MM-DD or ISO 8601): {text!r}"
                       + (f": {reason}" if reason else ""))


def parse_date(value: str, name: str) -> datetime:
    """``YYYY-MM-DD`` or ISO 8601 text -> an aware datetime (naive = UTC); ConfigError naming ``name``."""
    text = str(value).strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except ValueError:
        raise date_error(name, value) from None


def bar_time_iso(ts) -> str:
    """A bar timestamp (numpy datetime64 or epoch nanoseconds) -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    import numpy as np

    return str(np.datetime_as_string(np.datetime64(ts, "s"), unit="s")) + "Z"


def bar_times_iso(values) -> list[str]:
    """:func:`bar_time_iso` of every timestamp of an array, in one numpy call."""
    import numpy as np

    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.datetime64):
        arr = arr.astype("datetime64[ns]")
    return [t + "Z" for t in np.datetime_as_string(arr.astype("datetime64[s]"), unit="s").tolist()]
