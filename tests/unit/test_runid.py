"""Run ids (one format, one regex, one claim), failed-log capping and the umask of atomic writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.commands.common import keep_failed_logs, prune_failed_logs
from quantlab.contract import runid

T0 = datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(0, 10**9), mode=st.sampled_from(["run", "paper", "grid", "walkforward", "portfolio",
                                                           "forward"]),
       digest=st.text("0123456789abcdef", min_size=7, max_size=7), seq=st.integers(1, 10**6))
def test_format_parse_and_pattern_agree(seconds, mode, digest, seq):
    ts = datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    rid = runid.format_run_id(ts, mode, digest, seq)
    assert rid.endswith(digest) == (seq == 1)
    assert runid.parse_run_id(rid) == (ts, mode, digest, seq)
    assert re.fullmatch(runid.pattern(), rid) and re.fullmatch(runid.pattern(mode), rid)
    assert runid.run_id_time(rid) == ts


@pytest.mark.parametrize("text", ["", "20310203_040506_run_abc", "20310203_040506_run_abcdef0_0",
                                  "20310203_040506_run_abcdef0_x", "x20310203_040506_run_abcdef0",
                                  "20311303_040506_run_abcdef0", ".tmp_20310203_040506_run_abcdef0", None, 7])
def test_parse_rejects_anything_else(text):
    assert runid.parse_run_id(text) is None


def test_recency_orders_claims_within_a_second():
    ids = [runid.format_run_id(T0, "run", "abcdef0", s) for s in (1, 2, 9, 10, 11)]
    later = runid.format_run_id(T0 + timedelta(seconds=1), "run", "0000000")
    shuffled = [ids[3], later, ids[0], ids[4], ids[2], ids[1]]
    assert sorted(shuffled, key=lambda r: runid.recency_key(None, r)) == ids + [later]


def test_claims_in_one_second_are_unique_across_out_dirs_and_never_move_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("QUANTLAB_TEST_NOW", "2031-02-03T04:05:06Z")
    def claim(i: int) -> tuple[str, datetime]:
        return runid.claim_run_id(tmp_path / f"out{i % 3}", "run", "abcdef0", staging=i % 2 == 0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim, range(30)))
    ids = sorted((r for r, _ in results), key=lambda r: runid.parse_run_id(r).seq)
    assert {ts for _, ts in results} == {T0}
    assert ids == [runid.format_run_id(T0, "run", "abcdef0", s) for s in range(1, 31)]
    claims = tmp_path / "outputs" / ".quantlab" / "requests"
    assert sorted(p.name for p in claims.iterdir()) == sorted(ids)


def test_an_id_taken_in_the_out_dir_by_an_older_version_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    out = tmp_path / "runs"
    (out / runid.format_run_id(T0, "run", "abcdef0")).mkdir(parents=True)
    rid, ts = runid.claim_run_id(out, "run", "abcdef0", T0)
    assert rid == runid.format_run_id(T0, "run", "abcdef0", 2) and ts == T0
    assert (out / runid.staging_name(rid) / ".owner").read_text() == str(os.getpid())


def test_stale_staging_is_collected_from_the_ledger_without_listing_the_runs_root(tmp_path, monkeypatch):
    """A killed request's staging dir goes at the next claim; the claim reads the ledger of
    claims in flight, never the runs root (which may hold 100,000 runs)."""
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))
    out = tmp_path / "runs"
    dead, _ = runid.claim_run_id(out, "run", "dead000", T0)
    (out / runid.staging_name(dead) / ".owner").write_text("999999999")  # its process is gone
    published, _ = runid.claim_run_id(out, "run", "done000", T0)
    os.rename(out / runid.staging_name(published), out / published)
    live, _ = runid.claim_run_id(out, "run", "live000", T0)
    def guard(real):
        def listing(path=".", *args):
            assert Path(path).resolve() != out.resolve(), "the claim listed the runs root"
            return real(path, *args)
        return listing

    for owner, name in ((os, "listdir"), (os, "scandir"), (Path, "glob"), (Path, "iterdir")):
        monkeypatch.setattr(owner, name, guard(getattr(owner, name)))
    runid.claim_run_id(out, "run", "next000", T0)
    monkeypatch.undo()
    assert not (out / runid.staging_name(dead)).exists()  # collected
    assert (out / runid.staging_name(live)).is_dir() and (out / published).is_dir()  # kept
    ledger = tmp_path / "outputs" / ".quantlab" / runid.STAGING_LEDGER
    assert {p.name for p in ledger.iterdir()} == {live, runid.format_run_id(T0, "run", "next000")}


def test_failed_logs_are_kept_and_capped(tmp_path):
    internal = tmp_path / ".quantlab"
    for i in range(6):
        rid = runid.format_run_id(T0 + timedelta(seconds=i), "run", "abcdef0")
        log = tmp_path / f"snake{i}.log"
        log.write_text("boom")
        jobs = internal / "requests" / rid / "logs" / "load_data"
        jobs.mkdir(parents=True)
        (jobs / "k.log").write_text("{}")
        os.utime(log, (1_000_000 + i, 1_000_000 + i))
        os.utime(jobs.parent, (1_000_000 + i, 1_000_000 + i))
        keep_failed_logs(internal, rid, log, keep=3)
        assert not log.exists() and not jobs.exists()
    failed = internal / "logs" / "failed"
    kept = sorted(p.name for p in failed.iterdir())
    newest = [runid.format_run_id(T0 + timedelta(seconds=i), "run", "abcdef0") for i in (3, 4, 5)]
    assert kept == sorted([f"{r}.jobs" for r in newest] + [f"{r}.snakemake.log" for r in newest])
    prune_failed_logs(failed, 1)
    assert sorted(p.name for p in failed.iterdir()) == [f"{newest[-1]}.jobs", f"{newest[-1]}.snakemake.log"]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    code = ("import sys; from quantlab.artifacts.io import atomic_write_json, atomic_copy, atomic_write_bytes;"
            "d = sys.argv[1]; atomic_write_json(d + '/a.json', {'x': 1}); atomic_write_bytes(d + '/b.bin', b'1');"
            "atomic_copy(d + '/b.bin', d + '/c.bin')")
    src = str(Path(__file__).resolve().parents[2] / "src")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env={**os.environ, "PYTHONPATH": src},
                   preexec_fn=lambda: os.umask(umask))
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == dict.fromkeys(
        ["a.json", "b.bin", "c.bin"], mode)


def test_a_copy_in_progress_does_not_disturb_another_copy_to_the_same_path(tmp_path):
    """Two atomic_copy calls to one destination overlap (the first is held reading a FIFO until the
    second has finished): each uses its own temp file, both succeed, the last rename wins, and no
    temp file is left."""
    import threading

    from quantlab.artifacts.io import atomic_copy

    fifo, other, dst = tmp_path / "slow.fifo", tmp_path / "other.bin", tmp_path / "dst.bin"
    os.mkfifo(fifo)
    other.write_bytes(b"second")
    errors: list[BaseException] = []

    def first() -> None:
        try:
            atomic_copy(fifo, dst)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    fd = None
    while fd is None:  # wait for the first copy to open the FIFO for reading (or to fail)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            thread.join(0.005)
            assert thread.is_alive(), f"the first copy ended before reading: {errors}"
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as writer:
        atomic_copy(other, dst)  # the whole second copy happens while the first is mid-copy
        assert dst.read_bytes() == b"second"
        writer.write(b"first")
    thread.join(30)
    assert not thread.is_alive() and errors == []
    assert dst.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.bin", "other.bin", "slow.fifo"]
