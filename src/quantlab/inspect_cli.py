"""Read-only inspection commands: ``--runs-list/--runs-show/--runs-best/--compare`` and
``--paper-sessions-list/-show/-health/-alerts/-index`` (see docs/registry.md).

Human output is an aligned table or key/value lines; ``--json`` gives JSON instead
(``--paper-sessions-alerts`` always prints JSON with sorted keys). Everything goes to stdout;
errors are one ``ERROR: ...`` line on stderr. Exit codes: 0 ok, 2 invalid input (unknown
metric, missing or non-run directory, bad ``--paper-stale-minutes``...), 3 when
``--runs-best`` finds no run with a value for the metric, 1 only for an unexpected bug.
Nothing is written except the paper sessions index by ``--paper-sessions-index``, the runs
catalog and index by ``--runs-reindex``, and the runs catalog (a cache under ``ROOT/.catalog``)
when a runs command finds it missing or behind the run directories.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterable

from quantlab.errors import ConfigError, QuantLabError

RUN_COLUMNS = ("run_id", "mode", "ticker", "strategy", "created_at", "sharpe_simple", "total_return",
               "max_drawdown", "trades")
SESSION_COLUMNS = ("session_id", "status", "created_at", "activity_at", "age_min", "stale", "request_id",
                   "error_type")


# ------------------------------------------------------------------------------ formatting
def _fmt(value: Any, exact: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.4f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else "-"
    return " ".join(str(value).split()) or "-"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(headers: Iterable[str], rows: list[list[Any]], formats: dict[str, str] | None = None) -> list[str]:
    """Aligned columns; numeric columns are right-aligned. ``formats``: column -> format of its numbers."""
    headers = list(headers)
    formats = formats or {}

    def cell(header: str, value: Any) -> str:
        if header in formats and _is_number(value):
            return formats[header].format(value)
        return _fmt(value)

    cells = [[cell(h, v) for h, v in zip(headers, row)] for row in rows]
    numeric = [bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows) for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, data)]


def key_values(data: dict) -> list[str]:
    """``key  value`` lines (nested keys dotted, floats exact)."""
    pairs = _flatten(data)
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{k.ljust(width)}  {_fmt(v, exact=True)}" for k, v in pairs]


def _json(data: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False)


def _problem_lines(items: list[dict], id_key: str) -> list[str]:
    return [f"! {item[id_key]}: {problem}" for item in items for problem in item.get("problems") or []]


# ------------------------------------------------------------------------------ runs
def _runs_list(opts) -> list[str]:
    from quantlab.registry.runs import list_runs

    rows = list_runs(opts.runs_list)
    if opts.as_json:
        return [_json(rows)]
    if not rows:
        from pathlib import Path

        hint = Path(opts.runs_list) / "runs"
        return [f"0 runs under {opts.runs_list}"] + (
            [f"(run directories are one level down: try --runs-list {hint})"] if hint.is_dir() else [])
    out = table(RUN_COLUMNS, [[row.get(c) for c in RUN_COLUMNS] for row in rows])
    out.append(f"{len(rows)} run{'s' if len(rows) != 1 else ''} under {opts.runs_list} (newest first)")
    return out + _problem_lines(rows, "run_id")


def _runs_show(opts) -> list[str]:
    from quantlab.registry.runs import show_run

    data = show_run(opts.runs_show)
    if opts.as_json:
        return [_json(data)]
    run = {**data["run"], "problems": "; ".join(data["problems"]) or None}
    out = key_values(run)
    for section in ("metrics", "config", "metadata"):
        out += ["", f"[{section}]"] + (key_values(data[section]) if data[section] else ["-"])
    out += ["", "[files]", "  ".join(data["files"]) or "-"]
    return out


def _runs_best(opts) -> list[str]:
    from quantlab.registry.runs import best_run

    data = best_run(opts.runs_best, opts.metric, opts.ascending)
    if opts.as_json:
        return [_json(data)]
    order = "lowest" if data["ascending"] else "highest"
    out = [f"best run by {data['metric']} ({order}) among {data['runs_with_metric']} of "
           f"{data['runs_scanned']} runs under {opts.runs_best}: {data['run']['run_id']}",
           f"{data['metric']} = {_fmt(data['value'], exact=True)}", ""]
    out += key_values({k: v for k, v in data["run"].items() if k != "problems"})
    return out + _problem_lines([data["run"]], "run_id")


def _compare(opts) -> list[str]:
    from quantlab.registry.runs import compare_runs

    data = compare_runs(opts.compare, opts.metric, opts.ascending)
    if opts.as_json:
        return [_json(data)]
    runs = data["runs"]
    headers = ["metric"] + [r["run_id"] for r in runs]
    rows: list[list[Any]] = [[key] + [r.get(key) or "-" for r in runs] for key in ("mode", "ticker", "strategy")]
    rows += [[m] + [r["metrics"].get(m) for r in runs] for m in data["metrics"]]
    lines = _compare_table(headers, rows)
    order = "ascending" if data["ascending"] else "descending"
    lines.append(f"{data['n_runs']} runs sorted by {data['sort_by']} ({order}); best: {data['best_run_id'] or '-'}")
    return lines + _problem_lines(runs, "run_id")


def _compare_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join([values[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(values[1:], widths[1:])])

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]


def _runs_reindex(opts) -> list[str]:
    from pathlib import Path

    from quantlab.artifacts.catalog_sync import reindex
    from quantlab.artifacts.runs_index import index_paths

    root = Path(os.path.abspath(opts.runs_reindex))
    if not root.is_dir():
        raise ConfigError(f"runs root not found: {root}" if not root.exists() else f"not a directory: {root}")
    data = {"n_runs": reindex(root), **index_paths(root)}
    if opts.as_json:
        return [_json(data)]
    return [f"reindexed {data['n_runs']} run{'s' if data['n_runs'] != 1 else ''} under {root}",
            data["runs_index_csv"], data["runs_index_json"], data["runs_index_md"]]


# ------------------------------------------------------------------------------ paper sessions
def _paper_context(opts):
    from quantlab.registry import paper

    return paper, paper.now_utc(), paper.parse_stale_minutes(opts.paper_stale_minutes)


def _paper_list(opts) -> list[str]:
    paper, now, stale = _paper_context(opts)
    sessions = paper.list_sessions(opts.paper_sessions_list, now, stale)
    if opts.as_json:
        return [_json(sessions)]
    if not sessions:
        return [f"0 sessions under {opts.paper_sessions_list}"]
    rows = [[s["session_id"], s["status"], s["created_at"], s["activity_at"], s["age_minutes"],
             "STALE" if s["stale"] else "", s["request_id"], s["error_type"]] for s in sessions]
    out = table(SESSION_COLUMNS, rows, {"age_min": "{:.1f}"})
    out.append(f"{len(sessions)} session{'s' if len(sessions) != 1 else ''} under {opts.paper_sessions_list} "
               f"(newest first; stale after {stale} min)")
    return out + _problem_lines(sessions, "session_id")


def _paper_show(opts) -> list[str]:
    paper, now, stale = _paper_context(opts)
    data = paper.show_session(opts.paper_sessions_show, now, stale)
    return [_json(data)] if opts.as_json else key_values(data)


def _paper_health(opts) -> list[str]:
    paper, now, stale = _paper_context(opts)
    h = paper.health(opts.paper_sessions_health, now, stale)
    if opts.as_json:
        return [_json(h, sort_keys=True)]
    counts = ", ".join(f"{k} {v}" for k, v in h["status_counts"].items())
    out = [f"paper sessions: {h['root_dir']}",
           f"generated_at:   {h['generated_at']}",
           f"total_sessions: {h['total_sessions']} ({counts})",
           f"alert_status:   {h['alert_status']}"]
    latest = h["latest_session"]
    out.append("latest:         " + (f"{latest['session_id']} {latest['status']} at {latest['at']}" if latest else "-"))
    failure = h["latest_failure"]
    out.append("latest failure: " + (f"{failure['session_id']} {failure['status']} at {failure['at']}: "
                                     f"{failure['error_type'] or '-'}: {_fmt(failure['message'])}" if failure else "-"))
    for title, items in (("active sessions", h["active_sessions"]), ("stale sessions", h["stale_sessions"])):
        out.append(f"{title} ({len(items)}; stale after {h['stale_after_minutes']} min):" if title.startswith("stale")
                   else f"{title} ({len(items)}):")
        for s in items:
            out.append(f"  {s['session_id']}  {s['status']}  last heartbeat {_fmt(s['activity_at'])} "
                       f"({_fmt(s['age_minutes'], exact=True)} min ago){'  STALE' if s['stale'] else ''}")
    out.append(f"invalid session dirs ({len(h['invalid_sessions'])}):")
    for s in h["invalid_sessions"]:
        out.append(f"  {s['path']}: {'; '.join(s['problems'])}")
    return out


def _paper_alerts(opts) -> list[str]:
    paper, now, stale = _paper_context(opts)
    return [_json(paper.alerts_snapshot(opts.paper_sessions_alerts, now, stale), sort_keys=True)]


def _paper_index(opts) -> list[str]:
    paper, now, _ = _paper_context(opts)
    paths = paper.write_index(opts.paper_sessions_index, now)
    if opts.as_json:
        return [_json(paths, sort_keys=True)]
    return [paths["paper_sessions_index_csv"], paths["paper_sessions_index_json"]]


HANDLERS = {
    "runs_list": _runs_list, "runs_show": _runs_show, "runs_best": _runs_best, "compare": _compare,
    "runs_reindex": _runs_reindex,
    "paper_sessions_list": _paper_list, "paper_sessions_show": _paper_show,
    "paper_sessions_health": _paper_health, "paper_sessions_alerts": _paper_alerts,
    "paper_sessions_index": _paper_index,
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def handle(opts) -> int:
    """Run the one inspection command set in ``opts``; returns the exit code."""
    try:
        chosen = [name for name in HANDLERS if getattr(opts, name, None) is not None]
        if not chosen:
            raise ConfigError("no inspection command given")
        if len(chosen) > 1:
            raise ConfigError(f"choose one inspection command, got {' and '.join(_flag(c) for c in chosen)}")
        lines = HANDLERS[chosen[0]](opts)
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return 0
    except QuantLabError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `... | head`: the reader went away, nothing to report
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug, not a user mistake: still one line, no traceback
        message = " ".join(str(exc).split())[:500]
        print(f"ERROR: unexpected {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # main.py turns SIGTERM/SIGINT into an exception: one line, exit 1
        print(f"ERROR: interrupted ({' '.join(str(exc).split())})", file=sys.stderr)
        return 1
