"""Documented limits and formats that had no test of their own: the sweep YAML caps (size,
alias expansion, nesting), the signal timestamp format."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from quantlab.commands import experiment
from quantlab.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_yaml_size_cap(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("ticker: SPX\n# " + "x" * experiment.MAX_YAML_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"too large \(\d+ bytes, limit 1048576\)"):
        experiment.read_yaml(big)
    ok = tmp_path / "ok.yaml"
    ok.write_text("ticker: SPX\n# " + "x" * (experiment.MAX_YAML_BYTES - 100) + "\n")
    assert experiment.read_yaml(ok)["ticker"] == "SPX"  # just under the cap is read


def test_yaml_alias_bomb_is_refused_not_expanded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]  # 10^9 leaves if expanded
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"more than {experiment.MAX_NODES} values"):
        experiment.read_yaml(bomb)
    fine = tmp_path / "fine.yaml"
    fine.write_text("grid: &g [1, 2, 3]\nother: *g\n")  # an ordinary alias is fine
    assert experiment.read_yaml(fine) == {"grid": [1, 2, 3], "other": [1, 2, 3]}


def test_yaml_deep_nesting_is_a_config_error(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nests too deeply|not valid YAML|more than"):
        experiment.read_yaml(deep)


@pytest.mark.parametrize("tz, offset", [("UTC", "+00:00"), ("Asia/Kolkata", "+05:30"),
                                        ("America/Sao_Paulo", "-03:00")])
def test_signal_timestamps_are_local_iso8601_seconds_with_offset(tz, offset):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from quantlab.contract.signals import local_timestamp; "
            "print(local_timestamp())")
    out = subprocess.run([sys.executable, "-c", code, str(SRC)], capture_output=True, text=True, check=True,
                         env={"TZ": tz, "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", out), out
    assert out.endswith(offset)
