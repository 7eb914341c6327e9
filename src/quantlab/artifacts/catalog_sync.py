"""Keeping a root's runs catalog in line with its run directories: what a request, a runs
command and ``--runs-reindex`` call (see :mod:`quantlab.artifacts.catalog` for the catalog and
its two-transaction update)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from quantlab.artifacts import index_files as files
from quantlab.artifacts.catalog import Catalog, entry, index_lock, root_stamp
from quantlab.testhooks import pause


def scan_entries(root: Path) -> list[dict]:
    """Entries of every run directory under ``root``, by name (what a full rebuild reads)."""
    out = []
    for name in _child_dirs(root):
        item = entry(root / name)
        if item is not None:
            out.append(item)
    return out


def _child_dirs(root: Path) -> list[str]:
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [e.name for e in children if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]


def _make_clean(cat: Catalog, writer: bool) -> None:
    """Under the lock: rebuild an invalid catalog from the run dirs, repair the files of a dirty
    one; a writer also makes the index files of a root that had none."""
    meta = cat.meta()
    if not cat.valid(meta):
        has_files = any((cat.root / name).is_file() for name in files.FILE_NAMES.values())
        stamp = root_stamp(cat.root)
        cat.rebuild(scan_entries(cat.root), keep_files=writer or has_files, stamp=stamp)
    elif meta.get("dirty") != "0" or "sizes" not in meta:
        cat.rewrite_files()
    elif writer and meta.get("files") == "0":
        cat.db.execute("BEGIN IMMEDIATE")
        cat._set(files="1")
        cat.db.execute("COMMIT")
        cat.rewrite_files()


def _sync(cat: Catalog) -> None:
    """Under the lock: run dirs added or removed behind the catalog's back (the root changed)."""
    stamp = root_stamp(cat.root)
    on_disk, known = set(_child_dirs(cat.root)), cat.names()
    changes: dict[str, dict | None] = {name: None for name in known - on_disk}
    for name in sorted(on_disk - known):
        item = entry(cat.root / name)
        if item is not None:
            changes[name] = item
    if changes:
        cat.apply(changes, stamp=stamp)
    else:
        cat.db.execute("BEGIN IMMEDIATE")
        cat._set(stamp=stamp)
        cat.db.execute("COMMIT")


def record_run(root: Path, run_dir: Path) -> None:
    """The refresh-index step: this run's row in the catalog and the files, O(rows after it).
    A root without a valid catalog (its first request, an old store) is rebuilt from its run
    directories instead, this one among them (it is in place already): one write of the three
    files, not a rebuild's and then the run's."""
    with index_lock(root):
        cat = Catalog(root)
        try:
            if not cat.valid():
                stamp = root_stamp(root)
                entries = scan_entries(root)
                pause("index_scanned")  # test-only hook: a competing refresh must wait for this one
                cat.rebuild(entries, keep_files=True, stamp=stamp)
                return
            _make_clean(cat, writer=True)
            item = entry(run_dir)
            pause("index_scanned")
            cat.apply({run_dir.name: item})
        finally:
            cat.close()


def reindex(root: Path) -> int:
    """Rebuild the catalog and the three files from the run directories; the number of runs.
    Stale staging dirs (a killed request's) found there are removed on the way."""
    from quantlab.contract.runid import collect_stale_staging_in

    collect_stale_staging_in(root)
    with index_lock(root):
        cat = Catalog(root)
        try:
            stamp = root_stamp(root)
            entries = scan_entries(root)
            pause("index_scanned")
            cat.rebuild(entries, keep_files=True, stamp=stamp)
            return len(entries)
        finally:
            cat.close()


def open_for_read(root: Path, sync: bool = True) -> Catalog | None:
    """The catalog of ``root``, made usable first when needed (missing, invalid, dirty) and, with
    ``sync``, brought in line with run dirs added or removed by hand (the root changed since the
    catalog last matched it: one listing of the root, so O(runs); listings pay it, ``--runs-best``
    only when its answer's directory is gone). None when no catalog can be kept there (a
    read-only root): the caller then scans the run dirs itself."""
    try:
        cat = Catalog(root)
    except (OSError, sqlite3.Error):
        return None
    try:
        meta = cat.meta()
        if cat.valid(meta) and meta.get("dirty") == "0" and (not sync or meta.get("stamp") == root_stamp(root)):
            return cat
        with index_lock(root):
            _make_clean(cat, writer=False)
            if sync and cat.meta().get("stamp") != root_stamp(root):
                _sync(cat)
        return cat
    except (OSError, sqlite3.Error):
        cat.close()
        return None
    except BaseException:
        cat.close()
        raise
