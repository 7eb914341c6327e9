"""``main.py data list|inspect|import``: which bars are available offline, what one series looks
like, and importing a CSV/Parquet file into the Parquet cache (``<outputs>/cache/imported``) so
``run --ticker T`` uses it offline. Human output by default, one JSON document with ``--json``.

Exit codes: 0 ok, 2 bad arguments, 3 unreadable or invalid data. Errors are one ``ERROR:`` line
on stderr; nothing is written when an import fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from quantlab.errors import ConfigError, DataError

ACTIONS = ("list", "inspect", "import")
_GAPS = 5  # largest gaps (over 1.5x the typical spacing) reported by inspect
_GAP_WARN = 10.0  # a gap this many times the typical spacing (and over a week) is a quality warning


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    from quantlab.contract.params import INTERVALS

    p = _Parser(prog="main.py data", description="List, inspect and import bar data.")
    sub = p.add_subparsers(dest="action", metavar="{list,inspect,import}")
    ls = sub.add_parser("list", help="available tickers and their coverage (bundled, imported, cached, files)")
    ls.add_argument("--data-dir", help="also list the CSV/Parquet files under this directory")
    ins = sub.add_parser("inspect", help="bars, coverage, gaps, adjustment and quality warnings of one series")
    ins.add_argument("target", metavar="TICKER|FILE")
    ins.add_argument("--start", help="first bar (inclusive), YYYY-MM-DD or ISO time, UTC")
    ins.add_argument("--end", help="end of the window (exclusive)")
    imp = sub.add_parser("import", help="validate a CSV/Parquet file and store it in the Parquet cache")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--ticker", required=True, help="the ticker `run --ticker` will use")
    for q in (ins, imp):
        q.add_argument("--interval", choices=INTERVALS, default=None, help="bar interval (default: inferred)")
        q.add_argument("--adjust", choices=("auto", "none", "splits_only"), default="auto",
                       help="use the adjusted close column (docs/data.md)")
        q.add_argument("--date-format", dest="date_format", help="strptime format of text dates, e.g. %%d/%%m/%%Y")
    for q in (ls, ins, imp):
        q.add_argument("--json", dest="as_json", action="store_true", help="one JSON document on stdout")
    return p


def cache_dir() -> Path:
    from quantlab.contract.paths import outputs_root

    return outputs_root() / "cache"


# ------------------------------------------------------------------------------------------ list
def _span(bars) -> dict:
    from quantlab.data.timeutil import format_time

    return {"bars": len(bars), "first": format_time(bars.index[0]) if len(bars) else None,
            "last": format_time(bars.index[-1]) if len(bars) else None}


def _stored(path: Path, kind: str) -> dict:
    from quantlab.data.store import read_bars

    try:
        bars = read_bars(path)
    except DataError as exc:
        return {"ticker": None, "kind": kind, "path": str(path), "error": str(exc)}
    return {"ticker": bars.ticker, "kind": kind, "interval": bars.interval, **_span(bars),
            "adjustment": bars.adjustment or None, "path": str(path)}


def list_data(data_dir: str | None = None) -> dict:
    """Bundled samples (coverage from their spec, no parsing), imported and yfinance-cached
    Parquet files, and (``data_dir``) CSV/Parquet files under a directory."""
    from quantlab.data.files import file_kind
    from quantlab.data.sample import SAMPLES
    from quantlab.data.tickers import SAMPLE_TICKERS

    entries = []
    for ticker, spec in SAMPLES.items():
        aliases = sorted(a for a, c in SAMPLE_TICKERS.items() if c == ticker and a != ticker)
        entries.append({"ticker": ticker, "kind": "bundled", "interval": "1d", "name": spec.name,
                        "first": spec.coverage[0], "end": spec.coverage[1], "aliases": aliases,
                        "adjusted_close": spec.adjusted, "package": spec.package})
    root = cache_dir()
    for kind, sub in (("imported", "imported"), ("cached", "yfinance")):
        folder = root / sub
        if folder.is_dir():
            entries.extend(_stored(p, kind) for p in sorted(folder.glob("*.parquet")))
    if data_dir is not None:
        from quantlab.contract.paths import resolve_input_path

        folder = resolve_input_path(data_dir, "data_dir")
        if not folder.is_dir():
            raise ConfigError(f"--data-dir {data_dir}: not a directory ({folder})")
        for p in sorted(folder.rglob("*")):
            if p.is_file() and file_kind(p) is not None:
                entries.append({"ticker": None, "kind": "file", "path": str(p),
                                "hint": f"main.py data inspect {p}"})
    return {"action": "list", "cache_dir": str(root), "entries": entries}


# --------------------------------------------------------------------------------------- inspect
def infer_interval(index: np.ndarray) -> str | None:
    """The interval whose accepted spacing (``metrics.bar_calendar``) fits the bars' median
    spacing, the nearest nominal one first; ``None`` below 2 bars or when none fits."""
    from quantlab.metrics import _NOMINAL, _SPACING  # noqa: PLC2701 (one table of spacings)

    if len(index) < 2:
        return None
    spacing = float(np.median(np.diff(np.asarray(index).astype("datetime64[s]").astype(np.int64))))
    for name, nominal in sorted(_NOMINAL, key=lambda item: abs(np.log(max(spacing, 1.0) / item[1]))):
        lo, hi = _SPACING[name]
        if lo <= spacing <= hi:
            return name
    return None


def _read_target(target: str, opts) -> tuple:
    """(bars, where) for a ticker or a file; DataError when there is nothing local to read."""
    from quantlab.data.files import file_kind, read_file_bars
    from quantlab.data.bars import validate_bars

    path = None
    if file_kind(target) is not None or Path(target).expanduser().exists():
        from quantlab.contract.paths import resolve_input_path

        path = Path(target).expanduser().resolve() if Path(target).expanduser().exists() else \
            resolve_input_path(target, "target")
    if path is not None:
        ticker = getattr(opts, "ticker", None) or path.name.split(".")[0]

        def read(interval: str):
            describe = ticker if opts.interval is None else f"{ticker} ({interval})"
            return read_file_bars(path, ticker=ticker, interval=interval, describe=describe,
                                  adjust=opts.adjust, date_format=opts.date_format)

        if opts.interval is not None:
            bars = read(opts.interval)
        else:  # times kept as given (intraday reading), then read again as the interval they show
            inferred = infer_interval(read("1h").index)
            bars = read(inferred or "1d")
        return validate_bars(bars, context=f"{ticker} from file {path}"), f"file {path}"
    from quantlab.contract.paths import imported_path
    from quantlab.data.tickers import resolve_sample_ticker

    interval = opts.interval or "1d"
    stored = imported_path(cache_dir(), target, interval)
    if stored.is_file():
        from quantlab.data.store import read_bars

        return validate_bars(read_bars(stored), context=f"{target} imported file {stored}"), f"imported {stored}"
    canonical = resolve_sample_ticker(target)
    if canonical is not None and interval == "1d":
        from quantlab.data.sample import sample_bars

        return sample_bars(canonical, opts.adjust), f"bundled sample {canonical}"
    raise DataError(f"No local bars for {target} ({interval}): not a bundled ticker, not imported "
                    f"(main.py data import FILE --ticker {target}) and not an existing file")


def _window(bars, start: str | None, end: str | None):
    from quantlab.data.timeutil import format_time, parse_time

    lo = 0 if start is None else int(np.searchsorted(bars.index, parse_time(start, "start"), side="left"))
    hi = len(bars) if end is None else int(np.searchsorted(bars.index, parse_time(end, "end"), side="left"))
    if lo >= hi:
        raise DataError(f"No bars of {bars.ticker} in {start or '...'}..{end or '...'}: the data covers "
                        f"{format_time(bars.index[0])}..{format_time(bars.index[-1])}")
    return bars.slice(lo, hi)


def _gaps(index: np.ndarray, spacing: float | None) -> list[dict]:
    from quantlab.data.timeutil import format_time

    if spacing is None or len(index) < 2:
        return []
    steps = np.diff(index.astype("datetime64[s]").astype(np.int64))
    order = [i for i in np.argsort(-steps, kind="stable")[:_GAPS] if steps[i] > 1.5 * spacing]
    return [{"after": format_time(index[i]), "before": format_time(index[i + 1]),
             "seconds": int(steps[i]), "days": round(steps[i] / 86_400, 3),
             "x_typical": round(float(steps[i]) / spacing, 2) if spacing else None} for i in order]


def inspect_data(target: str, opts) -> dict:
    """Bars, coverage, inferred interval and calendar, largest gaps, adjustment, split-like jumps
    and quality warnings of one ticker or file."""
    from quantlab.data.adjust import detect_splits, split_warnings
    from quantlab.data.timeutil import format_time
    from quantlab.metrics import bar_calendar

    bars, where = _read_target(target, opts)
    bars = _window(bars, opts.start, opts.end)
    inferred = infer_interval(bars.index)
    warnings = list(bars.notes)
    try:
        calendar = bar_calendar(bars.index, opts.interval or bars.interval)
    except DataError as exc:
        calendar = bar_calendar(bars.index, inferred) if inferred else {}
        warnings.append(f"{bars.ticker}: {exc}")
    spacing = calendar.get("median_spacing_seconds")
    gaps = _gaps(bars.index, spacing)
    for gap in gaps:
        if gap["x_typical"] and gap["x_typical"] >= _GAP_WARN and gap["seconds"] > 7 * 86_400:
            warnings.append(f"{bars.ticker}: gap of {gap['days']:g} days between {gap['after']} and "
                            f"{gap['before']} ({gap['x_typical']:g}x the typical spacing)")
    splits = [{"date": format_time(bars.index[i]), "factor": round(f, 4)}
              for i, f in detect_splits(bars.index, bars.close, bars.volume, bars.open)]
    if bars.adjustment.startswith("none") and not any("possible unadjusted split" in w for w in warnings):
        warnings += split_warnings(bars.index, bars.close, bars.volume, ticker=bars.ticker, open_=bars.open)
    zero_volume = int((bars.volume == 0).sum())
    if zero_volume:
        warnings.append(f"{bars.ticker}: {zero_volume} of {len(bars)} bars have zero volume")
    return {"action": "inspect", "ticker": bars.ticker, "source": where, **_span(bars),
            "interval": opts.interval or bars.interval, "inferred_interval": inferred,
            "periods_per_year": calendar.get("periods_per_year"), "calendar": calendar.get("calendar"),
            "median_spacing_seconds": spacing, "largest_gaps": gaps,
            "adjustment": bars.adjustment or None, "split_like_jumps": splits, "warnings": warnings}


# ---------------------------------------------------------------------------------------- import
def import_data(file: str, opts) -> dict:
    """Validate and normalise ``file`` (the forgiving importer of docs/data.md), check its
    spacing fits the interval, and write it atomically to ``<outputs>/cache/imported``."""
    import dataclasses

    from quantlab.contract.paths import imported_path
    from quantlab.data.store import write_bars
    from quantlab.metrics import bar_calendar

    ticker = opts.ticker.strip()
    if not ticker:
        raise ConfigError("--ticker must not be empty")
    bars, where = _read_target(file, opts)
    if not where.startswith("file "):
        raise DataError(f"data import takes a CSV or Parquet file, got {file!r} (no such file)")
    interval = opts.interval or bars.interval
    try:
        calendar = bar_calendar(bars.index, interval)
    except DataError as exc:
        raise DataError(f"Cannot import {where[5:]} as {ticker} ({interval}): {exc}") from None
    from quantlab.data.adjust import with_split_notes

    bars = with_split_notes(dataclasses.replace(bars, ticker=ticker, interval=interval, source="imported"))
    target = imported_path(cache_dir(), ticker, interval)
    write_bars(dataclasses.replace(bars, notes=()), target)  # a run re-checks splits in its window
    return {"action": "import", "ticker": ticker, "interval": interval, **_span(bars),
            "periods_per_year": calendar["periods_per_year"], "adjustment": bars.adjustment or None,
            "path": str(target), "file": where[5:], "warnings": list(bars.notes),
            "hint": f"main.py run --ticker {ticker} --interval {interval} uses these bars offline"}


# ------------------------------------------------------------------------------------------ CLI
def _human(result: dict) -> None:
    action = result["action"]
    if action == "list":
        print(f"{'TICKER':<10} {'KIND':<9} {'INTERVAL':<8} COVERAGE")
        for e in result["entries"]:
            if e["kind"] == "file":
                print(f"{'-':<10} {'file':<9} {'-':<8} {e['path']}")
                continue
            cover = f"{e.get('first')}..{e.get('end') or e.get('last')}"
            extra = f"  {e['path']}" if e.get("path") else f"  ({', '.join(e['aliases'])})" if e.get("aliases") else ""
            print(f"{e.get('ticker') or '?':<10} {e['kind']:<9} {e.get('interval') or '-':<8} {cover}{extra}")
        return
    if action == "import":
        print(f"imported {result['bars']} bars of {result['ticker']} ({result['interval']}) "
              f"{result['first']}..{result['last']}")
        print(f"  stored:     {result['path']}")
        print(f"  adjustment: {result['adjustment']}")
        print(f"  {result['hint']}")
        return
    print(f"{result['ticker']}  {result['source']}")
    print(f"  bars {result['bars']}  {result['first']}..{result['last']}")
    print(f"  interval {result['interval']} (inferred {result['inferred_interval']})  periods/year "
          f"{result['periods_per_year']}  calendar {result['calendar']}")
    print(f"  adjustment: {result['adjustment']}")
    for gap in result["largest_gaps"]:
        print(f"  gap {gap['days']:g}d {gap['after']} -> {gap['before']} ({gap['x_typical']:g}x typical)")
    for jump in result["split_like_jumps"]:
        print(f"  split-like jump on {jump['date']} (factor {jump['factor']:g})")


def run_action(action: str, params: dict) -> dict:
    """One ``data`` action from a dict of options (CLI flags or ``params`` of a JSON request)."""
    needs = {"list": (), "inspect": ("target",), "import": ("file", "ticker")}
    if action is None:
        raise ConfigError(f"data needs an action: {', '.join(ACTIONS)} (params.action)")
    if action not in needs:
        raise ConfigError(f"data takes one of {', '.join(ACTIONS)}, got {action!r}")
    missing = [name for name in needs[action] if not params.get(name)]
    if missing:
        raise ConfigError(f"data {action} needs params.{missing[0]}")
    opts = argparse.Namespace(**{"start": None, "end": None, "interval": None, "adjust": "auto",
                                 "date_format": None, "ticker": None, "data_dir": None,
                                 **{k: v for k, v in params.items() if v is not None}})
    if action == "list":
        return list_data(opts.data_dir)
    if action == "inspect":
        return inspect_data(opts.target, opts)
    return import_data(opts.file, opts)


def main(argv: list[str]) -> int:
    """``main.py data ...``: exit 0, 2 (bad arguments) or 3 (unreadable or invalid data)."""
    from quantlab.contract.lifecycle import error_info

    try:
        if not argv:
            raise ConfigError(f"data takes an action: {', '.join(ACTIONS)} (main.py data --help)")
        opts = build_parser().parse_args(argv)
        params = {k: v for k, v in vars(opts).items() if k not in ("action", "as_json")}
        result = run_action(opts.action, params)
    except Exception as exc:
        info = error_info(exc, verbose=False)
        print(f"ERROR: {info['message']}", file=sys.stderr)
        return info["exit_code"]
    for warning in result.get("warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    if opts.as_json:
        print(json.dumps(result, default=str))
    else:
        _human(result)
    return 0
