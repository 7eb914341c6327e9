"""Reading a sweep's shard results back: metrics per combination, the rows a leaderboard ranks,
and the combinations without enough bars (their return series: ``commands.robust_sweep``).
"""

from __future__ import annotations

import json
import math

from quantlab.errors import DataError
from quantlab.metric_registry import integer_names, metric_names


def load_shards(paths: list[str]) -> tuple[dict[str, dict], int | None]:
    """combo key -> metrics dict (None for undefined), from shard files; and the bars the
    shards' window had (warm-up history included; None if a shard does not say)."""
    from quantlab.columnar import column_to_numpy, metadata_of, read_parquet

    out: dict[str, dict] = {}
    available: int | None = None
    for path in paths:
        table = read_parquet(path)
        meta = metadata_of(table)
        keys = json.loads(meta["keys"])
        available = int(meta["bars_available"]) if "bars_available" in meta else None
        cols = {name: column_to_numpy(table, name) for name in metric_names()}
        for i, key in enumerate(keys):
            row = {}
            for name in metric_names():
                v = float(cols[name][i])
                row[name] = None if math.isnan(v) else (int(v) if name in integer_names() else v)
            out[key] = row
    return out, available


def combo_warmup(strategy, combo: dict) -> int:
    from quantlab.commands.experiment import ENGINE_GRID_KEYS

    return int(strategy.warmup_bars({k: v for k, v in combo.items() if k not in ENGINE_GRID_KEYS}))


def drop_insufficient(rows: list[dict], available: int | None, strategy_name: str,
                      window: dict) -> tuple[list, list]:
    """Split rows into those whose combination has enough bars (warm-up + 1 tradable bar) and
    skipped entries for the others; ``DataError`` (exit 3) when none has enough.
    ``window``: ticker, start, end (for the message)."""
    from quantlab.commands.experiment import skipped_entry
    from quantlab.commands.run.steps import bars_needed, insufficient_message
    from quantlab.strategies import get_strategy

    if available is None:  # not recorded: nothing to check against
        return rows, []
    strategy = get_strategy(strategy_name)
    kept, skipped, least = [], [], None
    for r in rows:
        warmup = combo_warmup(strategy, r["params"])
        if available >= bars_needed(warmup):
            kept.append(r)
            continue
        least = warmup if least is None else min(least, warmup)
        msg = insufficient_message(window["ticker"], window["start"], window["end"], available, strategy.name,
                                   warmup)
        skipped.append(skipped_entry(r["params"], r.get("label"), "insufficient_data", msg))
    if rows and not kept:
        raise DataError(insufficient_message(window["ticker"], window["start"], window["end"], available,
                                             strategy.name, least)
                        + f" (no combination of {len(rows)} has enough bars)")
    return kept, skipped


def rank_rows(rows: list[dict], sort_by: list[str], ascending: list[bool]) -> list[dict]:
    """Stable multi-key sort; undefined (None) values always rank last."""
    ordered = list(rows)
    for metric, asc in reversed(list(zip(sort_by, ascending))):
        present = [r for r in ordered if r["metrics"].get(metric) is not None]
        absent = [r for r in ordered if r["metrics"].get(metric) is None]
        present.sort(key=lambda r: r["metrics"][metric], reverse=not asc)
        ordered = present + absent
    for i, r in enumerate(ordered, 1):
        r["rank"] = i
    return ordered


def result_rows(record_like: dict, keys: list[str], results: dict[str, dict]) -> list[dict]:
    rows = []
    for i, (key, combo) in enumerate(zip(keys, record_like["combos"])):
        if key not in results:
            raise DataError(f"sweep result missing for combination {json.dumps(combo)}")
        rows.append({"index": i, "label": record_like["labels"][i], "params": combo,
                     "metrics": dict(results[key]), "combo_key": key})
    return rows
