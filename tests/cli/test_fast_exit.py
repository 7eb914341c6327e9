"""main.py leaves without interpreter teardown (quantlab.contract.exit): nothing it wrote may be
lost. Stdout goes to a regular file here (block-buffered, unlike a terminal), which is where an
unflushed buffer would be dropped by ``os._exit``; PYTHONUNBUFFERED is removed from the
environment (a caller need not set it, and it would hide a missing flush)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, assert_every_json_parses, strict_json

BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
RUN = {"schema_version": "1.0", "request_id": "fast-exit", "command": "run",
       "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}}


def _to_files(ql, args: list[str], name: str) -> tuple[int, str, str]:
    out, err = ql.tmp / f"{name}.out", ql.tmp / f"{name}.err"
    env = {k: v for k, v in ql.env.items() if k != "PYTHONUNBUFFERED"}
    with open(out, "wb") as fo, open(err, "wb") as fe:
        code = subprocess.call(ql.cmd(*args), stdout=fo, stderr=fe, env=env, cwd=ql.tmp, timeout=120)
    return code, out.read_text(), err.read_text()


def test_machine_run_envelope_signals_and_artifacts_complete_at_exit(ql):
    sig = ql.tmp / "signals.jsonl"
    sig.touch()
    code, out, _ = _to_files(ql, ["--json-request", json.dumps(RUN), "--signal-file", str(sig)], "run")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 and out.endswith("\n")
    env = strict_json(lines[0])
    signals = [strict_json(line) for line in sig.read_text().splitlines()]
    assert [s["event"] for s in signals] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert signals[-1]["run_id"] == env["run_id"]
    report = strict_json(Path(env["report_path"]).read_text())
    assert report["machine_contract"]["run_id"] == env["run_id"]
    assert_every_json_parses(ql.outputs)


def test_failed_request_envelope_and_terminal_signal_complete_at_exit(ql):
    sig = ql.tmp / "signals.jsonl"
    sig.touch()
    bad = {**RUN, "params": {**RUN["params"], "start": "2018-01-01", "end": "2017-01-01"}}
    code, out, err = _to_files(ql, ["--json-request", json.dumps(bad), "--signal-file", str(sig)], "bad")
    assert code == 2
    env = strict_json(out)
    assert env["exit_code"] == 2 and env["status"] == "error"
    assert err.startswith("ERROR: ") and err.endswith("\n")
    assert json.loads(sig.read_text().splitlines()[-1])["event"] == "SESSION_FAILED"


def test_human_cli_output_in_a_file_is_complete(ql):
    """The human summary is printed without an explicit flush: only the exit's flush writes it."""
    code, out, _ = _to_files(ql, ["run", "--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01"],
                             "human")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("run ") and out.endswith("\n")
    assert any(line.strip().startswith("index:") for line in lines)
    report = Path(next(line.split(":", 1)[1].strip() for line in lines if line.strip().startswith("report:")))
    assert strict_json(report.read_text())["machine_contract"]["run_id"] == lines[0].split()[1]


def _exit_now_child(body: str) -> subprocess.CompletedProcess:
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from quantlab.contract.exit import exit_now\n" + body)
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "src")], capture_output=True, text=True,
                          env=BUFFERED, timeout=60)


def test_exit_now_flushes_buffers_runs_atexit_and_keeps_the_status():
    proc = _exit_now_child(
        "import atexit\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "sys.stdout.write('x' * 1_000_000 + '\\n')\n"
        "exit_now(3)\n")
    assert proc.returncode == 3
    assert proc.stdout == "x" * 1_000_000 + "\n" + "atexit ran\n"


def test_exit_now_waits_for_a_live_non_daemon_thread():
    proc = _exit_now_child(
        "import os, threading\n"
        "r, w = os.pipe()\n"
        "def late():\n"
        "    os.read(r, 1)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "os.write(w, b'x')\n"
        "exit_now(0)\n")
    assert proc.returncode == 0
    assert proc.stdout == "thread finished\n"


def test_main_runs_numpy_with_one_blas_thread_unless_told_otherwise():
    """OpenBLAS's extra threads spin CPU after numpy's import in every process (the step worker's
    included): main.py sets OPENBLAS_NUM_THREADS=1 before anything imports numpy, unless set."""
    probe = ("import os, runpy, sys; sys.argv = ['main.py', '--version']; "
             "runpy.run_path('main.py'); print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for given, expected in ((None, "1"), ("3", "3")):
        run_env = env if given is None else {**env, "OPENBLAS_NUM_THREADS": given}
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=run_env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [expected]
