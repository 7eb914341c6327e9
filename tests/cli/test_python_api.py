"""The notebook API (quantlab.run / sweep / forward): the same request, workflow and store as
main.py (metrics.json and trades.csv byte-identical to the CLI's), keyword arguments split into
engine and strategy parameters, a cheap ``import quantlab``, and the documented example script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_request

PARAMS = {"ticker": "SPX", "strategy": "sma_crossover", "start": "2016-01-01", "end": "2018-01-01"}


@pytest.fixture
def api_outputs(tmp_path, monkeypatch):
    out = tmp_path / "api_outputs"
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(out))
    return out


def test_run_gives_the_clis_bytes_and_frames(ql, api_outputs):
    import quantlab

    cli = ql.request(run_request(**PARAMS, fee=0.001, strategy_params={"fast": 10, "slow": 50}, risk_free_rate=0.01))
    assert cli.returncode == 0, cli.stderr
    cli_dir = Path(cli.envelope["artifacts_path"])
    res = quantlab.run(**PARAMS, fee=0.001, fast=10, slow=50, risk_free_rate=0.01)
    assert res.path.parent.parent == api_outputs  # its own store: computed again, not read from the CLI's
    for name in ("metrics.json", "trades.csv"):
        assert (res.path / name).read_bytes() == (cli_dir / name).read_bytes(), name
    config = json.loads((res.path / "config.json").read_text())
    assert config["fee"] == 0.001 and config["strategy_params"] == {"fast": 10, "slow": 50}
    assert res.metrics == json.loads((cli_dir / "metrics.json").read_text())["metrics"]
    assert list(res.trades["trade_id"]) == list(range(1, res.metrics["trades"] + 1))
    assert str(res.trades["entry_time"].dtype).startswith("datetime64")
    assert len(res.equity) == res.metrics["bars"] and "benchmark_equity" in res.equity
    assert res.report_path == res.path / "report.json" and res.report_path.is_file()
    from bokeh.models import LayoutDOM

    assert isinstance(res.plot(show=False), LayoutDOM)


def test_keyword_errors_are_the_clis(api_outputs):
    import quantlab
    from quantlab.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="unknown parameter 'fastt'"):
        quantlab.run(**PARAMS, fastt=10)
    with pytest.raises(ConfigError, match="fee"):
        quantlab.run(**PARAMS, fee=5)
    with pytest.raises(DataError, match="benchmark NOPE"):
        quantlab.run(**PARAMS, source="sample", benchmark="NOPE")
    assert not (api_outputs / "runs").exists() or not any((api_outputs / "runs").glob("*_run_*"))


def test_sweep_ranges_are_the_grid_and_forward_takes_the_result(api_outputs):
    import quantlab

    sw = quantlab.sweep(**PARAMS, fast=range(5, 25, 10), slow=[50, 100], fee=0.001)
    board = sw.leaderboard
    assert sorted(zip(board["fast"], board["slow"])) == [(5, 50), (5, 100), (15, 50), (15, 100)]
    assert sw.metrics["combinations_evaluated"] == 4 and "sqn" in board
    fixed = quantlab.sweep(**PARAMS, fast=[5, 15], slow=100)  # a scalar is fixed, not an axis
    assert fixed.leaderboard["slow"].tolist() == [100, 100]
    assert json.loads((fixed.path / "config.json").read_text())["strategy_params"]["slow"] == 100
    fw = quantlab.forward(sw, forward_end="2018-04-01")
    assert fw.command == "forward" and fw.metrics["bars"] > 0 and fw.path.is_dir()


def test_import_quantlab_stays_cheap():
    code = ("import sys, quantlab; heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'snakemake', 'bokeh', "
            "'quantlab.api') if m in sys.modules]; print(heavy); print(callable(quantlab.run))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "True"]


def test_example_script_output_is_the_documented_one(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_api.py")], capture_output=True,
                          text=True, env={**os.environ, "QUANTLAB_OUTPUTS_DIR": str(tmp_path)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = (ROOT / "docs" / "python-api.md").read_text()
    block = re.search(r"<!-- example-output -->\n```text\n(.*?)```", doc, re.S)
    assert block, "docs/python-api.md has no example-output block"
    assert proc.stdout == block.group(1), "paste the script's output into docs/python-api.md"
