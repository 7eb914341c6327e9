"""The docs' registry tables are generated (scripts/docs_tables.py) and current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "docs_tables.py"


def _module():
    spec = importlib.util.spec_from_file_location("docs_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_are_current():
    res = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_every_strategy_and_metric_has_a_row():
    from quantlab import metric_registry
    from quantlab.strategies import describe_strategies

    mod = _module()
    strategies, metrics = mod.strategies_table(), mod.metrics_table()
    assert all(f"| `{s['name']}` |" in strategies for s in describe_strategies())
    assert all(f"| `{name}` |" in metrics for name in metric_registry.metric_names())


def test_a_stale_table_is_rewritten_between_its_markers():
    mod = _module()
    text = "intro\n<!-- generated:metrics -->\n| old |\n<!-- /generated:metrics -->\noutro\n"
    new = mod.render(text)
    assert new.startswith("intro\n<!-- generated:metrics -->\n| metric |") and new.endswith(
        "<!-- /generated:metrics -->\noutro\n")
    assert "| old |" not in new and mod.render(new) == new
