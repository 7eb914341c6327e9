"""The bytes of ``runs_index.csv/json/md``, cut into pieces that can be patched in place.

Each file is ``head + segment(row_1) + ... + segment(row_n) + tail`` with the rows in run-dir
name order, where only the head depends on the number of rows and the generation time, and a
row's segment depends on that row alone (the JSON's first segment drops its leading comma).
So a full render is the concatenation, and an incremental update rewrites the bytes from the
first changed row to the end plus the head in place: O(rows after the change), which is
O(1) when a new run sorts last (run ids start with their claim time). A head that changes
length (``n_runs`` gains a digit) or a file that does not have the size the catalog recorded
is rewritten whole, atomically. The layout is exactly what ``json.dumps(indent=2)``,
``csv.writer`` and the Markdown table of the original full rebuild write (tested).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

from quantlab.artifacts.io import atomic_write_bytes

KINDS = ("csv", "json", "md")
FILE_NAMES = {"csv": "runs_index.csv", "json": "runs_index.json", "md": "runs_index.md"}
MD_COLUMNS = ("run_id", "mode", "ticker", "strategy", "sharpe_simple", "total_return", "max_drawdown", "trades")
MD_FORMATTED = frozenset(MD_COLUMNS[4:])
JSON_SEPARATOR = b","  # before every JSON segment but the first


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _csv_line(values: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue().encode("utf-8")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def segments(row: dict, columns: list[str]) -> dict[str, bytes]:
    """The bytes of one (json_safe) index row in each file; the JSON one starts with its comma."""
    block = json.dumps(row, indent=2, ensure_ascii=False, allow_nan=False)
    indented = "\n".join("    " + line for line in block.split("\n"))
    md = " | ".join(_fmt(row.get(c)) if c in MD_FORMATTED else str(row.get(c)) for c in MD_COLUMNS)
    return {
        "csv": _csv_line([row.get(c) for c in columns]),
        "json": JSON_SEPARATOR + ("\n" + indented).encode("utf-8"),
        "md": f"| {md} |\n".encode("utf-8"),
    }


def head(kind: str, root: str, n: int, generated_at: str, columns: list[str]) -> bytes:
    if kind == "csv":
        return _csv_line(list(columns))
    if kind == "json":
        return (f'{{\n  "generated_at": {_dumps(generated_at)},\n  "root_dir": {_dumps(root)},\n'
                f'  "n_runs": {n},\n  "runs": [').encode("utf-8")
    lines = ["# Runs Index", "", f"- root: `{root}`", f"- generated_at: {generated_at}", f"- total: {n}", "",
             "| " + " | ".join(MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def tail(kind: str, n: int) -> bytes:
    if kind == "json":
        return b"\n  ]\n}\n" if n else b"]\n}\n"
    return b""


def body(kind: str, segs: Iterable[bytes], first_in_file: bool) -> bytes:
    """Segments joined as they sit in the file (the file's first JSON row has no comma)."""
    data = b"".join(segs)
    if kind == "json" and first_in_file and data.startswith(JSON_SEPARATOR):
        data = data[len(JSON_SEPARATOR):]
    return data


def render(kind: str, root: str, segs: Iterable[bytes], n: int, generated_at: str, columns: list[str]) -> bytes:
    return head(kind, root, n, generated_at, columns) + body(kind, segs, True) + tail(kind, n)


def write_full(root: Path, kind: str, data: bytes) -> int:
    atomic_write_bytes(root / FILE_NAMES[kind], data)
    return len(data)


def current_generated_at(root: Path) -> str | None:
    """The generation time in the head of ``root``'s runs_index.json, if it has one."""
    try:
        with open(root / FILE_NAMES["json"], "rb") as fh:
            start = fh.read(256).decode("utf-8", "replace")
    except OSError:
        return None
    prefix = '{\n  "generated_at": '
    if not start.startswith(prefix):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(start, len(prefix))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def holds(root: Path, kind: str, data: bytes) -> bool:
    """Whether ``root``'s file of ``kind`` is exactly ``data``."""
    path = root / FILE_NAMES[kind]
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


class SizeMismatch(Exception):
    """The file on disk is not the one the catalog recorded (deleted, edited, torn)."""


def patch(path: Path, expected_size: int, offset: int, new_tail: bytes, new_head: bytes | None) -> int:
    """Rewrite ``path`` from ``offset`` with ``new_tail`` (and the head in place); the new size.
    Raises SizeMismatch (nothing written) when the file is not ``expected_size`` bytes."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise SizeMismatch(str(path)) from None
    try:
        if os.fstat(fd).st_size != expected_size or offset < 0 or offset > expected_size:
            raise SizeMismatch(str(path))
        _pwrite_all(fd, new_tail, offset)
        os.ftruncate(fd, offset + len(new_tail))
        if new_head:
            _pwrite_all(fd, new_head, 0)
    finally:
        os.close(fd)
    return offset + len(new_tail)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
