"""Issue #11: one way through. main.py stays a thin entry point and the orchestration constants
(run-id format and pattern, staging prefix, a simulation's files) are spelled in one module."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "main.py", *sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "workflow").rglob("*.smk")),
           ROOT / "workflow" / "Snakefile"]

SPELLINGS = {  # what -> (regex over the source, the one module allowed to spell it)
    "run-id time format": (r"%Y%m%d_%H%M%S", "src/quantlab/contract/runid.py"),
    "run-id pattern": (r"\[0-9\]\{8\}_|\\d\{8\}_", "src/quantlab/contract/runid.py"),
    "staging prefix": (r"[\"']\.tmp_|f[\"']\.tmp_", "src/quantlab/contract/runid.py"),
    "a simulation's files": (r"[\"']equity\.parquet[\"'],\s*[\"']trades\.parquet[\"']", "src/quantlab/store_layout.py"),
    "walk-forward split files": (r"[\"']selected\.json[\"'],\s*[\"']test\.json[\"']", "src/quantlab/store_layout.py"),
}


def test_main_is_a_thin_entry_point():
    lines = (ROOT / "main.py").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    text = "\n".join(lines)
    for engine_part in ("KeyLocks", "step_publish", "StepWorker", "snakemake_runner", "PaperSession"):
        assert engine_part not in text, engine_part


def test_orchestration_constants_are_spelled_once():
    for what, (pattern, owner) in SPELLINGS.items():
        found = [str(p.relative_to(ROOT)) for p in SOURCES if re.search(pattern, p.read_text(encoding="utf-8"))]
        assert found == [owner], f"{what} spelled in {found}"


def test_store_layout_matches_what_the_rules_write():
    from quantlab import store_layout as sl

    assert sl.sim_files("k") == [f"store/sim/k/{n}" for n in sl.SIM_FILES]
    assert sl.run_chain({"data": "d", "signals": "s", "sim": "m"}) == {
        "d": ["store/data/d/bars.parquet"], "s": ["store/signals/s/signals.parquet"], "m": sl.sim_files("m")}
    config = {"data": {"d": {}}, "shards": {"h": {"family": "f"}}, "wf_splits": {"w": {}}}
    assert sl.sweep_outputs(config) == {"d": ["store/data/d/bars.parquet"],
                                        "h": ["store/sweep/f/shards/h.parquet", "store/sweep/f/shards/h.json",
                                                  "store/sweep/f/shards/h.returns.npy"],
                                        "w": sl.wf_split_files("w")}
    rules = (ROOT / "workflow" / "rules" / "simulate.smk").read_text() + (ROOT / "workflow" / "rules" / "report.smk").read_text()
    for name in sl.SIM_FILES:
        assert f"store/sim/{{mkey}}/{name}" in rules, name
