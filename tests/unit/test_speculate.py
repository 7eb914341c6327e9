"""Speculative run steps (commands/speculate.py): what the step worker computes ahead is, byte for
byte, what the steps write; a step takes it by a rename; nothing is fetched from the network,
nothing in the store is recomputed, and scratch directories do not outlive their worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from quantlab import store_layout
from quantlab.commands import speculate
from quantlab.commands.run import steps
from quantlab.commands.run.plan import plan_run
from quantlab.data import loader

RUNS = [
    {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01"},
    {"ticker": "SYN", "source": "synthetic", "interval": "1h", "start": "2020-01-01", "end": "2020-03-01",
     "allow_short": True, "strategy": "sma_crossover", "stop_loss": 0.01},
]


def chain(plan, root: Path):
    """The run chain's step calls with their store outputs under ``root`` (as the rules make them)."""
    k = plan.keys
    data = store_layout.data_files(k["data"])[0]
    sig = store_layout.signals_files(k["signals"])[0]
    sim = {Path(p).name: p for p in store_layout.sim_files(k["sim"])}
    r = {name: str(root / p) for name, p in [("bars", data), ("signals", sig)] + list(sim.items())}
    return [
        (steps.step_load_data, plan.specs["data"], [r["bars"]]),
        (steps.step_signals, plan.specs["signals"], [r["bars"], r["signals"]]),
        (steps.step_simulate, plan.specs["sim"], [r["bars"], r["signals"], r["equity.parquet"],
                                                  r["trades.parquet"], r["trades.csv"]]),
        (steps.step_score, plan.specs["sim"], [r["equity.parquet"], r["trades.parquet"], r["metrics.json"]]),
        (steps.step_plot, plan.specs["sim"], [r["equity.parquet"], r["equity.png"]]),
    ], r


@pytest.fixture
def planned(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    yield lambda params: plan_run(params, request_id=None, warnings=[], origin="json", claim=False)
    speculate.discard()


@pytest.mark.parametrize("params", RUNS)
def test_speculated_files_are_the_steps_files(tmp_path, planned, params):
    plan = planned(params)
    plain_root, spec_root = tmp_path / "plain", tmp_path / "spec"
    calls, plain = chain(plan, plain_root)
    for fn, spec, args in calls:
        fn(spec, *args)
    speculate.speculate_run(str(spec_root), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert len(speculate._DONE) == 5
    scratch = spec_root / speculate.SCRATCH / str(os.getpid())
    assert sorted(p.name for p in scratch.iterdir()) == sorted(p.replace("/", "~")[len(str(plain_root)) + 1:]
                                                               for p in plain.values())
    for p in scratch.iterdir():
        os.utime(p, (1, 1))  # computed long before the steps run
    calls, taken = chain(plan, spec_root)
    before = time.time()
    for fn, spec, args in calls:
        fn(spec, *args)  # each step takes its speculated files
    assert not speculate._DONE and not list(scratch.iterdir())
    for name, path in plain.items():
        assert Path(taken[name]).read_bytes() == Path(path).read_bytes(), name
        assert os.stat(taken[name]).st_mtime >= before - 1, f"{name} keeps the speculation's mtime"
    speculate.discard()
    assert not scratch.exists()


def test_a_step_without_a_speculated_result_computes(tmp_path, planned):
    plan = planned(RUNS[0])
    calls, r = chain(plan, tmp_path)
    assert not speculate.take("step_load_data", plan.specs["data"], (r["bars"],))
    fn, spec, args = calls[0]
    fn(spec, *args)
    assert Path(r["bars"]).stat().st_size > 0


def test_steps_in_the_store_are_not_speculated(tmp_path, planned):
    plan = planned(RUNS[0])
    calls, r = chain(plan, tmp_path)
    for fn, spec, args in calls[:2]:  # bars and signals stored by an earlier request
        fn(spec, *args)
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert sorted(step for step, _ in speculate._DONE) == ["step_plot", "step_score", "step_simulate"]


def test_speculation_never_downloads(tmp_path, planned, monkeypatch):
    plan = planned({"ticker": "NOT-A-SAMPLE", "start": "2017-01-01", "end": "2018-01-01"})  # auto -> yfinance
    called = []
    monkeypatch.setattr(loader, "_load_yfinance", lambda *a, **k: called.append(a))
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert not called and not speculate._DONE
    loader._load_yfinance("x")  # the real loader is back after the speculation
    assert called == [("x",)]


def test_a_failing_step_is_left_to_fail_when_it_runs(tmp_path, planned):
    plan = planned({"ticker": "SPX", "start": "1999-01-10", "end": "1999-03-01",  # the sample starts 1999-01-04
                    "strategy": "sma_crossover", "strategy_params": {"fast": 10, "slow": 500}})
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert "step_simulate" not in {step for step, _ in speculate._DONE}  # not enough bars: DataError later


def test_scratch_of_a_dead_worker_is_swept(tmp_path):
    root = tmp_path / speculate.SCRATCH
    dead, live = root / "999999999", root / str(os.getppid())
    for d in (dead, live):
        d.mkdir(parents=True)
        (d / "bars.parquet").write_bytes(b"x")
    speculate._sweep_stale(root)
    assert not dead.exists() and live.exists()


def _recording_warm(order: list):
    import threading

    def warm():
        order.append(("warm", threading.current_thread() is threading.main_thread()))
    return warm


def _record_step(monkeypatch, order: list, fn):
    inner = fn.__wrapped__

    def step(*args, **kwargs):
        order.append(fn.__name__)
        return inner(*args, **kwargs)
    monkeypatch.setattr(fn, "__wrapped__", step)


def test_the_kernels_warm_on_a_thread_beside_the_data_step(tmp_path, planned, monkeypatch):
    """A big run's kernel warm-up (commands/warmup.prefetch_run) runs on a thread while the data
    step computes, and has ended before the signals step starts; the results are the steps' own."""
    plan = planned(RUNS[1])
    order: list = []
    _record_step(monkeypatch, order, steps.step_signals)
    speculate.speculate_run(str(tmp_path / "spec"), plan.keys, plan.specs["data"], plan.specs["signals"],
                            plan.specs["sim"], warm=_recording_warm(order))
    assert order == [("warm", False), "step_signals"] and len(speculate._DONE) == 5


def test_with_the_data_in_the_store_the_warm_up_runs_here_first(tmp_path, planned, monkeypatch):
    plan = planned(RUNS[1])
    calls, r = chain(plan, tmp_path)
    fn, spec, args = calls[0]
    fn(spec, *args)
    order: list = []
    _record_step(monkeypatch, order, steps.step_signals)
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"],
                            warm=_recording_warm(order))
    assert order == [("warm", True), "step_signals"] and len(speculate._DONE) == 4


def test_a_failing_warm_up_leaves_the_chain_to_compute(tmp_path, planned):
    plan = planned(RUNS[1])

    def warm():
        raise RuntimeError("numba is broken")
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"],
                            warm=warm)
    assert len(speculate._DONE) == 5


@pytest.mark.parametrize("first", [False, True])
def test_a_big_run_warms_before_the_other_step_libraries(monkeypatch, first):
    """commands/worker._serve: a prefetch marked ``first`` (a big run's, orchestrate/plans.py)
    runs right away (WARM_MODULES is not imported: the steps import what they need); any other
    after the worker has imported WARM_MODULES."""
    from quantlab.commands import worker

    order = []
    monkeypatch.setattr(speculate, "_WAITING", [])  # _serve registers its pipe check there
    monkeypatch.setattr(worker, "_warm_imports", lambda: order.append("imports"))
    monkeypatch.setattr(worker, "step_function", lambda name: lambda *args: order.append(name))
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    os.close(req_w)  # no request: the worker serves nothing and returns
    try:
        worker._serve(req_r, rep_w, ("warmup.prefetch_run", (), True) if first else ("warmup.prefetch_run", ()))
    finally:
        for fd in (req_r, rep_r, rep_w):
            os.close(fd)
    assert order == (["warmup.prefetch_run"] if first else ["imports", "warmup.prefetch_run"])


def test_only_a_big_run_is_warmed_first(tmp_path, planned):
    from quantlab.orchestrate.plans import _run_prefetch

    big = planned({"ticker": "SYN", "source": "synthetic", "interval": "1m", "start": "2020-01-01", "end": "2021-01-01"})
    assert _run_prefetch(big.specs, big.keys)[2] is True
    assert _run_prefetch(planned(RUNS[0]).specs, planned(RUNS[0]).keys)[2] is False


def test_the_plot_computes_on_a_thread_and_its_failure_is_its_own(tmp_path, planned, monkeypatch):
    """step_plot is marked on_thread (it computes beside step_score); a failure there leaves only
    the plot to compute when its job runs."""
    import threading

    plan = planned(RUNS[1])
    seen = []

    def broken_plot(*args, **kwargs):
        seen.append(threading.current_thread() is threading.main_thread())
        raise RuntimeError("no font")
    monkeypatch.setattr(steps.step_plot, "__wrapped__", broken_plot)
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert seen == [False]
    assert sorted(step for step, _ in speculate._DONE) == ["step_load_data", "step_score", "step_signals",
                                                           "step_simulate"]


def test_trades_csv_is_written_beside_the_next_steps_and_a_failure_undoes_only_simulate(tmp_path, planned,
                                                                                       monkeypatch):
    """step_simulate's trades.csv is a late write (artifacts/beside.py): the chain goes on to the
    score and plot while it is formatted, and counts simulate as done only once it is written."""
    from quantlab.artifacts import trades_csv

    plan = planned(RUNS[1])

    def broken(col):
        raise RuntimeError("cannot format")
    monkeypatch.setattr(trades_csv, "trades_csv_text", broken)
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert sorted(step for step, _ in speculate._DONE) == ["step_load_data", "step_plot", "step_score",
                                                           "step_signals"]


def test_a_run_chain_reads_no_parquet_file_back(tmp_path, planned, monkeypatch):
    """Each step of a speculated run chain gets the tables the steps before it have just written
    from memory (columnar.remembering): no Parquet file is decoded, and the files are the steps'
    (test_speculated_files_are_the_steps_files)."""
    import pyarrow.parquet as pq

    plan = planned(RUNS[1])
    opened = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda path, *a, **k: opened.append(path) or real(path, *a, **k))
    speculate.speculate_run(str(tmp_path), plan.keys, plan.specs["data"], plan.specs["signals"], plan.specs["sim"])
    assert len(speculate._DONE) == 5 and opened == []
