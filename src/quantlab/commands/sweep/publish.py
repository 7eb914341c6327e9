"""The ``sweep`` command's artifact writers: leaderboards, heatmap, walk-forward tables, the
out-of-sample series, metrics/metadata/config, run_report.md and report.json of a sweep run
directory (written in its staging dir, then renamed into place).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from quantlab.artifacts.io import (atomic_write_bytes, atomic_write_json, atomic_write_text, csv_cell, format_value,
                                  read_json)
from quantlab.artifacts.provenance import canonical_hash, code_fingerprint, runtime_info
from quantlab.commands.common import publish_staging
from quantlab.commands.experiment import skipped_summary, skipped_warning
from quantlab.commands.run.publish import summary_of
from quantlab.contract.runid import staging_name
from quantlab.metric_registry import grid_metric_names


def leaderboard_csv(rows: list[dict], param_keys: list[str], lead: tuple[str, ...] = ()) -> str:
    """One row per combination: rank, label, ``lead`` row fields, params, every metric, ``psr``
    and ``deflated_sharpe`` (when the rows carry them: robustness on), combo key."""
    from quantlab.commands.robust_sweep import ROBUST_OBJECTIVES

    trail = tuple(k for k in ROBUST_OBJECTIVES if any(k in r["metrics"] for r in rows))
    header = ["rank", "label", *lead, *param_keys, *grid_metric_names(), *trail, "combo_key"]
    lines = [",".join(header)]
    for r in rows:
        cells = [r.get("rank"), r.get("label"), *(r.get(k) for k in lead), *(r["params"].get(k) for k in param_keys),
                 *(r["metrics"].get(m) for m in grid_metric_names()), *(r["metrics"].get(k) for k in trail), r.get("combo_key", "")]
        lines.append(",".join(csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def param_columns(record: dict) -> list[str]:
    keys = sorted({k for c in record["combos"] for k in c})
    varying = [k for k in record["grid_keys"] if k in keys]
    return varying + [k for k in keys if k not in varying]


def _best_result(row: dict) -> dict:
    out = {"label": row.get("label"), "rank": row.get("rank"), "params": row["params"], **row["params"],
           **row["metrics"]}
    return out


def _experiment_yaml(record: dict) -> str:
    import yaml

    header = ("# The resolved experiment of this sweep: rerun it with\n"
              "#   python main.py sweep experiment.yaml\n")
    plain = json.loads(json.dumps(record["experiment"]))  # Snakemake hands config over as OrderedDicts
    return header + yaml.safe_dump(plain, sort_keys=False, default_flow_style=None)


def data_notes(record: dict) -> list[str]:
    """The notes of every data window the sweep loaded (split-like jumps on unadjusted prices,
    file notes), each once, in window order -- what a run reports in its warnings (issue #16)."""
    from quantlab.contract.paths import internal_root
    from quantlab.data.store import read_bars_notes
    from quantlab.store_layout import data_files

    notes: list[str] = []
    for dkey in record.get("data_keys") or ():
        rel = data_files(dkey)[0]
        # the current directory is the rule's workdir, the internal root, or the view of a board
        # computed ahead (commands/speculate.py), whose bars are not in the store yet
        path = rel if os.path.isfile(rel) else internal_root() / rel
        notes += [n for n in read_bars_notes(path) if n not in notes]
    return notes


def publish_sweep(record: dict, merged_path: str, marker_out: str) -> dict:
    """Write the sweep run directory into its staging dir, then rename it into place (atomic)."""
    from quantlab.artifacts.io import atomic_copy

    out_dir = Path(record["out_dir"])
    run_id = record["run_id"]
    staging = out_dir / staging_name(run_id)
    final = out_dir / run_id
    staging.mkdir(parents=True, exist_ok=True)
    merged = read_json(merged_path)
    params_cols = param_columns(record)
    mode = record["mode"]
    objective = record["sort_by"][0]
    files = {"metadata": "metadata.json", "config": "config.json", "metrics": "metrics.json",
             "report": "report.json", "run_report": "run_report.md", "leaderboard": "leaderboard.csv",
             "experiment": "experiment.yaml"}
    # found while the sweep ran (the record's: at planning); a grid's board has them already
    late_warnings: list[str] = list(merged["data_notes"]) if "data_notes" in merged else data_notes(record)
    if mode == "grid":  # the board (commands/sweep/board.py): its files are copied, its rows never read
        board = Path(merged_path).parent
        best = merged["best"]
        insufficient = merged.get("skipped", [])
        if best is not None and best["metrics"].get("trades") == 0:
            late_warnings.append(f"the best combination ({_who(best)}) made 0 trades: its metrics describe "
                                 "a strategy that never traded")
        atomic_copy(board / "leaderboard.csv", staging / "leaderboard.csv")
        if merged["heatmap"]:
            atomic_copy(board / "heatmap.png", staging / "heatmap.png")
            files["heatmap"] = "heatmap.png"
        summary = summary_of(best["metrics"] if best else {})
        best_result = _best_result(best) if best else None
        from quantlab.commands.robust_sweep import pictures

        drawn = merged.get("pictures") or {}
        if drawn and all((board / name).is_file() for name in drawn.values()):  # drawn by the merge
            for name in drawn.values():
                atomic_copy(board / name, staging / name)
            files.update(drawn)
            robustness = {k: v for k, v in merged["robustness"].items() if k != "points"}
        else:
            robustness = pictures(staging, merged.get("robustness"), record["strategy"], files)  # beside the heatmap
        extra_metrics = {"n_runs": merged["n_rows"], "leaderboard_size": merged["n_rows"]}
    else:
        oos = merged["oos"]
        all_test, all_rows = [], []
        split_summary = []
        for s in merged["splits"]:
            sdir = staging / "splits" / s["name"].replace("/", "_")
            sdir.mkdir(parents=True, exist_ok=True)
            from quantlab.commands.robust_sweep import pictures

            s["robustness"] = pictures(sdir, s.get("robustness"), f"{record['strategy']} split {s['name']}")
            atomic_write_text(sdir / "train_leaderboard.csv", leaderboard_csv(s["train"], params_cols))
            test_rows = [{**t, "rank": t["rank_in_train"]} for t in s["test"]]
            atomic_write_text(sdir / "test_leaderboard.csv", leaderboard_csv(test_rows, params_cols))
            all_test.extend({**t, "split": s["name"]} for t in test_rows)
            best_train = s["train"][0]["metrics"] if s["train"] else {}
            top = s["test"][0]["metrics"] if s["test"] else {}
            split_summary.append({"split": s["name"], "n_train_runs": len(s["train"]),
                                  "n_eligible": s["eligible"], "n_selected": len(s["test"]),
                                  "best_train_sharpe": best_train.get("sharpe_simple"),
                                  "best_train_return": best_train.get("total_return"),
                                  "test_sharpe_rank1": top.get("sharpe_simple"),
                                  "test_return_rank1": top.get("total_return")})
            all_rows.extend(s["train"])
        header = list(split_summary[0]) if split_summary else ["split"]
        atomic_write_text(staging / "walkforward_summary.csv",
                          "\n".join([",".join(header)] + [",".join(csv_cell(r[h]) for h in header)
                                                          for r in split_summary]) + "\n")
        atomic_write_text(staging / "leaderboard.csv", leaderboard_csv(all_test, params_cols, lead=("split",)))
        _write_oos(staging / "oos_equity.parquet", oos)
        files.update({"walkforward_summary": "walkforward_summary.csv", "oos_equity": "oos_equity.parquet",
                      "splits": "splits/"})
        metrics_oos = oos["metrics"] or {}
        summary = summary_of(metrics_oos)
        last = merged["splits"][-1] if merged["splits"] else None
        best_row = last["test"][0] if last and last["test"] else None
        best_result = ({**_best_result({**best_row, "rank": 1}), "split": last["name"],
                        "selected_on": "train", "oos": metrics_oos} if best_row else None)
        insufficient = []
        for s in merged["splits"]:
            insufficient.extend(s.get("skipped", []))
            if not s["test"]:
                late_warnings.append(f"split {s['name']}: no candidate passed the selection constraints "
                                     f"(min_trades={record['min_trades']}, {s['eligible']} eligible): nothing "
                                     "selected, the out-of-sample window is flat (no trades)")
        if (metrics_oos.get("trades") == 0) and all(s["test"] for s in merged["splits"]):
            late_warnings.append("the stitched out-of-sample result made 0 trades")
        robustness = walkforward_robustness(merged["splits"]) if record.get("robustness", False) else None
        extra_metrics = {"n_splits": len(merged["splits"]),
                         "n_train_runs": sum(len(s["train"]) for s in merged["splits"]),
                         "n_selected": sum(len(s["test"]) for s in merged["splits"]),
                         "n_test_runs": sum(len(s["test"]) for s in merged["splits"]),
                         "oos_metrics": metrics_oos, "splits": split_summary}
    unique_insufficient = list({json.dumps(e["params"], sort_keys=True): e for e in insufficient}.values())
    skipped = list(record.get("skipped", [])) + unique_insufficient
    total = int(record.get("combinations_total") or len(record["combos"]))
    combos_info = skipped_summary(total, skipped, len(record["combos"]) - len(unique_insufficient))
    if unique_insufficient:
        late_warnings.append(skipped_warning(unique_insufficient, total))
    robust_fields = {}
    if record.get("robustness", False):
        robust_fields["robustness"] = robustness
        if robustness and robustness.get("verdict") == "likely_overfit":
            late_warnings.append("robustness verdict likely_overfit: " + "; ".join(robustness["verdict_reasons"])
                                 + " (machine_contract.robustness)")
    warnings = list(record["warnings"]) + late_warnings
    extra_metrics.update(combos_info)
    config = {**record["experiment"]}
    atomic_write_json(staging / "config.json", config, sort_keys=True)
    atomic_write_text(staging / "experiment.yaml", _experiment_yaml(record))
    metrics = {"command": "sweep", "mode": mode, "status": "success", "summary": summary,
               "best_result": best_result, "objective": objective, "sort_by": record["sort_by"],
               **extra_metrics}
    atomic_write_json(staging / "metrics.json", metrics, sort_keys=True)
    info = runtime_info()
    metadata = {"run_id": run_id, "command": "sweep", "mode": mode, "status": "success",
                "created_at": record["created_at"], "request_id": record["request_id"],
                "config_path": record.get("source_path") or "inline_request",
                "config_hash": canonical_hash(config, algo="sha1"), "summary": summary,
                "n_combinations": len(record["combos"]), "strategy": record["strategy"],
                "shards_computed": record["new_shards"], "shards_reused": record["reused_shards"],
                "code_fingerprint": code_fingerprint(), "warnings": warnings, **info}
    atomic_write_json(staging / "metadata.json", metadata, sort_keys=True)
    atomic_write_text(staging / "run_report.md", _sweep_report_md(record, summary, best_result, metrics,
                                                                 robust_fields.get("robustness")))
    from quantlab.artifacts.report_doc import artifact_listing, machine_contract, report_document

    mc = machine_contract("sweep", "sweep", record["request_id"], run_id=run_id, mode=mode, summary=summary,
                          best_result=best_result, artifacts=files, **combos_info, warnings=warnings,
                          **robust_fields)
    report = report_document(
        artifact_type="quantlab_run_report", mc=mc, summary=summary,
        header={"run_id": run_id, "mode": mode, "created_at": record["created_at"],
                "git_commit": info["git_commit"], "python_version": info["python_version"],
                "config_path": metadata["config_path"], "config_hash": metadata["config_hash"],
                "request_id": record["request_id"]},
        sections={"reproduce": {"command": "python main.py sweep experiment.yaml"}, "config_resolved": config,
                  "results": (merged["top"] if mode == "grid" else None)},
        artifacts=artifact_listing(staging))
    if mode == "walkforward":
        report["walkforward"] = extra_metrics
    atomic_write_json(staging / "report.json", report)
    return publish_staging(staging, final, marker_out, {
        "run_id": run_id, "mode": mode, "artifacts_path": str(final),
        "report_path": str(final / "report.json"), "summary": summary, "warnings": late_warnings})


_VERDICT_ORDER = {"likely_overfit": 0, "inconclusive": 1, "robust": 2}


def walkforward_robustness(splits: list[dict]) -> dict:
    """The walk-forward robustness block: each split's report on its train grid (the selected
    combination as the best), walk-forward efficiency (the selected combination's OOS vs IS
    cagr), parameter stability of the selections, and the worst split verdict."""
    from quantlab.robustness import parameter_stability, walk_forward_efficiency

    per_split, is_r, oos_r, chosen = [], [], [], []
    for s in splits:
        per_split.append({"split": s["name"], **(s.get("robustness") or {"verdict": None})})
        if not s["test"]:
            continue
        pick = s["test"][0]
        train = next((r for r in s["train"] if r["index"] == pick["index"]), None)
        chosen.append(pick["params"])
        if train is not None and train["metrics"].get("cagr") is not None \
                and pick["metrics"].get("cagr") is not None:
            is_r.append(train["metrics"]["cagr"])
            oos_r.append(pick["metrics"]["cagr"])
    verdicts = [p["verdict"] for p in per_split if p.get("verdict") is not None]
    worst = min(verdicts, key=_VERDICT_ORDER.__getitem__) if verdicts else None
    reasons = [f"split {p['split']}: {p['verdict']}" for p in per_split if p.get("verdict") == worst]
    return {"splits": per_split, "walk_forward_efficiency": walk_forward_efficiency(is_r, oos_r),
            "parameter_stability": parameter_stability(chosen), "verdict": worst,
            "verdict_reasons": reasons}


def _who(row: dict) -> str:
    if row.get("label") is not None:
        return f"'{row['label']}'"
    return ", ".join(f"{k}={v}" for k, v in row["params"].items())


def _write_oos(path: Path, oos: dict) -> None:
    import numpy as np

    from quantlab.columnar import parquet_bytes, table_from_numpy

    ts = np.array([t.rstrip("Z") for t in oos["timestamps"]], dtype="datetime64[ns]")
    atomic_write_bytes(path, parquet_bytes(table_from_numpy({
        "timestamp": ts, "equity": np.asarray(oos["equity"], dtype=float),
        "returns": np.asarray(oos["returns"], dtype=float)})))


def _robustness_md(rb: dict | None) -> list[str]:
    """The run report's short robustness section."""
    if rb is None:
        return ["", "## Robustness", "", "Not computed (no return series).", ""]
    fmt = format_value
    lines = ["", "## Robustness", "", f"- verdict: **{rb.get('verdict')}** ({'; '.join(rb.get('verdict_reasons') or [])})"]
    reports = rb["splits"] if "splits" in rb else [dict(rb, split=None)]
    for r in reports:
        if r.get("trials") is None:
            continue
        where = f"split {r['split']}: " if r.get("split") else ""
        lines.append(f"- {where}{r['trials']} trials ({fmt(r['effective_trials'])} effective), "
                     f"PSR {fmt(r['probabilistic_sharpe'])}, DSR {fmt(r['deflated_sharpe'])}, "
                     f"expected max Sharpe {fmt(r['expected_max_sharpe'])}, PBO {fmt(r['pbo']['pbo'])}, "
                     f"Sharpe CI [{fmt(r['sharpe_ci']['low'])}, {fmt(r['sharpe_ci']['high'])}]")
    if "walk_forward_efficiency" in rb:
        lines.append(f"- walk-forward efficiency {fmt(rb['walk_forward_efficiency']['efficiency'])}, "
                     f"parameter stability {fmt(rb['parameter_stability']['stability'])}")
    lines += ["", "Pictures: pbo_logits.png (the CSCV logits; red = the in-sample winner fell to the bottom "
              "half out of sample) and is_vs_oos.png (in- vs out-of-sample Sharpe per CSCV split; for "
              "walk-forward, in each splits/<name>/). See docs/robustness.md for what each number means.", ""]
    return lines


def _sweep_report_md(record: dict, summary: dict, best: dict | None, metrics: dict,
                     robustness: dict | None = None) -> str:
    base = record["base"]

    fmt = format_value

    lines = [f"# Sweep {record['run_id']} ({record['mode']})", "",
             f"- ticker: {base['ticker']} ({base['interval']}), {base['start']} .. {base['end']}",
             f"- strategy: {record['strategy']}, {len(record['combos'])} combinations "
             f"(grid keys: {', '.join(record['grid_keys'])})",
             f"- ranking: {', '.join(record['sort_by'])}",
             f"- shards computed: {len(record['new_shards'])}, reused: {len(record['reused_shards'])}", "",
             "## Summary" + (" (stitched out-of-sample)" if record["mode"] == "walkforward" else " (best)"), "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in summary.items()]
    if best:
        lines += ["", "## Best configuration", "", "```", json.dumps(best.get("params"), sort_keys=True), "```"]
    lines += ["", "Files: leaderboard.csv, experiment.yaml, metrics.json, report.json"
              + (", heatmap.png" if record["mode"] == "grid" else ", walkforward_summary.csv, splits/, oos_equity.parquet"),
              ""]
    if record.get("robustness", False):
        lines += _robustness_md(robustness)
    return "\n".join(lines)
