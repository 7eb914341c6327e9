"""Speculative steps: the step worker computes a request's chain while the parent starts Snakemake.

A cold ``run`` or ``sweep`` spends ~0.4 s importing Snakemake and building its DAG in the parent
while the pre-forked step worker (commands/worker.py), once its imports are done, waits. The
worker uses that time to run the request's steps itself -- a run's load_data, signals, simulate,
score and plot; a sweep's load_data steps and its new shards -- (the very step functions,
unchanged) into a private scratch directory, ``<internal>/speculative/<pid>/``. When Snakemake
then asks for a step whose spec was computed, the step moves the speculated files onto its
outputs (one rename each, same filesystem) instead of computing them again.

Why this is exact: every step's outputs are a function of its spec alone (the spec names its
inputs' content keys; the store is content-addressed), so a file computed ahead from the same
spec is the file the step would write; a speculated result is keyed by the step's name and the
spec's canonical hash, and taken (popped) once, by the job with that spec. Only Snakemake decides
which steps run, under the request's key locks, and only a step that runs moves a file into the
store; a step with nothing speculated computes as usual. What speculation may not do: touch the
network (the yfinance loader is refused for its duration: such a chain simply is not
speculated), write outside its scratch directory, or let a failure escape (a step that fails
while speculating is left to fail again, and be reported, when it really runs). The test hooks'
``pause`` points are not called while speculating. Scratch directories go when the worker ends;
one left by a killed worker is removed by the next speculation once its pid is gone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from pathlib import Path
from typing import NamedTuple

SCRATCH = "speculative"  # under the internal root
_DONE: dict[tuple[str, str], list[str]] = {}  # (step name, spec hash) -> the speculated output files
_SCRATCH_DIR: list[Path] = []
_WAITING: list = []  # the worker's "a request is waiting" check (commands/worker.py)


def yield_to(waiting) -> None:
    """Register the worker's check for a pending request: a sweep stops computing shards ahead
    once Snakemake asks for a job, so the remaining shards run as jobs (with their progress)."""
    _WAITING[:] = [waiting]


class Step(NamedTuple):
    """One step of a chain to compute ahead, as its rule calls it: ``fn(spec, *inputs, *outputs,
    **kwargs)`` with store-relative paths; ``implicit``: files the step writes beside its outputs
    (a shard's robustness summary), taken with them."""

    name: str  # the worker's step name: "step_load_data", "sweep.step_sweep_shard"
    spec: dict
    inputs: tuple
    outputs: tuple
    implicit: tuple = ()
    kwargs: dict = {}
    on_thread: bool = False  # computed on a thread beside the steps after it (none of them reads its files)
    into_dir: str | None = None  # outputs = (a store directory,), this file in it marks it complete;
    # the step is called ``fn(spec, [inputs], directory)`` (a grid board's merge)
    ident: dict | None = None  # what keys the result when not the spec (a board: its content key)
    reads: tuple = ()  # store-relative files an ``into_dir`` step opens by relative path (the rule's
    # workdir, the internal root: a board's robustness statistics re-read the bars); it runs in a
    # view directory holding them (hard links to the computed-ahead or stored files)


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


def take_dir(step: str, ident: dict, out_dir: str, marker: str) -> bool:
    """Move the files a speculated ``into_dir`` step (keyed by ``ident``) wrote into ``out_dir``
    (``marker``, which marks the directory complete, last). False when nothing was speculated,
    and after a failed move (the step then computes and writes every file again)."""
    if not _DONE:
        return False
    files = _DONE.pop(_key(step, ident), None)
    if files is None:
        return False
    (scratch,) = files
    try:
        names = sorted(os.listdir(scratch), key=lambda name: name == marker)
        if marker not in names:
            return False
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for name in names:
            dst = os.path.join(out_dir, name)
            os.replace(os.path.join(scratch, name), dst)
            os.utime(dst)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _view(root: Path, files: dict):
    """The current directory is ``root``, where each store-relative path of ``files`` is a hard
    link to its file (a symbolic one across filesystems), for the duration (the worker runs
    nothing else meanwhile); removed after."""
    for rel, src in files.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                os.symlink(os.path.abspath(src), dst)
    root.mkdir(parents=True, exist_ok=True)
    before = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)
        shutil.rmtree(root, ignore_errors=True)


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


class _Beside:
    """Work on a thread beside the chain: the warm-up while the chain's first step computes
    (numba's import and kernel loads hold the GIL; generating and writing the data mostly does
    not), run here instead when that step has nothing to compute; or a step marked ``on_thread``.
    A failure is ignored: the steps that need the work do it themselves when they really run."""

    def __init__(self, work):
        self.work, self.thread = work, None

    def _run(self) -> None:
        try:
            self.work()
        except Exception:  # noqa: BLE001 - see the class docstring
            pass

    def start(self) -> None:
        if self.work is not None and self.thread is None:
            import threading

            self.thread = threading.Thread(target=self._run, name="quantlab-warm", daemon=True)
            self.thread.start()

    def finish(self) -> None:
        if self.thread is not None:
            self.thread.join()
        elif self.work is not None:
            self._run()
        self.work = None


def speculate(internal: str, chain: list[Step], yield_after: int | None = None, beside_first=None,
              read_back: bool = False) -> None:
    """Run ``chain``'s steps into the scratch directory, recording what each produced; a step
    whose files the store already holds is not run (later steps read the store's files). Stops
    at the first step that fails (or would need the network) and, with ``yield_after``, before
    any step past that many once a request is waiting (:func:`yield_to`). ``beside_first``: a
    warm-up the second step needs, run on a thread while the first one computes (:class:`_Beside`).
    ``read_back``: each step reads the tables the previous ones have just written from memory
    (``columnar.remembering``; a run chain: a sweep's would keep every data window's bars)."""
    from quantlab.artifacts.beside import late_writes
    from quantlab.columnar import remembering
    from quantlab.commands.worker import resolve_step
    from quantlab.data import loader

    root = Path(internal) / SCRATCH
    _sweep_stale(root)
    scratch = root / str(os.getpid())
    scratch.mkdir(parents=True, exist_ok=True)
    _SCRATCH_DIR.append(scratch)
    made: dict[str, str] = {}  # store-relative path -> its speculated file

    def path(rel: str) -> str:  # flat names in the scratch directory; a shard's implicit
        return str(scratch / rel.replace("/", "~"))  # summary file keeps its place beside its parquet

    download = loader._load_yfinance

    def refuse(*args, **kwargs):
        raise _NoNetwork

    loader._load_yfinance = refuse  # only the chain loads data while the worker prefetches
    late: list = []  # (a step's late writes, its files): done once they are written

    def compute(step: Step, inputs: list) -> None:
        files = [path(p) for p in (*step.outputs, *step.implicit)]
        with late_writes() as pending:  # a late write (trades.csv) goes on beside the next steps
            resolve_step(step.name)(step.spec, *inputs, *(path(p) for p in step.outputs), **step.kwargs)
        made.update((p, path(p)) for p in (*step.outputs, *step.implicit))
        if pending:
            late.append((step, pending, files))
        else:
            _DONE[_key(step.name, step.spec)] = files

    def wait_late() -> None:
        while late:
            step, pending, files = late.pop(0)
            try:
                for writes in pending:
                    writes.wait()
            except Exception:  # noqa: BLE001 - not done: the step computes when it really runs
                continue
            _DONE[_key(step.name, step.spec)] = files

    warm = _Beside(beside_first)
    aside: list[_Beside] = []  # the steps computing on threads
    try:
        with remembering() if read_back else contextlib.nullcontext():
            for i, step in enumerate(chain):
                if i == 1:
                    warm.finish()
                if yield_after is not None and i >= yield_after and _WAITING and _WAITING[0]():
                    break  # Snakemake is asking: the remaining steps run as its jobs
                files = (*step.outputs, *step.implicit)
                inputs = [made.get(p) or str(Path(internal) / p) for p in step.inputs]
                if step.into_dir is not None:  # a directory of files (a board), complete when it has its marker
                    (directory,) = step.outputs
                    if not os.path.exists(Path(internal) / directory / step.into_dir):
                        os.makedirs(path(directory))
                        with _view(scratch / "view", {rel: made.get(rel) or str(Path(internal) / rel)
                                                      for rel in step.reads}):
                            resolve_step(step.name)(step.spec, inputs, path(directory), **step.kwargs)
                        _DONE[_key(step.name, step.ident or step.spec)] = [path(directory)]
                    continue
                if all(os.path.exists(Path(internal) / p) for p in files):
                    continue  # in the store already: its files are the next steps' inputs
                if i == 0:
                    warm.start()
                if step.on_thread:
                    aside.append(_Beside(functools.partial(compute, step, inputs)))
                    aside[-1].start()
                else:
                    compute(step, inputs)
            for task in aside:
                task.finish()
    except Exception:  # noqa: BLE001 - the step fails again, and is reported, when it really runs
        pass
    finally:
        for task in (warm, *aside):
            task.finish()
        wait_late()
        loader._load_yfinance = download


def speculate_run(internal: str, keys: dict, data_spec: dict, signals_spec: dict, sim_spec: dict,
                  warm=None) -> None:
    """A run chain's steps (the rules' inputs and outputs), computed ahead; ``warm`` (the
    kernels' warm-up) on a thread while the data step computes."""
    from quantlab import store_layout

    bars, = store_layout.data_files(keys["data"])
    signals, = store_layout.signals_files(keys["signals"])
    # SIM_FILES order: simulate's three outputs, then score's and plot's (a change fails loudly here)
    equity, trades, csv, metrics, png = store_layout.sim_files(keys["sim"])
    speculate(internal, [
        Step("step_load_data", data_spec, (), (bars,)),
        Step("step_signals", signals_spec, (bars,), (signals,)),
        Step("step_simulate", sim_spec, (bars, signals), (equity, trades, csv)),
        Step("step_plot", sim_spec, (equity,), (png,), on_thread=True),  # beside score (PNG encoding frees the GIL)
        Step("step_score", sim_spec, (equity, trades), (metrics,)),
    ], beside_first=warm, read_back=True)


def speculate_sweep(internal: str, data: dict, shards: dict, threads: int, board: tuple | None = None) -> None:
    """A sweep's load_data steps (``data``: content key -> spec) then its new shards (``shards``:
    shard key -> the full planned spec) on ``threads`` threads, computed ahead: the data and the
    first shard always, further shards until Snakemake asks for a job (a long sweep then reports
    its shards' progress as they finish). With ``board`` = ``(board directory, request record)``
    (a short grid sweep, ``commands/sweep/plan.py`` ``computed_whole``) every shard and then the
    board's merge are computed ahead, whether or not Snakemake asks meanwhile."""
    from quantlab import store_layout
    from quantlab.store_layout import BOARD_FILES

    chain = [Step("step_load_data", spec, (), tuple(store_layout.data_files(dkey))) for dkey, spec in data.items()]
    for shard, spec in shards.items():
        parquet, sidecar, summary = store_layout.shard_files(spec["family"], shard)
        chain.append(Step("sweep.step_sweep_shard", spec, tuple(store_layout.data_files(spec["data"])),
                          (parquet, sidecar), (summary,), {"threads": threads}))
    if board is None:
        speculate(internal, chain, yield_after=len(data) + 1)
        return
    directory, record = board
    reads = tuple(p for dkey in record.get("data_keys", ()) for p in store_layout.data_files(dkey))
    chain.append(Step("sweep.step_merge_leaderboard", record, tuple(record["grid"]["shards"]), (directory,),
                      into_dir=BOARD_FILES[0], ident=board_ident(record), reads=reads))
    speculate(internal, chain)


def board_ident(record: dict) -> dict:
    """What keys a speculated board: its content key (``commands/sweep/board.py`` ``board_key``)."""
    return {"board": record.get("board")}


class _NoNetwork(Exception):
    """Speculation would have downloaded data: not done ahead."""
