"""Documented CLI behaviour that had no test of its own: the error labels per exit code (envelope
`error.code` and `error_type`, signal `error_type`) and `--verbose`."""

from __future__ import annotations

from conftest import run_request

LABELS = {2: ("INVALID_CONFIG", "ConfigError"), 3: ("DATA_ERROR", "DataError")}


def test_error_labels_follow_the_exit_code(ql):
    cases = {2: run_request(strategy="no_such_strategy"),
             3: run_request(ticker="NO-SUCH-TICKER-XYZ", source="sample")}
    for code, payload in cases.items():
        res = ql.request(payload)
        assert res.returncode == code, res.stderr
        label, error_type = LABELS[code]
        env = res.envelope
        assert env["error"]["code"] == label and env["error"]["error_type"] == error_type
        assert res.signals[-1]["error_type"] == error_type and res.signals[-1]["exit_code"] == code


def test_verbose_shows_snakemake_on_stderr_and_quiet_keeps_it_in_the_log(ql):
    quiet = ql.request(run_request(strategy="sma_crossover"))
    assert quiet.returncode == 0 and quiet.stderr == ""
    from pathlib import Path

    log = Path(quiet.envelope["artifacts_path"]) / "logs" / "snakemake.log"
    assert "rule simulate" in log.read_text() or "simulate" in log.read_text()
    loud = ql.request(run_request(strategy="sma_crossover", start="2016-01-01"), "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "simulate" in loud.stderr and len(loud.stdout.splitlines()) == 1  # stdout stays the envelope
