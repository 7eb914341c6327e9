"""Size-aware dispatch of the kernels in :mod:`quantlab.engine.kernels`: pure Python or numba.

One source of truth, two execution modes. Each kernel is a plain Python function; this module
either calls it directly on ``list`` copies of its array arguments, or calls
``numba.njit(cache=True, nogil=True)`` of the same function on the arrays. numba is imported
lazily, the first time a workload is big enough to pay for it, so a small ``run`` never imports
it (nor does anything that merely imports this module).

``QUANTLAB_JIT`` = ``auto`` (default) | ``always`` | ``never`` forces either path; read at every
call, so tests can switch it with ``monkeypatch.setenv``.

Thresholds (``auto``), measured on the 2-core CI machine kind with
``benchmarks/bench_engine.py`` and a per-kernel timing script:

* pure Python: ``simulate_kernel`` on lists runs at ~0.18 us per bar (~0.3 us per bar for the
  whole ``simulate()`` call with ``tolist``/``np.array`` conversions); the indicator kernels at
  0.17-0.35 us per bar. A complete 5,000-bar ``run`` pipeline (RSI, SMA, ATR slippage,
  simulation, metrics) costs ~18 ms beyond the numpy import (13 ms of it importing
  ``quantlab.strategies``/``engine``/``metrics``), without ever importing numba.
* numba, cold process, on-disk cache warm: ``import numba`` ~0.12-0.24 s, then ~0.22 s of
  one-time initialisation at the first dispatch: ~0.37 s to the first result. Each further
  kernel loads from the cache in ~2-3 ms. Without a usable cache (first run after an install
  or an edit of ``kernels.py``) compilation adds ~0.1-1 s per kernel, once per machine.
* numba, kernel already loaded: ~1 us per call + ~0.003 us per bar; faster than Python even
  at 10 bars.

Hence three thresholds on the work of one call (bar-steps):

* ``COLD_THRESHOLD`` = 500,000 while no kernel has run under numba in this process. 0.37 s of
  numba start-up buys back ~0.75 us per bar of a whole run (RSI + ATR + simulation in Python),
  so it breaks even near 500k bars (near 1.2M for a lone kernel). Typical runs (250-5,000
  daily bars) stay far below and never import numba; a 20-50k threshold would make a
  50k-bar run pay ~370 ms of numba start-up to save ~15 ms of Python.
* ``LOADED_THRESHOLD`` = 10,000 once numba is initialised: only this kernel's ~2.5 ms cache
  load is left to pay, the price of ~10-15k bars of Python.
* ``WARM_THRESHOLD`` = 0 for a kernel that already ran under numba in this process.

Sweeps know their total work up front: they ask :func:`use_jit` with ``work`` = bars x combos
(and then call :func:`jitted` kernels directly, or :func:`call` with ``jit=True``).
"""

from __future__ import annotations

import os

from quantlab._lazy import np

from quantlab.errors import ConfigError

COLD_THRESHOLD = 500_000
LOADED_THRESHOLD = 10_000
WARM_THRESHOLD = 0

JIT_MODES = ("auto", "always", "never")

NO_REFCOUNT = ("quantlab.engine.kernels", "quantlab.artifacts.trades_csv_kernel")  # modules compiled without NRT (see jitted_calling)

_compiled: dict = {}  # python kernel -> numba dispatcher
_warm: set = set()  # kernels whose numba version has run at least once in this process


def jit_mode() -> str:
    """The forced mode from ``QUANTLAB_JIT`` (``auto`` when unset)."""
    mode = os.environ.get("QUANTLAB_JIT", "auto").strip().lower() or "auto"
    if mode not in JIT_MODES:
        raise ConfigError(f"QUANTLAB_JIT={mode!r} is invalid; use one of: {', '.join(JIT_MODES)}")
    return mode


def use_jit(work: int, kernel=None) -> bool:
    """Whether a workload of ``work`` bar-steps (of ``kernel``, if given) should run under numba."""
    mode = jit_mode()
    if mode != "auto":
        return mode == "always"
    if kernel is not None and kernel in _warm:
        return work >= WARM_THRESHOLD
    if _warm:  # numba is imported and initialised: only this kernel's cache load is left to pay
        return work >= LOADED_THRESHOLD
    return work >= COLD_THRESHOLD


def import_numba():
    """``import numba`` (lazy: the only place it is imported) with its numpy registry loaded
    without scipy. ``numba.np.arraymath`` checks at import whether a BLAS is there by importing
    ``scipy.linalg`` (~0.35 s of CPU in a cold process, on the worker's path to a sweep's first
    shard), only to choose the inner product of ``np.correlate``/``np.convolve`` in jitted code;
    no QuantLab kernel uses them (or BLAS), so the check is answered "no BLAS" without the import.
    Likewise numba's typing of cffi functions (``numba.core.typing.cffi_utils``, loaded at the
    first compile) imports cffi and builds an ``FFI`` (~0.03 s, on a big run's critical path):
    no kernel calls cffi, so it is answered "no cffi" unless cffi is imported already."""
    import sys

    blas = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or blas in sys.modules:
        import numba

        return numba
    stubs = [name for name in (blas, "cffi") if name not in sys.modules]
    for name in stubs:
        sys.modules[name] = None  # an import of it raises ImportError without importing it
    try:
        import numba
        import numba.core.typing.cffi_utils  # noqa: F401 - its cffi check runs now
        import numba.np.arraymath  # noqa: F401 - its BLAS check runs now
    finally:
        for name in stubs:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return numba


def numba_for(kernel, work: int, *, strict: bool = True):
    """The numba version of ``kernel`` when :func:`use_jit` picks numba for ``work`` of it and
    numba imports, else None (the caller takes its Python or numpy path). ``strict``: a forced
    ``QUANTLAB_JIT=always`` that cannot import numba raises the ImportError."""
    if not use_jit(work, kernel):
        return None
    try:
        return jitted(kernel)
    except ImportError:
        if strict and jit_mode() == "always":
            raise
        return None


def jitted(kernel):
    """``numba.njit(cache=True, nogil=True)`` of ``kernel``, built once per process (with the
    functions of its module it calls: :func:`jitted_calling`)."""
    return jitted_calling(kernel)


def _module_calls(f) -> dict:
    """Global name -> function, for the functions of ``f``'s own module that ``f`` refers to,
    directly or through each other (``sweep_kernel`` -> ``trade_loop`` -> ``stop_hit``)."""
    import types

    out = {}
    todo = [f]
    while todo:
        h = todo.pop()
        for name in h.__code__.co_names:
            g = f.__globals__.get(name)
            if isinstance(g, types.FunctionType) and g.__module__ == f.__module__ and g is not f and name not in out:
                out[name] = g
                todo.append(g)
    return out


def _tag(f) -> str:
    """A cache-safe name part for a bound function: its module, name and a hash of its code."""
    import hashlib
    import marshal

    h = hashlib.sha256(marshal.dumps(f.__code__))
    for g in _module_calls(f).values():  # the helpers it calls are compiled into it too
        h.update(marshal.dumps(g.__code__))
    digest = h.hexdigest()[:12]
    return f"{f.__module__.replace('.', '_')}_{f.__name__}_{digest}"


def jitted_calling(kernel, *helpers, bind=None, refcount=None):
    """:func:`jitted` for a kernel that calls other kernels of its module (``helpers``).

    numba resolves a kernel's globals when it compiles, so the functions it calls must be numba
    dispatchers by then, while the pure-Python mode needs the plain functions. The kernel and
    its helpers (those named, and every other function of the kernel's module it refers to) are
    jitted from copies bound to a private namespace where each helper's name is its
    dispatcher; the module itself is untouched. ``cache=True`` as usual (the cache is keyed by
    the source file; helpers must not be recursive: numba cannot reload those).

    ``bind``: ``{global name: plain function}`` replacing what the kernel calls under that name
    (a strategy's fused grid signals, see ``engine.sweep``). Each bound function is jitted in
    its own module, with the functions of that module it calls (its cache follows its source
    file), and the kernel copy is compiled under a qualified name carrying a hash of the bound
    functions' code and of those helpers', so its on-disk cache entry is its own and is never
    reused after any of them changes.

    ``refcount``: compile with numba's array reference counting (NRT). Off (``_nrt=False``) for
    the modules of ``NO_REFCOUNT`` and the functions bound into their kernels: they never
    allocate, and the refcounting of array arguments at each helper call cost ~40 % of the
    grid kernel's time (an incref/decref pair per array per trade booked); any allocation
    there fails to compile, which enforces the rule.
    """
    if refcount is None:
        refcount = kernel.__module__ not in NO_REFCOUNT
    bind = dict(bind or {})
    key = (kernel, tuple(sorted((name, f) for name, f in bind.items()))) if bind else kernel
    fn = _compiled.get(key)
    if fn is None:
        import types

        numba = import_numba()

        namespace = dict(kernel.__globals__)

        def rebind(f, qualname=None):
            g = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
            g.__qualname__, g.__module__, g.__doc__ = qualname or f.__qualname__, f.__module__, f.__doc__
            return numba.njit(cache=True, nogil=True, _nrt=refcount)(g)

        calls = {helper.__name__: helper for helper in helpers}
        todo = [kernel, *helpers]
        while todo:  # what the kernel calls, and what those call, in its module
            for name, g in _module_calls(todo.pop()).items():
                if name not in calls:
                    calls[name] = g
                    todo.append(g)
        for name, helper in calls.items():
            if name not in bind:
                namespace[name] = rebind(helper)
        suffix = ""
        for name, f in sorted(bind.items()):
            namespace[name] = jitted_calling(f, refcount=refcount)  # with its own module's helpers
            suffix += "__" + _tag(f)
        fn = rebind(kernel, kernel.__qualname__ + suffix)
        _compiled[key] = fn
    return fn


def python_calling(kernel, bind=None):
    """The pure-Python twin of ``jitted_calling(kernel, bind=bind)``: ``kernel`` with the globals
    in ``bind`` replaced (a copy; the module is untouched)."""
    if not bind:
        return kernel
    key = ("python", kernel, tuple(sorted(bind.items())))
    fn = _compiled.get(key)
    if fn is None:
        import types

        fn = types.FunctionType(kernel.__code__, {**kernel.__globals__, **bind}, kernel.__name__,
                                kernel.__defaults__, kernel.__closure__)
        _compiled[key] = fn
    return fn


class Out:
    """An output buffer argument of :func:`call`: ``size`` items of ``dtype``."""

    __slots__ = ("size", "dtype")

    def __init__(self, size: int, dtype="float64"):
        self.size = int(size)
        self.dtype = np.dtype(dtype)


_FILL = {"f": 0.0, "i": 0, "u": 0, "b": False}


def call(kernel, work: int, *args, jit: bool | None = None, convert: bool = True):
    """Run ``kernel(*args)`` in the mode :func:`use_jit` picks (or ``jit`` forces).

    Array arguments are passed as C-contiguous arrays (numba) or converted with ``tolist()``
    (pure Python, where list indexing is ~5x faster than numpy scalar indexing). :class:`Out`
    arguments become fresh buffers (``np.empty`` or a list), returned as numpy arrays — or as
    they are with ``convert=False`` (lists in pure-Python mode: convert just the part you need
    with ``np.array(buf[:k], dtype)``). Returns ``(kernel's return value, [output buffers in
    argument order])``.
    """
    forced = jit is not None
    if jit is None:
        jit = use_jit(work, kernel)
    outs = []
    prepared = []
    if jit and not forced and jit_mode() == "auto":
        try:
            jitted(kernel)
        except ImportError:  # numba missing or broken: auto mode degrades to pure Python
            jit = False
    if jit:
        for a in args:
            if isinstance(a, Out):
                buf = np.empty(a.size, dtype=a.dtype)
                outs.append(buf)
                prepared.append(buf)
            elif isinstance(a, np.ndarray):
                prepared.append(np.ascontiguousarray(a))
            else:
                prepared.append(a)
        ret = jitted(kernel)(*prepared)
        _warm.add(kernel)
        return ret, outs
    lists = []
    for a in args:
        if isinstance(a, Out):
            buf = [_FILL[a.dtype.kind]] * a.size
            lists.append((buf, a.dtype))
            prepared.append(buf)
        elif isinstance(a, np.ndarray):
            prepared.append(a.tolist())
        else:
            prepared.append(a)
    ret = kernel(*prepared)
    if convert:
        return ret, [np.array(buf, dtype=dtype) for buf, dtype in lists]
    return ret, [buf for buf, _ in lists]
