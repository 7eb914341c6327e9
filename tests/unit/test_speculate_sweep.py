"""Speculative sweep steps (commands/speculate.py): the step worker computes a sweep's data steps
and its new shards ahead; each shard job takes exactly its own files (byte for byte what the step
writes, whatever its thread count), once; nothing is left in the scratch directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantlab import store_layout
from quantlab.commands import speculate
from quantlab.commands.experiment import load_experiment
from quantlab.commands.run.steps import step_load_data
from quantlab.commands.sweep.plan import plan_sweep
from quantlab.commands.sweep.steps import step_sweep_shard
from quantlab.contract.paths import resolve_input_path

GRID = {"ticker": "SPX", "start": "2015-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
        "param_grid": {"fast": list(range(2, 9)), "slow": [60, 90, 120]}}
WALKFORWARD = {**GRID, "splits": [{"name": "a", "train": {"start": "2015-01-01", "end": "2016-06-01"},
                                   "test": {"start": "2016-06-01", "end": "2018-01-01"}}]}
NO_RETURNS = {**GRID, "robustness": False}


@pytest.fixture
def planned(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))

    def plan(params):
        params = {**params, "shards": 3}
        exp = load_experiment(params, resolve_path=resolve_input_path)
        return plan_sweep(exp, params, request_id=None, warnings=[], origin="json", claim=False).config
    yield plan
    speculate.discard()


def run_steps(config: dict, root: Path, threads: int) -> dict[str, Path]:
    """The sweep's data and shard steps as the rules call them, outputs under ``root``."""
    files = {}
    for dkey, spec in config["data"].items():
        bars, = store_layout.data_files(dkey)
        step_load_data(spec, str(root / bars))
        files[bars] = root / bars
    for shard, spec in config["shards"].items():
        parquet, sidecar, returns = store_layout.shard_files(spec["family"], shard)
        (root / parquet).parent.mkdir(parents=True, exist_ok=True)  # as Snakemake does
        step_sweep_shard(spec, str(root / store_layout.data_files(spec["data"])[0]), str(root / parquet),
                         str(root / sidecar), threads=threads)
        files.update({p: root / p for p in (parquet, sidecar, returns)})
    return files


def speculate_all(config: dict, root: Path, threads: int = 2) -> None:
    speculate.speculate_sweep(str(root), dict(config["data"]), dict(config["shards"]), threads)


@pytest.mark.parametrize("params", [GRID, WALKFORWARD, NO_RETURNS], ids=["grid", "walkforward", "no-returns"])
def test_speculated_shards_are_the_steps_files(tmp_path, planned, params):
    config = planned(params)
    plain = run_steps(config, tmp_path / "plain", threads=1)
    spec_root = tmp_path / "spec"
    speculate_all(config, spec_root, threads=2)  # a job granted fewer threads takes them all the same
    assert len(speculate._DONE) == len(config["data"]) + len(config["shards"]) >= 4
    scratch = spec_root / speculate.SCRATCH / str(os.getpid())
    assert len(list(scratch.iterdir())) == len(plain)
    taken = run_steps(config, spec_root, threads=1)  # each step takes its speculated files
    assert not speculate._DONE and not list(scratch.iterdir())
    for rel, path in plain.items():
        assert taken[rel].read_bytes() == path.read_bytes(), rel
    speculate.discard()
    assert not scratch.exists()


def test_a_shard_is_taken_once_and_only_by_its_own_spec(tmp_path, planned):
    config = planned(GRID)
    speculate_all(config, tmp_path)
    (a, spec_a), (b, spec_b) = list(config["shards"].items())[:2]
    out = [str(tmp_path / "t" / name) for name in ("x.parquet", "x.json", "x.robust.npz")]
    other = {**spec_a, "combos": spec_b["combos"]}  # same shape, another shard's combinations
    assert not speculate.take("sweep.step_sweep_shard", other, out)
    assert not speculate.take("step_load_data", spec_a, out)  # another step's key
    assert speculate.take("sweep.step_sweep_shard", spec_a, out)
    assert not speculate.take("sweep.step_sweep_shard", spec_a, out)  # a second job computes
    assert speculate.take("sweep.step_sweep_shard", spec_b, out)


def test_stored_data_is_read_not_speculated(tmp_path, planned):
    config = planned(GRID)
    (dkey, spec), = config["data"].items()
    bars = tmp_path / store_layout.data_files(dkey)[0]
    step_load_data(spec, str(bars))
    speculate_all(config, tmp_path)
    assert {step for step, _ in speculate._DONE} == {"sweep.step_sweep_shard"}
    assert len(speculate._DONE) == len(config["shards"])


def test_a_failing_shard_stops_the_speculation(tmp_path, planned):
    config = planned(GRID)
    first = next(iter(config["shards"]))
    config["shards"][first] = {**config["shards"][first], "strategy": "no_such_strategy"}
    speculate_all(config, tmp_path)
    assert {step for step, _ in speculate._DONE} == {"step_load_data"}  # the shard fails when it runs


def test_speculation_does_not_fire_the_test_pause_points(tmp_path, planned, monkeypatch):
    """``step_sweep_shard#n`` counts the shards the request starts: computing ahead is not one."""
    config = planned(GRID)
    gate = tmp_path / "gate"
    gate.write_text("")  # a pause that would return at once, leaving <gate>.reached
    points = ",".join(f"{p}:{gate}" for p in ("step_load_data", "sweep.step_sweep_shard"))
    monkeypatch.setenv("QUANTLAB_TEST_PAUSE_AT", points)
    speculate_all(config, tmp_path / "spec")
    assert len(speculate._DONE) == 1 + len(config["shards"])
    assert not list(tmp_path.glob("gate.*"))


def test_shards_stop_being_computed_ahead_once_snakemake_asks(tmp_path, planned, monkeypatch):
    """The data and the first shard are computed ahead in any case; further shards only until a
    job request is waiting (then they run as jobs, reporting their progress)."""
    config = planned(GRID)
    monkeypatch.setattr(speculate, "_WAITING", [lambda: True])
    speculate_all(config, tmp_path)
    assert sorted(step for step, _ in speculate._DONE) == ["step_load_data", "sweep.step_sweep_shard"]
    speculate.discard()
    monkeypatch.setattr(speculate, "_WAITING", [lambda: False])
    speculate_all(config, tmp_path)
    assert len(speculate._DONE) == 1 + len(config["shards"])


def test_a_short_grid_is_computed_ahead_whole_board_included(tmp_path, planned, monkeypatch):
    """With ``board`` (a short grid sweep) every shard and then the board's merge are computed
    ahead even while Snakemake asks; the merge step takes the board's files (byte for byte what
    it writes itself: leaderboard, heatmap, robustness pictures), once, and the scratch empties."""
    from quantlab.commands.sweep.board import attach_board
    from quantlab.commands.sweep.steps import step_merge_leaderboard

    config = planned(GRID)
    run_id, = config["requests"]
    board_dir = str(Path(attach_board(config, run_id)).parent)
    record = config["requests"][run_id]
    plain = run_steps(config, tmp_path / "plain", threads=1)
    monkeypatch.chdir(tmp_path / "plain")  # the rule's workdir: the merge re-reads the bars by their store path
    step_merge_leaderboard(record, [str(plain[p]) for p in record["grid"]["shards"]], str(tmp_path / "plain" / board_dir))
    written = sorted(p.name for p in (tmp_path / "plain" / board_dir).iterdir())
    assert {"pbo_logits.png", "is_vs_oos.png", "board.json"} <= set(written)

    spec_root = tmp_path / "spec"
    monkeypatch.setattr(speculate, "_WAITING", [lambda: True])  # Snakemake asks at once: no matter
    speculate.speculate_sweep(str(spec_root), dict(config["data"]), dict(config["shards"]), 2, (board_dir, record))
    assert len(speculate._DONE) == 1 + len(config["shards"]) + 1
    assert os.getcwd() == str(tmp_path / "plain")  # the view directory was left
    taken = run_steps(config, spec_root, threads=1)
    out = spec_root / board_dir
    step_merge_leaderboard(record, [str(taken[p]) for p in record["grid"]["shards"]], str(out))
    assert not speculate._DONE
    assert sorted(p.name for p in out.iterdir()) == written
    for name in written:
        assert (out / name).read_bytes() == (tmp_path / "plain" / board_dir / name).read_bytes(), name
    scratch = spec_root / speculate.SCRATCH / str(os.getpid())
    assert not list(scratch.rglob("*.*"))
    assert not speculate.take_dir("sweep.step_merge_leaderboard", speculate.board_ident(record), str(out),
                                  "board.json")  # taken once


def test_a_board_already_in_the_store_is_not_computed_ahead(tmp_path, planned):
    from quantlab.commands.sweep.board import attach_board

    config = planned(GRID)
    run_id, = config["requests"]
    board_json = attach_board(config, run_id)
    (tmp_path / board_json).parent.mkdir(parents=True)
    (tmp_path / board_json).write_text("{}")
    speculate.speculate_sweep(str(tmp_path), dict(config["data"]), dict(config["shards"]), 2,
                              (str(Path(board_json).parent), config["requests"][run_id]))
    assert {step for step, _ in speculate._DONE} == {"step_load_data", "sweep.step_sweep_shard"}


def test_a_grid_computed_whole_is_planned_in_shards_of_whole_shard_work(tmp_path, monkeypatch):
    """A short grid (computed ahead whole) gets shards of up to WHOLE_SHARD_WORK estimated
    bar-combos, a longer one shards of WORK_PER_SHARD, at most two per core; a hint wins."""
    from quantlab.commands.sweep import plan

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))

    def shards(params, cores=2):
        exp = load_experiment(params, resolve_path=resolve_input_path)
        return len(plan_sweep(exp, params, request_id=None, warnings=[], origin="json", claim=False,
                              cores=cores).config["shards"])

    big = {**GRID, "param_grid": {"fast": list(range(2, 42)), "slow": list(range(50, 75))}}  # 1,000 combos
    assert plan.computed_whole("grid", 1000 * 1096)
    assert shards(big) == 1
    monkeypatch.setattr(plan, "WHOLE_SHARD_WORK", 300_000)
    assert shards(big) == 4  # 1,096,000 estimated bar-combos / 300,000
    assert shards({**big, "shards": 2}) == 2
    monkeypatch.setattr(plan, "SPECULATE_ALL_WORK", 100_000)  # no longer computed whole
    monkeypatch.setattr(plan, "WORK_PER_SHARD", 300_000)
    assert not plan.computed_whole("grid", 1000 * 1096)
    assert shards(big, cores=1) == 2  # ceil(1,096,000 / WORK_PER_SHARD) = 4, capped at 2 x cores
