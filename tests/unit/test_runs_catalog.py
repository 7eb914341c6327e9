"""The runs catalog (SQLite) and the incrementally patched runs_index.csv/json/md.

The reference (tests/index_reference.py) is the original full rebuild (scan every run dir, json.dumps(indent=2),
csv.DictWriter, the Markdown table): after every incremental update the three files must be
byte-for-byte what it writes for the same run dirs and the same generation time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import strict_json
from index_reference import _fmt, assert_files_are_a_full_rebuild
from quantlab.artifacts import catalog, index_files, runs_index
from quantlab.artifacts.io import dumps_json
from quantlab.registry import runs

SRC = Path(__file__).resolve().parents[2] / "src"


def fake_run(root: Path, name: str, sharpe=1.0, trades=3, ticker="SPX", created="2026-01-01T00:00:00Z") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "metadata.json").write_text(json.dumps({"run_id": name, "mode": "run", "created_at": created}))
    (d / "report.json").write_text(json.dumps({
        "config_resolved": {"ticker": ticker, "start": "2017-01-01", "end": "2018-01-01", "strategy": "s"},
        "machine_contract": {"summary": {"sharpe_simple": sharpe, "total_return": 0.1, "max_drawdown": -0.1,
                                         "trades": trades, "win_rate": 0.5}}}))
    return d


def meta(root: Path) -> dict:
    with sqlite3.connect(catalog.catalog_path(root)) as db:
        return dict(db.execute("SELECT key, value FROM meta"))


# ------------------------------------------------------------------------------ tests
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
values = st.one_of(st.none(), st.integers(-10**6, 10**6),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))


@given(rows=st.lists(st.fixed_dictionaries({"run_id": texts, "mode": texts, "ticker": texts, "strategy": texts,
                                             "sharpe_simple": values, "total_return": values,
                                             "max_drawdown": values, "trades": values}), max_size=4),
       root=texts, generated_at=texts)
def test_rendering_is_the_original_layout(rows, root, generated_at):
    cols = list(rows[0]) if rows else ["run_id"]
    segs = [index_files.segments(r, cols) for r in rows]
    got = {k: index_files.render(k, root, [s[k] for s in segs], len(rows), generated_at, cols)
           for k in index_files.KINDS}
    assert got["json"] == dumps_json({"generated_at": generated_at, "root_dir": root, "n_runs": len(rows),
                                      "runs": rows}).encode()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    assert got["csv"] == buf.getvalue().encode()
    md_rows = [f"| {r['run_id']} | {r['mode']} | {r['ticker']} | {r['strategy']} | {_fmt(r['sharpe_simple'])} | "
               f"{_fmt(r['total_return'])} | {_fmt(r['max_drawdown'])} | {_fmt(r['trades'])} |" for r in rows]
    assert got["md"].decode().endswith("|---|---|---|---|---|---|---|---|\n" + "".join(x + "\n" for x in md_rows))


NAMES = st.sampled_from([f"2026010{d}_00000{s}_run_abc{suffix}" for d in range(1, 4) for s in range(2)
                         for suffix in ("", "_2", "_10")] + ["legacy", "a", "zz_last"])
OPS = st.lists(st.tuples(st.sampled_from(["add", "add", "add", "edit", "delete"]), NAMES,
                         st.floats(-3, 3, allow_nan=False)), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_incremental_update_is_byte_for_byte_a_full_rebuild(tmp_path_factory, ops):
    """Appends, out-of-order inserts (a run claimed earlier published later), re-publishes of
    an existing dir and deletions, each followed by the refresh-index step for that dir."""
    root = tmp_path_factory.mktemp("reg")
    for i, (op, name, sharpe) in enumerate(ops):
        if op == "delete":
            shutil.rmtree(root / name, ignore_errors=True)
        else:
            fake_run(root, name, sharpe=sharpe, trades=i * 10 ** (i % 4))  # rows of varying widths
        runs_index.refresh(root, root / name)
        data = assert_files_are_a_full_rebuild(root)
        assert data["n_runs"] == len(runs_index.scan(root))
        assert meta(root)["dirty"] == "0"
        with sqlite3.connect(catalog.catalog_path(root)) as db:  # the kept counts are the real ones
            kept = dict(db.execute("SELECT key, n FROM counts WHERE n != 0"))
            real = {"runs": db.execute("SELECT count(*) FROM runs").fetchone()[0],
                    **{f"metric:{m}": n for m, n in db.execute("SELECT metric, count(*) FROM metric GROUP BY metric")}}
        assert kept == {k: n for k, n in real.items() if n}


def test_n_runs_gaining_a_digit_rewrites_the_head(tmp_path):
    for i in range(11):
        fake_run(tmp_path, f"20260101_0000{i:02d}_run_x")
        runs_index.refresh(tmp_path, tmp_path / f"20260101_0000{i:02d}_run_x")
    assert assert_files_are_a_full_rebuild(tmp_path)["n_runs"] == 11


def test_a_file_edited_or_deleted_behind_the_catalog_is_rewritten(tmp_path):
    for name in ("r1", "r2"):
        fake_run(tmp_path, name)
        runs_index.refresh(tmp_path, tmp_path / name)
    (tmp_path / "runs_index.json").unlink()
    with open(tmp_path / "runs_index.csv", "a") as fh:
        fh.write("junk\n")
    fake_run(tmp_path, "r3")
    runs_index.refresh(tmp_path, tmp_path / "r3")
    assert assert_files_are_a_full_rebuild(tmp_path)["n_runs"] == 3


def test_a_roots_first_request_writes_the_index_files_once(tmp_path, monkeypatch):
    """The first refresh-index step in a root (no catalog yet) rebuilds from the run dirs, the
    just-published one among them, and writes each of the three files once (it used to write
    them for the rebuild and again for the run); the files are a full rebuild's, and the next
    request patches them as usual."""
    written: list[str] = []
    real = index_files.write_full
    monkeypatch.setattr(index_files, "write_full", lambda root, kind, data: written.append(kind) or real(root, kind, data))
    fake_run(tmp_path, "20260101_000000_run_a")
    runs_index.refresh(tmp_path, tmp_path / "20260101_000000_run_a")
    assert sorted(written) == sorted(index_files.KINDS)
    assert assert_files_are_a_full_rebuild(tmp_path)["n_runs"] == 1
    assert meta(tmp_path)["dirty"] == "0"
    fake_run(tmp_path, "20260101_000001_run_b")
    runs_index.refresh(tmp_path, tmp_path / "20260101_000001_run_b")
    assert assert_files_are_a_full_rebuild(tmp_path)["n_runs"] == 2


def test_an_old_store_without_a_catalog_is_indexed_on_first_use(tmp_path):
    for i in range(3):
        fake_run(tmp_path, f"old_{i}", sharpe=float(i))
    (tmp_path / "runs_index.json").write_text('{"runs": []}')  # an old store's stale index
    assert not catalog.catalog_path(tmp_path).exists()
    assert [r["run_id"] for r in runs.list_runs(tmp_path)] == ["old_2", "old_1", "old_0"]
    assert catalog.catalog_path(tmp_path).is_file()
    assert assert_files_are_a_full_rebuild(tmp_path)["n_runs"] == 3
    assert runs.best_run(tmp_path)["run"]["run_id"] == "old_2"


def test_listings_see_run_dirs_added_or_removed_behind_the_catalog(tmp_path):
    fake_run(tmp_path, "a", sharpe=1.0)
    runs_index.refresh(tmp_path, tmp_path / "a")
    fake_run(tmp_path, "b", sharpe=2.0)  # copied in, no request
    assert runs.best_run(tmp_path)["run"]["run_id"] == "a"  # O(1): --runs-best does not list the root
    assert [r["run_id"] for r in runs.list_runs(tmp_path)] == ["b", "a"]  # a listing does
    assert runs.best_run(tmp_path)["run"]["run_id"] == "b"
    assert_files_are_a_full_rebuild(tmp_path)
    shutil.rmtree(tmp_path / "b")  # the best run, deleted by hand
    assert runs.best_run(tmp_path)["run"]["run_id"] == "a"  # its answer is checked, and redone
    assert [r["run_id"] for r in runs.list_runs(tmp_path)] == ["a"]
    assert_files_are_a_full_rebuild(tmp_path)


def test_reindex_picks_up_edits_inside_run_dirs(tmp_path):
    fake_run(tmp_path, "a", sharpe=1.0)
    fake_run(tmp_path, "b", sharpe=2.0)
    runs_index.refresh(tmp_path)
    fake_run(tmp_path, "a", sharpe=5.0)  # rewritten in place: the root does not change
    runs_index.refresh(tmp_path)  # --runs-reindex
    assert runs.best_run(tmp_path)["run"]["run_id"] == "a"
    assert_files_are_a_full_rebuild(tmp_path)


def test_a_catalog_that_is_not_a_database_is_rebuilt(tmp_path):
    fake_run(tmp_path, "a")
    runs_index.refresh(tmp_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{catalog.catalog_path(tmp_path)}{suffix}").unlink(missing_ok=True)
    catalog.catalog_path(tmp_path).write_bytes(b"garbage" * 100)
    assert runs.best_run(tmp_path)["run"]["run_id"] == "a"
    assert_files_are_a_full_rebuild(tmp_path)


def test_a_catalog_of_another_schema_is_rebuilt_with_new_tables(tmp_path):
    fake_run(tmp_path, "a")
    runs_index.refresh(tmp_path)
    with sqlite3.connect(catalog.catalog_path(tmp_path)) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
        db.execute("DROP TABLE counts")
    assert runs.best_run(tmp_path)["runs_scanned"] == 1
    assert meta(tmp_path)["schema"] == catalog.SCHEMA_VERSION


def test_a_plugin_metric_changing_the_layout_rebuilds_the_catalog(tmp_path, monkeypatch):
    fake_run(tmp_path, "a")
    runs_index.refresh(tmp_path)
    monkeypatch.setattr(catalog, "layout", lambda: "another-layout")
    assert [r["run_id"] for r in runs.list_runs(tmp_path)] == ["a"]
    assert meta(tmp_path)["layout"] == "another-layout"


def test_a_root_that_cannot_keep_a_catalog_is_listed_by_scanning(tmp_path, monkeypatch):
    fake_run(tmp_path, "a", sharpe=1.5)

    def read_only(self, root, create=True):
        raise PermissionError(13, "read-only file system")

    monkeypatch.setattr(catalog.Catalog, "__init__", read_only)  # as on a read-only mount (root runs CI)
    assert [r["run_id"] for r in runs.list_runs(tmp_path)] == ["a"]
    assert runs.best_run(tmp_path)["value"] == 1.5
    assert not catalog.catalog_path(tmp_path).exists()


def test_best_run_from_the_catalog_agrees_with_a_scan(tmp_path):
    for i, sharpe in enumerate([0.5, 2.0, 2.0, -1.0]):
        fake_run(tmp_path, f"r{3 - i}", sharpe=sharpe, trades=i)
        runs_index.refresh(tmp_path, tmp_path / f"r{3 - i}")
    best = runs.best_run(tmp_path)
    assert (best["run"]["run_id"], best["value"], best["runs_scanned"]) == ("r1", 2.0, 4)  # tie: smaller id
    low = runs.best_run(tmp_path, "trades", ascending=True)
    assert low["run"]["run_id"] == "r3" and low["value"] == 0 and isinstance(low["value"], int)


def _spawn_refresh(root: Path, run_dir: Path, gate: Path, point: str) -> subprocess.Popen:
    env = {**os.environ, "QUANTLAB_TEST_PAUSE_AT": f"{point}:{gate}", "QUANTLAB_TEST_PAUSE_TIMEOUT": "60"}
    code = (f"import sys; sys.path.insert(0, {str(SRC)!r}); from quantlab.artifacts import runs_index; "
            f"runs_index.refresh({str(root)!r}, {str(run_dir)!r})")
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _wait_reached(proc: subprocess.Popen, gate: Path) -> None:
    import time

    deadline = time.monotonic() + 60
    while not Path(f"{gate}.reached").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the writer never reached its hook"
        time.sleep(0.005)


@pytest.mark.parametrize("reader", ["writer", "reader", "reindex"])
def test_a_writer_killed_between_catalog_and_files_is_repaired(tmp_path, reader):
    """SIGKILL after the catalog committed the new row but before the files were patched: the
    catalog is dirty, and the next writer, reader or --runs-reindex makes them agree again."""
    root = tmp_path / "runs"
    fake_run(root, "r1")
    runs_index.refresh(root, root / "r1")
    fake_run(root, "r2")
    gate = tmp_path / "gate"
    proc = _spawn_refresh(root, root / "r2", gate, "catalog_committed")
    _wait_reached(proc, gate)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -9
    assert meta(root)["dirty"] == "1"
    assert strict_json((root / "runs_index.json").read_text())["n_runs"] == 1  # files not patched yet
    if reader == "writer":
        fake_run(root, "r3")
        runs_index.refresh(root, root / "r3")
    elif reader == "reader":
        assert len(runs.list_runs(root)) == 2
    else:
        runs_index.refresh(root)
    assert meta(root)["dirty"] == "0"
    data = assert_files_are_a_full_rebuild(root)
    assert data["n_runs"] == (3 if reader == "writer" else 2)
