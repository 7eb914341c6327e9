"""A grid sweep's merged leaderboard ("board"), columnar and content-addressed.

The merge of a grid sweep reads its shards' metric columns, puts them in the request's order,
drops the combinations without enough bars, ranks them (numpy ``lexsort``, the order of
``rank_rows``), and writes, once per distinct board, under ``store/sweep/<family>/boards/<key>/``:

* ``leaderboard.parquet``  every ranked combination: index, rank, combo key, every metric (NaN =
                           undefined), psr and deflated_sharpe with robustness on; one column each,
                           in rank order;
* ``leaderboard.csv``      the contract's file, byte for byte what ``leaderboard_csv`` writes,
                           formatted column by column;
* ``heatmap.png``          the bounded heatmap (artifacts/heatmap.py), or a 1x1 placeholder when
                           no parameter varies (``board.json`` says which);
* ``board.json``           small: row count, the best row and the top 10 (as the report shows
                           them), the skipped combinations, robustness, whether there is a heatmap,
                           the data windows' notes (publish's warnings);
* ``pbo_logits.png``, ``is_vs_oos.png``  with robustness on (when CSCV ran): its pictures
                           (``board.json``'s ``pictures`` names them).

The key covers everything a board depends on (the shards, the combinations and labels in request
order, the ranking, robustness, strategy, window, code), so an identical sweep finds its board and
its publish step only copies its files and writes the small ones (no picture drawn, no bars
file read): nothing per request grows with the number of combinations but one file copy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from quantlab.artifacts.io import atomic_write_bytes, atomic_write_json, atomic_write_text, csv_cell
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint
from quantlab.errors import DataError
from quantlab.metric_registry import integer_names, grid_metric_names
from quantlab.store_layout import BOARD_FILES

TOP_ROWS = 10  # rows the report's "results" section shows


def board_key(record: dict) -> str:
    """The content key of a grid request's board (see the module doc)."""
    base = record["base"]
    return canonical_hash({
        "shards": record["grid"]["shards"], "keys": record["grid"]["combo_keys"], "labels": record["labels"],
        "sort_by": record["sort_by"], "ascending": record["ascending"], "robustness": bool(record.get("robustness")),
        "strategy": record["strategy"], "grid_keys": record["grid_keys"],
        "window": [base["ticker"], base["start"], base["end"]], "code": code_fingerprint()}, 16)


def attach_board(config: dict, run_id: str) -> str:
    """Give a grid request's record its board key and declare the board in the Snakemake config
    (``config["boards"]``: key -> family and the request whose record describes it); returns the
    board.json path (relative to the workdir)."""
    from quantlab.store_layout import board_files

    record = config["requests"][run_id]
    record["lookback_bars"] = max(int(spec.get("lookback_bars", 0)) for spec in config["data"].values())
    record["board"] = board_key(record)
    config.setdefault("boards", {})[record["board"]] = {"family": record["grid"]["family"], "run_id": run_id}
    return board_files(record["grid"]["family"], record["board"])[0]


# --------------------------------------------------------------------------------------- merge
def shard_columns(paths: list[str]):
    """(combo keys, {metric: float64 array}, bars available or None) over the shards,
    concatenated in shard order."""
    import numpy as np

    from quantlab.columnar import column_to_numpy, metadata_of, read_parquet

    keys: list[str] = []
    parts: dict[str, list] = {name: [] for name in grid_metric_names()}
    available = None
    for path in paths:
        table = read_parquet(path)
        meta = metadata_of(table)
        keys.extend(json.loads(meta["keys"]))
        available = int(meta["bars_available"]) if "bars_available" in meta else None
        for name in grid_metric_names():
            parts[name].append(column_to_numpy(table, name).astype(np.float64, copy=False))
    cols = {name: (np.concatenate(p) if p else np.zeros(0)) for name, p in parts.items()}
    return keys, cols, available


def rank_order(cols: dict, sort_by: list[str], ascending: list[bool]):
    """Row order of ``rank_rows``: by each sort key in turn, undefined (NaN) last, ties in input order."""
    import numpy as np

    n = len(next(iter(cols.values()))) if cols else 0
    keys = [np.arange(n)]
    for metric, asc in reversed(list(zip(sort_by, ascending))):
        v = np.asarray(cols[metric] if metric in cols else np.full(n, np.nan), dtype=np.float64)
        undefined = np.isnan(v)
        keys += [np.where(undefined, 0.0, v if asc else -v), undefined]
    return np.lexsort(keys)


def _float_texts(values) -> list[str]:
    return _blank_nan(_distinct_texts("{:.10g}".format, values), values)


def _int_texts(values) -> list[str]:
    import numpy as np

    return _blank_nan(_distinct_texts(str, np.nan_to_num(values).astype(np.int64)), values)


def _distinct_texts(fmt, values) -> list[str]:
    """``[fmt(v) for v in values]``, each distinct value formatted once (a metric column of a
    large grid repeats its values: trade counts, win rates, zero): distinct by bit pattern, so
    0.0 and -0.0 keep their own texts."""
    import numpy as np

    values = np.ascontiguousarray(values)
    bits, inverse = np.unique(values.view(np.int64), return_inverse=True)
    texts = np.array(list(map(fmt, bits.view(values.dtype).tolist())), dtype=object)
    return texts[inverse.ravel()].tolist()


def _blank_nan(texts: list[str], values) -> list[str]:
    import numpy as np

    for i in np.flatnonzero(np.isnan(values)).tolist():
        texts[i] = ""
    return texts


def leaderboard_csv_columns(order, labels: list, combos: list[dict], keys: list[str], cols: dict,
                            trail: tuple[str, ...], param_keys: list[str], late=None) -> str:
    """``leaderboard_csv`` of the ranked rows ``order`` (indices into labels/combos/keys/cols),
    built column by column; ``trail``: the robustness columns of ``cols`` (psr, deflated_sharpe)
    the rows carry. ``late``: a callable giving ``(trail, {name: column})``, called once every
    other column is text (the merge computes the robustness columns meanwhile); it replaces
    ``trail``."""
    ints = set(integer_names())
    idx = order.tolist()
    columns = [[str(i) for i in range(1, len(idx) + 1)], [csv_cell(labels[i]) for i in idx]]
    columns += [[csv_cell(combos[i].get(k)) for i in idx] for k in param_keys]
    for name in grid_metric_names():
        col = cols[name][order]
        columns.append(_int_texts(col) if name in ints else _float_texts(col))
    if late is not None:
        trail, extra = late()
        cols = {**cols, **extra}
    trail = trail if idx else ()  # the row code: a column when some row has it
    for name in trail:
        col = cols[name][order]
        columns.append(_int_texts(col) if name in ints else _float_texts(col))
    columns.append([keys[i] for i in idx])
    header = ",".join(["rank", "label", *param_keys, *grid_metric_names(), *trail, "combo_key"])
    return "\n".join([header, *map(",".join, zip(*columns))]) + "\n"


def _row(i: int, rank: int, labels, combos, keys, cols, trail: tuple[str, ...] = ()) -> dict:
    """One ranked row as the report and ``best_result`` show it (the order of ``result_rows``)."""
    ints = set(integer_names())
    metrics = {}
    for name in (*grid_metric_names(), *trail):
        v = float(cols[name][i])
        metrics[name] = None if math.isnan(v) else (int(v) if name in ints else v)
    return {"index": i, "label": labels[i], "params": combos[i], "metrics": metrics, "combo_key": keys[i],
            "rank": rank}


def _in_request_order(record: dict, shard_paths: list[str]):
    import numpy as np

    keys, cols, available = shard_columns(shard_paths)
    where = {k: j for j, k in enumerate(keys)}
    wanted = record["grid"]["combo_keys"]
    try:
        take = np.fromiter((where[k] for k in wanted), dtype=np.int64, count=len(wanted))
    except KeyError as exc:
        i = wanted.index(exc.args[0])
        raise DataError(f"sweep result missing for combination {json.dumps(record['combos'][i])}") from None
    return {n: c[take] for n, c in cols.items()}, available


def _robust_columns(record: dict, shard_paths: list[str], kept, cols: dict):
    """With robustness on: every kept combination's ``psr`` and ``deflated_sharpe`` into ``cols``
    (NaN = undefined) from the shards' summaries (``robust_sweep``), and the stats
    for the report; ``(trail columns, stats or None)``."""
    import numpy as np

    from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES, summary_stats
    from quantlab.commands.sweep.steps import shard_threads

    if not record.get("robustness", False) or not len(kept):
        return (), None
    keys = record["grid"]["combo_keys"]
    kept_keys = [keys[i] for i in kept.tolist()]
    stats, ppy = summary_stats(shard_paths, kept_keys, shard_threads())
    if stats is None:
        return (), None
    n = len(keys)
    for name, values in zip(ROBUST_OBJECTIVES, (stats.psr, stats.dsr)):
        col = np.full(n, np.nan)
        col[kept] = np.where(np.isfinite(values), values, np.nan)
        cols[name] = col
    return ROBUST_OBJECTIVES, (stats, ppy, {k: j for j, k in enumerate(kept_keys)})


def _kept(record: dict, available) -> tuple[list[int], list[dict]]:
    """Indices of the combinations with enough bars, and skipped entries for the others. When
    the bars cover the longest warm-up of the grid (``record["lookback_bars"]``, the data step's
    own look-back) every combination has enough, and none is asked for its warm-up."""
    from quantlab.commands.run.steps import bars_needed
    from quantlab.commands.sweep.results import drop_insufficient

    lookback = record.get("lookback_bars")
    if available is None or (lookback is not None and available >= bars_needed(lookback)):
        return list(range(len(record["combos"]))), []
    base = record["base"]
    rows = [{"params": c, "label": lab, "i": i} for i, (c, lab) in enumerate(zip(record["combos"], record["labels"]))]
    kept, skipped = drop_insufficient(rows, available, record["strategy"],
                                      {"ticker": base["ticker"], "start": base["start"], "end": base["end"]})
    return [r["i"] for r in kept], skipped


def _heatmap(record: dict, order, cols: dict, out: Path) -> bool:
    from quantlab.artifacts.heatmap import heatmap_columns, influential_columns, placeholder_png

    objective = record["sort_by"][0]
    combos = [record["combos"][i] for i in order.tolist()]
    values = cols[objective][order]
    axes = influential_columns(combos, values, record["grid_keys"])
    png = (heatmap_columns(combos, values, axes, objective, record["strategy"]) if axes
           else placeholder_png())
    atomic_write_bytes(out / "heatmap.png", png)
    return bool(axes)


def merge_board(record: dict, shard_paths: list[str], out_dir: str) -> None:
    """Merge, rank and write a grid request's board (``BOARD_FILES``; board.json last: it marks
    completion). The workflow step is ``steps.step_merge_leaderboard``.

    With robustness on and a ranking that does not use its columns, the statistics (numba
    passes that release the GIL) run on a thread of their own while this one writes the
    leaderboard's text and the heatmap; the files are the same as when computed one after the
    other (``tests/unit/test_sweep_board.py``)."""
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.commands.sweep.publish import param_columns

    out = Path(out_dir)
    cols, available = _in_request_order(record, shard_paths)
    kept, skipped = _kept(record, available)
    kept_idx = np.asarray(kept, dtype=np.int64)
    robust = bool(record.get("robustness", False))
    beside = _beside(record)
    trail, stats = ((), None) if beside else _robust_columns(record, shard_paths, kept_idx, cols)
    order = kept_idx[rank_order({n: c[kept_idx] for n, c in cols.items()}, record["sort_by"], record["ascending"])]
    keys, labels, combos = record["grid"]["combo_keys"], record["labels"], record["combos"]
    best_key = keys[int(order[0])] if len(order) else None
    with _Beside(beside, record, shard_paths, kept_idx, best_key, out) as robust_job:
        has_heatmap = _heatmap(record, order, cols, out)
        csv = leaderboard_csv_columns(order, labels, combos, keys, cols, trail, param_columns(record),
                                      late=robust_job.columns if beside else None)
        if beside:  # the report and its pictures go on on their thread while the files are written
            trail = robust_job.trail
            cols.update(robust_job.extra)
        table = {"index": order, "rank": np.arange(1, len(order) + 1, dtype=np.int64),
                 **{n: cols[n][order] for n in (*grid_metric_names(), *trail)}}
        atomic_write_bytes(out / "leaderboard.parquet", parquet_bytes(table_from_numpy(
            table, {"combo_keys": json.dumps([keys[i] for i in order.tolist()])})))
        atomic_write_text(out / "leaderboard.csv", csv)
        top = [_row(int(i), r + 1, labels, combos, keys, cols, trail)
               for r, i in enumerate(order[:TOP_ROWS].tolist())]
        if beside:
            report, pictures = robust_job.finish()
        else:
            report = _report(stats, best_key) if robust else None
            pictures = _pictures(out, report, record["strategy"]) if robust else {}
    from quantlab.commands.sweep.publish import data_notes

    board = {"n_rows": int(len(order)), "best": top[0] if top else None, "top": top, "skipped": skipped,
             "heatmap": has_heatmap, "data_notes": data_notes(record)}
    if robust:
        board["robustness"] = report
        board["pictures"] = pictures
    atomic_write_json(out / BOARD_FILES[0], board, compact=True)  # the robustness points make it long


def _pictures(out: Path, report: dict | None, title: str) -> dict:
    """The robustness pictures of the board, drawn once beside its heatmap (publish copies
    them, as it copies the heatmap): ``{artifact name: file name}``, empty when there are none.
    The report keeps its ``points``, so publish can draw them again if a file went missing."""
    from quantlab.commands.robust_sweep import pictures

    files: dict = {}
    pictures(out, report, title, files)
    return files


def _beside_default(record: dict) -> bool:
    """Whether the merge computes the robustness statistics beside the leaderboard text: with
    robustness on, when the ranking does not need their columns."""
    from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES

    return bool(record.get("robustness", False)) and not any(m in ROBUST_OBJECTIVES for m in record["sort_by"])


_beside = _beside_default  # (a test compares it with the one-after-the-other merge)


class _Beside:
    """The robustness columns and report of a board computed on a thread of its own
    (``active``), from the start of the ``with`` block: :meth:`columns` (``leaderboard_csv_columns``'s
    ``late``) waits for the columns only and keeps them (``trail``, ``extra``), while the thread
    goes on with the report and its pictures; :meth:`finish` waits for those
    (``(report, {artifact: file})``). Leaving the block waits for the thread (its error, if any,
    is raised)."""

    def __init__(self, active: bool, record: dict, shard_paths: list[str], kept_idx, best_key: str | None,
                 out: Path):
        from concurrent.futures import Future

        self.active, self.pool, self.future = active, None, None
        self.args = (record, shard_paths, kept_idx, best_key, out)
        self.cols_future: Future = Future()
        self.trail: tuple[str, ...] = ()
        self.extra: dict = {}

    def _work(self):
        record, shard_paths, kept_idx, best_key, out = self.args
        extra: dict = {}
        try:
            trail, stats = _robust_columns(record, shard_paths, kept_idx, extra)
        except BaseException as exc:
            self.cols_future.set_exception(exc)
            raise
        self.cols_future.set_result((trail, extra))
        report = _report(stats, best_key)
        return report, _pictures(out, report, record["strategy"])  # drawn here too

    def columns(self):
        self.trail, self.extra = self.cols_future.result()
        return self.trail, self.extra

    def finish(self):
        return self.future.result()

    def __enter__(self):
        if self.active:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quantlab-board")
            self.future = self.pool.submit(self._work)
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            if exc[0] is None and self.future.done():
                self.future.result()
        return False


def _report(stats, best_key: str | None) -> dict | None:
    """The sweep's robustness report with the rank-1 combination (``best_key``) as the selected
    one (as ``robust_sweep.report_for`` gives it: ``best_index`` 0)."""
    from quantlab.robustness.report import report_from_stats

    if stats is None or best_key is None:
        return None
    st, ppy, where = stats
    report = report_from_stats(st, where[best_key], ppy, seed=0, points=True)
    report["best_index"] = 0
    return report
