"""Provenance: code fingerprints (Snakemake does not see edits to imported code), git commit."""

from __future__ import annotations

import hashlib
import json
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
COMPUTE_CODE = ("data", "strategies", "engine", "commands/run.py", "commands/sweep.py", "commands/experiment.py",
                "commands/forward.py", "commands/portfolio.py", "artifacts/portfolio_plot.py", "metrics.py", "columnar.py", "_lazy.py", "errors.py", "artifacts/io.py",
                "artifacts/plots.py", "artifacts/heatmap.py")


@lru_cache(maxsize=None)
def code_fingerprint(*parts: str) -> str:
    """sha256 over the source of the named sub-packages/modules (the result-computing code when
    empty) and the workflow rules, so a code edit gives new content keys."""
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
