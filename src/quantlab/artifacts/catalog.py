"""The runs catalog: one SQLite row per run directory of a root, and the runs index files kept
equal to it, incrementally.

``<root>/.catalog/runs.sqlite`` (stdlib ``sqlite3``, WAL mode, so readers never wait for the
writer) holds per run directory (by name): its runs-index row cut into the bytes it has in
``runs_index.csv/json/md`` (:mod:`quantlab.artifacts.index_files`), its listing row (the index
row plus ``problems``, as ``--runs-list`` prints it) and its metrics, with one ranked row per
(metric, run) so ``--runs-best`` is two index look-ups. ``meta`` records the schema version, the
layout (index columns and metric names: a plugin metric changes both), the root, the three
files' sizes, the generation time, the root directory's mtime when the catalog last matched it,
and ``dirty``.

Every change happens under ``<root>/.runs_index.lock`` in two SQLite transactions: (1) the rows
change and ``dirty`` is set, (2) after the files were patched, their sizes are recorded and
``dirty`` cleared. A request killed between the two leaves ``dirty`` set: the next writer or
reader (or ``--runs-reindex``) rewrites the three files from the catalog before doing anything
else, so the catalog and the files never disagree for longer than that. A catalog that is
missing (an old store), of another schema or layout, or for another root, is rebuilt from the
run directories on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from quantlab.artifacts import index_files as files
from quantlab.testhooks import pause

SCHEMA_VERSION = "2"
CATALOG_DIR = ".catalog"  # a subdirectory: SQLite's -wal/-shm files come and go without touching the root's mtime
CATALOG_FILE = "runs.sqlite"
LOCK_NAME = ".runs_index.lock"
LOCK_TIMEOUT_S = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY, run_id TEXT NOT NULL, listing TEXT NOT NULL, metrics TEXT NOT NULL,
    csv BLOB NOT NULL, json BLOB NOT NULL, md BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS metric (
    metric TEXT NOT NULL, value REAL NOT NULL, run_id TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (name, metric));
CREATE INDEX IF NOT EXISTS metric_rank ON metric (metric, value, run_id);
CREATE TABLE IF NOT EXISTS counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""
RUNS_KEY = "runs"  # counts: "runs" and one "metric:<name>" per metric (count(*) would be O(n))


def catalog_path(root: Path) -> Path:
    return Path(root) / CATALOG_DIR / CATALOG_FILE


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def layout() -> str:
    """What the stored bytes depend on besides the run dirs: the index columns and the metrics."""
    from quantlab.artifacts.runs_index import columns
    from quantlab.registry.runs import valid_metrics

    text = json.dumps([SCHEMA_VERSION, columns(), list(valid_metrics()), files.MD_COLUMNS])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def root_stamp(root: Path) -> str:
    st = os.stat(root)
    return f"{st.st_mtime_ns}:{st.st_nlink}"


@contextmanager
def index_lock(root: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(Path(root) / LOCK_NAME), timeout=LOCK_TIMEOUT_S):
        yield


def entry(run_dir: Path) -> dict | None:
    """What the catalog stores for one run directory, or None when it is not one."""
    from quantlab.artifacts.runs_index import columns, index_row
    from quantlab.registry.runs import listing_and_metrics

    row = index_row(run_dir)
    if row is None:
        return None
    listing, metrics = listing_and_metrics(row, run_dir)
    return {"name": run_dir.name, "run_id": str(row.get("run_id")), "listing": listing, "metrics": metrics,
            **files.segments(row, columns())}


class Catalog:
    """One open catalog of ``root`` (an absolute path). Writers hold :func:`index_lock`."""

    def __init__(self, root: Path, *, create: bool = True):
        self.root = Path(root)
        path = catalog_path(self.root)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise FileNotFoundError(str(path))
        try:
            self._connect(path)
        except sqlite3.OperationalError:  # locked, read-only...: not a reason to drop it
            raise
        except sqlite3.DatabaseError:  # not a database any more (a power loss, a stray write)
            if getattr(self, "db", None) is not None:
                self.db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._connect(path)  # empty: rebuilt from the run dirs on first use

    def _connect(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        # OFF: a killed process loses nothing (the OS has the pages); only a power loss could
        # hurt the file, and the catalog is rebuilt from the run dirs when it does not open.
        # Set first: switching a new database to WAL under the default (FULL) waits for an fsync
        # (~15-20 ms, a root's first request).
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.db.execute("SELECT count(*) FROM meta").fetchone()

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def valid(self, meta: dict[str, str] | None = None) -> bool:
        meta = self.meta() if meta is None else meta
        return (meta.get("schema") == SCHEMA_VERSION and meta.get("layout") == layout()
                and meta.get("root") == str(self.root))

    def _set(self, **values: str) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                            [(k, str(v)) for k, v in values.items()])

    def _count(self, key: str) -> int:
        got = self.db.execute("SELECT n FROM counts WHERE key = ?", (key,)).fetchone()
        return got[0] if got else 0

    def n_runs(self) -> int:
        return self._count(RUNS_KEY)

    # ------------------------------------------------------------------ writes (under the lock)
    def _store(self, changes: dict[str, dict | None]) -> None:
        deltas: dict[str, int] = {}
        for name, item in changes.items():
            gone = [f"metric:{m}" for (m,) in self.db.execute("SELECT metric FROM metric WHERE name = ?", (name,))]
            if self.db.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
                gone.append(RUNS_KEY)
            came = [] if item is None else [RUNS_KEY] + [f"metric:{m}" for m in item["metrics"]]
            for key in gone:
                deltas[key] = deltas.get(key, 0) - 1
            for key in came:
                deltas[key] = deltas.get(key, 0) + 1
        self._write_rows(changes)
        self.db.executemany("INSERT INTO counts VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET n = n + excluded.n",
                            [(k, d) for k, d in deltas.items() if d])

    def _write_rows(self, changes: dict[str, dict | None]) -> None:
        names = [(name,) for name in changes]
        self.db.executemany("DELETE FROM metric WHERE name = ?", names)
        self.db.executemany("DELETE FROM runs WHERE name = ?", [n for n in names if changes[n[0]] is None])
        items = [item for item in changes.values() if item is not None]
        self.db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (item["name"], item["run_id"], json.dumps(item["listing"], allow_nan=False),
             json.dumps(item["metrics"], allow_nan=False), item["csv"], item["json"], item["md"])
            for item in items])
        self.db.executemany("INSERT INTO metric VALUES (?, ?, ?, ?)", [
            (m, v, item["run_id"], item["name"]) for item in items for m, v in item["metrics"].items()])

    def rebuild(self, entries: list[dict], keep_files: bool = True, stamp: str | None = None) -> None:
        """Replace every row with ``entries``, then the three files (``keep_files=False``: a root
        that has no index files, read by inspection only, gets none)."""
        if self.meta().get("schema") != SCHEMA_VERSION:  # another schema: new tables
            self.db.executescript("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS metric; "
                                  "DROP TABLE IF EXISTS counts; DELETE FROM meta;" + _SCHEMA)
        self.db.execute("BEGIN IMMEDIATE")
        for table in ("runs", "metric", "counts"):
            self.db.execute(f"DELETE FROM {table}")
        self._set(schema=SCHEMA_VERSION, layout=layout(), root=str(self.root), dirty="1",
                  files="1" if keep_files else "0")
        self._write_rows({e["name"]: e for e in entries})
        self.db.execute("INSERT INTO counts SELECT ?, count(*) FROM runs", (RUNS_KEY,))
        self.db.execute("INSERT INTO counts SELECT 'metric:' || metric, count(*) FROM metric GROUP BY metric")
        self.db.execute("COMMIT")
        self.rewrite_files(stamp)

    def rewrite_files(self, stamp: str | None = None) -> None:
        """The three files from the catalog, whole and atomically (also the repair of a dirty
        catalog). Files that already hold exactly these rows (an old store's index, written by a
        full rebuild) are left as they are, generation time included."""
        from quantlab.artifacts.runs_index import columns

        if self.meta().get("files") == "0":
            self._finish({}, now_iso(), stamp)
            return
        cols, root = columns(), str(self.root)
        segs: dict[str, list[bytes]] = {k: [] for k in files.KINDS}
        for csv_b, json_b, md_b in self.db.execute("SELECT csv, json, md FROM runs ORDER BY name"):
            segs["csv"].append(csv_b)
            segs["json"].append(json_b)
            segs["md"].append(md_b)
        n = len(segs["csv"])
        generated_at = files.current_generated_at(self.root)
        rendered = {k: files.render(k, root, segs[k], n, generated_at, cols) for k in files.KINDS} \
            if generated_at else None
        if rendered is None or not all(files.holds(self.root, k, rendered[k]) for k in files.KINDS):
            generated_at = now_iso()
            rendered = {k: files.render(k, root, segs[k], n, generated_at, cols) for k in files.KINDS}
            for kind in files.KINDS:
                files.write_full(self.root, kind, rendered[kind])
        self._finish({k: len(rendered[k]) for k in files.KINDS}, generated_at, stamp)

    def _finish(self, sizes: dict[str, int], generated_at: str, stamp: str | None = None) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self._set(sizes=json.dumps(sizes), generated_at=generated_at, dirty="0", **({"stamp": stamp} if stamp else {}))
        self.db.execute("COMMIT")

    def apply(self, changes: dict[str, dict | None], generated_at: str | None = None,
              stamp: str | None = None) -> None:
        """Upsert (entry) or delete (None) runs by name and patch the files from the first change on."""
        from quantlab.artifacts.runs_index import columns

        generated_at = generated_at or now_iso()
        meta = self.meta()
        if not self.valid(meta) or meta.get("dirty") != "0" or "sizes" not in meta:
            raise RuntimeError("apply() needs a clean, valid catalog")
        if meta.get("files") == "0":  # inspection-only root: the catalog alone
            self.db.execute("BEGIN IMMEDIATE")
            self._store(changes)
            self.db.execute("COMMIT")
            self._finish({}, generated_at, stamp)
            return
        old_n = self.n_runs()
        old_min = self.db.execute("SELECT min(name) FROM runs").fetchone()[0]
        first = min(changes) if changes else None
        old_after = self._sums(first) if first is not None else {k: 0 for k in files.KINDS}
        self.db.execute("BEGIN IMMEDIATE")
        self._set(dirty="1")
        self._store(changes)
        self.db.execute("COMMIT")
        pause("catalog_committed")  # test-only hook: a kill here leaves the catalog dirty
        new_n = self.n_runs()
        new_min = self.db.execute("SELECT min(name) FROM runs").fetchone()[0]
        whole = (old_n == 0 or new_n == 0 or
                 (first is not None and (first <= (old_min or first) or first <= (new_min or first))))
        sizes, old_sizes, cols, root = {}, json.loads(meta["sizes"]), columns(), str(self.root)
        new_segs = self._segments_from(first) if first is not None and not whole else None
        for kind in files.KINDS:
            old_head = files.head(kind, root, old_n, meta.get("generated_at", generated_at), cols)
            new_head = files.head(kind, root, new_n, generated_at, cols)
            if not whole and len(old_head) == len(new_head):
                offset = old_sizes[kind] - len(files.tail(kind, old_n)) - old_after[kind]
                new_tail = (files.body(kind, new_segs[kind], False) if new_segs else b"") + files.tail(kind, new_n)
                try:
                    sizes[kind] = files.patch(self.root / files.FILE_NAMES[kind], old_sizes[kind], offset,
                                              new_tail, new_head if kind != "csv" else None)
                    continue
                except files.SizeMismatch:
                    pass
            sizes[kind] = files.write_full(self.root, kind, files.render(
                kind, root, self._all_segments(kind), new_n, generated_at, cols))
        self._finish(sizes, generated_at, stamp)

    def _sums(self, first: str) -> dict[str, int]:
        got = self.db.execute("SELECT coalesce(sum(length(csv)), 0), coalesce(sum(length(json)), 0), "
                              "coalesce(sum(length(md)), 0) FROM runs WHERE name >= ?", (first,)).fetchone()
        return dict(zip(files.KINDS, got))

    def _segments_from(self, first: str) -> dict[str, list[bytes]]:
        segs: dict[str, list[bytes]] = {k: [] for k in files.KINDS}
        for csv_b, json_b, md_b in self.db.execute(
                "SELECT csv, json, md FROM runs WHERE name >= ? ORDER BY name", (first,)):
            segs["csv"].append(csv_b)
            segs["json"].append(json_b)
            segs["md"].append(md_b)
        return segs

    def _all_segments(self, kind: str) -> Iterator[bytes]:
        column = {"csv": "csv", "json": "json", "md": "md"}[kind]
        for (seg,) in self.db.execute(f"SELECT {column} FROM runs ORDER BY name"):
            yield seg

    def names(self) -> set[str]:
        return {name for (name,) in self.db.execute("SELECT name FROM runs")}

    # ------------------------------------------------------------------ reads
    def listings(self) -> list[dict]:
        return [json.loads(text) for (text,) in self.db.execute("SELECT listing FROM runs ORDER BY name")]

    def best(self, metric: str, ascending: bool) -> tuple[dict, dict] | None:
        """``(listing, metrics)`` of the best run by ``metric``; ties go to the smaller run id."""
        agg = "min" if ascending else "max"
        (value,) = self.db.execute(f"SELECT {agg}(value) FROM metric WHERE metric = ?", (metric,)).fetchone()
        if value is None:
            return None
        got = self.db.execute(
            "SELECT r.listing, r.metrics FROM metric m JOIN runs r ON r.name = m.name "
            "WHERE m.metric = ? AND m.value = ? ORDER BY m.run_id, m.name LIMIT 1", (metric, value)).fetchone()
        return json.loads(got[0]), json.loads(got[1])

    def count_with(self, metric: str) -> int:
        return self._count(f"metric:{metric}")
