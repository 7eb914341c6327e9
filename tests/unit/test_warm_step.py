"""Step functions are plain decorated functions the rules import (no string names); the warm
worker runs a decorated call in its child when one is active, in-process otherwise, and the test
hook fires right before the step under the same point name either way."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from quantlab.commands import basket
from quantlab.commands.portfolio import steps as portfolio
from quantlab.commands.forward import steps as forward
from quantlab.commands.sweep import steps as sweep
from quantlab.commands.run import steps as run
from quantlab.commands.worker import StepFailed, StepWorker

ROOT = Path(__file__).resolve().parents[2]
STEPS = {
    run: ["step_load_data", "step_signals", "step_simulate", "step_score", "step_plot", "step_publish",
          "step_publish_paper", "step_refresh_index"],
    sweep: ["step_sweep_shard", "step_merge_leaderboard", "step_wf_select", "step_wf_test",
            "step_merge_walkforward", "step_publish_sweep"],
    forward: ["step_forward_session"],
    basket: ["step_basket_legs"],
    portfolio: ["step_portfolio_mode", "step_publish_portfolio"],
}


def test_every_step_is_decorated_and_keeps_its_point_name():
    for module, names in STEPS.items():
        command = module.__name__.split(".")[2]  # quantlab.commands.<command>[.steps]
        prefix = "" if module is run else command + "."
        for name in names:
            fn = getattr(module, name)
            assert fn.step_name == prefix + name
            assert fn.__wrapped__.__name__ == name


def test_rules_call_imported_step_functions_not_strings():
    called, imported = set(), set()
    for path in sorted((ROOT / "workflow").rglob("*.smk")) + [ROOT / "workflow" / "Snakefile"]:
        text = path.read_text()
        assert "run_step" not in text, f"{path.name} still calls a step by its string name"
        called |= set(re.findall(r"^\s+(step_[a-z_]+)\(", text, flags=re.M))
        for grouped, single in re.findall(r"^from quantlab\.commands\.[\w.]+ import (?:\(([^)]*)\)|([\w, ]+)$)", text,
                                          flags=re.M):
            imported |= {n.strip() for n in (grouped or single).split(",") if n.strip()}
    assert called == {n for names in STEPS.values() for n in names}
    assert called <= imported


def _pause_env(monkeypatch, tmp_path: Path, point: str) -> Path:
    gate = tmp_path / "gate"
    gate.touch()  # already open: the hook records who reached it and goes on
    monkeypatch.setenv("QUANTLAB_TEST_PAUSE_AT", f"{point}:{gate}")
    return Path(f"{gate}.reached")


def test_without_a_worker_the_step_runs_in_process_after_the_hook(monkeypatch, tmp_path):
    reached = _pause_env(monkeypatch, tmp_path, "sweep.step_merge_leaderboard")
    out = tmp_path / "board"
    record = {"grid": {"combo_keys": []}, "combos": [], "labels": [], "sort_by": ["sharpe_simple"],
              "ascending": [False], "grid_keys": [], "strategy": "sma_crossover",
              "base": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}}
    sweep.step_merge_leaderboard(record, [], str(out))
    assert int(reached.read_text()) == os.getpid()
    assert (out / "board.json").read_text().strip().startswith("{")


def test_with_a_worker_the_step_runs_in_the_warm_child(monkeypatch, tmp_path):
    reached = _pause_env(monkeypatch, tmp_path, "step_load_data")
    with StepWorker(log_path=str(tmp_path / "worker.log")) as worker:
        with pytest.raises(StepFailed):
            run.step_load_data({}, str(tmp_path / "bars.parquet"))  # a bad spec fails inside the child
        assert int(reached.read_text()) == worker.pid != os.getpid()


def test_a_worker_forked_before_planning_runs_steps_once_started(monkeypatch, tmp_path):
    """A deferred worker (a sweep's, forked before its plan exists) waits for :meth:`start`: then
    its output goes to the request's log and its steps run in the child, as a worker forked late."""
    reached = _pause_env(monkeypatch, tmp_path, "step_load_data")
    log = tmp_path / "logs" / "worker.log"
    with StepWorker(deferred=True) as worker:
        worker.start(str(log), None)
        with pytest.raises(StepFailed):
            run.step_load_data({}, str(tmp_path / "bars.parquet"))
        assert int(reached.read_text()) == worker.pid != os.getpid()
    assert log.exists()


def test_an_abandoned_early_worker_is_gone_at_once():
    """A request that runs no step here (dry run, identical rerun, failed plan) ends its early
    worker without waiting for its imports: the child is reaped, no process is left."""
    import signal

    worker = StepWorker(deferred=True, warm_numba=True)
    worker.abandon()
    assert os.WIFSIGNALED(worker.status) and os.WTERMSIG(worker.status) == signal.SIGKILL  # not after imports
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)
    worker.abandon()  # twice is harmless


def test_a_shard_runs_on_the_threads_its_rule_was_granted(monkeypatch, tmp_path):
    import quantlab.data
    from quantlab.metric_registry import metric_names

    seen = []
    monkeypatch.setattr(quantlab.data, "read_bars", lambda path: [])
    monkeypatch.setattr(sweep, "_evaluate", lambda bars, spec, combos, threads=None, keep_returns=False:
                        seen.append(threads) or {name: np.zeros(0) for name in metric_names()})
    for summarised in (False, True):  # without and with the robustness summary
        spec = {"combos": [], "combo_keys": [], "returns": summarised}
        sweep.step_sweep_shard(spec, "bars", str(tmp_path / f"s{summarised}.parquet"),
                               str(tmp_path / f"s{summarised}.json"), threads=1)
    assert seen == [1, 1]
    monkeypatch.setenv("QUANTLAB_SWEEP_THREADS", "3")
    assert sweep.shard_threads() == 3


def test_every_module_the_worker_warms_exists():
    """The worker skips a module it cannot import; a moved module must not drop out silently."""
    import importlib.util

    from quantlab.commands.worker import WARM_MODULES

    assert [m for m in WARM_MODULES if importlib.util.find_spec(m) is None] == []



def test_the_worker_is_released_after_the_final_step_and_later_steps_run_here(monkeypatch, tmp_path):
    """After the request's last step (its index) the child reads EOF and exits at once -- its exit
    overlaps the parent's wrap-up -- and a step called after that runs in this process."""
    import threading

    from quantlab.commands import worker as worker_module

    assert "step_refresh_index" in worker_module.FINAL_STEPS
    monkeypatch.setattr(worker_module, "FINAL_STEPS", frozenset({"step_last"}))
    monkeypatch.setattr(worker_module, "resolve_step", lambda name: lambda: os.getpid())  # the child inherits it
    with StepWorker(log_path=str(tmp_path / "worker.log")) as worker:
        assert worker.call("step_first") == worker.pid != os.getpid()
        assert not worker.released
        assert worker.call("step_last") == worker.pid
        assert worker.released
        reaped = threading.Thread(target=os.waitpid, args=(worker.pid, 0), daemon=True)
        reaped.start()
        reaped.join(timeout=30)  # a guard, not a race: a released child exits without being closed
        assert not reaped.is_alive(), "the released worker did not exit"
        assert worker.call("step_after") == os.getpid()  # in this process now


def test_every_module_a_big_run_imports_later_exists():
    import importlib.util

    from quantlab.commands.imports_ahead import LATER_MODULES

    assert [m for ms in LATER_MODULES.values() for m in ms if importlib.util.find_spec(m) is None] == []


def _gc_state(*args):
    import gc

    return gc.get_freeze_count(), gc.isenabled()


@pytest.mark.parametrize("deferred", [False, True])
def test_the_workers_imports_are_frozen_out_of_the_collectors_sight(monkeypatch, tmp_path, deferred):
    """What the worker imported before its steps is frozen (gc.freeze: full collections in a big
    run's chain no longer scan numba's and pyarrow's objects), and the collector is on for the steps."""
    import gc

    monkeypatch.setattr(run, "step_load_data", _gc_state)  # the child, forked now, runs this as the step
    here = gc.get_freeze_count()
    with StepWorker(log_path=str(tmp_path / "worker.log"), deferred=deferred) as worker:
        if deferred:
            worker.start(str(tmp_path / "worker.log"), None)
        frozen, enabled = worker.call("step_load_data")
    assert frozen > here + 1000 and enabled
    assert gc.get_freeze_count() == here and gc.isenabled()


def test_a_big_runs_kernel_warm_up_is_frozen_too(monkeypatch):
    """The kernels' warm-up (and numba's import, when the plan came first) runs with the
    collector off and ends frozen, on the prefetch path the worker takes."""
    import gc

    from quantlab.commands import warmup

    seen = []
    monkeypatch.setattr(warmup, "warm_run_kernels", lambda *a: seen.append(gc.isenabled()))
    monkeypatch.setattr(run, "prefetch_data", lambda spec: None)
    before = gc.get_freeze_count()
    junk = [[i] for i in range(5000)]  # tracked objects the freeze takes
    warmup.prefetch_run({"source": "synthetic"}, {}, {}, True)
    assert seen == [False] and gc.isenabled() and gc.get_freeze_count() >= before + len(junk)
