"""Unit tests of artifacts: atomic writes, strict JSON, runs index, the equity chart."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import csv

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantlab.artifacts import runs_index
from quantlab.artifacts.io import atomic_write_json, csv_cell, dumps_json, json_safe
from quantlab.artifacts.plots import equity_png

SRC = Path(__file__).resolve().parents[2] / "src"


def test_json_safe_replaces_non_finite_and_numpy():
    data = {"a": float("nan"), "b": float("inf"), "c": np.float64(1.5), "d": np.int64(3), "e": [np.nan, 2.0]}
    out = json_safe(data)
    assert out == {"a": None, "b": None, "c": 1.5, "d": 3, "e": [None, 2.0]}
    assert isinstance(out["d"], int)
    json.loads(dumps_json(data), parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))


@given(st.lists(st.one_of(st.none(), st.text(), st.integers()), min_size=1, max_size=5))
def test_csv_cell_reads_back_with_the_csv_module(cells):
    line = ",".join(csv_cell(c) for c in cells) + "\n"
    want = ["" if c is None else str(c) for c in cells]
    if want == [""]:
        return  # one empty field is an empty line for every CSV reader
    assert next(csv.reader(io.StringIO(line, newline=""))) == want


def test_atomic_write_leaves_no_temp_file(tmp_path, monkeypatch):
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr("quantlab.artifacts.io.os.replace", fail)
    with pytest.raises(OSError):
        atomic_write_json(tmp_path / "x.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


def _fake_run(root, run_id, sharpe=1.0, trades=3):
    d = root / run_id
    d.mkdir(parents=True)
    (d / "metadata.json").write_text(json.dumps({"run_id": run_id, "mode": "run", "created_at": "t"}))
    (d / "report.json").write_text(json.dumps({
        "config_resolved": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "s"},
        "machine_contract": {"summary": {"sharpe_simple": sharpe, "total_return": 0.1, "max_drawdown": -0.1,
                                         "trades": trades, "win_rate": 0.5}}}))
    return d


def test_index_is_a_function_of_the_run_dirs(tmp_path):
    _fake_run(tmp_path, "b_run")
    _fake_run(tmp_path, "a_run", sharpe=2.0)
    (tmp_path / ".tmp_staging").mkdir()
    (tmp_path / "not_a_run").mkdir()
    corrupt = _fake_run(tmp_path, "c_run")
    (corrupt / "report.json").write_text("{broken")
    paths = runs_index.refresh(tmp_path)
    data = json.loads(open(paths["runs_index_json"]).read())
    assert [r["run_id"] for r in data["runs"]] == ["a_run", "b_run", "c_run"]
    assert data["runs"][0]["sharpe_simple"] == 2.0 and data["runs"][0]["trades"] == 3
    assert data["runs"][2]["sharpe_simple"] is None  # corrupt report: partial row, no crash
    csv_lines = open(paths["runs_index_csv"]).read().splitlines()
    assert csv_lines[0].split(",") == runs_index.COLUMNS and len(csv_lines) == 4
    assert "a_run" in open(paths["runs_index_md"]).read()


def test_concurrent_index_refreshes_lose_no_row(tmp_path):
    """Refresh A is held (test hook) after reading the run dirs, inside its lock. A refresh B
    started then must not be able to interleave (the lock is held: a non-blocking probe fails),
    so after both, every run is in the index. Without the lock, B would write first and A would
    then overwrite the index with its stale view, losing B's run."""
    from filelock import FileLock, Timeout

    _fake_run(tmp_path, "run_a")
    gate = tmp_path.parent / f"{tmp_path.name}_gate"
    env = {**os.environ, "QUANTLAB_TEST_PAUSE_AT": f"index_scanned:{gate}", "QUANTLAB_TEST_PAUSE_TIMEOUT": "60"}
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from quantlab.artifacts import runs_index; " \
           f"runs_index.refresh({str(tmp_path)!r})"
    a = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 60
        while not Path(f"{gate}.reached").exists():
            assert a.poll() is None and time.monotonic() < deadline, "refresh A never reached its hook"
            time.sleep(0.005)
        with pytest.raises(Timeout):  # A holds the index lock across read and write
            FileLock(str(tmp_path / ".runs_index.lock"), timeout=0).acquire()
        _fake_run(tmp_path, "run_b")
        b = threading.Thread(target=runs_index.refresh, args=(tmp_path,))
        b.start()
    finally:
        gate.touch()
    assert a.wait(timeout=60) == 0
    b.join(timeout=60)
    data = json.loads((tmp_path / "runs_index.json").read_text())
    assert sorted(r["run_id"] for r in data["runs"]) == ["run_a", "run_b"]


def test_many_concurrent_index_refreshes_lose_no_row(tmp_path):
    def add(i):
        _fake_run(tmp_path, f"run_{i:02d}")
        runs_index.refresh(tmp_path)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads((tmp_path / "runs_index.json").read_text())
    assert data["n_runs"] == 12


def test_equity_png_is_a_real_png():
    from PIL import Image

    eq = 10_000 * np.cumprod(1 + np.random.default_rng(0).normal(0, 0.01, 500))
    png = equity_png(["2017-01-03T00:00:00Z", "2018-12-31T00:00:00Z"], eq, eq * 0.9, "test")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] == 960 and img.size[1] > 400
    colors = {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 16)}
    assert (31, 119, 180) in colors and (255, 127, 14) in colors  # both lines drawn
    assert math.isfinite(float(eq[-1]))
