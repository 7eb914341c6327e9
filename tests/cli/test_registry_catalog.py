"""The runs catalog through main.py: kills between the catalog and the index files, an old
store, --runs-reindex. Kills land at a known point (QUANTLAB_TEST_PAUSE_AT), never after a sleep."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from conftest import run_request, strict_json
from index_reference import assert_files_are_a_full_rebuild
from quantlab.artifacts import catalog
from test_kill_safety import spawn, wait_reached


def catalog_state(root) -> tuple[dict, list[str]]:
    with sqlite3.connect(catalog.catalog_path(root)) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        names = [n for (n,) in db.execute("SELECT name FROM runs ORDER BY name")]
    return meta, names


def assert_agree(root) -> dict:
    """Catalog clean, files byte-for-byte a full rebuild of the run dirs, same runs in both."""
    meta, names = catalog_state(root)
    assert meta["dirty"] == "0"
    data = assert_files_are_a_full_rebuild(root)
    assert [r["run_id"] for r in data["runs"]] == names
    return data


@pytest.mark.parametrize("then", ["next_request", "reindex", "inspection"])
def test_a_request_killed_between_catalog_and_files_is_repaired(ql, then):
    first = ql.request(run_request())
    assert first.returncode == 0, first.stderr
    gate = ql.tmp / "gate"
    proc = spawn(ql, run_request(fee=0.001), ql.tmp / "killed.jsonl", "catalog_committed", gate)
    wait_reached(gate, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -9  # killed after the catalog took the row, before the files did
    root = ql.runs_dir()
    meta, names = catalog_state(root)
    assert meta["dirty"] == "1" and len(names) == 2
    assert strict_json((root / "runs_index.json").read_text())["n_runs"] == 1  # behind, for now
    if then == "next_request":
        assert ql.request(run_request(fee=0.002)).returncode == 0
    elif then == "reindex":
        res = ql.cli("--runs-reindex", str(root), "--json")
        assert res.returncode == 0 and strict_json(res.stdout)["n_runs"] == 2, res.stderr
    else:
        res = ql.cli("--runs-best", str(root), "--json")
        assert res.returncode == 0 and strict_json(res.stdout)["runs_scanned"] == 2, res.stderr
    assert assert_agree(root)["n_runs"] == (3 if then == "next_request" else 2)


def test_a_request_killed_before_the_catalog_leaves_both_without_its_run(ql):
    """Killed inside the index lock before the catalog changed: neither has the run (they
    agree); the next inspection sees the root changed and adds it to both."""
    assert ql.request(run_request()).returncode == 0
    gate = ql.tmp / "gate"
    proc = spawn(ql, run_request(fee=0.001), ql.tmp / "killed.jsonl", "index_scanned", gate)
    wait_reached(gate, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -9
    root = ql.runs_dir()
    meta, names = catalog_state(root)
    assert meta["dirty"] == "0" and len(names) == 1
    assert strict_json((root / "runs_index.json").read_text())["n_runs"] == 1
    listed = strict_json(ql.cli("--runs-list", str(root), "--json").stdout)
    assert len(listed) == 2
    assert assert_agree(root)["n_runs"] == 2


def test_an_old_store_without_a_catalog_keeps_working(ql):
    """A store written before the catalog existed: run dirs and runs_index.* only."""
    assert ql.request(run_request()).returncode == 0
    root = ql.runs_dir()
    old_index = (root / "runs_index.json").read_bytes()
    shutil.rmtree(root / catalog.CATALOG_DIR)
    res = ql.cli("--runs-list", str(root), "--json")
    assert res.returncode == 0 and len(strict_json(res.stdout)) == 1
    assert (root / "runs_index.json").read_bytes() == old_index  # it already was what a rebuild writes
    shutil.rmtree(root / catalog.CATALOG_DIR)
    second = ql.request(run_request(fee=0.001))
    assert second.returncode == 0, second.stderr
    assert assert_agree(root)["n_runs"] == 2


def test_runs_reindex_errors_are_one_line(ql, tmp_path):
    res = ql.cli("--runs-reindex", str(tmp_path / "nope"))
    assert res.returncode == 2 and res.stderr.startswith("ERROR: runs root not found") and res.stdout == ""
    (tmp_path / "f").write_text("x")
    res = ql.cli("--runs-reindex", str(tmp_path / "f"))
    assert res.returncode == 2 and "not a directory" in res.stderr
    res = ql.cli("--runs-reindex", str(tmp_path), "--runs-list", str(tmp_path))
    assert res.returncode == 2 and "choose one inspection command" in res.stderr


def test_runs_reindex_collects_a_stale_staging_dir(ql):
    assert ql.request(run_request()).returncode == 0
    root = ql.runs_dir()
    stale = root / ".tmp_20200101_000000_run_0000000"  # left by a version without the staging ledger
    stale.mkdir()
    (stale / ".owner").write_text("999999999")
    res = ql.cli("--runs-reindex", str(root))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"reindexed 1 run under {root}"
    assert not stale.exists()
    assert_agree(root)
