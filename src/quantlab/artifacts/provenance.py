"""Provenance: code fingerprints (Snakemake does not see edits to imported code), git commit."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from quantlab import __version__
from quantlab.contract.paths import PROJECT_ROOT

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def canonical_hash(obj: Any, length: int | None = None, algo: str = "sha256") -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    digest = hashlib.new(algo, text.encode()).hexdigest()
    return digest[:length] if length else digest


# The code that computes results: an edit here gives new content keys (and recomputation);
# edits to the CLI, the contract layer or the registry do not invalidate cached results.
COMPUTE_CODE = ("data", "strategies", "engine", "commands/run", "commands/sweep", "commands/experiment.py",
                "commands/forward", "commands/portfolio", "artifacts/portfolio_plot.py", "artifacts/trades_csv.py",
                "artifacts/trades_csv_kernel.py",
                "metrics.py", "columnar.py", "dates.py", "_lazy.py", "errors.py", "artifacts/io.py",
                "artifacts/plots.py", "artifacts/heatmap.py", "commands/speculate.py")


def code_fingerprint(*parts: str) -> str:
    """sha256 over the source of the named sub-packages/modules (the result-computing code when
    empty) and the workflow rules, so a code edit gives new content keys.

    Without ``parts`` the strategy plugins named in ``QUANTLAB_PLUGINS`` join it too (see
    :func:`plugin_fingerprint`): editing a plugin gives new signal, simulation and sweep keys.
    Without plugins the value is the QuantLab code's alone, so existing stores stay valid."""
    base = _source_fingerprint(*parts)
    if parts:
        return base
    plugins = plugin_fingerprint(os.environ.get("QUANTLAB_PLUGINS", ""))
    return base if plugins is None else hashlib.sha256(f"{base}:{plugins}".encode()).hexdigest()[:16]


@lru_cache(maxsize=None)
def _source_fingerprint(*parts: str) -> str:
    h = hashlib.sha256(__version__.encode())
    roots = [PACKAGE_ROOT / p for p in (parts or COMPUTE_CODE)]
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.with_suffix(".py").is_file():
            files.append(root.with_suffix(".py"))
        else:
            files.extend(sorted(root.rglob("*.py")))
    if not parts:
        files.extend(sorted((PROJECT_ROOT / "workflow").rglob("*.smk")))
        files.append(PROJECT_ROOT / "workflow" / "Snakefile")
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(PROJECT_ROOT) if PROJECT_ROOT in f.parents else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _plugin_names(setting: str) -> list[str]:
    """Module names in a ``QUANTLAB_PLUGINS`` value (comma or os.pathsep separated)."""
    return [m.strip() for m in setting.replace(os.pathsep, ",").split(",") if m.strip()]


def _find_module(name: str):
    """The import spec of ``name`` found on sys.path without importing anything (parents included)."""
    from importlib.machinery import PathFinder

    parts = name.split(".")
    spec = PathFinder.find_spec(parts[0])
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
    return spec


def _installed_roots() -> tuple[Path, ...]:
    """Where the standard library and installed packages (the pinned stack) live."""
    import sysconfig

    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({Path(p).resolve() for p in (sysconfig.get_path(n) for n in names) if p})


def _module_files(spec, keep) -> list[Path]:
    """The source files of a module spec (every ``.py`` of a package) in locations ``keep`` accepts."""
    if spec is None:
        return []
    if spec.submodule_search_locations:  # a package (regular or namespace): every module in it
        return sorted(f for loc in spec.submodule_search_locations if keep(Path(loc))
                      for f in Path(loc).rglob("*.py"))
    if not spec.origin or spec.origin in ("built-in", "frozen"):
        return []
    origin = Path(spec.origin)
    return [origin] if origin.suffix == ".py" and origin.is_file() and keep(origin) else []


def _local_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a source file (nothing is imported)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


_MAX_PLUGIN_FILES = 500


@lru_cache(maxsize=8)
def plugin_fingerprint(setting: str) -> str | None:
    """sha256 over the source of the ``QUANTLAB_PLUGINS`` modules (``None`` without plugins).

    Covered: each plugin module's file (every ``.py`` of a plugin package) and, following the
    absolute imports in those files, the modules they import from outside the standard library,
    the installed packages and QuantLab itself (which :func:`code_fingerprint` covers already),
    e.g. a helper module next to the plugin. Files are located with ``PathFinder`` and parsed
    with ``ast``: nothing is imported, and only file bytes are hashed, so it costs a few reads.
    A plugin that cannot be found contributes its name only (loading it fails later anyway).
    """
    names = _plugin_names(setting)
    if not names:
        return None
    installed = _installed_roots()
    quantlab_root = PACKAGE_ROOT.resolve()

    def outside_stack(path: Path) -> bool:
        resolved = path.resolve()
        roots = (*installed, quantlab_root)
        return not any(resolved == r or r in resolved.parents for r in roots)

    files: dict[Path, None] = {}
    queue = [(name, _find_module(name)) for name in names]
    seen_modules = set(names)
    while queue and len(files) < _MAX_PLUGIN_FILES:
        _name, spec = queue.pop(0)
        for f in _module_files(spec, outside_stack):
            if f in files:
                continue
            files[f] = None
            for imported in sorted(_local_imports(f)):
                if imported in seen_modules or imported in sys.stdlib_module_names:
                    continue
                seen_modules.add(imported)
                queue.append((imported, _find_module(imported)))
    h = hashlib.sha256("\n".join(names).encode())
    for f in sorted(files):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        h.update(f"\0{f}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's HEAD commit, read from .git without spawning git."""
    git = PROJECT_ROOT / ".git"
    try:
        if git.is_file():  # worktree: "gitdir: ..."
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        ref_file = git / ref
        if ref_file.is_file():
            return ref_file.read_text().strip()
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        pass
    return "unknown"


def runtime_info() -> dict:
    return {
        "quantlab_version": __version__,
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "git_commit": git_commit(),
    }
