"""Black-box tests of forward session directories: forward_outdir is the session directory,
renamed/copied sessions resume, concurrent resumes run one at a time, sessions are in the index
and the registry, multi-candidate sessions and portfolio calendar gaps say what they did."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import QuantLab, strict_json



def _forward(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "fs-1", "command": "forward", "params": params}


def _portfolio(root: Path) -> dict:
    return {"schema_version": "1.0", "request_id": "pf-1", "command": "portfolio",
            "params": {"portfolio_report": str(root)}}




def _meta(session: Path) -> dict:
    return strict_json((session / "session_metadata.json").read_text())


# ------------------------------------------------------------------------------ 10.5
def test_client_emulation_forward_outdir_is_the_session_directory(ql, grid_dir):
    """Step-by-step emulation of a client: two forward requests naming their session
    directories, then a portfolio over their parent (issue 10.5: it used to exit 3)."""
    root = ql.outputs / "forward_runs"
    envs = []
    for i, (start, end) in enumerate((("2018-01-01", "2018-04-01"), ("2018-02-01", "2018-06-01"))):
        res = ql.request(_forward(run_dir=str(grid_dir), forward_start=start, forward_end=end,
                                  forward_outdir=str(root / f"fwd_{i}")))
        assert res.returncode == 0, res.stderr
        env = res.envelope
        assert env["artifacts_path"] == str(root / f"fwd_{i}")
        assert env["report_path"] == str(root / f"fwd_{i}" / "report.json")
        assert _meta(root / f"fwd_{i}")["session_id"] == env["run_id"]
        assert res.signals[-1]["event"] == "SESSION_COMPLETED"
        envs.append(env)
    # hidden entries (.catalog: the runs catalog) aside
    assert sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["fwd_0", "fwd_1"]
    pf = ql.request(_portfolio(root))
    assert pf.returncode == 0, pf.stderr
    mc = strict_json(Path(pf.envelope["report_path"]).read_text())["machine_contract"]
    assert mc["n_sessions"] == 2 and sorted(mc["session_ids"]) == ["fwd_0", "fwd_1"]


def test_forward_outdir_refuses_a_directory_that_is_not_this_session(ql, grid_dir):
    root = ql.outputs / "forward_runs"
    other = root / "notes"
    other.mkdir(parents=True)
    (other / "readme.txt").write_text("mine")
    res = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01",
                              forward_outdir=str(other)))
    assert res.returncode == 2 and res.stderr.startswith("ERROR: ") and "not empty" in res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED"
    assert sorted(p.name for p in other.iterdir()) == ["readme.txt"]
    assert [p.name for p in root.iterdir() if p.name.startswith(".tmp")] == []

    # an empty directory is fine; the same request again is the same session (nothing changes)
    empty = root / "fwd_a"
    empty.mkdir()
    first = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01",
                                forward_outdir=str(empty)))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in empty.iterdir() if p.is_file()}
    again = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01",
                                forward_outdir=str(empty)))
    assert again.returncode == 0, again.stderr
    assert again.envelope["run_id"] == first.envelope["run_id"]
    assert again.envelope["summary"] == first.envelope["summary"]
    assert {p.name: p.read_bytes() for p in empty.iterdir() if p.is_file()} == before
    # the same session to a later end extends it in place
    later = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-06-01",
                                forward_outdir=str(empty)))
    assert later.returncode == 0, later.stderr
    assert _meta(empty)["forward_end"] == "2018-06-01" and _meta(empty)["resume_count"] == 1
    # a different session (other start) into it is refused
    clash = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-02-01", forward_end="2018-06-01",
                                forward_outdir=str(empty)))
    assert clash.returncode == 2 and "not this forward session" in clash.stderr
    assert _meta(empty)["forward_end"] == "2018-06-01"


# ------------------------------------------------------------------------------ 19.9
def test_renamed_and_copied_sessions_resume_by_their_own_id(ql, grid_dir):
    first = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01"))
    assert first.returncode == 0, first.stderr
    session = Path(first.envelope["artifacts_path"])
    renamed = session.parent / "cr1"
    session.rename(renamed)
    copied = session.parent / "cr2"
    shutil.copytree(renamed, copied)
    for target, end in ((renamed, "2018-06-01"), (copied, "2018-08-01")):
        res = ql.request(_forward(resume_forward=str(target), forward_end=end))
        assert res.returncode == 0, res.stderr
        assert res.envelope["run_id"] == first.envelope["run_id"]
        assert res.envelope["artifacts_path"] == str(target)
        assert _meta(target)["forward_end"] == end
    oneshot = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-08-01"))
    other = Path(oneshot.envelope["artifacts_path"])
    for name in ("metrics.json", "trades.csv", "ledger.csv"):
        assert (copied / name).read_bytes() == (other / name).read_bytes(), name
    assert _meta(renamed)["forward_end"] == "2018-06-01"  # the copy's resume left the original alone


def test_resume_of_a_session_with_broken_metadata_names_the_directory(ql, grid_dir):
    first = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01"))
    session = Path(first.envelope["artifacts_path"])
    meta = _meta(session)
    del meta["candidates"]
    (session / "session_metadata.json").write_text(json.dumps(meta))
    res = ql.request(_forward(resume_forward=str(session), forward_end="2018-06-01"))
    assert res.returncode == 2 and str(session) in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------------------ 19.1
ENDS = ("2017-10-01", "2018-01-01", "2018-06-01")


def _start(ql, payload: dict, name: str, pause: Path | None = None) -> tuple[subprocess.Popen, Path]:
    env = dict(ql.env)
    if pause is not None:
        env["QUANTLAB_TEST_PAUSE_AT"] = f"forward_session_locked:{pause}"
    sig = ql.tmp / f"signals_{name}.jsonl"
    sig.write_text("")
    proc = subprocess.Popen(ql.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ql.tmp)
    return proc, sig


def _finish(proc: subprocess.Popen, sig: Path) -> tuple[int, dict, str, list[dict]]:
    out, err = proc.communicate(timeout=180)
    lines = out.splitlines()
    assert len(lines) == 1, out
    return proc.returncode, strict_json(lines[0]), err, [strict_json(x) for x in sig.read_text().splitlines()]


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Wait for a pause point (a file the paused process writes), failing if the process ends."""
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, f"process ended before {path.name}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def resume_base(tmp_path_factory, grid_dir) -> tuple[Path, dict]:
    """A session 2017-06-01 .. 2017-08-01 and the one-shot summaries/ledgers for each end in ENDS
    (made once; the tests resume copies of the session from their own outputs roots)."""
    ql = QuantLab(tmp_path_factory.mktemp("resume_base"))
    base = ql.request(_forward(run_dir=str(grid_dir), forward_start="2017-06-01", forward_end="2017-08-01",
                               forward_top_k=2, forward_outdir=str(ql.tmp / "base_session")))
    assert base.returncode == 0, base.stderr
    expected = {}
    for end in ENDS:
        one = ql.request(_forward(run_dir=str(grid_dir), forward_start="2017-06-01", forward_end=end,
                                  forward_top_k=2, forward_outdir=str(ql.tmp / f"oneshot_{end}")))
        assert one.returncode == 0, one.stderr
        expected[end] = {"summary": one.envelope["summary"],
                         "ledger": (ql.tmp / f"oneshot_{end}" / "ledger.csv").read_bytes()}
    return ql.tmp / "base_session", expected


def _check_outcomes(session: Path, outcomes: dict, expected: dict) -> None:
    """Every request answers for itself: exit 0 with the summary of one forward run to its own end,
    or exit 2 because a later end got there first; the session ends at the latest end."""
    for end, (code, env, err, signals) in outcomes.items():
        if code == 0:
            assert env["summary"] == expected[end]["summary"], (end, env)
            assert signals[-1]["event"] == "SESSION_COMPLETED" and signals[-1]["summary"] == env["summary"]
        else:
            assert code == 2 and "only extends" in err, (end, code, err)
            assert signals[-1]["event"] == "SESSION_FAILED"
            assert any(e > end and outcomes[e][0] == 0 for e in outcomes)
    assert outcomes[ENDS[-1]][0] == 0
    assert _meta(session)["forward_end"] == ENDS[-1]
    assert (session / "ledger.csv").read_bytes() == expected[ENDS[-1]]["ledger"]
    assert strict_json((session / "report.json").read_text())["machine_contract"]["summary"] == \
        expected[ENDS[-1]]["summary"]


@pytest.mark.xdist_group("resume_base")  # one worker: resume_base is made once
def test_concurrent_resumes_run_one_at_a_time_paused(ql, resume_base):
    """Deterministic order through the test hook: the first resume holds the session while the
    two others start; each then answers for its own request."""
    base, expected = resume_base
    session = ql.tmp / "paused_session"
    shutil.copytree(base, session)
    gate = ql.tmp / "gate_first"
    first = _start(ql, _forward(resume_forward=str(session), forward_end=ENDS[0]), "p0", pause=gate)
    _wait_for(Path(str(gate) + ".reached"), first[0])
    # while it is paused the session is held: nobody else can take its lock
    from quantlab.commands.forward.plan import session_lock_key

    lock = ql.outputs / ".quantlab" / "locks" / f"{session_lock_key(session.resolve())}.lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    others = {end: _start(ql, _forward(resume_forward=str(session), forward_end=end), f"p{i}")
              for i, end in enumerate(ENDS[1:], 1)}
    gate.touch()
    outcomes = {ENDS[0]: _finish(*first), **{end: _finish(*p) for end, p in others.items()}}
    assert outcomes[ENDS[0]][0] == 0  # it held the session first, so nothing overtook it
    _check_outcomes(session, outcomes, expected)


@pytest.mark.xdist_group("resume_base")  # one worker: resume_base is made once
def test_concurrent_resumes_each_answer_for_themselves(ql, resume_base):
    """Three resumes of one session started together (issue 19.1), 20 trials (QUANTLAB_RACE_TRIALS):
    no lost update, no shared answer, in any interleaving."""
    base, expected = resume_base
    for trial in range(int(os.environ.get("QUANTLAB_RACE_TRIALS", "20"))):
        session = ql.tmp / f"race_{trial}"
        shutil.copytree(base, session)
        procs = {end: _start(ql, _forward(resume_forward=str(session), forward_end=end), f"r{trial}_{i}")
                 for i, end in enumerate(ENDS)}
        outcomes = {end: _finish(*p) for end, p in procs.items()}
        _check_outcomes(session, outcomes, expected)


# ------------------------------------------------------------------------------ 10.15
def test_forward_sessions_are_in_the_index_and_the_registry(ql, grid_dir):
    res = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-04-01"))
    assert res.returncode == 0, res.stderr
    session = Path(res.envelope["artifacts_path"])
    root = session.parent
    done = res.signals[-1]
    assert done["runs_index_json"] == str(root / "runs_index.json")
    rows = strict_json((root / "runs_index.json").read_text())["runs"]
    assert [(r["run_id"], r["mode"], r["ticker"], r["strategy"], r["start"], r["end"]) for r in rows] == [
        (res.envelope["run_id"], "forward", "SPX", "rsi_ma_cross_v2", "2018-01-01", "2018-04-01")]
    assert res.envelope["run_id"] in (root / "runs_index.md").read_text()
    # the human CLI prints the index that holds the session
    cli = ql.cli("--forward-eval", str(grid_dir), "--forward-start", "2018-01-01", "--forward-end", "2018-05-01")
    assert cli.returncode == 0, cli.stderr
    assert f"index:     {root / 'runs_index.md'}" in cli.stdout

    listing = ql.cli("--runs-list", str(root), "--json")
    assert listing.returncode == 0, listing.stderr
    listed = strict_json(listing.stdout)
    listed = listed["runs"] if isinstance(listed, dict) else listed
    assert {(r["ticker"], r["strategy"]) for r in listed} == {("SPX", "rsi_ma_cross_v2")} and len(listed) == 2
    show = ql.cli("--runs-show", str(session))
    assert show.returncode == 0 and "rsi_ma_cross_v2" in show.stdout
    html = ql.cli("report", str(root))
    assert html.returncode == 0, html.stderr
    assert (root / "report.html").is_file() and res.envelope["run_id"] in (root / "report.html").read_text()
    before = strict_json((session / "report.json").read_text())
    (session / "report.json").unlink()
    rebuilt = ql.cli("report", str(session))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert strict_json((session / "report.json").read_text())["machine_contract"] == before["machine_contract"]


# ------------------------------------------------------------------------------ 10.13
def test_multi_candidate_sessions_say_which_candidate_they_use(ql, grid_dir):
    res = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-06-01",
                              forward_top_k=3))
    assert res.returncode == 0, res.stderr
    session = Path(res.envelope["artifacts_path"])
    mc = strict_json((session / "report.json").read_text())["machine_contract"]
    assert mc["primary_candidate"] == "c1" and [c["candidate_id"] for c in mc["candidates"]] == ["c1", "c2", "c3"]
    assert mc["summary"] == mc["candidates"][0]["summary"]
    note = [w for w in mc["warnings"] if "3 candidates" in w]
    assert note and "candidate c1 only" in note[0]
    assert note[0] in res.envelope["warnings"]
    assert [line for line in res.stderr.splitlines() if line.startswith("WARNING: ") and "3 candidates" in line]
    assert "candidate c1 (of 3)" in (session / "run_report.md").read_text()
    pf = ql.request(_portfolio(session.parent))
    assert pf.returncode == 0, pf.stderr
    pmc = strict_json(Path(pf.envelope["report_path"]).read_text())["machine_contract"]
    assert any("3 candidates, uses c1" in w for w in pmc["warnings"])
    assert any("3 candidates, uses c1" in w for w in pf.envelope["warnings"])


def test_portfolio_calendar_gap_is_flagged(ql, grid_dir):
    root = ql.outputs / "forward_runs"
    for name, start, end in (("a", "2016-07-01", "2017-01-01"), ("b", "2018-01-01", "2018-06-01")):
        res = ql.request(_forward(run_dir=str(grid_dir), forward_start=start, forward_end=end,
                                  forward_outdir=str(root / name)))
        assert res.returncode == 0, res.stderr
    pf = ql.request(_portfolio(root))
    assert pf.returncode == 0, pf.stderr
    report = strict_json(Path(pf.envelope["report_path"]).read_text())
    assert report["calendar"]["gaps"] == [{"from": "2016-12-30T00:00:00Z", "to": "2018-01-02T00:00:00Z", "days": 368.0}]
    warning = [w for w in report["machine_contract"]["warnings"] if "calendar gap" in w]
    assert warning and "2016-12-30T00:00:00Z -> 2018-01-02T00:00:00Z" in warning[0] and "flat" in warning[0]
    assert warning[0] in pf.envelope["warnings"]
    assert [line for line in pf.stderr.splitlines() if line.startswith("WARNING: ") and "calendar gap" in line]
    # weekends and holidays are not gaps
    alone = ql.request(_portfolio(root / "b"))
    assert alone.returncode != 0 or "calendar gap" not in alone.stderr


# ------------------------------------------------------------------------------ 19.11
def test_portfolio_over_run_directories_says_so(ql):
    for end in ("2018-01-01", "2018-02-01"):
        assert ql.request({"schema_version": "1.0", "command": "run",
                           "params": {"ticker": "SPX", "start": "2017-01-01", "end": end}}).returncode == 0
    res = ql.request(_portfolio(ql.outputs / "runs"))
    assert res.returncode == 3 and res.signals[-1]["event"] == "SESSION_FAILED"
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("ERROR: ") and "2 directories are run directories" in line
    assert "not forward sessions" in line and "forward_runs" in line and "incomplete" not in line


@pytest.mark.parametrize("command,params,name,value", [
    ("run", {"ticker": "SPX", "start": "2017-13-01", "end": "2018-01-01"}, "start", "2017-13-01"),
    ("run", {"ticker": "SPX", "start": "0001-01-01", "end": "2018-01-01"}, "start", "0001-01-01"),
    ("sweep", {"ticker": "SPX", "start": "2017-01-01", "end": "2018-02-30", "strategy": "sma_crossover",
               "param_grid": {"fast": [5]}}, "end", "2018-02-30"),
    ("sweep", {"ticker": "SPX", "start": "0001-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
               "param_grid": {"fast": [5]}}, "start", "0001-01-01"),
    ("sweep", {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
               "param_grid": {"fast": [5]}, "splits": [{"name": "a", "train": {"start": "2017-01-01",
               "end": "2017-13-01"}, "test": {"start": "2017-07-01", "end": "2018-01-01"}}]},
     "splits[0].train.end", "2017-13-01"),
    ("forward", {"run_dir": "GRID", "forward_start": "2018-02-30", "forward_end": "2018-06-01"},
     "forward_start", "2018-02-30"),
    ("forward", {"resume_forward": "SESSION", "forward_end": "2019-13-01"}, "forward_end", "2019-13-01"),
])
def test_date_errors_have_one_wording(ql, grid_dir, command, params, name, value):
    params = dict(params)
    if params.get("run_dir") == "GRID":
        params["run_dir"] = str(grid_dir)
    if params.get("resume_forward") == "SESSION":
        first = ql.request(_forward(run_dir=str(grid_dir), forward_start="2018-01-01", forward_end="2018-03-01"))
        params["resume_forward"] = first.envelope["artifacts_path"]
    res = ql.request({"schema_version": "1.0", "command": command, "params": params})
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith(
        f"ERROR: params.{name} is not a valid date (YYYY-MM-DD or ISO 8601): '{value}'"), res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED" and "Traceback" not in res.stderr
