"""Price adjustment for splits and dividends, and detection of unadjusted splits (numpy only).

Rules (``adjust`` request parameter, documented in docs/data.md):

* ``auto`` (default): when the source has an adjusted close, open/high/low/close are multiplied by
  ``adj_close / close`` row by row (back-adjustment: the last bar keeps its adjusted level, every
  return equals the adjusted close's return). Without an adjusted close the prices are used as
  they are.
* ``splits_only``: only the split part of ``adj_close / close`` is applied: a step of that ratio
  between two bars that is close to a split factor (2:1, 3:2, 1:10 ...) is a split; smaller steps
  (dividends) are ignored.
* ``none``: the raw prices.

Volume is never changed. Whenever the served prices are not adjusted (``none``, or no adjusted
close), :func:`split_warnings` looks for overnight jumps consistent with a split and names them.
"""

from __future__ import annotations

import numpy as np

from quantlab.data.timeutil import format_time

ADJUST_MODES = ("auto", "none", "splits_only")

# forward and reverse split factors (new shares per old share) that a jump is compared with
_SPLIT_FACTORS = (1.25, 4 / 3, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0)
_FACTORS = np.array([*_SPLIT_FACTORS, *(1 / f for f in _SPLIT_FACTORS)])
_TOLERANCE = 0.04  # relative distance of a jump from a split factor
_MIN_JUMP = 0.2  # |log move| below this (about +-18%) is never called a split


def _nearest_factor(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ratio, the nearest split factor and whether it is within the tolerance."""
    distance = np.abs(np.log(step[:, None]) - np.log(_FACTORS[None, :]))
    best = np.argmin(distance, axis=1)
    factor = _FACTORS[best]
    close_enough = distance[np.arange(step.size), best] <= np.log1p(_TOLERANCE)
    return factor, close_enough & (np.abs(np.log(step)) >= _MIN_JUMP)


def adjustment_factors(close: np.ndarray, adj_close: np.ndarray, mode: str) -> np.ndarray | None:
    """Per-row multipliers of open/high/low/close for ``mode`` (``None``: leave the prices as they are).

    Rows where ``adj_close`` is missing or not positive take the next row's ratio (the last row
    falls back to 1), so a gap in the adjusted column never invents a price.
    """
    if mode == "none":
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(adj_close, dtype=np.float64) / np.asarray(close, dtype=np.float64)
    usable = np.isfinite(ratio) & (ratio > 0)
    if not usable.any():
        return None
    if not usable.all():  # back-fill from the following row, then 1.0 at the end
        ratio = ratio.copy()
        nxt = 1.0
        for i in range(ratio.size - 1, -1, -1):
            if usable[i]:
                nxt = ratio[i]
            else:
                ratio[i] = nxt
    if mode == "auto":
        return ratio
    # splits_only: keep the ratio's split-sized steps, drop the dividend-sized ones
    factors = np.ones_like(ratio)
    if ratio.size > 1:
        step = ratio[1:] / ratio[:-1]
        factor, is_split = _nearest_factor(step)
        # a split at bar i+1 multiplies every earlier price by 1/factor
        inverse = np.where(is_split, 1.0 / factor, 1.0)
        factors[:-1] = np.cumprod(inverse[::-1])[::-1]
    return factors


def apply_factors(arrays: dict[str, np.ndarray], factors: np.ndarray | None) -> dict[str, np.ndarray]:
    """``arrays`` with open/high/low/close multiplied by ``factors`` (new arrays; volume unchanged)."""
    if factors is None:
        return arrays
    out = dict(arrays)
    for name in ("open", "high", "low", "close"):
        out[name] = np.asarray(arrays[name], dtype=np.float64) * factors
    return out


def detect_splits(index: np.ndarray, close: np.ndarray, volume: np.ndarray,
                  open_: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Positions ``i`` where the move from bar ``i-1`` to bar ``i`` is consistent with a split,
    and the split factor.

    The overnight gap ``open[i] / close[i-1]`` (when ``open_`` is given) and the close-to-close
    ratio ``close[i] / close[i-1]`` are compared with ``1/f`` for usual split factors ``f`` (2:1,
    3:2, 1:10 ...): within 4% and a move of at least about 18% is a split (the gap first: the
    day's own trading then does not hide it). Volume, when present, is reported but not required
    (vendors often back-adjust the volume already).
    """
    close = np.asarray(close, dtype=np.float64)
    if close.size < 2:
        return []
    ratios = [] if open_ is None else [np.asarray(open_, dtype=np.float64)[1:] / close[:-1]]
    ratios.append(close[1:] / close[:-1])
    found = np.zeros(close.size - 1, dtype=bool)
    factors = np.ones(close.size - 1)
    for raw in ratios:
        with np.errstate(divide="ignore", invalid="ignore"):
            valid = np.isfinite(raw) & (raw > 0)
        factor, is_split = _nearest_factor(np.where(valid, raw, 1.0))
        new = is_split & valid & ~found
        factors[new] = factor[new]
        found |= new
    return [(int(i) + 1, float(1.0 / factors[i])) for i in np.flatnonzero(found)]


def _factor_text(factor: float) -> str:
    from fractions import Fraction

    exact = Fraction(factor).limit_denominator(20)
    ratio = f"{exact.numerator}:{exact.denominator}"
    return f"a {ratio} split" if factor >= 1 else f"a {ratio} reverse split"


def split_warnings(index: np.ndarray, close: np.ndarray, volume: np.ndarray, *, ticker: str,
                   limit: int = 5, open_: np.ndarray | None = None) -> list[str]:
    """One warning per jump :func:`detect_splits` finds (at most ``limit``, then a count)."""
    found = detect_splits(index, close, volume, open_)
    out = []
    for i, factor in found[:limit]:
        move = close[i] / close[i - 1] - 1
        gap = "" if open_ is None else f"opened {open_[i] / close[i - 1] - 1:+.1%}, "
        vol = ""
        if volume[i - 1] > 0 and volume[i] > 0:
            vol = f", volume x{volume[i] / volume[i - 1]:.2f}"
        out.append(
            f"{ticker}: possible unadjusted split on {format_time(index[i])}: {gap}close moved {move:+.1%} "
            f"from the previous close{vol}, consistent with {_factor_text(factor)}; the prices are not adjusted "
            "(give an adjusted close column, or check the data)"
        )
    if len(found) > limit:
        out.append(f"{ticker}: {len(found) - limit} more split-like jumps not listed")
    return out


def check_mode(adjust: object) -> str:
    """The adjust mode, or ConfigError (exit 2) naming the valid ones."""
    if adjust not in ADJUST_MODES:
        from quantlab.errors import ConfigError

        raise ConfigError(f"Invalid adjust {adjust!r}: expected one of {', '.join(ADJUST_MODES)}")
    return str(adjust)


def adjusted_bars(arrays: dict[str, np.ndarray], *, ticker: str, interval: str, source: str,
                  adjust: str = "auto", notes: tuple[str, ...] = ()):
    """:class:`~quantlab.data.bars.Bars` from raw arrays (``index``, OHLCV and optionally
    ``adj_close``) with the ``adjust`` rule applied and the adjustment recorded (``"none ..."``
    when the served prices are unadjusted: see :func:`with_split_notes`). Not validated."""
    from quantlab.data.bars import Bars

    arrays = dict(arrays)
    adj_close = arrays.pop("adj_close", None)
    factors = None
    if adj_close is None:
        label = "none (the source has no adjusted close)"
    elif adjust == "none":
        label = "none (adjust: none; the adjusted close is ignored)"
    else:
        factors = adjustment_factors(arrays["close"], adj_close, adjust)
        if factors is None:
            label = "none (the adjusted close column has no usable value)"
        elif adjust == "auto":
            label = "auto: open/high/low/close x adjusted close / close (splits and dividends)"
        else:
            label = "splits_only: open/high/low/close x the split steps of adjusted close / close"
    return Bars(**apply_factors(arrays, factors), ticker=ticker, interval=interval, source=source,
                notes=tuple(notes), adjustment=label)


def with_split_notes(bars):
    """``bars`` plus a note for every split-like jump when its prices are unadjusted
    (``adjustment`` starting with ``"none"``); other bars are returned as they are."""
    import dataclasses

    if not bars.adjustment.startswith("none"):
        return bars
    found = split_warnings(bars.index, bars.close, bars.volume, ticker=bars.ticker, open_=bars.open)
    return dataclasses.replace(bars, notes=(*bars.notes, *found)) if found else bars
