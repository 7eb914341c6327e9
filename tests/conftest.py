"""Shared fixtures. Every test gets its own outputs root (QUANTLAB_OUTPUTS_DIR), so the suite
never writes into the repository and tests never share state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRID_YAML = ROOT / "config" / "experiments" / "spx_2017_grid.yaml"  # the bundled SPX 2017 grid sweep
SPX_2017_RUN = ("run", "--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01")  # a CLI run
MAIN = ROOT / "main.py"
# How long a test waits for something that must happen at once (a beat, a child's death) before it
# calls it missing. scripts/mutation_check.py lowers it: there the thing is meant not to happen.
EVENT_WAIT_S = float(os.environ.get("QUANTLAB_TEST_EVENT_WAIT", "20"))
sys.path.insert(0, str(ROOT / "src"))


def strict_json(text: str):
    """json.loads that rejects NaN/Infinity like strict parsers (Go, JS) do."""
    def bad(token):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=bad)


def assert_every_json_parses(root: Path) -> int:
    """Any file called *.json under ``root`` (the internal store and logs included) is strict JSON:
    no empty per-job log files, no half-written records. Returns how many were parsed."""
    found = list(root.rglob("*.json"))
    assert found, f"no JSON file under {root}"
    for path in found:
        try:
            strict_json(path.read_text())
        except ValueError as exc:
            raise AssertionError(f"{path} is called .json but does not parse: {exc}") from None
    return len(found)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    signals: list[dict]

    @property
    def envelope(self) -> dict:
        lines = self.stdout.splitlines()
        assert len(lines) == 1, f"stdout must be exactly one line, got {len(lines)}: {self.stdout!r}"
        return strict_json(lines[0])


class QuantLab:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.outputs = tmp / "outputs"
        self.env = {**os.environ, "QUANTLAB_OUTPUTS_DIR": str(self.outputs), "PYTHONHASHSEED": "0"}
        self.env.pop("QUANTLAB_ALLOWED_ROOTS", None)
        self.n = 0

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, str(MAIN), *args]

    def request(self, payload, *extra: str, signal_file: Path | None = None, timeout: float = 120) -> Result:
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        self.n += 1
        sig = signal_file or self.tmp / f"signals_{self.n}.jsonl"
        sig.touch()
        proc = subprocess.run(self.cmd("--json-request", raw, "--signal-file", str(sig), *extra),
                              capture_output=True, text=True, env=self.env, timeout=timeout, cwd=self.tmp)
        signals = [strict_json(line) for line in sig.read_text().splitlines()]
        return Result(proc.returncode, proc.stdout, proc.stderr, signals)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=self.tmp)

    def spawn(self, payload, sig: Path) -> subprocess.Popen:
        """Start a request in the background (signals to ``sig``); the caller communicates."""
        sig.touch()
        return subprocess.Popen(self.cmd("--json-request", json.dumps(payload), "--signal-file", str(sig)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                cwd=self.tmp)

    def cli_all(self, *commands: tuple[str, ...]) -> Path:
        """Run each CLI command (each must succeed); returns the runs root."""
        for args in commands:
            res = self.cli(*args)
            assert res.returncode == 0, res.stderr
        return self.runs_dir()

    def runs_dir(self) -> Path:
        return self.outputs / "runs"


@pytest.fixture
def ql(tmp_path) -> QuantLab:
    return QuantLab(tmp_path)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """`--dist loadgroup` (make test) sends the tests of one ``xdist_group`` to one worker by
    tagging their node ids ("id@group"). pytest-xdist 3.8 writes the tag to ``item._nodeid``, which
    pytest 9 no longer reads (it keeps ``_id``), so the groups were silently ignored; tag it there."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest: xdist's own tagging works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session")
def grid_dir(tmp_path_factory) -> Path:
    """The bundled SPX 2017 grid sweep's run directory, made once per test process: tests only
    read it (forward evaluations name it as their ``run_dir``), each from its own outputs root."""
    ql = QuantLab(tmp_path_factory.mktemp("grid_sweep"))
    res = ql.request({"schema_version": "1.0", "command": "sweep", "params": {"config_path": str(GRID_YAML)}})
    assert res.returncode == 0, res.stderr
    return Path(res.envelope["artifacts_path"])


def run_request(**params) -> dict:
    base = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}
    base.update(params)
    return {"schema_version": "1.0", "request_id": "req-test", "command": "run", "params": base}
