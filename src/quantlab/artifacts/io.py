"""Atomic, strict writes. Every artifact is written to a temp file in the same directory and
renamed into place, so a reader never sees half a file and a killed writer leaves no partial one.
JSON is strict: NaN/Infinity become null, numpy scalars become Python numbers."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """Recursively convert to JSON-safe Python values (no NaN/Infinity, no numpy types)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    # numpy scalars and arrays without importing numpy
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def dumps_json(data: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
    """Indented JSON text; ``compact``: one line (json's C encoder, several times faster: store
    files no one reads by eye, e.g. a sweep board's ``board.json``)."""
    layout = {"separators": (",", ":")} if compact else {"indent": 2}
    return json.dumps(json_safe(data), sort_keys=sort_keys, ensure_ascii=False, allow_nan=False, **layout) + "\n"


def _process_umask() -> int:
    """The umask, read without changing it (Linux /proc), else set-and-restore at import time
    (before any step thread exists)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


FILE_MODE = 0o666 & ~_process_umask()


def file_mode() -> int:
    """The mode a normal new file gets under this process's umask (0o644 under 022)."""
    return FILE_MODE


def _replace_with(path: str | os.PathLike, fill, named: bool = False) -> None:
    """Write ``path`` through a uniquely named temp file beside it (``fill(binary_fh)``, or with
    ``named`` ``fill(temp path)``), then rename it into place: readers see the old file or the
    whole new one, and concurrent writers of the same path never share a temp file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600: follow the umask like any new file
        if named:
            os.close(fd)
            fill(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _replace_with(path, lambda fh: fh.write(data))


def atomic_write_with(path: str | os.PathLike, fill) -> None:
    """Write ``path`` atomically with ``fill(binary file handle)``."""
    _replace_with(path, fill)


def atomic_write_named(path: str | os.PathLike, fill) -> None:
    """Write ``path`` atomically with ``fill(temp file path)``: a writer that opens the file
    itself (pyarrow's native file output writes without taking the GIL; through a Python file
    object every write would wait for it, behind whatever Python code another thread runs)."""
    _replace_with(path, fill, named=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any, *, sort_keys: bool = False, compact: bool = False) -> None:
    atomic_write_text(path, dumps_json(data, sort_keys=sort_keys, compact=compact))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a file so that ``dst`` is replaced in one rename (never seen half-copied). The bytes
    move inside the kernel (``copy_file_range``; a 33 MB equity file of a 1M-bar run costs no
    Python-level buffers), else through ``shutil.copyfileobj``."""
    def fill(out) -> None:
        with open(src, "rb") as fh:
            copied = 0
            try:
                while n := os.copy_file_range(fh.fileno(), out.fileno(), 1 << 30):
                    copied += n
            except (OSError, AttributeError):  # not here (a pipe, the filesystem, the platform)
                if copied:
                    raise
                shutil.copyfileobj(fh, out, 1 << 20)

    _replace_with(dst, fill)


def format_value(value: Any) -> str:
    """A metric for people: 4 decimals for floats, ``n/a`` for undefined."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


_CSV_SPECIAL = frozenset(',"\n\r')


def csv_cell(value: Any) -> str:
    """One field of the CSV files QuantLab writes by hand (leaderboards, summaries): empty for
    None, ``%.10g`` for floats, text quoted as RFC 4180 says when it holds a comma, a quote or a
    line break (an expression strategy's label keeps its commas; ``csv``/pandas read it back)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    text = str(value)
    if _CSV_SPECIAL.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
