"""Black-box tests of `sweep` through main.py: grid, walk-forward, incremental reruns, bad configs."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from conftest import GRID_YAML, ROOT, strict_json

WF_YAML = ROOT / "config" / "experiments" / "spx_walkforward.yaml"
METRICS = ("total_return", "sharpe_simple", "max_drawdown", "trades", "win_rate")


def sweep_request(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "sw-1", "command": "sweep", "params": params}


def _leaderboard(run_dir: Path) -> list[dict]:
    with open(run_dir / "leaderboard.csv") as fh:
        return list(csv.DictReader(fh))


def _record(run_dir: Path) -> str:
    return (run_dir / "logs" / "snakemake.log").read_text()


def test_grid_27_combos_leaderboard_and_best_result(ql):
    res = ql.request(sweep_request(config_path=str(GRID_YAML)))
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert env["run_id"].split("_")[2] == "grid" and env["mode"] == "grid"
    run_dir = Path(env["artifacts_path"])
    rows = _leaderboard(run_dir)
    assert len(rows) == 27
    combos = {(r["rsi_buy_max"], r["rsi_sell_min"], r["cooldown_days"]) for r in rows}
    assert len(combos) == 27
    sharpe = [float(r["sharpe_simple"]) for r in rows]
    assert sharpe == sorted(sharpe, reverse=True)  # ranked by sharpe_simple, then total_return
    report = strict_json((run_dir / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["contract_type"] == "quantlab.sweep.result" and mc["command"] == "sweep" and mc["mode"] == "grid"
    assert mc["request_id"] == "sw-1" and mc["run_id"] == env["run_id"]
    best, top = mc["best_result"], rows[0]
    for key in ("rsi_buy_max", "rsi_sell_min", "cooldown_days"):
        assert float(best["params"][key]) == float(top[key])
    for key in METRICS:
        assert best[key] == pytest.approx(float(top[key]), rel=1e-9)
        assert mc["summary"][key] == pytest.approx(float(top[key]), rel=1e-9)
    assert isinstance(mc["summary"]["trades"], int)
    assert report["summary"] == mc["summary"] == env["summary"]
    for name in mc["artifacts"].values():
        assert (run_dir / name).exists(), name
    assert (run_dir / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    # the sweep is in the runs index, and signals carry mode "sweep"
    done = res.signals[-1]
    assert done["event"] == "SESSION_COMPLETED" and done["mode"] == "sweep"
    assert done["summary"] == mc["summary"]
    index = strict_json(Path(done["runs_index_json"]).read_text())
    assert [r["run_id"] for r in index["runs"]] == [env["run_id"]]


def test_best_result_matches_a_plain_run_with_the_same_params(ql):
    sweep = ql.request(sweep_request(config_path=str(GRID_YAML)))
    best = sweep.envelope
    params = strict_json(Path(best["report_path"]).read_text())["machine_contract"]["best_result"]["params"]
    run = ql.request({"schema_version": "1.0", "command": "run", "params": {
        "ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "rsi_ma_cross_v2",
        "strategy_params": params, "fee": 0.002, "slippage_bps": 8.0}})
    assert run.returncode == 0, run.stderr
    for key in METRICS:
        assert run.envelope["summary"][key] == pytest.approx(best["summary"][key], rel=1e-9)


def test_identical_sweep_recomputes_nothing(ql):
    """Its shards and its board are in the store: published directly, without Snakemake (the
    fast path), with the same files; the request leaves no scratch file behind its markers."""
    first = ql.request(sweep_request(config_path=str(GRID_YAML)))
    second = ql.request(sweep_request(config_path=str(GRID_YAML)))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    a, b = Path(first.envelope["artifacts_path"]), Path(second.envelope["artifacts_path"])
    assert "localrule sweep_shard:" in _record(a) and "localrule merge_leaderboard:" in _record(a)
    assert not (b / "logs" / "snakemake.log").exists()  # Snakemake never started
    for name in ("leaderboard.csv", "heatmap.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    ra, rb = (strict_json((d / "report.json").read_text()) for d in (a, b))
    assert ra["machine_contract"]["best_result"] == rb["machine_contract"]["best_result"]
    assert ra["results"] == rb["results"]
    meta = strict_json((b / "metadata.json").read_text())
    assert meta["shards_computed"] == [] and meta["shards_reused"]
    scratch = ql.outputs / ".quantlab" / "requests" / second.envelope["run_id"] / "sweep"
    assert sorted(p.name for p in scratch.iterdir()) == ["index.json", "published.json"]


def test_a_new_ranking_merges_again_without_recomputing_shards(ql):
    base = {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
            "param_grid": {"fast": [5, 10, 15], "slow": [30, 50]}}
    first = ql.request(sweep_request(**base))
    second = ql.request(sweep_request(**base, selection={"sort_by": ["total_return"]}))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    rec = _record(Path(second.envelope["artifacts_path"]))
    assert "localrule sweep_shard:" not in rec and "localrule merge_leaderboard:" in rec
    returns = [float(r["total_return"]) for r in _leaderboard(Path(second.envelope["artifacts_path"]))]
    assert returns == sorted(returns, reverse=True)


def test_widening_the_grid_computes_only_the_new_combos(ql, tmp_path):
    base = {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover"}
    narrow = ql.request(sweep_request(**base, param_grid={"fast": [5, 10], "slow": [30, 50]}))
    assert narrow.returncode == 0, narrow.stderr
    wide = ql.request(sweep_request(**base, param_grid={"fast": [5, 10, 15], "slow": [30, 50]}))
    assert wide.returncode == 0, wide.stderr
    run_dir = Path(wide.envelope["artifacts_path"])
    meta = strict_json((run_dir / "metadata.json").read_text())
    assert len(meta["shards_computed"]) >= 1 and meta["shards_reused"]
    store = ql.outputs / ".quantlab" / "store" / "sweep"
    computed = []
    for shard in meta["shards_computed"]:
        sidecar = next(store.rglob(f"{shard}.json"))
        computed += [c["params"]["fast"] for c in strict_json(sidecar.read_text())["combos"]]
    assert sorted(computed) == [15, 15]  # only fast=15 x slow in (30, 50) was simulated
    assert len(_leaderboard(run_dir)) == 6


def test_walkforward_two_splits(ql):
    res = ql.request(sweep_request(config_path=str(WF_YAML)))
    assert res.returncode == 0, res.stderr
    env = res.envelope
    assert env["mode"] == "walkforward" and "_walkforward_" in env["run_id"]
    run_dir = Path(env["artifacts_path"])
    report = strict_json((run_dir / "report.json").read_text())
    mc = report["machine_contract"]
    assert mc["mode"] == "walkforward" and mc["contract_type"] == "quantlab.sweep.result"
    assert mc["best_result"]["selected_on"] == "train"
    wf = report["walkforward"]
    assert wf["n_splits"] == 2 and wf["n_train_runs"] == 54 and wf["n_selected"] == 6
    scratch = ql.outputs / ".quantlab" / "requests" / env["run_id"] / "sweep"  # walkforward.json collected
    assert sorted(p.name for p in scratch.iterdir()) == ["index.json", "published.json"]
    for split in ("2014_2015__2016", "2015_2016__2017"):
        train = list(csv.DictReader(open(run_dir / "splits" / split / "train_leaderboard.csv")))
        test = list(csv.DictReader(open(run_dir / "splits" / split / "test_leaderboard.csv")))
        assert len(train) == 27 and len(test) == 3
        # the 3 selected are the top 3 train rows that meet min_trades
        eligible = [r for r in train if int(r["trades"]) >= 3][:3]
        assert [(r["rsi_buy_max"], r["rsi_sell_min"], r["cooldown_days"]) for r in eligible] == \
            [(r["rsi_buy_max"], r["rsi_sell_min"], r["cooldown_days"]) for r in test]
        # test windows keep every bar (warm-up comes from before the window)
        assert int(test[0]["bars"]) in (251, 252)
    oos = strict_json((run_dir / "metrics.json").read_text())["oos_metrics"]
    assert oos["bars"] == 252 + 251
    assert mc["summary"]["total_return"] == pytest.approx(oos["total_return"])
    # the stitched out-of-sample equity chains the splits: each split's rank-1 (selected on train)
    # compounds on the previous one's final equity, so total = prod(1 + r_split) - 1
    chained = 1.0
    for split in ("2014_2015__2016", "2015_2016__2017"):
        train = list(csv.DictReader(open(run_dir / "splits" / split / "train_leaderboard.csv")))
        test = list(csv.DictReader(open(run_dir / "splits" / split / "test_leaderboard.csv")))
        first = next(r for r in train if int(r["trades"]) >= 3)
        key = ("rsi_buy_max", "rsi_sell_min", "cooldown_days")
        rank1 = next(r for r in test if all(r[k] == first[k] for k in key))
        chained *= 1.0 + float(rank1["total_return"])
    assert oos["total_return"] == pytest.approx(chained - 1.0, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("key", ["out_dir", "sweep_outdir"])
def test_both_out_dir_spellings(ql, key):
    target = ql.tmp / f"sweeps_{key}"
    res = ql.request(sweep_request(config_path=str(GRID_YAML), **{key: str(target)}))
    assert res.returncode == 0, res.stderr
    assert Path(res.envelope["artifacts_path"]).parent == target
    assert (target / "runs_index.json").is_file()


def test_cli_forms(ql):
    a = ql.cli("sweep", str(GRID_YAML))
    assert a.returncode == 0, a.stderr
    b = ql.cli("--sweep", str(GRID_YAML), "--sweep_outdir", str(ql.tmp / "legacy"))
    assert b.returncode == 0, b.stderr
    assert len(list((ql.tmp / "legacy").glob("*_grid_*"))) == 1


def test_inline_grid_equals_the_yaml_file(ql):
    import yaml

    data = yaml.safe_load(GRID_YAML.read_text())
    by_file = ql.request(sweep_request(config_path=str(GRID_YAML)))
    inline = ql.request(sweep_request(**data))
    assert by_file.returncode == 0 and inline.returncode == 0, inline.stderr
    a, b = Path(by_file.envelope["artifacts_path"]), Path(inline.envelope["artifacts_path"])
    assert (a / "leaderboard.csv").read_text() == (b / "leaderboard.csv").read_text()
    # the resolved experiment is saved and can be rerun by file
    again = ql.cli("sweep", str(b / "experiment.yaml"))
    assert again.returncode == 0, again.stderr


def test_parameter_sets_ranked_by_objective(ql):
    res = ql.request(sweep_request(ticker="SPX", start="2016-01-01", end="2018-01-01", strategy="sma_crossover",
                                   objective="total_return", parameter_sets=[
                                       {"label": "fast", "parameters": {"fast": 5, "slow": 20}},
                                       {"label": "slow", "parameters": {"fast": 20, "slow": 100}},
                                       {"label": "mid", "parameters": {"fast": 10, "slow": 50}}]))
    assert res.returncode == 0, res.stderr
    rows = _leaderboard(Path(res.envelope["artifacts_path"]))
    returns = [float(r["total_return"]) for r in rows]
    assert returns == sorted(returns, reverse=True)
    assert {r["label"] for r in rows} == {"fast", "slow", "mid"}
    best = strict_json(Path(res.envelope["report_path"]).read_text())["machine_contract"]["best_result"]
    assert best["label"] == rows[0]["label"]


def _bad(ql, tmp_path, text: str | None, needle: str, **params):
    if text is not None:
        path = tmp_path / "exp.yaml"
        path.write_text(text)
        params.setdefault("config_path", str(path))
    res = ql.request(sweep_request(**params))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and needle in errors[0], res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED" and res.envelope["exit_code"] == 2
    runs = ql.runs_dir()
    assert not runs.exists() or [p for p in runs.iterdir() if p.is_dir()] == []


VALID = "ticker: SPX\nstart: '2017-01-01'\nend: '2018-01-01'\n"


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("- a\n- b\n", "mapping"),
    ("ticker: [unclosed\n", "not valid YAML"),
    (VALID, "param_grid"),
    (VALID + "strategy: moon\nparam_grid: {a: [1]}\n", "moon"),
    (VALID + "param_grid: {rsi_buy_mx: [50, 60]}\n", "rsi_buy_mx"),
    (VALID + "param_grid: {rsi_buy_max: [50, 150]}\n", "rsi_buy_max"),
    (VALID + "param_grid: {cooldown_days: [1.5]}\n", "cooldown_days"),
    (VALID + "fee: lots\nparam_grid: {cooldown_days: [1]}\n", "fee"),
    (VALID + "param_grid: {cooldown_days: [1]}\nselection: {sort_by: [luck]}\n", "sort_by"),
    (VALID + "param_grid: {cooldown_days: [1]}\nsplits: [{train: {start: '2017-06-01', end: '2017-01-01'}, "
             "test: {start: '2017-07-01', end: '2018-01-01'}}]\n", "splits[0]"),
])
def test_bad_configs_exit_2(ql, tmp_path, text, needle):
    _bad(ql, tmp_path, text, needle)


def test_missing_config_path_exits_2(ql, tmp_path):
    _bad(ql, tmp_path, None, "config_path")
    _bad(ql, tmp_path, None, "not found", config_path=str(tmp_path / "nope.yaml"))


def test_config_path_and_inline_together_exit_2(ql, tmp_path):
    _bad(ql, tmp_path, VALID + "param_grid: {cooldown_days: [1]}\n", "not both", param_grid={"cooldown_days": [2]})


@pytest.mark.slow
def test_killed_sweep_resumes_from_finished_shards(ql):
    """SIGKILL while the 6th of 16 shards is held at its start (test hook ``step_sweep_shard#6``):
    at least 6 - jobs shards have finished then; the rerun reuses exactly those."""
    from test_kill_safety import alive, spawn, wait_reached

    params = dict(ticker="SYN", source="synthetic", start="2000-01-01", end="2016-01-01", strategy="sma_crossover",
                  param_grid={"fast": list(range(2, 42)), "slow": list(range(50, 250, 10))}, shards=16)
    gate = ql.tmp / "gate"
    proc = spawn(ql, sweep_request(**params), ql.tmp / "kill.jsonl", "step_sweep_shard#6", gate,
                 QUANTLAB_JIT="never", QUANTLAB_SWEEP_THREADS="1")
    holder = wait_reached(gate, proc)
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -9  # the kill landed inside the sweep, with the 6th shard held
    deadline = time.monotonic() + 20
    while alive(holder) and time.monotonic() < deadline:  # the held worker dies with the request
        time.sleep(0.01)
    assert not alive(holder)
    store = ql.outputs / ".quantlab" / "store" / "sweep"
    finished = {p.stem for p in store.rglob("*.json")}
    jobs = 2  # main.py --cores default
    assert 6 - jobs <= len(finished) <= 5, finished
    res = ql.request(sweep_request(**params))
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    meta = strict_json((run_dir / "metadata.json").read_text())
    assert finished <= set(meta["shards_reused"])

    def combos_in(shards):
        return sum(len(strict_json(next(store.rglob(f"{s}.json")).read_text())["combos"]) for s in shards)

    # only the combinations the killed sweep had not finished were simulated again
    assert combos_in(meta["shards_computed"]) == 40 * 20 - combos_in(finished)
    assert _record(run_dir).count("localrule sweep_shard:") == len(meta["shards_computed"])
    assert len(_leaderboard(run_dir)) == 40 * 20


def test_dry_run_lists_stale_shards(ql):
    res = ql.request(sweep_request(config_path=str(GRID_YAML)), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "sweep_shard" in res.envelope["stale_steps"] and "load_data" in res.envelope["stale_steps"]
    assert any(o.startswith("store/sweep/") for o in res.envelope["stale_outputs"])
    done = ql.request(sweep_request(config_path=str(GRID_YAML)))
    assert done.returncode == 0
    again = ql.request(sweep_request(config_path=str(GRID_YAML)), "--dry-run")
    assert "sweep_shard" not in again.envelope["stale_steps"]


@pytest.mark.slow
def test_cluster_executor_gives_the_same_results_as_local(ql, tmp_path):
    """Shards submitted as separate jobs through Snakemake's cluster-generic executor (each job a
    local background process started by profiles/local-cluster/submit.sh) equal the local run."""
    local = ql.request(sweep_request(config_path=str(GRID_YAML), shards=3))
    assert local.returncode == 0, local.stderr
    ql.env["QUANTLAB_OUTPUTS_DIR"] = str(tmp_path / "cluster-outputs")  # nothing cached
    remote = ql.request(sweep_request(config_path=str(GRID_YAML), shards=3, profile="local-cluster"),
                        timeout=300)
    assert remote.returncode == 0, remote.stderr
    a, b = Path(local.envelope["artifacts_path"]), Path(remote.envelope["artifacts_path"])
    assert (a / "leaderboard.csv").read_text() == (b / "leaderboard.csv").read_text()
    record = _record(b)
    assert "cluster-generic" in record or "jobscript" in record.lower() or "Submitted job" in record
    assert record.count("rule sweep_shard:") == 3
    assert remote.envelope["summary"] == local.envelope["summary"]


def test_unknown_profile_exits_2(ql, tmp_path):
    _bad(ql, tmp_path, None, "profile", config_path=str(GRID_YAML), profile=str(tmp_path / "nope"))


def test_a_lower_is_better_objective_ranks_its_lowest_value_first(ql):
    """objective volatility_ann (lower is better in the metric registry): the winner is the calmest
    combination unless `selection.ascending` says otherwise."""
    params = dict(ticker="SPX", start="2015-01-01", end="2018-01-01", strategy="sma_crossover",
                  param_grid={"fast": [5, 10, 20], "slow": [50, 100, 200]}, objective="volatility_ann")
    res = ql.request(sweep_request(**params))
    assert res.returncode == 0, res.stderr
    vols = [float(r["volatility_ann"]) for r in _leaderboard(Path(res.envelope["artifacts_path"]))]
    assert vols == sorted(vols) and vols[0] < vols[-1]
    flipped = ql.request(sweep_request(**params, selection={"sort_by": ["volatility_ann"], "ascending": [False]}))
    assert flipped.returncode == 0, flipped.stderr
    vols = [float(r["volatility_ann"]) for r in _leaderboard(Path(flipped.envelope["artifacts_path"]))]
    assert vols == sorted(vols, reverse=True)


@pytest.mark.parametrize("mode", ["grid", "walkforward"])
def test_shards_computed_ahead_give_the_same_results_and_leave_nothing(tmp_path, mode):
    """The step worker computes the data steps and shards while Snakemake starts
    (commands/speculate.py): the results are those of a sweep without the worker, and its scratch
    directory is gone when the request ends."""
    from conftest import QuantLab

    config = GRID_YAML if mode == "grid" else WF_YAML
    out = {}
    for name, worker in (("ahead", "1"), ("plain", "0")):
        (tmp_path / name).mkdir()
        q = QuantLab(tmp_path / name)
        q.env["QUANTLAB_STEP_WORKER"] = worker
        res = q.request(sweep_request(config_path=str(config), shards=3))
        assert res.returncode == 0, res.stderr
        run_dir = Path(res.envelope["artifacts_path"])
        out[name] = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())
                     if p.suffix in (".csv", ".parquet", ".png") or p.name == "walkforward.json"}
        scratch = q.outputs / ".quantlab" / "speculative"
        assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.rglob("*"))
    assert out["ahead"] and out["ahead"] == out["plain"]


def test_a_reranked_grid_has_its_board_computed_ahead_with_the_same_results(tmp_path, monkeypatch):
    """A grid whose shards are all stored (a new ranking) still gets a step worker, which
    computes the board ahead: the plan's prefetch names the board, and the published
    leaderboard and pictures are those of a request without the worker."""
    from argparse import Namespace

    from conftest import QuantLab

    base = {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
            "param_grid": {"fast": [5, 10, 15], "slow": [30, 50]}}
    out = {}
    for name, worker in (("ahead", "1"), ("plain", "0")):
        (tmp_path / name).mkdir()
        q = QuantLab(tmp_path / name)
        q.env["QUANTLAB_STEP_WORKER"] = worker
        assert q.request(sweep_request(**base)).returncode == 0
        res = q.request(sweep_request(**base, selection={"sort_by": ["total_return"]}))
        assert res.returncode == 0, res.stderr
        run_dir = Path(res.envelope["artifacts_path"])
        out[name] = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.suffix in (".csv", ".png")}
    assert out["ahead"] and out["ahead"] == out["plain"]

    import json

    from quantlab.contract.request import parse_json_request
    from quantlab.orchestrate.plans import sweep_plan

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "ahead" / "outputs"))
    req = parse_json_request(json.dumps(sweep_request(**base, selection={"sort_by": ["sharpe_simple"]})))
    plan = sweep_plan(req, Namespace(dry_run=True, force=False, cores=2, executor=None, profile=None))
    name, args = plan.prefetch
    assert name == "sweep.prefetch_sweep" and args[-1][2] == {}  # no shard to compute ...
    assert args[-1][3] is not None  # ... but the board, ahead
