"""The runs registry: list, show, rank and compare run directories, read-only.

A run directory is any non-hidden child of a root that holds ``metadata.json`` or
``report.json`` (or the original tool's ``meta.json`` / ``run_report.json``), exactly as the
runs index sees it: rows come from :func:`quantlab.artifacts.runs_index.index_row`, so the
registry and ``runs_index.*`` never disagree.

Broken files never crash a listing: every JSON file of a run directory that exists but cannot
be read, is not strict JSON (``NaN``/``Infinity``) or is not a JSON object is named in the
row's ``problems`` list (without echoing its contents). Errors the caller can fix raise
:class:`~quantlab.errors.ConfigError` (exit 2); "no run has this metric" raises
:class:`~quantlab.errors.DataError` (exit 3).
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantlab.artifacts.io import json_safe
from quantlab.artifacts.runs_index import MARKERS, index_row, scan
from quantlab.errors import ConfigError, DataError
from quantlab.metric_registry import headline_first, integer_names, lower_is_better, metric_names, summary_names

# Every JSON file a run directory may hold (current names first, then the legacy ones).
RUN_JSON_FILES = ("metadata.json", "config.json", "metrics.json", "report.json", "meta.json", "run_report.json")
# The metrics of spec section 5, in display order; they are what --metric accepts.
# Metrics only the original tool wrote (legacy run directories); accepted and shown when present.
LEGACY_METRICS = ("win_rate_trades", "trade_trades", "expectancy_net", "avg_holding_days", "days")
# Legacy spellings of the standard metrics (the original's "standard summary" aliases).
ALIASES = {"sharpe": "sharpe_simple", "sharpe_ratio": "sharpe_simple", "max_dd": "max_drawdown",
           "total_pnl_pct": "total_return", "n_trades": "trades", "total_trades": "trades"}
LEGACY_INT_METRICS = ("trade_trades", "days")
# The five KPIs of every summary (and of every runs-index row).


def metrics() -> tuple[str, ...]:
    """The metrics of the registry, headline first (display order); what --metric accepts."""
    return headline_first(metric_names())


def valid_metrics() -> tuple[str, ...]:
    return metrics() + LEGACY_METRICS


def kpis() -> tuple[str, ...]:
    """The summary metrics of every summary and runs-index row, headline first."""
    return headline_first(summary_names())


# ------------------------------------------------------------------------------ shared helpers
def read_json_checked(path: Path) -> tuple[Any, str | None]:
    """``(data, problem)``: ``(None, None)`` when the file is absent; a problem string (file name
    and reason, never the file's contents) when it exists but is unreadable or not strict JSON.
    Non-strict JSON (NaN/Infinity) is still returned, leniently parsed, with its problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, f"{path.name}: is a directory"
    except OSError as exc:
        return None, f"{path.name}: unreadable ({type(exc).__name__})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{path.name}: not UTF-8 text"

    def _reject(token: str):
        raise ValueError(token)

    try:
        return json.loads(text, parse_constant=_reject), None
    except json.JSONDecodeError as exc:
        return None, f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except ValueError as exc:
        try:
            data = json.loads(text)
        except ValueError:
            return None, f"{path.name}: invalid JSON"
        return data, f"{path.name}: non-strict JSON ({exc} is not valid JSON)"
    except RecursionError:
        return None, f"{path.name}: invalid JSON (nested too deeply)"


def read_object(path: Path, problems: list[str]) -> dict:
    """A JSON object file, or ``{}``; problems (including "not a JSON object") are appended."""
    data, problem = read_json_checked(path)
    if problem:
        problems.append(problem)
    if data is None:
        return {}
    if not isinstance(data, dict):
        if not problem:
            problems.append(f"{Path(path).name}: not a JSON object")
        return {}
    return data


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string (``Z``, an offset, or naive = UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def format_time(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_metric(metric: str) -> str:
    if metric not in valid_metrics():
        raise ConfigError(f"unknown metric {metric!r}; valid metrics: {', '.join(valid_metrics())}")
    return metric


def ranks_ascending(metric: str, ascending: bool | None) -> bool:
    """``ascending`` as asked, or (None) the metric's own direction: lowest first for the
    registry's lower-is-better metrics (e.g. ``volatility``), highest first otherwise."""
    return metric in lower_is_better() if ascending is None else bool(ascending)


# ------------------------------------------------------------------------------ one run
def is_run_dir(path: Path) -> bool:
    return any((Path(path) / m).is_file() for m in MARKERS)


def run_problems(run_dir: Path) -> list[str]:
    problems: list[str] = []
    for name in RUN_JSON_FILES:
        path = run_dir / name
        if path.exists():
            read_object(path, problems)
    return problems


def _with_problems(row: dict, run_dir: Path) -> dict:
    """The index row plus ``problems``; a KPI the row lacks (legacy dirs without a summary block)
    is filled from the run's other metric blocks, so list, show, best and compare agree."""
    row = dict(row)
    if any(row.get(k) is None for k in kpis()):
        metrics = run_metrics(run_dir, row)
        for key in kpis():
            if row.get(key) is None and metrics.get(key) is not None:
                row[key] = metrics[key]
    row["problems"] = run_problems(run_dir)
    return row


def require_run_dir(path: str | os.PathLike) -> Path:
    run_dir = Path(os.path.abspath(path))
    if not run_dir.exists():
        raise ConfigError(f"run directory not found: {run_dir}")
    if not run_dir.is_dir():
        raise ConfigError(f"not a directory: {run_dir}")
    if not is_run_dir(run_dir):
        raise ConfigError(f"not a run directory (no {' / '.join(MARKERS)}): {run_dir}")
    return run_dir


def _metric_sources(run_dir: Path, row: dict) -> list[dict]:
    """Candidate metric blocks, most authoritative first."""
    ignore: list[str] = []
    metrics_file = read_object(run_dir / "metrics.json", ignore)
    report = read_object(run_dir / "report.json", ignore) or read_object(run_dir / "run_report.json", ignore)
    meta = read_object(run_dir / "metadata.json", ignore) or read_object(run_dir / "meta.json", ignore)
    sources: list[dict] = [{k: row.get(k) for k in kpis()}]
    sources.append(metrics_file.get("metrics"))
    sources.append(metrics_file.get("best_result"))
    for key in ("results", "oos_leaderboard"):
        block = report.get(key)
        if isinstance(block, list) and block and isinstance(block[0], dict):
            sources.append(block[0])
    sources.append(metrics_file.get("summary"))
    sources.append(report.get("kpi_summary"))
    sources.append(meta.get("summary"))
    top10 = meta.get("top10")
    if isinstance(top10, list) and top10 and isinstance(top10[0], dict):
        sources.append(top10[0])
    return [s for s in sources if isinstance(s, dict)]


def run_metrics(run_dir: Path, row: dict | None = None) -> dict[str, float | int]:
    """Every known metric of a run that has a finite numeric value (legacy aliases resolved).
    The five summary KPIs always agree with the runs-index row."""
    row = row if row is not None else (index_row(run_dir) or {})
    valid, ints = valid_metrics(), integer_names() + LEGACY_INT_METRICS
    out: dict[str, float | int] = {}
    for source in _metric_sources(run_dir, row):
        for key, value in source.items():
            name = ALIASES.get(key, key)
            if name not in valid or name in out:
                continue
            num = _number(value)
            if num is None:
                continue
            if name in ints and float(num).is_integer():
                num = int(num)
            out[name] = num
    return {k: out[k] for k in valid if k in out}


def show_run(path: str | os.PathLike) -> dict:
    """The run's summary: its index row, metrics, config, metadata and file list."""
    run_dir = require_run_dir(path)
    row = _with_problems(index_row(run_dir) or {}, run_dir)
    problems = row.pop("problems")
    ignore: list[str] = []
    report = read_object(run_dir / "report.json", ignore) or read_object(run_dir / "run_report.json", ignore)
    config = read_object(run_dir / "config.json", ignore)
    if not config and isinstance(report.get("config_resolved"), dict):
        config = report["config_resolved"]
    metadata = read_object(run_dir / "metadata.json", ignore) or read_object(run_dir / "meta.json", ignore)
    metadata = {k: v for k, v in metadata.items() if k not in ("summary", "top10")}
    try:
        files = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    except OSError:
        files = []
    return json_safe({
        "run": {**row, "problems": problems},
        "metrics": run_metrics(run_dir, row),
        "config": config,
        "metadata": metadata,
        "files": files,
        "problems": problems,
    })


# ------------------------------------------------------------------------------ a root of runs
def _check_root(root: str | os.PathLike) -> Path:
    root = Path(os.path.abspath(root))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"not a directory: {root}")
    return root


def _newest_first_key(row: dict) -> tuple:
    from quantlab.contract.runid import recency_key

    return recency_key(parse_time(row.get("created_at")), row.get("run_id", ""))


def listing_and_metrics(row: dict, run_dir: Path) -> tuple[dict, dict]:
    """A run's listing row (index row + filled KPIs + ``problems``) and its metrics: what the
    runs catalog stores for it."""
    listing = _with_problems(row, run_dir)
    return json_safe(listing), json_safe(run_metrics(run_dir, listing))


def _catalog(root: Path, sync: bool = True):
    """The runs catalog of ``root`` (None: no runs there, or a read-only root: scan instead)."""
    if not root.is_dir():
        return None
    from quantlab.artifacts.catalog_sync import open_for_read

    return open_for_read(root, sync)


def _scanned(root: Path) -> list[tuple[dict, dict]]:
    return [listing_and_metrics(row, Path(row["path"])) for row in scan(root)]


def list_runs(root: str | os.PathLike) -> list[dict]:
    """Index rows (+ ``problems``) of every run under ``root``, newest first, from the runs
    catalog. A root that does not exist has no runs; a root that is a file is an error."""
    root = _check_root(root)
    cat = _catalog(root)
    if cat is None:
        rows = [listing for listing, _ in _scanned(root)]
    else:
        try:
            rows = cat.listings()
        finally:
            cat.close()
    rows.sort(key=_newest_first_key, reverse=True)
    return rows


def _rank_key(metric: str, ascending: bool):
    def key(item: dict) -> tuple:
        value = item["metrics"].get(metric)
        if value is None:
            return (1, 0.0, item["run"]["run_id"])
        return (0, value if ascending else -value, item["run"]["run_id"])
    return key


def _ask(cat, metric: str, ascending: bool) -> tuple[int, int, tuple[dict, dict] | None]:
    try:
        return cat.n_runs(), cat.count_with(metric), cat.best(metric, ascending)
    finally:
        cat.close()


def best_run(root: str | os.PathLike, metric: str = "sharpe_simple", ascending: bool | None = None) -> dict:
    """The run with the best ``metric`` among runs where it is not null: the highest, or the
    lowest with ``ascending`` (None: the metric's registered direction, see :func:`ranks_ascending`);
    ties go to the smaller run id. Raises DataError when no run has the metric. Two index
    look-ups in the runs catalog, whatever the number of runs."""
    check_metric(metric)
    ascending = ranks_ascending(metric, ascending)
    root_path = _check_root(root)
    cat = _catalog(root_path, sync=False)
    if cat is None:
        items = [{"run": listing, "metrics": metrics} for listing, metrics in _scanned(root_path)]
        scanned = len(items)
        items = [item for item in items if item["metrics"].get(metric) is not None]
        with_metric = len(items)
        items.sort(key=_rank_key(metric, ascending))
        best = (items[0]["run"], items[0]["metrics"]) if items else None
    else:
        scanned, with_metric, best = _ask(cat, metric, ascending)
        if best is not None and not os.path.isdir(best[0]["path"]):  # deleted by hand: catch up, ask again
            cat = _catalog(root_path, sync=True)
            if cat is not None:
                scanned, with_metric, best = _ask(cat, metric, ascending)
    if best is None:
        raise DataError(f"no run under {root} has a value for {metric} ({scanned} runs scanned)")
    run, metrics = best
    return json_safe({
        "metric": metric, "ascending": ascending, "value": metrics[metric],
        "runs_scanned": scanned, "runs_with_metric": with_metric,
        "run": run, "metrics": metrics,
    })


def compare_runs(paths: list[str | os.PathLike], metric: str = "sharpe_simple",
                 ascending: bool | None = None) -> dict:
    """Side-by-side metrics of run directories, best ``metric`` first (runs without it last;
    ``ascending`` as in :func:`best_run`)."""
    check_metric(metric)
    ascending = ranks_ascending(metric, ascending)
    if not paths:
        raise ConfigError("--compare needs at least one run directory")
    items = []
    for path in paths:
        run_dir = require_run_dir(path)
        row = _with_problems(index_row(run_dir) or {}, run_dir)
        items.append({"run": row, "metrics": run_metrics(run_dir, row)})
    items.sort(key=_rank_key(metric, ascending))
    present = {k for item in items for k in item["metrics"]}
    names = list(metrics()) + [m for m in LEGACY_METRICS if m in present]
    best = items[0] if items[0]["metrics"].get(metric) is not None else None
    return json_safe({
        "sort_by": metric, "ascending": ascending, "n_runs": len(items),
        "best_run_id": best["run"]["run_id"] if best else None,
        "best_run_path": best["run"]["path"] if best else None,
        "metrics": names,
        "runs": [{**item["run"], "metrics": {m: item["metrics"].get(m) for m in names}} for item in items],
    })


def __getattr__(name: str):  # the registry's current lists under their old names
    lists = {"METRICS": metrics, "VALID_METRICS": valid_metrics, "KPIS": kpis, "INT_METRICS": lambda: integer_names() + LEGACY_INT_METRICS}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
