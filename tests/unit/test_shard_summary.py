"""A sweep shard keeps a summary of its combinations' returns, not the returns
(commands/robust_sweep.py): the merge's statistics from the summaries are the numbers of one
pass over the returns in the shards' order, bit for bit (numba, as a sweep runs them), also
for a request that uses part of a shard; a failing shard leaves no file."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab import store_layout
from quantlab.commands import robust_sweep
from quantlab.commands.experiment import load_experiment
from quantlab.commands.run.steps import step_load_data
from quantlab.commands.sweep.plan import plan_sweep
from quantlab.commands.sweep.steps import _evaluate, step_sweep_shard
from quantlab.contract.paths import resolve_input_path
from quantlab.data import read_bars
from quantlab.robustness import rows
from quantlab.robustness.report import report_from_stats, sweep_stats

GRID = {"ticker": "SPX", "start": "2015-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
        "param_grid": {"fast": list(range(2, 30)), "slow": [60, 75, 90, 120, 150]}, "shards": 3}


@pytest.fixture
def shards(tmp_path, monkeypatch):
    """A 140-combination grid's shards, as the steps write them (work dir ``tmp_path``; small
    chunks, so a shard is several evaluation chunks and several Z-sum groups)."""
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    monkeypatch.setattr(rows, "Z_CHUNK", 8)
    monkeypatch.setattr(robust_sweep, "CHUNK", 16)
    monkeypatch.chdir(tmp_path)
    exp = load_experiment(dict(GRID), resolve_path=resolve_input_path)
    config = plan_sweep(exp, dict(GRID), request_id=None, warnings=[], origin="json", claim=False).config
    for dkey, spec in config["data"].items():
        step_load_data(spec, store_layout.data_files(dkey)[0])
    paths, specs = [], []
    for shard, spec in sorted(config["shards"].items()):
        parquet, sidecar, _ = store_layout.shard_files(spec["family"], shard)
        (tmp_path / parquet).parent.mkdir(parents=True, exist_ok=True)
        step_sweep_shard(spec, store_layout.data_files(spec["data"])[0], parquet, sidecar, threads=2)
        paths.append(parquet)
        specs.append(spec)
    return paths, specs


def one_pass(specs: list[dict], keys: list[str]) -> rows.RowSource:
    """The series of ``keys`` as one source whose parts are the shards' full return matrices
    (what the merge read when the shards kept their returns)."""
    where = {k: j for j, k in enumerate(keys)}
    mats = []
    for spec in specs:
        bars = read_bars(store_layout.data_files(spec["data"])[0])
        mat = _evaluate(bars, spec, spec["combos"], 1, keep_returns=True)[1]
        pairs = [(i, where[k]) for i, k in enumerate(spec["combo_keys"]) if k in where]
        if pairs:
            mats.append((mat, *(np.array(v, dtype=np.int64) for v in zip(*pairs))))
    t = mats[0][0].shape[1]
    col = {int(c): (m, int(r)) for m, rs, cs in mats for r, c in zip(rs, cs)}
    return rows.RowSource(len(keys), t, lambda: iter(mats),
                          lambda j: np.asarray(col[j][0][col[j][1]], dtype=np.float64), threads=2)


def _same(stats, ref) -> None:
    for name in ("b_sum", "b_sq", "sharpe", "psr", "dsr", "z_sum"):
        np.testing.assert_array_equal(getattr(stats, name), getattr(ref, name), err_msg=name)
    for name in ref.moments:
        np.testing.assert_array_equal(stats.moments[name], ref.moments[name], err_msg=name)
    assert stats.expected_max == ref.expected_max
    best = int(np.argmax(ref.psr))
    assert report_from_stats(stats, best, 252.0, n_boot=200, points=True) == \
        report_from_stats(ref, best, 252.0, n_boot=200, points=True)


def test_summaries_give_the_numbers_of_one_pass_over_the_returns(shards):
    paths, specs = shards
    keys = [k for spec in specs for k in spec["combo_keys"]][::-1]  # any column order
    stats, ppy = robust_sweep.summary_stats(paths, keys, threads=2)
    assert len(keys) == 140 and stats.with_pbo and ppy == 252.0
    _same(stats, sweep_stats(one_pass(specs, keys)))


def test_a_request_using_part_of_a_shard_summarises_its_combinations_again(shards):
    paths, specs = shards
    keys = [k for spec in specs for k in spec["combo_keys"][3::2]]
    stats, _ = robust_sweep.summary_stats(paths, keys, threads=1)
    _same(stats, sweep_stats(one_pass(specs, keys)))


def test_one_combination_is_evaluated_again(shards):
    paths, specs = shards
    keys = specs[1]["combo_keys"][5:6]
    stats, _ = robust_sweep.summary_stats(paths, keys)
    _same(stats, sweep_stats(one_pass(specs, keys)))


def test_a_failing_shard_leaves_no_file(shards, monkeypatch, tmp_path):
    paths, specs = shards
    spec = dict(specs[0])
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # a later chunk
            raise RuntimeError("kernel failed")
        return _evaluate(*args, **kwargs)
    monkeypatch.setattr("quantlab.commands.sweep.steps._evaluate", failing)
    out = tmp_path / "failed"
    out.mkdir()
    with pytest.raises(RuntimeError):
        step_sweep_shard(spec, store_layout.data_files(spec["data"])[0], str(out / "x.parquet"),
                         str(out / "x.json"))
    assert len(calls) == 3 and list(out.iterdir()) == []
