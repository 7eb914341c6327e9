"""Reading a sweep's shard results back: metrics per combination, their return series, the
rows a leaderboard ranks, and the combinations without enough bars.
"""

from __future__ import annotations

import json
import math
import os

from quantlab.errors import DataError
from quantlab.metric_registry import integer_names, metric_names


PSR_KEY = "\0psr"  # a shard row's PSR while loading (never a metric name)


def returns_path(shard_parquet) -> str:
    """The per-bar returns file of a shard (beside its parquet)."""
    return str(shard_parquet)[: -len(".parquet")] + ".returns.npy"


def load_returns_matrix(shard_paths: list[str], keys: list[str]):
    """(bars, len(keys)) float32 returns of the combinations ``keys`` (columns in that order), read
    shard by shard (memory-mapped) from the shards' returns files, and the bars' periods per year;
    (None, None) when a shard has none."""
    import numpy as np

    from quantlab.columnar import metadata_of, read_parquet

    where = {key: j for j, key in enumerate(keys)}
    out, ppy = None, None
    for path in shard_paths:
        rpath = returns_path(path)
        meta = metadata_of(read_parquet(path))
        if not os.path.isfile(rpath) or "periods_per_year" not in meta:
            return None, None
        ppy = float(meta["periods_per_year"])
        shard_keys = json.loads(meta["keys"])
        data = np.load(rpath, mmap_mode="r", allow_pickle=False)
        if data.shape[0] != len(shard_keys):  # a shard that did not keep its returns
            return None, None
        if out is None:
            out = np.empty((len(keys), data.shape[1]), dtype=np.float32)
        for i, key in enumerate(shard_keys):
            j = where.get(key)
            if j is not None:
                out[j] = data[i]
        del data
    return (None, None) if out is None else (out.T, ppy)


def robustness_of(shard_paths: list[str], rows: list[dict]) -> dict | None:
    """``robustness.robustness_report`` over the ranked ``rows`` (trials: every row, best: the
    first); None without rows or without return series."""
    from quantlab.robustness import robustness_report

    if not rows:
        return None
    mat, ppy = load_returns_matrix(shard_paths, [r["combo_key"] for r in rows])
    if mat is None or mat.shape[0] < 2:
        return None
    return robustness_report(mat, 0, ppy, seed=0)


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
        psr = column_to_numpy(table, "psr") if "psr" in table.column_names else None
        for i, key in enumerate(keys):
            row = {}
            for name in metric_names():
                v = float(cols[name][i])
                row[name] = None if math.isnan(v) else (int(v) if name in integer_names() else v)
            if psr is not None:
                row[PSR_KEY] = None if math.isnan(float(psr[i])) else float(psr[i])
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
        metrics = dict(results[key])
        extra = {"psr": metrics.pop(PSR_KEY)} if PSR_KEY in metrics else {}
        rows.append({"index": i, "label": record_like["labels"][i], "params": combo, "metrics": metrics,
                     "combo_key": key, **extra})
    return rows
