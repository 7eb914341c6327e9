"""Black-box tests of every failure path: exit code, one-line stderr, envelope, signal, no debris."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from conftest import run_request

GOOD = run_request()


def _assert_clean_failure(ql, res, code: int, needle: str):
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR: ")]
    assert len(errors) == 1, res.stderr
    assert needle.lower() in errors[0].lower(), errors[0]
    env = res.envelope
    assert env["status"] == "error" and env["exit_code"] == code
    assert env["error"]["message"] and env["error"]["code"]
    assert res.signals, "a signal file was given: SESSION_FAILED expected"
    last = res.signals[-1]
    assert last["event"] == "SESSION_FAILED" and last["status"] == "error"
    assert last["exit_code"] == code and last["error_type"] and last["message"]
    runs = ql.runs_dir()
    leftovers = [p.name for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
    assert leftovers == [], f"half-written run dirs left behind: {leftovers}"


@pytest.mark.parametrize("raw,needle", [
    ("{not json", "Invalid --json-request payload"),
    ("[1, 2]", "Invalid --json-request payload"),
    ('"run"', "Invalid --json-request payload"),
    ('{"command": "run"}', "Unsupported or missing schema_version"),
    ('{"schema_version": 1.0, "command": "run"}', "Unsupported or missing schema_version"),
    ('{"schema_version": "2.0", "command": "run"}', "Unsupported or missing schema_version"),
    ('{"schema_version": "1.0", "params": {}}', "Missing 'command'"),
    ('{"schema_version": "1.0", "command": "bogus"}', "Unknown command"),
    ('{"schema_version": "1.0", "command": "run", "extra": 1}', "unknown top-level field 'extra'"),
    ('{"schema_version": "1.0", "command": "run", "params": [1]}', "params must be of type object"),
    ('{"schema_version": "1.0", "command": "run", "params": {"fee": "abc"}}', "params.fee"),
    ('{"schema_version": "1.0", "command": "run", "params": {"fee": 0.5}}', "params.fee must be <= 0.1"),
    ('{"schema_version": "1.0", "command": "run", "params": {"cooldown_days": 5.5}}', "cooldown_days"),
    ('{"schema_version": "1.0", "command": "run", "params": {"paper": "yes"}}', "params.paper"),
    ('{"schema_version": "1.0", "command": "run", "params": {"ticker": 42}}', "params.ticker"),
    ('{"schema_version": "1.0", "command": "run", "params": {"interval": "7d"}}', "params.interval"),
    ('{"schema_version": "1.0", "command": "run", "params": {"slippage_mode": "random"}}', "slippage_mode"),
    ('{"schema_version": "1.0", "command": "run", "params": {"start": "2017-13-45"}}', "params.start"),
    ('{"schema_version": "1.0", "command": "run", "params": {"start": "2018-01-01", "end": "2017-01-01"}}',
     "must be before"),
    ('{"schema_version": "1.0", "command": "run", "params": {"strategy_params": [1]}}', "strategy_params"),
])
def test_invalid_requests_exit_2(ql, raw, needle):
    _assert_clean_failure(ql, ql.request(raw), 2, needle)


def test_unknown_strategy(ql):
    res = ql.request(run_request(strategy="moon_shot"))
    _assert_clean_failure(ql, res, 2, "moon_shot")
    assert "rsi_ma_cross_v2" in res.stderr  # lists the valid names


def test_unknown_strategy_param_suggests_the_closest(ql):
    res = ql.request(run_request(strategy_params={"rsi_buy_mx": 50}))
    _assert_clean_failure(ql, res, 2, "rsi_buy_mx")
    assert "did you mean 'rsi_buy_max'" in res.stderr


@pytest.mark.parametrize("params,needle", [
    ({"strategy_params": {"rsi_buy_max": 150}}, "rsi_buy_max"),
    ({"strategy": "sma_crossover", "strategy_params": {"fast": 50, "slow": 10}}, "fast"),
    ({"strategy": "sma_crossover", "strategy_params": {"fast": 2.5}}, "fast"),
    ({"strategy_params": {"cooldown_days": True}}, "cooldown_days"),
])
def test_out_of_range_strategy_params(ql, params, needle):
    _assert_clean_failure(ql, ql.request(run_request(**params)), 2, needle)


def test_conflicting_flat_and_nested_strategy_params(ql):
    res = ql.request(run_request(rsi_buy_max=50, strategy_params={"rsi_buy_max": 55}))
    _assert_clean_failure(ql, res, 2, "rsi_buy_max")


@pytest.mark.parametrize("out_dir", ["/etc/quantlab-out", "../../../../../../etc/x", "/proc/self"])
def test_escaping_output_paths_are_refused(ql, out_dir):
    res = ql.request(run_request(out_dir=out_dir))
    _assert_clean_failure(ql, res, 2, "out_dir")


def test_symlink_out_of_the_allowed_roots_is_refused(ql, tmp_path):
    link = tmp_path / "sneaky"
    os.symlink("/etc", link)
    res = ql.request(run_request(out_dir=str(link / "runs")))
    _assert_clean_failure(ql, res, 2, "outside the allowed output roots")


def test_allowed_roots_env_extends_the_allowed_outputs(ql, tmp_path):
    # /dev/shm is neither the project, nor the temp dir: allowed only once listed
    target = "/dev/shm/quantlab-test-allowed"
    refused = ql.request(run_request(out_dir=target))
    assert refused.returncode == 2
    ql.env["QUANTLAB_ALLOWED_ROOTS"] = "/dev/shm"
    ok = ql.request(run_request(out_dir=target))
    try:
        assert ok.returncode == 0, ok.stderr
        assert ok.envelope["artifacts_path"].startswith(target)
    finally:
        import shutil

        shutil.rmtree(target, ignore_errors=True)


@pytest.mark.parametrize("params,needle", [
    ({"ticker": "NOPE-XYZ", "source": "sample"}, "NOPE-XYZ"),
    ({"start": "2030-01-01", "end": "2031-01-01", "source": "sample"}, "2030-01-01"),
    ({"source": "file", "data_path": "/nonexistent/bars.csv"}, "bars.csv"),
])
def test_data_errors_exit_3(ql, params, needle):
    _assert_clean_failure(ql, ql.request(run_request(**params)), 3, needle)


def test_invalid_bars_file_exits_3_without_echoing_contents(ql, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,open,high,low,close,volume\n2017-01-03,10,9,8,SECRET_TOKEN,100\n"
                   "2017-01-02,10,11,9,10,100\n")
    res = ql.request(run_request(source="file", data_path=str(bad)))
    _assert_clean_failure(ql, res, 3, "SPX")
    assert "SECRET_TOKEN" not in res.stderr and "SECRET_TOKEN" not in res.stdout


def test_strategy_failure_at_run_time_exits_4(ql, tmp_path):
    plugin = tmp_path / "plugins" / "ql_failing_strategy.py"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent("""
        from quantlab.strategies import Strategy, register

        @register
        class Exploding(Strategy):
            name = "exploding"
            description = "raises while computing signals (test plugin)"
            params = ()

            def warmup_bars(self, params):
                return 0

            def signals(self, open_, high, low, close, params):
                raise ZeroDivisionError("boom inside strategy code")
    """))
    ql.env["PYTHONPATH"] = str(plugin.parent)
    ql.env["QUANTLAB_PLUGINS"] = "ql_failing_strategy"
    res = ql.request(run_request(strategy="exploding"))
    _assert_clean_failure(ql, res, 4, "boom inside strategy code")
    assert res.signals[-1]["error_type"] == "StrategyError"


def test_bad_cli_flag_is_a_one_line_error(ql):
    res = ql.cli("run", "--no-such-flag")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_signal_file_failure_never_changes_the_exit_code(ql, tmp_path):
    import subprocess

    unwritable = tmp_path / "no-such-dir" / "signals.jsonl"
    proc = subprocess.run(ql.cmd("--json-request", json.dumps(GOOD), "--signal-file", str(unwritable)),
                          capture_output=True, text=True, env=ql.env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: could not write signal" in proc.stderr
    assert json.loads(proc.stdout)["status"] == "success"
