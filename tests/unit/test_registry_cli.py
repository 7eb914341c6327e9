"""quantlab.inspect_cli in-process: formatting helpers and handle()'s error contract."""

from __future__ import annotations

import json

import pytest

from quantlab import inspect_cli
from quantlab.cli import build_parser


def opts(*argv: str):
    return build_parser().parse_args(list(argv))


def test_table_aligns_and_right_aligns_numbers():
    lines = inspect_cli.table(["name", "value", "n"], [["a", 1.23456, 3], ["longer", None, 12]])
    assert lines == ["name     value   n",
                     "------  ------  --",
                     "a       1.2346   3",
                     "longer       -  12"]
    assert inspect_cli.table(["age"], [[1.25]], {"age": "{:.1f}"})[2] == "1.2"


def test_key_values_flattens_and_keeps_floats_exact():
    lines = inspect_cli.key_values({"a": 0.1234567891, "cfg": {"x": 1, "y": {"z": True}}, "l": [], "n": None})
    assert lines == ["a        0.1234567891", "cfg.x    1", "cfg.y.z  true", "l        -", "n        -"]


def test_handle_prints_json_and_returns_0(tmp_path, capsys):
    assert inspect_cli.handle(opts("--runs-list", str(tmp_path), "--json")) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == [] and out.err == ""


def test_handle_user_errors_are_one_line_exit_2(tmp_path, capsys):
    assert inspect_cli.handle(opts("--runs-show", str(tmp_path))) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and out.err.startswith("ERROR: not a run directory")
    assert inspect_cli.handle(opts("--runs-list", "a", "--runs-best", "b")) == 2
    assert "choose one inspection command, got --runs-list and --runs-best" in capsys.readouterr().err


def test_handle_bug_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    from quantlab.registry import runs

    def boom(root):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(runs, "list_runs", boom)
    assert inspect_cli.handle(opts("--runs-list", str(tmp_path))) == 1
    assert capsys.readouterr().err == "ERROR: unexpected RuntimeError: kaput second line\n"


@pytest.mark.parametrize("flag", ["--paper-sessions-list", "--paper-sessions-health", "--paper-sessions-alerts"])
def test_handle_paper_validates_stale_minutes_first(tmp_path, capsys, flag):
    assert inspect_cli.handle(opts(flag, str(tmp_path), "--paper-stale-minutes", "-3")) == 2
    assert "--paper-stale-minutes must be a number > 0, got '-3'" in capsys.readouterr().err
