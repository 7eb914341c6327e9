"""Reliability and hostile input: load, faults, fuzzing. Each test prints its figures
(run `pytest -s tests/cli/test_reliability.py` to see them); docs/reliability.md quotes them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_every_json_parses, GRID_YAML, run_request, strict_json
from index_reference import REGISTRY_SIZES, assert_files_are_a_full_rebuild, populate



@pytest.mark.slow
@pytest.mark.parametrize("registry", REGISTRY_SIZES)
def test_load_16_runs_and_4_sweeps_at_once(ql, registry):
    before = [] if not registry else [r["run_id"] for r in strict_json(
        (populate(ql.runs_dir(), registry) / "runs_index.json").read_text())["runs"]]
    payloads = [run_request(fee=0.0005 * (i % 8), start=f"{2010 + i % 6}-01-01", end="2018-01-01")
                for i in range(16)]
    payloads += [{"schema_version": "1.0", "request_id": f"sw{i}", "command": "sweep",
                  "params": {"config_path": str(GRID_YAML), "fee": None} if i < 2 else
                  {"ticker": "SPX", "start": "2015-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
                   "param_grid": {"fast": [5, 10, 15 + i], "slow": [50, 100]}}} for i in range(4)]
    t0 = time.monotonic()
    procs = [(ql.spawn(p, ql.tmp / f"s{i}.jsonl"), time.monotonic()) for i, p in enumerate(payloads)]
    results = []
    for i, (proc, started) in enumerate(procs):
        out, err = proc.communicate(timeout=600)
        results.append((proc.returncode, out, err, time.monotonic() - started))
    wall = time.monotonic() - t0
    ids = []
    for i, (code, out, err, _) in enumerate(results):
        assert code == 0, err
        env = strict_json(out.strip())
        ids.append(env["run_id"])
        events = [json.loads(x)["event"] for x in (ql.tmp / f"s{i}.jsonl").read_text().splitlines()]
        assert events == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert len(set(ids)) == 20
    index = assert_files_are_a_full_rebuild(ql.runs_dir())
    assert sorted(r["run_id"] for r in index["runs"]) == sorted(before + ids)  # nothing lost
    parsed = assert_every_json_parses(ql.outputs)  # the internal store and job logs included
    slowest = max(r[3] for r in results)
    print(f"\nFIGURES load: 20 concurrent requests (16 run + 4 sweep) all exit 0 in {wall:.1f} s wall "
          f"(slowest {slowest:.1f} s); {len(index['runs'])} index rows; {parsed} JSON artifacts parsed strictly")


def test_read_only_outputs_fail_cleanly(ql):
    ql.env["QUANTLAB_OUTPUTS_DIR"] = "/sys/quantlab-readonly-test"  # sysfs: no file can be created
    res = ql.request(run_request())
    assert res.returncode == 1
    assert res.stderr.startswith("ERROR: cannot write outputs") and "Traceback" not in res.stderr
    assert res.envelope["exit_code"] == 1 and res.signals[-1]["event"] == "SESSION_FAILED"
    print(f"\nFIGURES fault read-only outputs: exit 1, message {res.envelope['error']['message']!r}")


def test_damaged_cache_files_are_detected_and_rebuilt(ql):
    first = ql.request(run_request())
    store = ql.outputs / ".quantlab" / "store"
    bars = next(store.rglob("bars.parquet"))
    bars.write_bytes(bars.read_bytes()[:100])  # truncated
    metrics = next((store / "sim").rglob("metrics.json"))
    metrics.write_text('{"metrics": {')  # torn
    again = ql.request(run_request())
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("damaged cache file") == 2
    a, b = Path(first.envelope["artifacts_path"]), Path(again.envelope["artifacts_path"])
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    print("\nFIGURES fault damaged cache: 2 damaged store files detected, rebuilt, identical metrics")


# ------------------------------------------------------------------------------------ fuzz
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=12)
KEYS = st.sampled_from(["ticker", "start", "end", "interval", "fee", "strategy", "strategy_params", "source",
                        "data_path", "out_dir", "cooldown_days", "rsi_buy_max", "initial_cash", "fill", "paper",
                        "param_grid", "config_path", "splits", "selection", "seed", "slippage_mode"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=st.sampled_from(["run", "sweep", "forward", "portfolio"]),
       params=st.dictionaries(KEYS, JSONISH, max_size=6))
def test_fuzz_request_validation_in_process(tmp_path_factory, command, params):
    """Any params: the validator and planner end in a contract error (exit 2/3/4), never anything else."""
    from quantlab.commands.run.plan import plan_run
    from quantlab.contract.request import parse_json_request
    from quantlab.errors import QuantLabError

    os.environ["QUANTLAB_OUTPUTS_DIR"] = str(tmp_path_factory.mktemp("fuzz"))
    try:
        raw = json.dumps({"schema_version": "1.0", "command": command, "params": params})
    except (ValueError, OverflowError):
        return
    try:
        req = parse_json_request(raw)
        if command == "run":
            plan_run(req.params, request_id=None, warnings=[], origin="json", claim=False)
        elif command == "sweep":
            from quantlab.commands.experiment import load_experiment
            from quantlab.commands.sweep.plan import plan_sweep
            from quantlab.contract.paths import resolve_input_path

            exp = load_experiment(req.params, resolve_path=resolve_input_path)
            plan_sweep(exp, req.params, request_id=None, warnings=[], origin="json", claim=False)
    except QuantLabError as exc:
        assert exc.exit_code in (2, 3, 4) and "\n" not in str(exc)


YAML_PIECES = st.sampled_from([
    "ticker: SPX\n", "start: '2017-01-01'\n", "end: 2018-01-01\n", "param_grid: {fast: [5, 10], slow: [50]}\n",
    "strategy: sma_crossover\n", "a: &x [1, 2]\nb: [*x, *x]\n", "splits: [{train: {start: 1, end: 2}}]\n",
    "fee: .nan\n", "fee: 1e999\n", "selection: {sort_by: [sharpe_simple], top_k: 0}\n", "!!python/object:os.system\n",
    "param_grid: {fast: !!binary aGVsbG8=}\n", "- list\n", "{{{\n", "\u00e9\u4e2d: \u2603\n", "key: [" * 30 + "]" * 30 + "\n",
])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(YAML_PIECES, max_size=8), noise=st.text(max_size=40))
def test_fuzz_sweep_yaml(tmp_path_factory, pieces, noise):
    """Any YAML text: a validated experiment or a one-line ConfigError; never code execution."""
    from quantlab.commands.experiment import build_experiment, read_yaml
    from quantlab.errors import QuantLabError

    path = tmp_path_factory.mktemp("yaml") / "exp.yaml"
    path.write_text("".join(pieces) + noise, encoding="utf-8")
    try:
        build_experiment(read_yaml(path), where="fuzz")
    except QuantLabError as exc:
        assert exc.exit_code in (2, 3) and "\n" not in str(exc)


HOSTILE = [
    '{"schema_version":"1.0","command":"run","params":{"ticker":"' + "A" * 120_000 + '"}}',
    '{"schema_version":"1.0","command":"run","params":{"fee":NaN}}',
    '{"schema_version":"1.0","command":"run","params":{"fee":Infinity}}',
    '{"schema_version":"1.0","command":"run","params":{"initial_cash":1e400}}',
    '{"schema_version":"1.0","command":"run","params":{"cooldown_days":123456789012345678901234567890}}',
    # an integer beyond float's range where a number is expected: a config error, never an OverflowError
    '{"schema_version":"1.0","command":"run","params":{"fee":' + "9" * 400 + '}}',
    '{"schema_version":"1.0","command":"sweep","params":{"ticker":"SPX","start":"2017-01-01","end":"2018-01-01",'
    '"strategy":"sma_crossover","param_grid":{"fast":[5],"slow":[20],"stop_loss":[' + "1" + "0" * 400 + ']}}}',
    '{"schema_version":"1.0","command":"run","params":{"ticker":"\\u202e\\u0000SPX"}}',
    '{"schema_version":"1.0","command":"run","params":{"ticker":"SPX","start":"9999-12-31","end":"10000-01-01"}}',
    '{"schema_version":"1.0","command":"run","params":{"ticker":"SPX","start":"0001-01-01","end":"0002-01-01"}}',
    '{"schema_version":"1.0","command":"run","params":{"ticker":"SPX","start":"2017-01-01","end":"2018-01-01",'
    '"out_dir":"../../../../etc/cron.d"}}',
    '{"schema_version":"1.0","command":"run","params":{"data_path":"/dev/zero","source":"file"}}',
    '{"schema_version":"1.0","command":"run","params":{"data_path":"/etc/shadow","source":"file"}}',
    '{"schema_version":"1.0","command":"run","params":{"strategy_params":' + "[" * 5000 + "]" * 5000 + '}}',
    '{"schema_version":"1.0","command":"sweep","params":{"config_path":"/etc/passwd"}}',
    '{"schema_version":"1.0","command":"sweep","params":{"param_grid":{"fast":' + json.dumps(list(range(1000)))
    + ',"slow":' + json.dumps(list(range(1000))) + '},"strategy":"sma_crossover","ticker":"SPX"}}',
    '{"schema_version":"1.0","command":"forward","params":{"run_dir":"/"}}',
    '{"schema_version":"1.0","command":"run","params":{"ticker":"SPX; rm -rf /","start":"$(reboot)"}}',
    # a refused webhook is only a warning (issue #10.14): bundled data, so the run never needs the network
    '{"schema_version":"1.0","command":"run","params":{"signal_webhook":"gopher://x","ticker":"SPX",'
    '"start":"2017-01-01","end":"2018-01-01"}}',
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_requests_end_in_a_contract_exit_code(ql, raw):
    cron = Path("/etc/cron.d")
    before = sorted(os.listdir(cron)) if cron.is_dir() else None
    res = ql.request(raw, timeout=120)
    if '"out_dir"' in raw:  # the path guard: refused before anything is written there
        assert res.returncode == 2 and "outside the allowed output roots" in res.stderr, res.stderr[-500:]
        assert (sorted(os.listdir(cron)) if cron.is_dir() else None) == before
    assert res.returncode in (0, 2, 3, 4), (res.returncode, res.stderr[-500:])
    if "9" * 400 in raw or "0" * 400 in raw:  # the contract's failure path, whole
        assert res.returncode == 2 and "must be" in res.stderr, res.stderr[-500:]
        assert len(res.stderr.strip().splitlines()) == 1 and res.signals[-1]["event"] == "SESSION_FAILED"
        assert json.loads(res.stdout)["status"] == "error"
        assert not any(ql.runs_dir().glob("*/")), "no run dir for a refused request"
    assert "Traceback" not in res.stderr
    assert len(res.stdout.splitlines()) == 1
    assert len(res.stderr) < 5000
