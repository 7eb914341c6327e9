"""The ``portfolio`` command: aggregate forward sessions into a buy-and-hold portfolio.

Pure functions over files (no pandas, no Snakemake); the workflow rules call the ``step_*``
functions:

    portfolio_mode (one job per mode)  -> <mode>.json       (scan + select + combine)
    publish_portfolio                  -> published.json    (writes <out_dir>/<run_id>/ atomically)

Pipeline of one mode:

1. :func:`scan_sessions` — every non-hidden sub-directory of the root with a readable
   ``session_metadata.json`` (a forward session, status success) and a non-empty, well-formed
   ``equity.parquet`` is eligible; anything else is counted and listed as excluded, never a
   crash. Identical sessions (same source run, ticker, interval, strategy and params, window,
   bars, initial cash and final equity) are collapsed to the most recently updated one.
2. :func:`select_sessions` — the filters, in this order: include_tickers, exclude_tickers,
   include_strategies, exclude_strategies, min_return, max_drawdown, latest_per_source_run,
   then rank by ``rank_metric`` (best first) and keep ``top_n``.
3. :func:`combine` — weights (equal_weight, custom_weight, inverse_vol, raw_capital) and the
   portfolio on the union calendar of the selected sessions. See docs/portfolio.md.

Normalisation: a session's normalised equity is ``equity / initial_cash``, i.e. 1.0 at the start
of its first bar (so its normalised total return is exactly its own ``total_return``). Before
its first bar a session is cash at 1.0; between its own bars and after its last bar its value is
forward-filled (flat). The portfolio holds its initial weights without rebalancing:
``V_t = C * sum_i w_i * n_i(t)`` where ``C`` is the sum of the selected sessions' initial cash.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from quantlab._lazy import np
from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, atomic_write_text, format_value, read_json
from quantlab.contract.runid import staging_name
from quantlab import metric_registry
from quantlab.errors import ConfigError, DataError, QuantLabError
from quantlab.commands.worker import warm_step

MODES = ("equal_weight", "custom_weight", "inverse_vol", "raw_capital")
SELECTION_KEYS = ("top_n", "rank_metric", "min_return", "max_drawdown", "include_tickers", "exclude_tickers",
                  "include_strategies", "exclude_strategies", "latest_per_source_run")
FILTER_ORDER = ("include_tickers", "exclude_tickers", "include_strategies", "exclude_strategies", "min_return",
                "max_drawdown", "latest_per_source_run", "top_n")
EXTRA_RANK_METRICS = ("total_pnl",)          # currency P&L of the session: (n_final - 1) * initial_cash
RANK_ALIASES = {"contribution_pct": "total_pnl"}  # the original tool's spelling
TRADE_KEYS = ("trades", "win_rate", "profit_factor", "avg_trade_return")
ZERO_RETURN = 1e-12                          # |portfolio return| below this: contributions are 0

ARTIFACTS = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
             "report": "report.json", "weights": "weights.json", "correlation": "correlation.json",
             "portfolio_equity": "portfolio_equity.parquet", "equity_plot": "equity.png",
             "run_report": "report.md"}


# ------------------------------------------------------------------------------------ helpers


def rank_metrics() -> tuple[str, ...]:
    """Metrics a selection can rank by: every key of ``compute_metrics`` plus ``total_pnl``."""
    return metric_registry.metric_names() + EXTRA_RANK_METRICS


def compare_modes(weights: Mapping | None) -> list[str]:
    """The modes ``portfolio_compare`` evaluates: equal_weight, inverse_vol, and custom_weight
    when weights were supplied."""
    return ["equal_weight", "inverse_vol"] + (["custom_weight"] if weights else [])


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


def _recency(session: dict) -> tuple[datetime, str]:
    """Sort key "most recently updated": parsed updated_at (else created_at), then session id."""
    meta = session["metadata"]
    when = parse_time(meta.get("updated_at")) or parse_time(meta.get("created_at")) or _EPOCH
    return when, session["session_id"]


def _iso_array(ts) -> list[str]:
    if len(ts) == 0:
        return []
    text = np.datetime_as_string(np.asarray(ts).astype("datetime64[s]"), unit="s")
    return [t + "Z" for t in text.tolist()]


def _iso(ts) -> str:
    return _iso_array(np.asarray([ts]))[0]


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _short_list(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ----------------------------------------------------------------------------------- scanning
class _Excluded(Exception):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _empty_tradelog():
    from quantlab.engine import TradeLog

    f, i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return TradeLog(entry_idx=i, exit_idx=i.copy(), side=np.zeros(0, dtype=np.int8), entry_price=f,
                    exit_price=f.copy(), qty=f.copy(), entry_fee=f.copy(), exit_fee=f.copy(), pnl=f.copy(),
                    ret=f.copy(), bars_held=i.copy())


def _own_returns(norm) -> Any:
    prev = np.concatenate(([1.0], norm[:-1]))
    with np.errstate(all="ignore"):
        return norm / prev - 1.0


def _ppy(tickers: Iterable[str], interval: str) -> tuple[float, bool]:
    from quantlab.data.tickers import is_crypto
    from quantlab.metrics import periods_per_year

    crypto = any(is_crypto(t) for t in tickers)
    return periods_per_year(crypto, interval), crypto


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

    cash = _float_or_none(meta.get("initial_cash"))
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
        ppy, _ = _ppy([ticker], interval)
    except ConfigError:
        raise _Excluded("incomplete", f"unknown interval {interval!r}") from None

    norm = equity / cash
    if bench is not None and np.isfinite(bench).all() and bench[0] != 0:
        norm_bench = bench / bench[0]
    elif close is not None and np.isfinite(close).all() and close[0] != 0:
        norm_bench = close / close[0]
    else:
        norm_bench = None
    own = _own_returns(norm)
    result = SimResult(equity=equity, position=position, returns=own, trades=_empty_tradelog(), open_position=0)
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
        "first_bar": _iso(ts[0]), "last_bar": _iso(ts[-1]), "bars": int(len(ts)),
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
    return [{"from": _iso(cal[i]), "to": _iso(cal[i + 1]), "days": round(int(steps[i]) / day, 2)}
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


def _nothing_found(root: Any, scan: dict) -> DataError:
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
        best = max(group, key=_recency)
        kept.append(best)
        collapsed += [{"session_id": s["session_id"], "kept": best["session_id"]} for s in group if s is not best]
    kept.sort(key=lambda s: s["session_id"])
    collapsed.sort(key=lambda c: c["session_id"])
    stats = {"root": str(root), "scanned": len(entries), "eligible": len(kept), "incomplete": counts["incomplete"],
             "not_forward": counts["not_forward"], "duplicates": len(collapsed), "excluded": excluded,
             "collapsed": collapsed}
    return kept, stats


# ---------------------------------------------------------------------------------- selection
def _names(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"selection {key} must be a list of names or a comma-separated string, got {value!r}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"selection {key} must hold names (strings), got {item!r}")
        name = item.strip()
        if name and name.upper() not in (o.upper() for o in out):
            out.append(name)
    return out or None


def _number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ConfigError(f"selection {key} must be a finite number, got {value!r}")
    return float(value)


def normalise_selection(selection: Mapping[str, Any] | None = None, **kwargs: Any) -> dict:
    """Validated selection criteria with defaults. Keys may carry the ``portfolio_`` prefix of
    the CLI/JSON params (``portfolio_top_n`` = ``top_n``). ``None`` means the default (no filter).

    Raises ``ConfigError`` (exit 2) naming the bad key: unknown keys, an unknown rank metric,
    top_n not a whole number >= 0 (0 = no limit), max_drawdown outside [-1, 0] (a drawdown is
    a fraction <= 0: -0.2 keeps sessions that never lost more than 20%), non-boolean
    latest_per_source_run.
    """
    raw = {**dict(selection or {}), **kwargs}
    given: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        name = key[len("portfolio_"):] if isinstance(key, str) and key.startswith("portfolio_") else key
        if name not in SELECTION_KEYS:
            unknown.append(str(key))
        else:
            given[name] = value
    if unknown:
        raise ConfigError(f"unknown portfolio selection key(s): {', '.join(sorted(unknown))}; "
                          f"valid: {', '.join(SELECTION_KEYS)}")
    top_n = given.get("top_n")
    if top_n is not None:
        if isinstance(top_n, bool) or not isinstance(top_n, (int, float)) or not math.isfinite(float(top_n)) \
                or float(top_n) != int(top_n) or top_n < 0:
            raise ConfigError(f"selection top_n must be a whole number >= 0 (0 = no limit), got {top_n!r}")
        top_n = int(top_n) or None
    metric = given.get("rank_metric") or "total_return"
    valid = rank_metrics()
    if not isinstance(metric, str) or RANK_ALIASES.get(metric, metric) not in valid:
        raise ConfigError(f"unknown portfolio rank metric {metric!r}; valid: {', '.join(valid)}")
    max_dd = _number(given.get("max_drawdown"), "max_drawdown")
    if max_dd is not None and not -1.0 <= max_dd <= 0.0:
        raise ConfigError(f"selection max_drawdown must be a drawdown fraction in [-1, 0] (e.g. -0.2 keeps "
                          f"sessions whose max_drawdown >= -0.2), got {max_dd!r}")
    latest = given.get("latest_per_source_run")
    if latest is None:
        latest = False
    elif isinstance(latest, bool) or (isinstance(latest, int) and latest in (0, 1)):
        latest = bool(latest)
    else:
        raise ConfigError(f"selection latest_per_source_run must be true or false, got {latest!r}")
    return {
        "top_n": top_n, "rank_metric": metric,
        "min_return": _number(given.get("min_return"), "min_return"), "max_drawdown": max_dd,
        "include_tickers": _names(given.get("include_tickers"), "include_tickers"),
        "exclude_tickers": _names(given.get("exclude_tickers"), "exclude_tickers"),
        "include_strategies": _names(given.get("include_strategies"), "include_strategies"),
        "exclude_strategies": _names(given.get("exclude_strategies"), "exclude_strategies"),
        "latest_per_source_run": latest,
    }


def _rank(sessions: list[dict], metric: str) -> list[dict]:
    """Best first (highest, or lowest for volatility_ann); undefined values last; ties by id."""
    key = RANK_ALIASES.get(metric, metric)
    sign = 1.0 if key in metric_registry.lower_is_better() else -1.0
    present = [s for s in sessions if _float_or_none(s["metrics"].get(key)) is not None]
    absent = [s for s in sessions if _float_or_none(s["metrics"].get(key)) is None]
    present.sort(key=lambda s: (sign * float(s["metrics"][key]), s["session_id"]))
    absent.sort(key=lambda s: s["session_id"])
    return present + absent


def _describe(criteria: dict) -> str:
    parts = [f"{k}={v if not isinstance(v, list) else ','.join(v)}" for k, v in criteria.items()
             if v not in (None, False) and k != "rank_metric"]
    return ", ".join(parts) or "no filter"


def select_sessions(sessions: list[dict], *, top_n: int | None = None, rank_metric: str | None = "total_return",
                    min_return: float | None = None, max_drawdown: float | None = None,
                    include_tickers: Iterable[str] | str | None = None,
                    exclude_tickers: Iterable[str] | str | None = None,
                    include_strategies: Iterable[str] | str | None = None,
                    exclude_strategies: Iterable[str] | str | None = None,
                    latest_per_source_run: bool = False,
                    root: str | os.PathLike | None = None) -> tuple[list[dict], dict]:
    """Filter and rank scanned sessions (order: ``FILTER_ORDER``); returns (selected best first,
    stats). Tickers and strategies match case-insensitively; an empty list means no filter.
    ``min_return``: keep total_return >= x. ``max_drawdown``: keep max_drawdown >= x (x <= 0).
    ``latest_per_source_run``: per source_run_id keep the session with the latest parsed
    updated_at (created_at as fallback; sessions without a source run id are kept).
    ``top_n``: after ranking by ``rank_metric`` (undefined values rank last), keep the first n.

    Raises ``ConfigError`` for bad criteria, ``DataError`` when nothing is left (``root`` only
    names the directory in that message).
    """
    criteria = normalise_selection(
        top_n=top_n, rank_metric=rank_metric, min_return=min_return, max_drawdown=max_drawdown,
        include_tickers=include_tickers, exclude_tickers=exclude_tickers, include_strategies=include_strategies,
        exclude_strategies=exclude_strategies, latest_per_source_run=latest_per_source_run)
    if root is None and sessions:
        root = str(Path(sessions[0]["path"]).parent)
    where = f" under {root}" if root is not None else ""
    if not sessions:
        raise DataError(f"no complete forward session{where} (nothing to build a portfolio from)")
    current = list(sessions)
    counts: dict[str, int] = {"input": len(current)}
    excluded: dict[str, str] = {}

    def apply(stage: str, keep) -> None:
        nonlocal current
        kept = []
        for s in current:
            if keep(s):
                kept.append(s)
            else:
                excluded[s["session_id"]] = stage
        current = kept
        counts[f"after_{stage}"] = len(current)

    def upper(values):
        return {v.upper() for v in values}

    c = criteria
    apply("include_tickers",
          lambda s: c["include_tickers"] is None or s["ticker"].upper() in upper(c["include_tickers"]))
    apply("exclude_tickers",
          lambda s: c["exclude_tickers"] is None or s["ticker"].upper() not in upper(c["exclude_tickers"]))
    apply("include_strategies",
          lambda s: c["include_strategies"] is None or s["strategy"].upper() in upper(c["include_strategies"]))
    apply("exclude_strategies",
          lambda s: c["exclude_strategies"] is None or s["strategy"].upper() not in upper(c["exclude_strategies"]))

    def at_least(key, threshold):
        def keep(s):
            if threshold is None:
                return True
            value = _float_or_none(s["metrics"].get(key))
            return value is not None and value >= threshold
        return keep

    apply("min_return", at_least("total_return", c["min_return"]))
    apply("max_drawdown", at_least("max_drawdown", c["max_drawdown"]))
    latest_ids = None
    if c["latest_per_source_run"]:
        best: dict[str, dict] = {}
        for s in current:
            src = s["source_run_id"]
            if src is None:
                continue
            if src not in best or _recency(s) > _recency(best[src]):
                best[src] = s
        latest_ids = {s["session_id"] for s in best.values()}
    apply("latest_per_source_run",
          lambda s: latest_ids is None or s["source_run_id"] is None or s["session_id"] in latest_ids)
    ranked = _rank(current, c["rank_metric"])
    for s in ranked[c["top_n"]:] if c["top_n"] else []:
        excluded[s["session_id"]] = "top_n"
    current = ranked[: c["top_n"]] if c["top_n"] else ranked
    counts["after_top_n"] = len(current)
    stats = {"order": list(FILTER_ORDER), "criteria": criteria, "counts": counts, "selected": len(current),
             "selected_ids": [s["session_id"] for s in current], "excluded": excluded}
    if not current:
        raise DataError(f"no forward session{where} matches the selection ({_describe(criteria)}; "
                        f"{len(sessions)} eligible)")
    return current, stats


# ------------------------------------------------------------------------------------ weights
def load_weights(path: str | os.PathLike) -> dict[str, float]:
    """Read a custom weights file ``{session_id: weight}`` (values are checked by :func:`combine`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"portfolio weights file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"portfolio weights file {path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"portfolio weights file {path} must be a non-empty JSON object {{session_id: weight}}")
    return data


def _custom_weights(ids: list[str], weights: Any) -> tuple[Any, dict, list[str]]:
    if weights is None:
        raise ConfigError("portfolio mode custom_weight needs weights: {session_id: weight}")
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError("portfolio weights must be a non-empty object {session_id: weight}")
    unknown = sorted(str(k) for k in weights if str(k) not in ids)
    if unknown:
        raise ConfigError(f"portfolio weights name sessions that are not selected: {_short_list(unknown)} "
                          f"(selected: {_short_list(ids)})")
    raw: dict[str, float] = {}
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
                or value < 0:
            raise ConfigError(f"portfolio weight of session {key} must be a finite number >= 0, got {value!r}")
        raw[str(key)] = float(value)
    total = math.fsum(raw.values())
    if not total > 0:
        raise ConfigError("portfolio weights sum to 0: at least one selected session needs a positive weight")
    w = np.array([raw.get(i, 0.0) / total for i in ids])
    missing = [i for i in ids if i not in raw]
    normalised = abs(total - 1.0) > 1e-12
    warnings = []
    if normalised:
        warnings.append(f"custom weights sum to {total:.10g}: normalised to sum 1")
    if missing:
        warnings.append(f"selected sessions absent from the weights get weight 0: {_short_list(missing)}")
    info = {"input": raw, "input_sum": total, "normalised": normalised, "zero_weight_sessions": missing}
    return w, info, warnings


def _inverse_vol_weights(selected: list[dict]) -> tuple[Any, dict, list[str]]:
    vols: dict[str, float | None] = {}
    zero: list[str] = []
    inv = np.zeros(len(selected))
    for k, s in enumerate(selected):
        r = s["returns"]
        std = float(np.std(r, ddof=1)) if len(r) >= 2 else float("nan")
        mean = float(np.mean(r))
        if not math.isfinite(std) or std == 0.0 or std <= 1e-12 * abs(mean):
            vols[s["session_id"]] = None if not math.isfinite(std) else 0.0
            zero.append(s["session_id"])
        else:
            vols[s["session_id"]] = std
            inv[k] = 1.0 / std
    warnings = []
    fallback = None
    if inv.sum() > 0:
        w = inv / inv.sum()
        if zero:
            warnings.append(f"inverse_vol: zero-volatility sessions get weight 0: {_short_list(zero)}")
    else:
        w = np.full(len(selected), 1.0 / len(selected))
        fallback = "equal_weight"
        warnings.append("inverse_vol: every selected session has zero volatility; equal weights used")
    info = {"volatility": vols, "volatility_basis": "sample std (ddof=1) of the session's own per-bar returns",
            "zero_volatility_sessions": zero, "fallback": fallback}
    return w, info, warnings


def _weights(mode: str, selected: list[dict], weights: Any) -> tuple[Any, dict, list[str]]:
    ids = [s["session_id"] for s in selected]
    n = len(ids)
    info: dict[str, Any] = {"mode": mode}
    warnings: list[str] = []
    if mode == "equal_weight":
        w = np.full(n, 1.0 / n)
    elif mode == "raw_capital":
        cash = np.array([s["initial_cash"] for s in selected])
        w = cash / cash.sum()
    elif mode == "custom_weight":
        w, extra, warnings = _custom_weights(ids, weights)
        info.update(extra)
    else:
        w, extra, warnings = _inverse_vol_weights(selected)
        info.update(extra)
    info["weights"] = {i: float(x) for i, x in zip(ids, w)}
    return w, info, warnings


# ------------------------------------------------------------------------------------ combine
def _correlation(ids: list[str], rets, live) -> dict:
    n = len(ids)
    matrix: list[list[float | None]] = [[None] * n for _ in range(n)]
    overlap = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            mask = live[i] & live[j]
            m = int(mask.sum())
            overlap[i][j] = overlap[j][i] = m
            value = None
            if m >= 2:
                x = rets[i][mask]
                y = rets[j][mask]
                dx, dy = x - x.mean(), y - y.mean()
                sx, sy = math.sqrt(float(dx @ dx)), math.sqrt(float(dy @ dy))
                tiny_x = sx == 0.0 or sx <= 1e-12 * abs(float(x.mean())) * math.sqrt(m)
                tiny_y = sy == 0.0 or sy <= 1e-12 * abs(float(y.mean())) * math.sqrt(m)
                if not (tiny_x or tiny_y):
                    value = 1.0 if i == j else max(-1.0, min(1.0, float(dx @ dy) / (sx * sy)))
            matrix[i][j] = matrix[j][i] = value
    return {"session_ids": ids, "matrix": matrix, "overlap_bars": overlap,
            "method": "Pearson correlation of per-bar returns on the common calendar, pairwise over the bars "
                      "where both sessions are live (first..last bar); null when fewer than 2 shared bars "
                      "or a constant series"}


def combine(selected: list[dict], mode: str, weights: Mapping[str, float] | None = None) -> dict:
    """Combine the selected sessions into one portfolio (see the module doc and docs/portfolio.md).

    ``weights`` is used by ``custom_weight`` only: ``{session_id: weight}``, every key a selected
    session, every value finite and >= 0, sum > 0; normalised to sum 1 (the result says so),
    selected sessions absent from it get 0. ``inverse_vol``: w ∝ 1/std of the session's own
    per-bar returns; zero-volatility sessions get 0 (all zero: equal weights). ``raw_capital``:
    w ∝ initial_cash. Returns a JSON-ready dict (``series`` holds numpy arrays).
    Raises ``ConfigError`` (mode, weights) or ``DataError`` (no session, mixed intervals).
    """
    from quantlab.engine import SimResult
    from quantlab.metrics import compute_metrics

    if mode not in MODES:
        raise ConfigError(f"unknown portfolio mode {mode!r}; valid: {', '.join(MODES)}")
    if not selected:
        raise DataError("no forward session to combine")
    ids = [s["session_id"] for s in selected]
    if len(set(ids)) != len(ids):
        raise ConfigError("the same session is selected twice")
    intervals = sorted({s["interval"] for s in selected})
    if len(intervals) > 1:
        raise DataError(f"the selected sessions mix bar intervals ({', '.join(intervals)}): one portfolio needs "
                        "one bar interval; narrow the selection")
    interval = intervals[0]
    w, winfo, warnings = _weights(mode, selected, weights)

    cal = np.unique(np.concatenate([s["timestamps"] for s in selected]))
    gaps = calendar_gaps(cal)
    if gaps:
        holes = ", ".join(f"{g['from']} -> {g['to']} ({g['days']:g} days)" for g in gaps[:5])
        warnings.append(f"calendar gap{'s' if len(gaps) > 1 else ''}: no selected session has bars {holes}"
                        f"{' ...' if len(gaps) > 5 else ''}; the portfolio is held flat through "
                        f"{'them' if len(gaps) > 1 else 'it'}, and CAGR, volatility and Sharpe count bars, "
                        "not calendar time (see calendar.gaps)")
    multi = [f"{s['session_id']} ({s['candidates']} candidates, uses {s['candidate_used']})"
             for s in selected if s.get("candidates", 1) > 1]
    if multi:
        warnings.append("sessions with several candidates enter with their first candidate only: "
                        + _short_list(multi))
    warnings += [f"leg {s['session_id']}: {w}" for s in selected for w in s.get("leg_warnings", [])]
    n, t = len(selected), len(cal)
    norm = np.empty((n, t))
    bench = np.empty((n, t))
    live = np.zeros((n, t), dtype=bool)
    pos = np.zeros((n, t), dtype=np.int8)
    has_bench = True
    for k, s in enumerate(selected):
        idx = np.searchsorted(s["timestamps"], cal, side="right") - 1
        before = idx < 0
        j = np.maximum(idx, 0)
        norm[k] = np.where(before, 1.0, s["norm_equity"][j])
        live[k] = ~before & (cal <= s["timestamps"][-1])
        pos[k] = np.where(live[k], s["position"][j], 0)
        if s["norm_benchmark"] is None:
            has_bench = has_bench and w[k] == 0
            bench[k] = norm[k]
        else:
            bench[k] = np.where(before, 1.0, s["norm_benchmark"][j])
    start_value = math.fsum(s["initial_cash"] for s in selected)
    port_norm = w @ norm
    equity = start_value * port_norm
    returns = _own_returns(port_norm)
    exposure = (live & (pos != 0) & (w[:, None] > 0)).any(axis=0).astype(np.int8)
    bench_value = start_value * (w @ bench)
    ppy, crypto = _ppy([s["ticker"] for s in selected], interval)
    result = SimResult(equity=equity, position=exposure, returns=returns, trades=_empty_tradelog(), open_position=0)
    metrics = compute_metrics(result, bench_value, start=0, periods_per_year=ppy, initial_cash=start_value)
    if not has_bench:
        metrics["benchmark_return"] = None
    peak = np.maximum.accumulate(np.maximum(equity, start_value))
    drawdown = np.where(peak > 0, equity / peak - 1.0, 0.0)

    final = norm[:, -1]
    port_return = float(port_norm[-1]) - 1.0
    if abs(port_return) > ZERO_RETURN:
        contrib = w * (final - 1.0) / port_return
    else:
        contrib = np.zeros(n)
    pnl = start_value * w * (final - 1.0)
    cal_returns = np.vstack([_own_returns(norm[k]) for k in range(n)])
    rows = []
    for k, s in enumerate(selected):
        m = s["metrics"]
        rows.append({
            "session_id": s["session_id"], "ticker": s["ticker"], "interval": s["interval"],
            "strategy": s["strategy"], "strategy_params": s["strategy_params"],
            "source_run_id": s["source_run_id"], "forward_start": s["forward_start"],
            "forward_end": s["forward_end"], "created_at": s["created_at"], "updated_at": s["updated_at"],
            "first_bar": s["first_bar"], "last_bar": s["last_bar"], "bars": s["bars"],
            "initial_cash": s["initial_cash"], "ending_equity": s["initial_cash"] * float(s["norm_equity"][-1]),
            "total_return": m.get("total_return"), "max_drawdown": m.get("max_drawdown"),
            "sharpe_simple": m.get("sharpe_simple"), "trades": m.get("trades"), "win_rate": m.get("win_rate"),
            "total_pnl": m.get("total_pnl"), "weight": float(w[k]), "contribution": float(contrib[k]),
            "pnl_contribution": float(pnl[k]), "path": s["path"],
            "candidates": s.get("candidates", 1), "candidate_used": s.get("candidate_used"),
        })
    plot_idx = np.unique(np.linspace(0, t - 1, min(t, 1500)).round().astype(np.int64))
    summary = {k: metrics.get(k) for k in metric_registry.summary_names()}
    summary["trades"] = int(summary["trades"] or 0)
    return {
        "mode": mode, "n_sessions": n, "session_ids": ids,
        "weights": winfo, "summary": summary, "metrics": metrics,
        "portfolio": {"start_value": start_value, "end_value": float(equity[-1]), "total_pnl": float(equity[-1])
                      - start_value, "total_return": port_return, "rebalancing": "none (buy and hold of the "
                      "initial weights)", "calendar": "union of the selected sessions' bars"},
        "contributions": {i: float(c) for i, c in zip(ids, contrib)},
        "sessions": rows,
        "correlation": _correlation(ids, cal_returns, live),
        "calendar": {"bars": t, "first_bar": _iso(cal[0]), "last_bar": _iso(cal[-1]), "interval": interval,
                     "periods_per_year": ppy, "crypto": crypto, "gaps": gaps},
        "series": {"timestamps": _iso_array(cal), "equity": equity, "normalised": port_norm, "returns": returns,
                   "drawdown": drawdown, "benchmark_equity": bench_value, "exposure": exposure},
        "plot": {"index": plot_idx, "sessions": {i: norm[k][plot_idx] for k, i in enumerate(ids)}},
        "warnings": warnings,
    }


# -------------------------------------------------------------------------------------- steps
def run_mode(spec: Mapping[str, Any]) -> dict:
    """scan + select + combine for one mode spec (what :func:`step_portfolio_mode` writes)."""
    root = spec.get("root")
    if not root:
        raise ConfigError("portfolio needs the root directory of the forward sessions")
    mode = spec.get("mode")
    if mode not in MODES:
        raise ConfigError(f"unknown portfolio mode {mode!r}; valid: {', '.join(MODES)}")
    criteria = normalise_selection(spec.get("selection") or {})
    weights = spec.get("weights")
    if isinstance(weights, (str, os.PathLike)):
        weights = load_weights(weights)
    sessions, scan = scan_sessions(root)
    if not sessions:
        raise _nothing_found(root, scan)
    selected, selection = select_sessions(sessions, root=root, **criteria)
    result = combine(selected, mode, weights if mode == "custom_weight" else None)
    return {"kind": "quantlab.portfolio.mode", "root": str(root), "scan": scan, "selection": selection, **result}


@warm_step
def step_portfolio_mode(spec: dict, out_json: str) -> None:
    """Scan + select + combine one mode; write its result JSON atomically (strict JSON).

    ``spec`` = ``{"root", "mode", "weights": {session_id: weight} | path | None,
    "selection": {top_n, rank_metric, min_return, max_drawdown, include_tickers, exclude_tickers,
    include_strategies, exclude_strategies, latest_per_source_run}}``.
    """
    atomic_write_json(out_json, run_mode(spec))


def _ts_array(iso: list[str]):
    return np.array([t[:-1] if t.endswith("Z") else t for t in iso], dtype="datetime64[s]").astype("datetime64[ns]")


def _report_md(record: dict, results: list[dict], display_mode: str, warnings: list[str]) -> str:
    first = results[0]
    scan, sel = first["scan"], first["selection"]
    cal = first["calendar"]
    lines = [f"# Portfolio {record['run_id']} ({display_mode})", "",
             f"- root: {first['root']}",
             f"- sessions: {scan['scanned']} scanned, {scan['eligible']} eligible ({scan['incomplete']} incomplete, "
             f"{scan['not_forward']} not forward, {scan['duplicates']} duplicates collapsed), "
             f"{sel['selected']} selected",
             f"- selection: {_describe(sel['criteria'])}; ranked by {sel['criteria']['rank_metric']}",
             f"- calendar: {cal['bars']} bars ({cal['interval']}), {cal['first_bar']} .. {cal['last_bar']}, "
             f"{cal['periods_per_year']:g} periods/year",
             f"- portfolio: buy and hold of the initial weights (no rebalancing), start value "
             f"{first['portfolio']['start_value']:,.2f} (sum of the sessions' initial cash)",
             f"- created_at: {record['created_at']}", "", "## Metrics", "",
             "| metric | " + " | ".join(r["mode"] for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for key in first["metrics"]:
        lines.append(f"| {key} | " + " | ".join(format_value(r["metrics"].get(key)) for r in results) + " |")
    lines += ["", "## Sessions", "",
              "| session | ticker | strategy | first bar | last bar | total_return | max_drawdown | "
              + " | ".join(f"w {r['mode']}" for r in results) + " | "
              + " | ".join(f"contrib {r['mode']}" for r in results) + " |",
              "|---|---|---|---|---|---|---|" + "---|" * (2 * len(results))]
    for k, row in enumerate(first["sessions"]):
        sid = row["session_id"]
        lines.append(f"| {sid} | {row['ticker']} | {row['strategy']} | {row['first_bar']} | {row['last_bar']} | "
                     f"{format_value(row['total_return'])} | {format_value(row['max_drawdown'])} | "
                     + " | ".join(format_value(r["weights"]["weights"].get(sid)) for r in results) + " | "
                     + " | ".join(format_value(r["contributions"].get(sid)) for r in results) + " |")
    corr = first["correlation"]
    ids = corr["session_ids"]
    lines += ["", "## Correlation of per-bar returns", "", "| | " + " | ".join(ids) + " |",
              "|---|" + "---|" * len(ids)]
    for i, sid in enumerate(ids):
        lines.append(f"| {sid} | " + " | ".join(format_value(v) for v in corr["matrix"][i]) + " |")
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    lines += ["", "## Files", "", ", ".join(ARTIFACTS.values()), ""]
    return "\n".join(lines)


@warm_step
def step_publish_portfolio(record: dict, mode_jsons: list[str], marker_out: str) -> dict:
    """Write ``<out_dir>/<run_id>/`` through ``<out_dir>/.tmp_<run_id>`` renamed into place.

    ``record`` = ``{"run_id", "created_at", "request_id", "out_dir", "root", "modes", "compare",
    "warnings"}``; ``mode_jsons`` are the :func:`step_portfolio_mode` outputs in ``modes`` order
    (the first mode gives the summary). Writes the marker ``{run_id, mode, artifacts_path,
    report_path, summary}`` and returns it.
    """
    from quantlab.artifacts.portfolio_plot import portfolio_png
    from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
    from quantlab.columnar import parquet_bytes, table_from_numpy

    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    modes = list(record["modes"])
    results = [read_json(p) for p in mode_jsons]
    if not results or len(results) != len(modes):
        raise QuantLabError(f"portfolio publish got {len(results)} mode results for modes {modes}")
    for mode, res in zip(modes, results):
        if res.get("mode") != mode:
            raise QuantLabError(f"portfolio publish: result {res.get('mode')!r} given for mode {mode!r}")
    staging.mkdir(parents=True, exist_ok=True)
    first = results[0]
    compare = bool(record.get("compare"))
    display_mode = "compare" if compare else modes[0]
    summary = first["summary"]
    warnings: list[str] = list(record.get("warnings") or [])
    for res in results:
        for w in res.get("warnings") or []:
            text = f"{res['mode']}: {w}" if compare and not w.startswith(res["mode"]) else w
            if text not in warnings:
                warnings.append(text)
    side_by_side = {r["mode"]: {"summary": r["summary"], "metrics": r["metrics"],
                                "weights": r["weights"]["weights"], "contributions": r["contributions"],
                                "portfolio": r["portfolio"]} for r in results}

    # weights.json, correlation.json
    atomic_write_json(staging / "weights.json", {
        "mode": display_mode, "session_ids": first["session_ids"],
        "modes": {r["mode"]: r["weights"] for r in results}}, sort_keys=True)
    atomic_write_json(staging / "correlation.json", {**first["correlation"], "calendar": first["calendar"]})

    # portfolio_equity.parquet
    series = first["series"]
    cols: dict[str, Any] = {
        "timestamp": _ts_array(series["timestamps"]),
        "equity": np.asarray(series["equity"], dtype=np.float64),
        "normalised_equity": np.asarray(series["normalised"], dtype=np.float64),
        "returns": np.asarray(series["returns"], dtype=np.float64),
        "drawdown": np.asarray(series["drawdown"], dtype=np.float64),
        "benchmark_equity": np.asarray(series["benchmark_equity"], dtype=np.float64),
        "exposure": np.asarray(series["exposure"], dtype=np.int8),
    }
    if compare:
        for r in results:
            cols[f"equity_{r['mode']}"] = np.asarray(r["series"]["equity"], dtype=np.float64)
    table_meta = {"mode": display_mode, "modes": json.dumps(modes),
                  "start_value": repr(first["portfolio"]["start_value"])}
    atomic_write_bytes(staging / "portfolio_equity.parquet", parquet_bytes(table_from_numpy(cols, table_meta)))

    # equity.png
    idx = np.asarray(first["plot"]["index"], dtype=np.int64)
    portfolios = {r["mode"]: np.asarray(r["series"]["normalised"], dtype=np.float64)[idx] for r in results}
    sessions_plot = {sid: np.asarray(v, dtype=np.float64) for sid, v in first["plot"]["sessions"].items()}
    ts = series["timestamps"]
    title = f"Portfolio {run_id} ({display_mode}, {first['n_sessions']} sessions)"
    atomic_write_bytes(staging / "equity.png", portfolio_png(
        [ts[0], ts[-1]], portfolios, sessions_plot, title,
        drawdown=np.asarray(series["drawdown"], dtype=np.float64)[idx]))

    # config / metrics / metadata
    custom = next((r for r in results if r["mode"] == "custom_weight"), None)
    config = {"root": first["root"], "modes": modes, "compare": compare,
              "weights": custom["weights"]["input"] if custom else None,
              "selection": first["selection"]["criteria"]}
    atomic_write_json(staging / "config.json", config, sort_keys=True)
    scan_counts = {k: first["scan"][k] for k in ("scanned", "eligible", "incomplete", "not_forward", "duplicates")}
    metrics = {"command": "portfolio", "mode": display_mode, "status": "success", "summary": summary,
               "metrics": first["metrics"], "modes": side_by_side, "sessions": first["sessions"],
               "calendar": first["calendar"], "scan": scan_counts, "selection": first["selection"]["counts"]}
    atomic_write_json(staging / "metrics.json", metrics, sort_keys=True)
    info = runtime_info()
    metadata = {"run_id": run_id, "command": "portfolio", "mode": display_mode, "modes": modes, "status": "success",
                "created_at": record["created_at"], "request_id": record.get("request_id"),
                "root": first["root"], "config_hash": canonical_hash(config, algo="sha1"), "summary": summary,
                "n_sessions": first["n_sessions"], "session_ids": first["session_ids"], "scan": first["scan"],
                "selection": first["selection"], "calendar": first["calendar"],
                "code_fingerprint": code_fingerprint(), "warnings": warnings, **info}
    atomic_write_json(staging / "metadata.json", metadata, sort_keys=True)
    atomic_write_text(staging / "report.md", _report_md(record, results, display_mode, warnings))

    # report.json (last: it lists the other files)
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract, report_document

    mc = machine_contract("portfolio", "portfolio", record.get("request_id"), run_id=run_id, mode=display_mode,
                          summary=summary, modes=modes, n_sessions=first["n_sessions"],
                          session_ids=first["session_ids"], artifacts=dict(ARTIFACTS), warnings=warnings)
    report = report_document(
        artifact_type="quantlab_portfolio_report", mc=mc, summary=summary,
        header={"run_id": run_id, "mode": display_mode, "created_at": record["created_at"],
                "git_commit": info["git_commit"], "python_version": info["python_version"],
                "config_hash": metadata["config_hash"], "request_id": record.get("request_id")},
        sections={"config_resolved": config, "scan": first["scan"], "selection": first["selection"],
                  "calendar": first["calendar"], "sessions": first["sessions"],
                  "portfolio": {"mode": modes[0], "summary": summary, "metrics": first["metrics"],
                                **first["portfolio"]},
                  "modes": side_by_side, "correlation": first["correlation"]},
        artifacts=artifact_listing(staging))
    atomic_write_json(staging / "report.json", report)
    from quantlab.commands.common import publish_staging

    return publish_staging(staging, final, marker_out, {
        "run_id": run_id, "mode": display_mode, "artifacts_path": str(final),
        "report_path": str(final / "report.json"), "summary": summary, "warnings": warnings})


def __getattr__(name: str):  # the registry's current lists under their old names
    from quantlab import metric_registry as mr

    lists = {"SUMMARY_KEYS": mr.summary_names, "LOWER_IS_BETTER": mr.lower_is_better}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
