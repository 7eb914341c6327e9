"""Where things live: the project root, the outputs root, and which output paths are allowed.

Inputs may be read from anywhere readable. Outputs may only go under the project root, the
system temp directory, or a root listed in ``QUANTLAB_ALLOWED_ROOTS`` (os.pathsep-separated).
``QUANTLAB_OUTPUTS_DIR`` relocates the whole generated tree (tests use it to stay out of the repo).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from quantlab.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def outputs_root() -> Path:
    env = os.environ.get("QUANTLAB_OUTPUTS_DIR")
    root = Path(env) if env else PROJECT_ROOT / "outputs"
    if not root.is_absolute():
        root = PROJECT_ROOT / root
    return Path(os.path.realpath(root))


def safe_file_name(text: str) -> str:
    """File-name-safe spelling of a ticker: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text.strip()) or "_"


def imported_path(cache_dir: str | os.PathLike[str], ticker: str, interval: str) -> Path:
    """``<cache_dir>/imported/<safe ticker>_<interval>.parquet``: where ``data import`` puts a
    ticker's bars and where the ``auto`` source looks for them (before the bundled sample)."""
    return Path(cache_dir) / "imported" / f"{safe_file_name(ticker)}_{interval}.parquet"


def internal_root() -> Path:
    """Content-addressed store, Snakemake workdir, request records and locks."""
    return outputs_root() / ".quantlab"


def allowed_output_roots() -> list[Path]:
    roots = [PROJECT_ROOT, Path(tempfile.gettempdir()), outputs_root()]
    extra = os.environ.get("QUANTLAB_ALLOWED_ROOTS", "")
    roots += [Path(p) for p in extra.split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(r)) for r in roots]


def _anchored(value: object, field: str) -> Path:
    """A user path string, ``~`` expanded, relative paths anchored at the project root."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"params.{field} must be a non-empty path string")
    if "\x00" in value:
        raise ConfigError(f"params.{field} contains a NUL byte")
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else PROJECT_ROOT / p


def resolve_input_path(value: str, field: str) -> Path:
    """Resolve an input path against the project root (it may point anywhere readable)."""
    return Path(os.path.realpath(_anchored(value, field)))


def resolve_output_dir(value: str | None, default: Path, field: str = "out_dir") -> Path:
    """Resolve an output directory and refuse anything outside the allowed roots.

    Symlinks and ``..`` are resolved first, so a link pointing out of the project is refused.
    """
    target = default if value is None else _anchored(value, field)
    real = Path(os.path.realpath(target))
    for root in allowed_output_roots():
        if real == root or root in real.parents:
            return real
    raise ConfigError(
        f"params.{field} '{value}' resolves to {real}, outside the allowed output roots "
        "(project root, system temp dir, QUANTLAB_ALLOWED_ROOTS)"
    )
