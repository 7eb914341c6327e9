"""The columnar grid board (commands/sweep/board.py) gives exactly what the row-by-row code gives:
the same ranking (undefined last, ties in input order) and the same leaderboard.csv bytes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from quantlab.commands.sweep import board as sb
from quantlab.commands.sweep.publish import leaderboard_csv
from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES as ROBUST
from quantlab.commands.sweep.results import rank_rows
from quantlab.metric_registry import grid_metric_names, integer_names

INTS = set(integer_names())
value = st.one_of(st.none(), st.sampled_from([0.0, 1.5, -2.25, 1e-12, 3.0]),
                  st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
param = st.one_of(st.none(), st.integers(-5, 500), st.floats(-10, 10, allow_nan=False), st.booleans(),
                  st.sampled_from(["a", "b,c"]))


@st.composite
def boards(draw):
    n = draw(st.integers(0, 25))
    trail = ROBUST if draw(st.booleans()) else ()
    names = grid_metric_names() + trail
    cols = {}
    for name in names:
        vals = draw(st.lists(value, min_size=n, max_size=n))
        cols[name] = np.array([math.nan if v is None else (float(round(v)) if name in INTS else v) for v in vals])
    combos = [{"fast": draw(param), "slow": draw(param)} for _ in range(n)]
    labels = draw(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y,z", "lbl"])), min_size=n, max_size=n))
    sort_by = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    ascending = draw(st.lists(st.booleans(), min_size=len(sort_by), max_size=len(sort_by)))
    return cols, combos, labels, trail, sort_by, ascending


def _rows(cols, combos, labels, trail):
    rows = []
    for i in range(len(combos)):
        metrics = {}
        for name in grid_metric_names() + trail:
            v = float(cols[name][i])
            metrics[name] = None if math.isnan(v) else (int(v) if name in INTS else v)
        rows.append({"index": i, "label": labels[i], "params": combos[i], "metrics": metrics,
                     "combo_key": f"k{i:04d}"})
    return rows


@settings(max_examples=150, deadline=None)
@given(boards())
def test_rank_order_and_csv_match_the_row_code(board):
    cols, combos, labels, trail, sort_by, ascending = board
    ranked = rank_rows(_rows(cols, combos, labels, trail), sort_by, ascending)
    order = sb.rank_order(cols, sort_by, ascending)
    assert [r["index"] for r in ranked] == order.tolist()
    keys = [f"k{i:04d}" for i in range(len(combos))]
    assert sb.leaderboard_csv_columns(order, labels, combos, keys, cols, trail, ["fast", "slow"]) == \
        leaderboard_csv(ranked, ["fast", "slow"])
    top = [sb._row(int(i), r + 1, labels, combos, keys, cols, trail) for r, i in enumerate(order.tolist())]
    assert top == ranked


def _shards(tmp_path, monkeypatch, n_shards=3, per=40, bars=400):
    """Shard files as ``step_sweep_shard`` writes them (metrics parquet, sidecar, the summary of
    random float32 returns; the merge's one evaluation again reads those returns)."""
    import json as _json

    from quantlab.columnar import parquet_bytes, table_from_numpy
    from quantlab.commands import robust_sweep

    rng = np.random.default_rng(21)
    paths, keys, combos, series = [], [], [], {}
    for s in range(n_shards):
        ks = [f"{s:02d}{i:014x}" for i in range(per)]
        cols = {m: rng.normal(size=per) for m in grid_metric_names()}
        for m in INTS:
            cols[m] = np.round(np.abs(cols[m]) * 10)
        meta = {"keys": _json.dumps(ks), "bars_available": str(bars), "periods_per_year": "252.0"}
        path = tmp_path / f"shard{s}.parquet"
        path.write_bytes(parquet_bytes(table_from_numpy(cols, meta)))
        mat = rng.normal(0.0003, 0.01, (per, bars)).astype(np.float32)
        summary = robust_sweep.ShardSummary()
        summary.add(mat)
        shard_combos = [{"fast": 2 + s, "slow": 50 + i} for i in range(per)]
        summary.write(robust_sweep.summary_path(path), ks, {"data": "d", "strategy": "sma_crossover"})
        (tmp_path / f"shard{s}.json").write_text(_json.dumps(
            {"combos": [{"key": k, "params": c} for k, c in zip(ks, shard_combos)], "returns": True}))
        series.update({(c["fast"], c["slow"]): row for c, row in zip(shard_combos, mat)})
        paths.append(str(path))
        keys += ks
        combos += shard_combos
    monkeypatch.setattr(robust_sweep, "series_of", lambda spec, cs, threads=None: np.array(
        [series[(c["fast"], c["slow"])] for c in cs]))
    order = rng.permutation(len(keys)).tolist()  # the request's order is not the shards'
    record = {"grid": {"combo_keys": [keys[i] for i in order]}, "combos": [combos[i] for i in order],
              "labels": [None] * len(keys), "sort_by": ["sharpe_simple"], "ascending": [False],
              "robustness": True, "strategy": "sma_crossover", "grid_keys": ["fast", "slow"],
              "base": {"ticker": "X", "start": "2000-01-01", "end": "2001-01-01"}, "lookback_bars": 60}
    return record, paths


def test_board_with_the_statistics_beside_writes_the_files_of_the_sequential_merge(tmp_path, monkeypatch):
    """merge_board computes the robustness columns and report on a thread of its own while it
    writes the leaderboard text: every board file is byte-identical to the one-after-the-other
    merge's."""
    record, paths = _shards(tmp_path, monkeypatch)
    files = {}
    for beside in (True, False):
        monkeypatch.setattr(sb, "_beside", lambda record, on=beside: on and sb._beside_default(record))
        out = tmp_path / f"board_{beside}"
        out.mkdir()
        sb.merge_board(record, paths, str(out))
        files[beside] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert set(files[True]) == {"board.json", "leaderboard.csv", "leaderboard.parquet", "heatmap.png",
                                "pbo_logits.png", "is_vs_oos.png"}
    assert files[True] == files[False]
    board = __import__("json").loads(files[True]["board.json"])
    assert board["robustness"]["trials"] == 120 and "psr" in board["best"]["metrics"]
