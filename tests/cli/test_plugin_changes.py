"""Editing a QUANTLAB_PLUGINS strategy invalidates its cached results; --force recomputes a request.

The plugin lives in a temp dir on PYTHONPATH and imports a helper module next to it. A content
key covers QuantLab's code and, through the plugin fingerprint, the plugin's own files and the
local modules it imports, so an edit to either gives new signal/simulation/sweep keys.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import strict_json

PLUGIN = textwrap.dedent('''
    """Test plugin: trades on a fixed rhythm set by the helper module (EVERY = 0: never)."""
    import numpy as np

    from quantlab.strategies import Param, Signals, Strategy, register
    from ql_edit_helper import EVERY, HOLD


    @register
    class Rhythm(Strategy):
        name = "rhythm"
        description = "enter every EVERY bars, exit HOLD bars later (test plugin)"
        params = (Param("offset", int, 0, 0, 50),)

        def compute(self, open_, high, low, close, params):
            i = np.arange(len(close)) - params["offset"]
            if EVERY == 0:
                return Signals(np.zeros(len(close), dtype=bool), np.zeros(len(close), dtype=bool))
            return Signals(i % EVERY == 0, i % EVERY == HOLD)
''')


def write_plugin(root: Path, every: int, hold: int = 5) -> None:
    (root / "ql_edit_plugin.py").write_text(PLUGIN)
    (root / "ql_edit_helper.py").write_text(f"EVERY = {every}\nHOLD = {hold}\n")


def setup_plugin(ql, tmp_path: Path, every: int) -> Path:
    root = tmp_path / "plugins"
    root.mkdir(exist_ok=True)
    write_plugin(root, every)
    ql.env["PYTHONPATH"] = str(root)
    ql.env["QUANTLAB_PLUGINS"] = "ql_edit_plugin"
    return root


def run_payload(**params) -> dict:
    base = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "rhythm"}
    base.update(params)
    return {"schema_version": "1.0", "request_id": "plug", "command": "run", "params": base}


def sweep_payload(**params) -> dict:
    base = {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "strategy": "rhythm",
            "param_grid": {"offset": [0, 1, 2]}}
    base.update(params)
    return {"schema_version": "1.0", "request_id": "plug-sweep", "command": "sweep", "params": base}


def dry_steps(ql, payload: dict) -> list[str]:
    res = ql.request(payload, "--dry-run")
    assert res.returncode == 0, res.stderr
    return res.envelope["stale_steps"]


def ran_rules(run_dir: Path) -> set[str]:
    log = run_dir / "logs" / "snakemake.log"
    if not log.is_file():
        return set()  # every intermediate was cached: the request never started Snakemake
    return {line.split("localrule ", 1)[1].rstrip(":") for line in log.read_text().splitlines()
            if line.startswith("localrule ")}


def test_editing_a_plugin_recomputes_its_results(ql, tmp_path) -> None:
    root = setup_plugin(ql, tmp_path, every=0)
    first = ql.request(run_payload())
    assert first.returncode == 0, first.stderr
    assert first.envelope["summary"]["trades"] == 0
    assert dry_steps(ql, run_payload()) == ["publish_run", "refresh_index"]  # per-request steps only

    write_plugin(root, every=20)  # the fix: the helper now makes the strategy trade
    assert {"signals", "simulate", "score"} <= set(dry_steps(ql, run_payload()))
    assert "load_data" not in dry_steps(ql, run_payload())  # the data does not depend on plugins
    second = ql.request(run_payload())
    assert second.returncode == 0, second.stderr
    assert second.envelope["summary"]["trades"] > 0
    assert {"signals", "simulate"} <= ran_rules(Path(second.envelope["artifacts_path"]))

    # an edit of the plugin module itself (not its helper) counts too
    (root / "ql_edit_plugin.py").write_text(PLUGIN.replace("i % EVERY == HOLD", "i % EVERY == HOLD + 2"))
    third = ql.request(run_payload())
    assert third.returncode == 0, third.stderr
    assert {"signals", "simulate"} <= ran_rules(Path(third.envelope["artifacts_path"]))
    assert third.envelope["summary"] != second.envelope["summary"]


def test_editing_a_plugin_recomputes_sweep_shards(ql, tmp_path) -> None:
    root = setup_plugin(ql, tmp_path, every=0)
    first = ql.request(sweep_payload())
    assert first.returncode == 0, first.stderr
    again = ql.request(sweep_payload())
    meta = strict_json((Path(again.envelope["artifacts_path"]) / "metadata.json").read_text())
    assert meta["shards_computed"] == [] and meta["shards_reused"]

    write_plugin(root, every=15)
    assert "sweep_shard" in dry_steps(ql, sweep_payload())
    edited = ql.request(sweep_payload())
    assert edited.returncode == 0, edited.stderr
    run_dir = Path(edited.envelope["artifacts_path"])
    meta = strict_json((run_dir / "metadata.json").read_text())
    assert meta["shards_computed"] and meta["shards_reused"] == []
    assert "shards computed: 0" not in (run_dir / "run_report.md").read_text()
    assert edited.envelope["summary"]["trades"] > 0 == first.envelope["summary"]["trades"]


def test_force_recomputes_a_cached_run_with_the_same_result(ql, tmp_path) -> None:
    setup_plugin(ql, tmp_path, every=20)
    first = ql.request(run_payload())
    assert first.returncode == 0, first.stderr
    cached = ql.request(run_payload())
    assert ran_rules(Path(cached.envelope["artifacts_path"])) == set()  # fast path: nothing recomputed

    assert {"load_data", "signals", "simulate", "score", "plot_equity"} <= set(dry_steps(ql, run_payload(force=True)))
    for label, res in (("params.force", ql.request(run_payload(force=True))),
                       ("--force", ql.request(run_payload(), "--force"))):
        assert res.returncode == 0, (label, res.stderr)
        run_dir = Path(res.envelope["artifacts_path"])
        assert {"load_data", "signals", "simulate", "score", "plot_equity"} <= ran_rules(run_dir), label
        assert res.envelope["summary"] == first.envelope["summary"], label
        metadata = strict_json((run_dir / "metadata.json").read_text())
        assert metadata["content_keys"] == strict_json(
            (Path(first.envelope["artifacts_path"]) / "metadata.json").read_text())["content_keys"], label
        config = strict_json((run_dir / "config.json").read_text())
        assert "force" not in config, label  # an execution option, not part of the run's identity

    human = ql.cli("run", "--ticker", "SPX", "--start", "2017-01-01", "--end", "2018-01-01",
                   "--strategy", "rhythm", "--force")
    assert human.returncode == 0, human.stderr


def test_force_recomputes_sweep_shards(ql, tmp_path) -> None:
    setup_plugin(ql, tmp_path, every=15)
    first = ql.request(sweep_payload())
    assert first.returncode == 0, first.stderr
    forced = ql.request(sweep_payload(force=True))
    assert forced.returncode == 0, forced.stderr
    run_dir = Path(forced.envelope["artifacts_path"])
    meta = strict_json((run_dir / "metadata.json").read_text())
    assert meta["shards_computed"] and meta["shards_reused"] == []
    assert {"load_data", "sweep_shard"} <= ran_rules(run_dir)
    assert forced.envelope["summary"] == first.envelope["summary"]
    assert (run_dir / "leaderboard.csv").read_text() == (
        Path(first.envelope["artifacts_path"]) / "leaderboard.csv").read_text()


def test_schema_knows_force(ql) -> None:
    proc = ql.cli("--schema", "run")
    assert proc.returncode == 0, proc.stderr
    assert '"force"' in proc.stdout
    schema = json.loads(proc.stdout)
    assert "force" in json.dumps(schema)
    bad = ql.request(run_payload(strategy="buy_and_hold", force="yes"))
    assert bad.returncode == 2 and bad.stderr.startswith("ERROR: ")
