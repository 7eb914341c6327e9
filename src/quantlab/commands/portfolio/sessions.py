"""Scanning a root for forward sessions (step 1 of a portfolio mode): every eligible session's
normalised equity and metrics; anything else counted and listed as excluded, never a crash;
identical sessions collapsed to the most recently updated one. Also the union calendar's gaps.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab._lazy import np
from quantlab.artifacts.io import read_json
from quantlab.errors import ConfigError, DataError


TRADE_KEYS = ("trades", "win_rate", "profit_factor", "avg_trade_return")


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text -> aware UTC datetime ("Z", offsets and naive = UTC); None if unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def recency(session: dict) -> tuple[datetime, str]:
    """Sort key "most recently updated": parsed updated_at (else created_at), then session id."""
    meta = session["metadata"]
    when = parse_time(meta.get("updated_at")) or parse_time(meta.get("created_at")) or _EPOCH
    return when, session["session_id"]


def iso_texts(ts) -> list[str]:
    if len(ts) == 0:
        return []
    text = np.datetime_as_string(np.asarray(ts).astype("datetime64[s]"), unit="s")
    return [t + "Z" for t in text.tolist()]


def iso_text(ts) -> str:
    return iso_texts(np.asarray([ts]))[0]


def float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _Excluded(Exception):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def empty_tradelog():
    from quantlab.engine import TradeLog

    f, i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return TradeLog(entry_idx=i, exit_idx=i.copy(), side=np.zeros(0, dtype=np.int8), entry_price=f,
                    exit_price=f.copy(), qty=f.copy(), entry_fee=f.copy(), exit_fee=f.copy(), pnl=f.copy(),
                    ret=f.copy(), bars_held=i.copy())


def own_returns(norm) -> Any:
    prev = np.concatenate(([1.0], norm[:-1]))
    with np.errstate(all="ignore"):
        return norm / prev - 1.0


def session_periods_per_year(timestamps, interval: str) -> tuple[float, bool]:
    """Periods per year of bars at ``timestamps``, and whether they trade 24/7 -- from the bars'
    own weekdays, as for runs (``metrics.bar_calendar``); the ticker's name plays no part."""
    from quantlab.metrics import is_all_week, periods_per_year

    all_week = is_all_week(timestamps)
    return periods_per_year(all_week, interval), all_week


def _load_session(path: Path) -> dict:
    from quantlab.columnar import column_to_numpy, read_parquet
    from quantlab.engine import SimResult
    from quantlab.metrics import compute_metrics

    try:
        meta = read_json(path / "session_metadata.json")
    except FileNotFoundError:
        kind = _run_dir_kind(path)
        if kind:
            raise _Excluded("not_forward", f"a {kind} run directory, not a forward session") from None
        raise _Excluded("incomplete", "session_metadata.json missing") from None
    except (OSError, ValueError):
        raise _Excluded("incomplete", "session_metadata.json unreadable") from None
    if not isinstance(meta, dict):
        raise _Excluded("incomplete", "session_metadata.json is not an object")
    kind = meta.get("command", meta.get("mode"))
    if kind is not None and kind != "forward":
        raise _Excluded("not_forward", f"not a forward session (command {kind!r})")
    status = meta.get("status")
    if status is not None and status != "success":
        raise _Excluded("incomplete", f"status {status!r}")
    try:
        table = read_parquet(path / "equity.parquet")
    except FileNotFoundError:
        raise _Excluded("incomplete", "equity.parquet missing") from None
    except Exception:  # noqa: BLE001 - any corrupt file is an excluded session, never a crash
        raise _Excluded("incomplete", "equity.parquet unreadable") from None
    if table.num_rows == 0:
        raise _Excluded("incomplete", "equity.parquet is empty")
    names = set(table.column_names)
    if not {"timestamp", "equity"} <= names:
        raise _Excluded("incomplete", "equity.parquet lacks the timestamp/equity columns")
    try:
        ts = column_to_numpy(table, "timestamp")
        equity = column_to_numpy(table, "equity").astype(np.float64)
        position = (column_to_numpy(table, "position").astype(np.int8) if "position" in names
                    else np.zeros(len(ts), dtype=np.int8))
        bench = column_to_numpy(table, "benchmark_equity").astype(np.float64) if "benchmark_equity" in names else None
        close = column_to_numpy(table, "close").astype(np.float64) if "close" in names else None
        returns = column_to_numpy(table, "returns").astype(np.float64) if "returns" in names else None
    except (TypeError, ValueError):
        raise _Excluded("incomplete", "equity.parquet has nulls or unsupported column types") from None
    if not np.issubdtype(ts.dtype, np.datetime64):
        raise _Excluded("incomplete", "equity.parquet timestamp column is not a timestamp")
    ts = ts.astype("datetime64[ns]")
    if len(ts) > 1 and not (np.diff(ts.view(np.int64)) > 0).all():
        raise _Excluded("incomplete", "equity.parquet timestamps are not strictly increasing")
    if not np.isfinite(equity).all():
        raise _Excluded("incomplete", "equity.parquet has non-finite equity")

    cash = float_or_none(meta.get("initial_cash"))
    cash_source = "metadata"
    if cash is None or cash <= 0:
        # the engine's first return is equity[0] / initial_cash - 1
        derived = None
        if returns is not None and math.isfinite(returns[0]) and 1.0 + returns[0] > 0:
            derived = float(equity[0]) / (1.0 + float(returns[0]))
        cash = derived if derived is not None and math.isfinite(derived) and derived > 0 else float(equity[0])
        cash_source = "derived"
        if not (math.isfinite(cash) and cash > 0):
            raise _Excluded("incomplete", "no positive initial_cash")
    ticker = str(meta.get("ticker") or "N/A")
    interval = str(meta.get("interval") or "1d")
    try:
        ppy, _ = session_periods_per_year(ts, interval)
    except ConfigError:
        raise _Excluded("incomplete", f"unknown interval {interval!r}") from None

    norm = equity / cash
    if bench is not None and np.isfinite(bench).all() and bench[0] != 0:
        norm_bench = bench / bench[0]
    elif close is not None and np.isfinite(close).all() and close[0] != 0:
        norm_bench = close / close[0]
    else:
        norm_bench = None
    own = own_returns(norm)
    result = SimResult(equity=equity, position=position, returns=own, trades=empty_tradelog(), open_position=0)
    derived = compute_metrics(result, norm_bench if norm_bench is not None else norm, start=0,
                              periods_per_year=ppy, initial_cash=cash)
    if norm_bench is None:
        derived["benchmark_return"] = None
    file_metrics: dict = {}
    metrics_source = "equity"
    leg_warnings: list[str] = []
    try:
        raw = read_json(path / "metrics.json")
        block = raw.get("metrics") if isinstance(raw, dict) else None
        if isinstance(block, dict):
            file_metrics, metrics_source = block, "metrics.json+equity"
        if meta.get("mode") == "basket_leg" and isinstance(raw.get("warnings"), list):
            leg_warnings = [str(w) for w in raw["warnings"]]  # the leg's own (data) warnings
    except (OSError, ValueError):
        pass
    # equity-derived metrics are exactly what the portfolio uses; trade metrics come from the file
    metrics = {k: v for k, v in file_metrics.items() if isinstance(k, str)}
    metrics.update({k: v for k, v in derived.items() if k not in TRADE_KEYS})
    for k in TRADE_KEYS:
        metrics.setdefault(k, None)
    metrics["total_pnl"] = (float(norm[-1]) - 1.0) * cash

    return {
        "session_id": path.name, "path": str(path), "metadata": meta, "metrics": metrics,
        "metrics_source": metrics_source, "ticker": ticker, "interval": interval,
        "strategy": str(meta.get("strategy") or "unknown"), "strategy_params": meta.get("strategy_params") or {},
        "candidates": len(meta["candidates"]) if isinstance(meta.get("candidates"), list) else 1,
        "candidate_used": _first_candidate_id(meta),
        "source_run_id": meta.get("source_run_id"), "initial_cash": cash, "initial_cash_source": cash_source,
        "leg_warnings": leg_warnings,
        "forward_start": meta.get("forward_start"), "forward_end": meta.get("forward_end"),
        "created_at": meta.get("created_at"), "updated_at": meta.get("updated_at"),
        "first_bar": iso_text(ts[0]), "last_bar": iso_text(ts[-1]), "bars": int(len(ts)),
        "timestamps": ts, "norm_equity": norm, "position": position, "norm_benchmark": norm_bench,
        "returns": own,
    }


def _first_candidate_id(meta: dict) -> str | None:
    cands = meta.get("candidates")
    if isinstance(cands, list) and cands and isinstance(cands[0], dict):
        return str(cands[0].get("candidate_id") or "c1")
    return None


GAP_MIN_DAYS = 7          # a hole in the union calendar longer than this and than
GAP_SPACING_FACTOR = 10   # this many median bar spacings is a gap (weekends and holidays are not)


def calendar_gaps(cal) -> list[dict]:
    """Holes in the union calendar where no selected session has a bar: ``[{from, to, days}]``
    (the last bar before and the first bar after). The portfolio is flat through a gap, and
    per-bar statistics (CAGR, volatility, Sharpe) count bars, not the calendar time it spans."""
    if len(cal) < 3:
        return []
    steps = np.diff(cal.astype("datetime64[ns]").view(np.int64))
    day = 86_400 * 10**9
    limit = max(GAP_MIN_DAYS * day, GAP_SPACING_FACTOR * float(np.median(steps)))
    return [{"from": iso_text(cal[i]), "to": iso_text(cal[i + 1]), "days": round(int(steps[i]) / day, 2)}
            for i in np.nonzero(steps > limit)[0]]


def _run_dir_kind(path: Path) -> str | None:
    """'run', 'grid', 'paper', ... when ``path`` is a run directory (metadata.json), else None."""
    try:
        meta = read_json(path / "metadata.json")
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    return str(meta.get("mode") or meta.get("command") or "run")


def nothing_found(root: Any, scan: dict) -> DataError:
    runs = [e for e in scan["excluded"] if e["reason"].endswith("run directory, not a forward session")]
    if runs and len(runs) == scan["scanned"]:
        return DataError(f"no forward session under {root}: its {len(runs)} directories are run directories "
                         "(results of run/sweep/paper requests), not forward sessions; give the directory that "
                         "holds forward sessions (outputs/forward_runs, or the parent of a forward_outdir)")
    return DataError(f"no complete forward session under {root} ({scan['scanned']} directories scanned, "
                     f"{scan['incomplete']} incomplete, {scan['not_forward']} not forward sessions"
                     + (f", of which {len(runs)} run directories" if runs else "") + ")")


def _dedup_key(s: dict) -> tuple:
    return (s["source_run_id"], s["ticker"].upper(), s["interval"], s["strategy"],
            json.dumps(s["strategy_params"], sort_keys=True, default=str), str(s["forward_start"]),
            int(s["timestamps"][0].astype(np.int64)), int(s["timestamps"][-1].astype(np.int64)), s["bars"],
            round(s["initial_cash"], 6), round(float(s["norm_equity"][-1]), 12))


def scan_sessions(root: str | os.PathLike) -> tuple[list[dict], dict]:
    """Eligible forward sessions directly under ``root`` (sorted by session id) and scan stats.

    A session dict holds ``session_id`` (the directory name), ``path``, ``metadata``,
    ``metrics`` (equity-derived metrics + the trade metrics of metrics.json + ``total_pnl``),
    ``ticker``, ``interval``, ``strategy``, ``source_run_id``, ``initial_cash``, window fields and
    the arrays ``timestamps``, ``norm_equity``, ``position``, ``norm_benchmark``, ``returns``.
    Stats: ``root``, ``scanned``, ``eligible``, ``incomplete``, ``not_forward``, ``duplicates``,
    ``excluded`` [{session_id, kind, reason}], ``collapsed`` [{session_id, kept}].
    Raises ``DataError`` when the root does not exist or is not a directory (an empty root
    gives an empty list: :func:`select_sessions` reports it).
    """
    root_path = Path(root)
    if not root_path.exists():
        raise DataError(f"portfolio root {root} does not exist")
    if not root_path.is_dir():
        raise DataError(f"portfolio root {root} is not a directory")
    try:
        entries = sorted((p for p in root_path.iterdir() if not p.name.startswith(".") and p.is_dir()),
                         key=lambda p: p.name)
    except OSError as exc:
        raise DataError(f"portfolio root {root} cannot be read: {exc.strerror or exc}") from None
    sessions, excluded = [], []
    counts = {"incomplete": 0, "not_forward": 0}
    for entry in entries:
        try:
            sessions.append(_load_session(entry))
        except _Excluded as exc:
            counts[exc.kind] += 1
            excluded.append({"session_id": entry.name, "kind": exc.kind, "reason": exc.reason})
    groups: dict[tuple, list[dict]] = {}
    for s in sessions:
        groups.setdefault(_dedup_key(s), []).append(s)
    kept, collapsed = [], []
    for group in groups.values():
        best = max(group, key=recency)
        kept.append(best)
        collapsed += [{"session_id": s["session_id"], "kept": best["session_id"]} for s in group if s is not best]
    kept.sort(key=lambda s: s["session_id"])
    collapsed.sort(key=lambda c: c["session_id"])
    stats = {"root": str(root), "scanned": len(entries), "eligible": len(kept), "incomplete": counts["incomplete"],
             "not_forward": counts["not_forward"], "duplicates": len(collapsed), "excluded": excluded,
             "collapsed": collapsed}
    return kept, stats
