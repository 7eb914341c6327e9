"""The reference for the runs index files: the original full rebuild (scan every run dir,
json.dumps(indent=2), csv.DictWriter, the Markdown table), kept here verbatim. After every
incremental update the three files must be byte-for-byte what it writes for the same run dirs
and the same generation time."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from conftest import strict_json
from quantlab.artifacts import index_files, runs_index
from quantlab.artifacts.io import dumps_json


def _fmt(value):
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def full_rebuild(root: Path, generated_at: str) -> dict[str, bytes]:
    """What the original ``refresh`` wrote (its code, kept here as the reference)."""
    rows = runs_index.scan(root)
    cols = runs_index.columns()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})
    md = ["# Runs Index", "", f"- root: `{root}`", f"- generated_at: {generated_at}", f"- total: {len(rows)}", "",
          "| run_id | mode | ticker | strategy | sharpe_simple | total_return | max_drawdown | trades |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['run_id']} | {r['mode']} | {r['ticker']} | {r['strategy']} | {_fmt(r['sharpe_simple'])} | "
                  f"{_fmt(r['total_return'])} | {_fmt(r['max_drawdown'])} | {_fmt(r['trades'])} |")
    return {
        "csv": buf.getvalue().encode(),
        "json": dumps_json({"generated_at": generated_at, "root_dir": str(root), "n_runs": len(rows),
                            "runs": rows}).encode(),
        "md": ("\n".join(md) + "\n").encode(),
    }


def assert_files_are_a_full_rebuild(root: Path) -> dict:
    data = strict_json((root / "runs_index.json").read_text())
    expected = full_rebuild(root, data["generated_at"])
    for kind, name in index_files.FILE_NAMES.items():
        assert (root / name).read_bytes() == expected[kind], f"{name} differs from a full rebuild"
    return data




REGISTRY_SIZES = [0, 10_000]  # load tests run on an empty and on a pre-populated registry


def populate(root: Path, n: int) -> Path:
    """A synthetic registry of ``n`` runs under ``root`` (scripts/synthetic_registry.py)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "synthetic_registry.py"
    spec = importlib.util.spec_from_file_location("synthetic_registry", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(root, n)
