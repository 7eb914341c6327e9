"""A pre-warmed step worker: run a request's workflow steps in a forked child process.

A cold ``run`` pays two big import bills: Snakemake's (~0.3 s) and the steps' own (numpy,
pyarrow, Pillow, the engine: ~0.15 s). They are independent, and the machine has two cores, so
``main.py`` forks this worker right after validating the request: the child imports the step
libraries while the parent imports Snakemake and builds the DAG. The rules call the step
functions directly (``from quantlab.commands.run.steps import step_load_data``); each step function is
decorated with :func:`warm_step`, which hands the call to the warm child over a pipe when a worker
is active in this process, and runs it in-process otherwise (e.g. under the plain ``snakemake``
CLI or a cluster executor).

Kill safety: the child asks the kernel to SIGKILL it when the parent dies
(``PR_SET_PDEATHSIG``), points its stdout/stderr at the request's log file, and closes every
inherited descriptor, so it never holds the caller's pipes or the parent's locks. It exits when
the parent closes the pipe.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import struct
import sys
import threading
import traceback
from typing import Any

from quantlab.commands.imports_ahead import import_all, kept_for_good
from quantlab.errors import ConfigError, DataError, QuantLabError, StrategyError

_HEADER = struct.Struct("!Q")
_ERRORS = {cls.__name__: cls for cls in (QuantLabError, ConfigError, DataError, StrategyError)}
_CURRENT: "StepWorker | None" = None

WARM_MODULES = (
    "numpy", "pyarrow", "pyarrow.parquet", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont", "PIL.PngImagePlugin",
    "filelock", "quantlab.data", "quantlab.engine", "quantlab.metrics", "quantlab.strategies",
    "quantlab.artifacts.plots", "quantlab.artifacts.runs_index", "quantlab.artifacts.catalog_sync", "sqlite3",
    "quantlab.registry.runs", "quantlab.commands.run.steps",
    "quantlab.commands.sweep.steps", "quantlab.engine.sweep", "quantlab.artifacts.heatmap", "yaml",
)


# what a prefetch needs first, by command: an early worker (``deferred``) imports these before it
# waits for its plan; its steps import the rest themselves
FIRST_MODULES = {
    "sweep": ("numpy", "pyarrow", "pyarrow.parquet", "quantlab.data", "quantlab.engine",
              "quantlab.engine.sweep", "quantlab.commands.sweep.steps"),
    "run": ("numpy", "pyarrow", "pyarrow.parquet", "quantlab.data", "quantlab.engine",
            "quantlab.commands.run.steps"),
}


# a request's last step (every workflow's target is its index marker): once it has replied, the
# worker is released (:meth:`StepWorker.call`), so its exit -- the kernel freeing a big run's ~0.5 GB
# -- overlaps Snakemake's wrap-up and the response instead of following them
FINAL_STEPS = frozenset({"step_refresh_index"})


class StepFailed(QuantLabError):
    """An unexpected exception inside a step that ran in the worker (exit 1)."""

    def __init__(self, message: str, error_type: str):
        super().__init__(message)
        self.error_type = error_type


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _recv(fd: int) -> Any:
    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = os.read(fd, left)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    (size,) = _HEADER.unpack(read_exact(_HEADER.size))
    return pickle.loads(read_exact(size))


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class StepWorker:
    """The parent's handle on the forked worker. ``deferred``: forked before the request is
    planned (a sweep or a big run, ``orchestrate/early.py``): the child imports the command's
    ``FIRST_MODULES`` (and with ``warm_numba`` starts numba) while the parent plans, then waits
    for :meth:`start` (its log and prefetch) or for :meth:`abandon` (the request needs no worker)."""

    def __init__(self, log_path: str | None = None, prefetch: tuple | None = None,
                 deferred: bool = False, warm_numba: bool = False, command: str = "sweep"):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        parent_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------------------ child
            try:
                _die_with_parent()
                if os.getppid() != parent_pid:
                    os._exit(0)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _isolate(log_path, keep={req_r, rep_w})
                if deferred:
                    _serve_deferred(req_r, rep_w, warm_numba, FIRST_MODULES[command])
                else:
                    _serve(req_r, rep_w, prefetch)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        self.pid = pid
        self._w, self._r = req_w, rep_r
        self._lock = threading.Lock()
        self._closed = False
        self.released = False  # its last step is done: further steps run in this process
        self.status: int | None = None  # the child's wait status, once reaped

    def start(self, log_path: str | None, prefetch: tuple | None) -> None:
        """A deferred worker's plan: its log, then its prefetch (sent on a thread: the message may
        not fit the pipe while the child still imports; the first :meth:`call` waits for it)."""
        self._lock.acquire()

        def send() -> None:
            try:
                _send(self._w, (log_path, prefetch))
            except OSError:
                pass  # the worker is gone: the first call says so
            finally:
                self._lock.release()
        threading.Thread(target=send, name="quantlab-worker-start", daemon=True).start()

    def abandon(self) -> None:
        """The request runs no step here (a dry run, an identical rerun, a failed plan): end the
        child now rather than after its imports."""
        if not self._closed:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.close()

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self.released:  # checked under the lock: its pipe is closed, maybe its fd reused
                status = "here"
            else:
                try:
                    _send(self._w, (name, args, kwargs, os.getcwd()))
                    status, payload = _recv(self._r)
                except (EOFError, OSError, BrokenPipeError) as exc:
                    raise QuantLabError(f"the step worker died while running {name} ({type(exc).__name__})") \
                        from None
        if status == "here":
            return step_function(name)(*args, **kwargs)
        if status == "ok":
            if name in FINAL_STEPS:
                self.release()
            return payload
        error_type, message, tb = payload
        cls = _ERRORS.get(error_type)
        if cls is not None:
            raise cls(message)
        err = StepFailed(message, error_type)
        err.worker_traceback = tb
        raise err

    def release(self) -> None:
        """No more steps for the child: close its request pipe, so it reads EOF and exits now
        (reaped by :meth:`close`); a step called after this runs in this process."""
        with self._lock:
            if not self.released:
                self.released = True
                try:
                    os.close(self._w)
                except OSError:
                    pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:  # a start message still being sent goes first
            pass
        for fd in (self._r,) if self.released else (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            pass

    def __enter__(self) -> "StepWorker":
        global _CURRENT
        _CURRENT = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _CURRENT
        _CURRENT = None
        self.close()


def _isolate(log_path: str | None, keep: set[int]) -> None:
    """Stdin from /dev/null, stdout/stderr to the log, every other inherited fd closed."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    _output_to(log_path, devnull)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _output_to(log_path: str | None, devnull: int | None = None) -> None:
    """The worker's stdout and stderr to the request's log (/dev/null without one)."""
    out = os.open(os.devnull, os.O_RDWR) if devnull is None else devnull
    if log_path:
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError:
            pass
    os.dup2(out, 1)
    os.dup2(out, 2)


def _warm_imports() -> None:
    with kept_for_good():
        import_all(WARM_MODULES)


def _serve_deferred(req_r: int, rep_w: int, warm_numba: bool, first_modules: tuple) -> None:
    """An early worker: the first imports (and numba's start, unless the plan is already here)
    while the parent plans, then its log and prefetch (:meth:`StepWorker.start`)."""
    import select

    with kept_for_good():
        import_all(first_modules)
        if warm_numba and not select.select([req_r], [], [], 0)[0]:
            from quantlab.commands.warmup import warm_numba_runtime

            warm_numba_runtime()
    try:
        log_path, prefetch = _recv(req_r)
    except (EOFError, OSError):
        return  # abandoned
    _output_to(log_path)
    _serve(req_r, rep_w, prefetch, warm_imports=False)


def _serve(req_r: int, rep_w: int, prefetch: tuple | None, warm_imports: bool = True) -> None:
    """``prefetch``: ``(step name, args)``, or ``(step name, args, True)`` for a warm-up on the
    critical path (a big run: numba and the chain right away; the steps left then import what
    they need themselves, WARM_MODULES is not imported). ``warm_imports=False``: a deferred
    worker, its first imports done; the steps import the rest themselves."""
    first = prefetch is not None and len(prefetch) > 2 and prefetch[2]
    if warm_imports and not first:
        _warm_imports()
    if prefetch is not None:  # warm in-process caches while the parent starts Snakemake
        import select

        from quantlab.commands import speculate

        speculate.yield_to(lambda: bool(select.select([req_r], [], [], 0)[0]))
        try:
            step_function(prefetch[0])(*prefetch[1])
        except Exception:  # the real step reports any problem
            pass

    try:
        _serve_requests(req_r, rep_w)
    finally:
        speculate = sys.modules.get("quantlab.commands.speculate")
        if speculate is not None:  # files computed ahead that no step took (commands/speculate.py)
            speculate.discard()


def _serve_requests(req_r: int, rep_w: int) -> None:
    while True:
        try:
            name, args, kwargs, cwd = _recv(req_r)
        except (EOFError, OSError):
            return
        try:
            os.chdir(cwd)  # rules pass paths relative to Snakemake's workdir (the parent's cwd)
            result = step_function(name)(*args, **kwargs)
            reply = ("ok", result)
        except BaseException as exc:  # reported to the parent, which decides the exit code
            message = str(exc) if isinstance(exc, QuantLabError) else \
                " ".join(f"{type(exc).__name__}: {exc}".split())
            reply = ("err", (type(exc).__name__, message, traceback.format_exc()))
        try:
            _send(rep_w, reply)
        except OSError:
            return


def _command_of(module: str) -> str:
    """``quantlab.commands.sweep.steps`` -> ``sweep``; ``quantlab.commands.basket`` -> ``basket``."""
    parts = module.split(".")
    return parts[parts.index("commands") + 1] if "commands" in parts[:-1] else parts[-1]


def step_name(fn) -> str:
    """The step's point name: ``step_x`` for the run command, ``<command>.step_y`` otherwise
    (the names the test hook ``quantlab.testhooks.pause`` and the worker protocol use)."""
    command = _command_of(fn.__module__)
    return fn.__name__ if command == "run" else f"{command}.{fn.__name__}"


def step_function(name: str):
    """``"step_x"`` -> quantlab.commands.run.steps.step_x; ``"sweep.step_y"`` ->
    quantlab.commands.sweep.steps.step_y (a command package keeps its steps in ``steps.py``; a
    one-module command in itself). Returns the undecorated function: this runs it here, in the
    worker or in-process."""
    from quantlab.testhooks import pause

    fn = resolve_step(name)
    pause(name)  # test-only: lets a test stop the request right before this step
    return fn


def resolve_step(name: str):
    """The undecorated step function of a step name (no test hook: commands/speculate.py)."""
    import importlib

    module, _, func = name.rpartition(".")
    if not func.startswith(("step_", "prefetch_")):
        raise ValueError(f"not a step function: {name}")
    home = importlib.import_module(f"quantlab.commands.{module or 'run'}")
    if hasattr(home, "__path__"):  # a command package
        home = importlib.import_module(f"{home.__name__}.steps")
    fn = getattr(home, func)
    return getattr(fn, "__wrapped__", fn)


def warm_step(fn):
    """Decorate a workflow step: in a process with an active :class:`StepWorker` the call runs in
    the warm child; otherwise it runs here. Either way the test hook ``pause(<step name>)`` fires
    right before the step, in the process that runs it. ``log=<path>`` (the rules pass their
    ``log[0]``) records a failure in that log (``commands.common.step_errors``), in this process."""
    name = step_name(fn)

    def call(args: tuple, kwargs: dict) -> Any:
        worker = _CURRENT
        if worker is not None:
            return worker.call(name, *args, **kwargs)
        return step_function(name)(*args, **kwargs)

    @functools.wraps(fn)
    def step(*args: Any, log: str | None = None, **kwargs: Any) -> Any:
        if log is None:
            return call(args, kwargs)
        from quantlab.commands.common import step_errors

        with step_errors(log):
            return call(args, kwargs)

    step.step_name = name
    return step
