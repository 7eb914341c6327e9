"""``robustness: true`` on a single run (issue #12): the run's PSR vs 0, minimum track record and
stationary-bootstrap Sharpe interval in ``metrics.json`` and ``machine_contract.robustness``
(docs/robustness.md, "A single run").

Computed at publishing from the simulation's stored per-bar returns (``equity.parquet``), so the
cached simulation and score steps are shared by runs with and without it.
"""

from __future__ import annotations

from pathlib import Path


def run_robustness(params: dict, sim_dir: Path | str, window: dict) -> dict:
    """``{"robustness": report}`` when ``params`` ask for it, else ``{}`` (to splat into
    metrics.json). ``window["periods_per_year"]`` annualises, as the run's own Sharpe."""
    if params.get("robustness") is not True:
        return {}
    from quantlab.columnar import column_to_numpy, read_parquet
    from quantlab.robustness import single_run_report

    returns = column_to_numpy(read_parquet(str(Path(sim_dir) / "equity.parquet")), "returns")
    return {"robustness": single_run_report(returns, float(window.get("periods_per_year") or 252.0), seed=0)}


def report_lines(rb: dict | None) -> list[str]:
    """The run report's robustness section (none when the run did not ask for it)."""
    if not rb:
        return []
    from quantlab.artifacts.io import format_value as fmt

    ci, trl = rb.get("sharpe_ci") or {}, rb.get("minimum_track_record") or {}
    return ["", "## Robustness", "",
            f"- Sharpe {fmt(rb.get('sharpe'))}, 95 % bootstrap interval [{fmt(ci.get('low'))}, {fmt(ci.get('high'))}]",
            f"- probabilistic Sharpe (vs 0) {fmt(rb.get('probabilistic_sharpe'))}; minimum track record "
            f"{fmt(trl.get('bars'))} bars (sufficient: {trl.get('sufficient')})",
            "", "See docs/robustness.md (\"A single run\")."]


def contract_fields(run_dir: Path | str) -> dict:
    """The ``machine_contract`` fields a run directory's metrics.json carries (``robustness``
    when the run asked for it; read back, so ``--report`` rebuilds give the same contract)."""
    from quantlab.artifacts.io import read_json

    try:
        doc = read_json(Path(run_dir) / "metrics.json")
    except (OSError, ValueError):
        return {}
    return {"robustness": doc["robustness"]} if isinstance(doc, dict) and "robustness" in doc else {}
