"""Black-box tests of the sweep robustness block (issue #12): machine_contract.robustness in report.json."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import ROOT, strict_json

WF_YAML = ROOT / "config" / "experiments" / "spx_walkforward.yaml"
GRID_KEYS = ("trials", "effective_trials", "probabilistic_sharpe", "deflated_sharpe", "expected_max_sharpe",
             "pbo", "sharpe_ci", "minimum_track_record", "verdict", "verdict_reasons")


def sweep_request(**params) -> dict:
    return {"schema_version": "1.0", "request_id": "rb-1", "command": "sweep", "params": params}


def noise_grid(**extra) -> dict:
    """sma_crossover over 120 combinations on a synthetic random walk: no edge anywhere (the
    robustness statistics are on by default)."""
    return dict(ticker="SYN", source="synthetic", start="2000-01-01", end="2012-01-01", strategy="sma_crossover",
                param_grid={"fast": list(range(2, 14)), "slow": list(range(30, 130, 10))}, **extra)


def _report(res) -> tuple[dict, Path]:
    assert res.returncode == 0, res.stderr
    run_dir = Path(res.envelope["artifacts_path"])
    text = (run_dir / "report.json").read_text()
    return strict_json(text), run_dir


def test_grid_robustness_block_is_strict_json_and_noise_is_not_robust(ql):
    report, run_dir = _report(ql.request(sweep_request(**noise_grid())))
    rb = report["machine_contract"]["robustness"]
    for key in GRID_KEYS:
        assert key in rb, key
    assert rb["trials"] == 120 and rb["best_index"] == 0
    assert rb["verdict"] in ("inconclusive", "likely_overfit")
    assert rb["pbo"]["pbo"] is not None and 0.0 <= rb["pbo"]["pbo"] <= 1.0
    best = report["machine_contract"]["best_result"]
    assert abs(rb["sharpe"] - best["sharpe_simple"]) < 1e-3 * max(1.0, abs(best["sharpe_simple"]))
    assert "## Robustness" in (run_dir / "run_report.md").read_text()
    assert "points" not in rb  # the scatter's raw points go to the picture, not the contract
    # the pictures beside the heatmap, listed in the contract and in the report's artifacts
    listed = {a["file_name"] for a in report["artifacts"]}
    for name, key in (("pbo_logits.png", "pbo_logits"), ("is_vs_oos.png", "is_vs_oos")):
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
        assert name in listed and report["machine_contract"]["artifacts"][key] == name


def test_identical_rerun_copies_the_boards_pictures_and_redraws_a_missing_one(ql):
    """The merge draws the robustness pictures once, into the board; an identical sweep (the fast
    path, no Snakemake) copies them, byte for byte, like the heatmap; a picture gone from the
    board is drawn again from the board's points."""
    _, first = _report(ql.request(sweep_request(**noise_grid())))
    boards = sorted((ql.outputs / ".quantlab" / "store" / "sweep").glob("*/boards/*"))
    assert len(boards) == 1
    names = ("pbo_logits.png", "is_vs_oos.png", "heatmap.png")
    for name in names:
        assert (boards[0] / name).read_bytes() == (first / name).read_bytes(), name
    marked = (boards[0] / "pbo_logits.png").read_bytes() + b"copied"  # PNG readers ignore the tail
    (boards[0] / "pbo_logits.png").write_bytes(marked)
    _, again = _report(ql.request(sweep_request(**noise_grid())))
    assert again != first
    assert (again / "pbo_logits.png").read_bytes() == marked  # copied from the board, not drawn
    for name in names[1:]:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    (boards[0] / "is_vs_oos.png").unlink()
    report, third = _report(ql.request(sweep_request(**noise_grid())))
    for name in names[1:]:
        assert (third / name).read_bytes() == (first / name).read_bytes(), name
    assert "points" not in report["machine_contract"]["robustness"]


def _leaderboard(run_dir: Path) -> list[dict]:
    with open(run_dir / "leaderboard.csv") as fh:
        return list(csv.DictReader(fh))


def test_leaderboard_has_psr_and_deflated_sharpe_columns(ql):
    report, run_dir = _report(ql.request(sweep_request(**noise_grid())))
    rows = _leaderboard(run_dir)
    assert len(rows) == 120
    psr = [float(r["psr"]) for r in rows]
    dsr = [float(r["deflated_sharpe"]) for r in rows]
    assert all(0.0 <= d <= p <= 1.0 for p, d in zip(psr, dsr))  # DSR: PSR against a higher bar
    # PSR vs 0 grows with the Sharpe: the leaderboard's best has the top PSR up to moments' effect
    best = max(range(120), key=lambda i: float(rows[i]["sharpe_simple"]))
    assert psr[best] >= sorted(psr)[-5]
    rb = report["machine_contract"]["robustness"]
    assert dsr[0] == rb["deflated_sharpe"] or abs(dsr[0] - rb["deflated_sharpe"]) < 1e-9


def test_objective_psr_or_deflated_sharpe_ranks_by_it(ql):
    for objective in ("psr", "deflated_sharpe"):
        report, run_dir = _report(ql.request(sweep_request(**noise_grid(objective=objective))))
        values = [float(r[objective]) for r in _leaderboard(run_dir)]
        assert values == sorted(values, reverse=True), objective
        best = report["machine_contract"]["best_result"]
        assert best[objective] == max(values) or abs(best[objective] - max(values)) < 1e-9
        assert report["machine_contract"]["robustness"]["best_index"] == 0
    # needs the statistics: a clear exit-2 error, nothing written
    res = ql.request(sweep_request(**noise_grid(objective="psr", robustness=False)))
    assert res.returncode == 2, res.stderr
    assert "robustness" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = ql.request(sweep_request(**noise_grid(objective="dsr")))
    assert res.returncode == 2, res.stderr


def test_robustness_false_removes_the_block(ql):
    report, run_dir = _report(ql.request(sweep_request(**noise_grid(robustness=False))))
    assert "robustness" not in report["machine_contract"]
    assert "## Robustness" not in (run_dir / "run_report.md").read_text()
    # the shards of a sweep without robustness kept no returns: one with it recomputes them
    report, run_dir = _report(ql.request(sweep_request(**noise_grid())))
    assert report["machine_contract"]["robustness"]["trials"] == 120
    # and a sweep without robustness reuses shards that kept them
    res = ql.request(sweep_request(**noise_grid(robustness=False)))
    report, run_dir = _report(res)
    assert "robustness" not in report["machine_contract"]
    assert strict_json((run_dir / "metadata.json").read_text())["shards_computed"] == []


def test_walkforward_robustness_per_split_efficiency_and_stability(ql):
    report, run_dir = _report(ql.request(sweep_request(config_path=str(WF_YAML))))
    rb = report["machine_contract"]["robustness"]
    assert [s["split"] for s in rb["splits"]] == ["2014_2015__2016", "2015_2016__2017"]
    for split in rb["splits"]:
        for key in GRID_KEYS:
            assert key in split, key
        assert split["trials"] == 27
    assert rb["walk_forward_efficiency"]["splits"] == 2
    assert rb["parameter_stability"]["splits"] == 2
    assert 0.0 < rb["parameter_stability"]["stability"] <= 1.0
    assert rb["verdict"] in ("robust", "inconclusive", "likely_overfit")
    assert "walk-forward efficiency" in (run_dir / "run_report.md").read_text()
    for split in ("2014_2015__2016", "2015_2016__2017"):  # each split's pictures, in its directory
        for name in ("pbo_logits.png", "is_vs_oos.png"):
            assert (run_dir / "splits" / split / name).read_bytes().startswith(b"\x89PNG"), (split, name)
    assert all("points" not in s for s in rb["splits"])


def test_the_merge_declares_the_bars_it_reads(ql):
    """The merge evaluates the selected combination again from the data store's bars, so they are
    one of its declared inputs: with the board and the data store gone, the identical sweep has
    Snakemake load the bars again (and answers the same) instead of failing in the merge."""
    import shutil

    # no step worker: it would compute the whole short grid ahead (bars included); here Snakemake
    # alone decides what runs, from the rules' declared inputs
    ql.env = {**ql.env, "QUANTLAB_STEP_WORKER": "0"}
    req = sweep_request(**noise_grid())
    report, first = _report(ql.request(req))
    store = ql.outputs / ".quantlab" / "store"
    for board in (store / "sweep").glob("*/boards/*"):
        shutil.rmtree(board)
    shutil.rmtree(store / "data")
    again, second = _report(ql.request(req))
    assert again["machine_contract"]["robustness"] == report["machine_contract"]["robustness"]
    assert (second / "leaderboard.csv").read_bytes() == (first / "leaderboard.csv").read_bytes()
