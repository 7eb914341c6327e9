"""Speculative run steps: the step worker computes a run's chain while the parent starts Snakemake.

A cold ``run`` spends ~0.4 s importing Snakemake and building its DAG in the parent while the
pre-forked step worker (commands/worker.py), once its imports are done, waits. The worker uses
that time to run the chain's steps itself (load_data, signals, simulate, score, plot: the very
step functions, unchanged) into a private scratch directory, ``<internal>/speculative/<pid>/``.
When Snakemake then asks for a step whose spec was computed, the step moves the speculated
files onto its outputs (one rename each, same filesystem) instead of computing them again.

Why this is exact: every step's outputs are a function of its spec alone (the spec names its
inputs' content keys; the store is content-addressed), so a file computed ahead from the same
spec is the file the step would write. Only Snakemake decides which steps run, under the
request's key locks, and only a step that runs moves a file into the store. What speculation may
not do: touch the network (the yfinance loader is refused for its duration: such a run simply
is not speculated), write outside its scratch directory, or let a failure escape (a step that
fails while speculating is left to fail again, and be reported, when it really runs). The test
hooks' ``pause`` points are not called while speculating. Scratch directories go when the worker
ends; one left by a killed worker is removed by the next speculation once its pid is gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SCRATCH = "speculative"  # under the internal root
_DONE: dict[tuple[str, str], list[str]] = {}  # (step name, spec hash) -> the speculated output files
_SCRATCH_DIR: list[Path] = []


def _key(step: str, spec: dict) -> tuple[str, str]:
    from quantlab.artifacts.provenance import canonical_hash

    return step, canonical_hash(spec)


def take(step: str, spec: dict, outputs: tuple) -> bool:
    """Move the speculated files of ``step(spec)`` onto ``outputs`` (their mtime set to now, as
    if written now). False (nothing moved) when there are none, and after a failed move: the
    step then computes its outputs as usual."""
    if not _DONE or any(out is None for out in outputs):
        return False
    files = _DONE.pop(_key(step, spec), None)
    if files is None or len(files) != len(outputs):
        return False
    try:
        for src, dst in zip(files, outputs):
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            os.utime(dst)
    except OSError:
        return False
    return True


def _sweep_stale(root: Path) -> None:
    """Remove scratch directories whose worker is gone (killed with its request)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            os.kill(int(entry.name), 0)
            continue  # a live worker's
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def discard() -> None:
    """The worker ends: drop its scratch directory (files no step took)."""
    _DONE.clear()
    while _SCRATCH_DIR:
        shutil.rmtree(_SCRATCH_DIR.pop(), ignore_errors=True)


def speculate_run(internal: str, keys: dict, data_spec: dict, signals_spec: dict, sim_spec: dict) -> None:
    """Run a run chain's steps into the scratch directory, recording what each produced; a step
    whose outputs the store already holds is not run (later steps read the store's files). Stops
    at the first step that fails (or would need the network)."""
    from quantlab import store_layout
    from quantlab.commands.run import steps
    from quantlab.data import loader

    root = Path(internal) / SCRATCH
    _sweep_stale(root)
    scratch = root / str(os.getpid())
    scratch.mkdir(parents=True, exist_ok=True)
    _SCRATCH_DIR.append(scratch)
    stored = [*store_layout.data_files(keys["data"]), *store_layout.signals_files(keys["signals"]),
              *store_layout.sim_files(keys["sim"])]
    f = {Path(p).name: str(Path(internal) / p) for p in stored}  # file name -> its store path
    bars, signals = Path(stored[0]).name, Path(stored[1]).name
    # SIM_FILES order: simulate's three outputs, then score's and plot's (a change fails loudly here)
    equity, trades, csv, metrics, png = (Path(p).name for p in store_layout.sim_files(keys["sim"]))
    chain = [  # (step, spec, input names, output names): the rules' inputs and outputs
        ("step_load_data", data_spec, (), (bars,)),
        ("step_signals", signals_spec, (bars,), (signals,)),
        ("step_simulate", sim_spec, (bars, signals), (equity, trades, csv)),
        ("step_score", sim_spec, (equity, trades), (metrics,)),
        ("step_plot", sim_spec, (equity,), (png,)),
    ]
    download = loader._load_yfinance

    def refuse(*args, **kwargs):
        raise _NoNetwork

    loader._load_yfinance = refuse  # the worker is single-threaded while it prefetches
    try:
        for name, spec, inputs, outputs in chain:
            if all(os.path.exists(f[o]) for o in outputs):
                continue  # in the store already: its files are the next steps' inputs
            for o in outputs:
                f[o] = str(scratch / o)
            fn = getattr(steps, name).__wrapped__  # the step itself: no worker hand-off, no pause
            fn(spec, *(f[i] for i in inputs), *(f[o] for o in outputs))
            _DONE[_key(name, spec)] = [f[o] for o in outputs]
    except Exception:  # noqa: BLE001 - the step fails again, and is reported, when it really runs
        pass
    finally:
        loader._load_yfinance = download


class _NoNetwork(Exception):
    """Speculation would have downloaded data: not done ahead."""
