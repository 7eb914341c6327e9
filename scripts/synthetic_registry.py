"""Build a synthetic runs registry quickly: N run directories plus their catalog and index files.

    .venv/bin/python scripts/synthetic_registry.py ROOT N

Each run directory holds a ``metadata.json`` (id, mode, claim time, summary KPIs) and a
``config.json`` (ticker, window, strategy), as small as a real run's index row needs. Ids are
``20200101_000000_run_<hash>`` one second apart, so they sort before any run made today (a new
run appends, as in a real store). Reading 100,000 directories back would take minutes, so the
catalog rows are made from the values written, through the same row builder and the same file
layout as the catalog's; a sample of directories (first, last and a few between) is read back
with :func:`quantlab.artifacts.catalog.entry` and must give exactly the same rows, or the build
fails. Used by benchmarks/bench_registry.py and the 10,000-run test fixtures.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TICKERS = ("SPX", "NASDAQ", "BTC-USD", "ETH-USD")
STRATEGIES = ("rsi_ma_cross_v2", "sma_crossover", "donchian_breakout")
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _write(path: Path, data: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, json.dumps(data).encode("utf-8"))
    finally:
        os.close(fd)


def _run(i: int, rng: random.Random) -> tuple[str, dict, dict]:
    ts = EPOCH + timedelta(seconds=i)
    name = f"{ts:%Y%m%d_%H%M%S}_run_{rng.getrandbits(28):07x}"
    summary = {"sharpe_simple": round(rng.gauss(0.3, 0.8), 6), "total_return": round(rng.gauss(0.05, 0.2), 6),
               "max_drawdown": -round(abs(rng.gauss(0.1, 0.05)), 6), "trades": rng.randrange(0, 200),
               "win_rate": round(rng.random(), 6)}
    meta = {"run_id": name, "mode": "run", "created_at": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_commit": "0" * 40, "summary": summary}
    config = {"ticker": TICKERS[i % len(TICKERS)], "start": "2017-01-01", "end": "2018-01-01",
              "strategy": STRATEGIES[i % len(STRATEGIES)]}
    return name, meta, config


def _entry(root: Path, name: str, meta: dict, config: dict) -> dict:
    """What catalog.entry() reads back from these two files, made without reading them."""
    from quantlab.artifacts import index_files
    from quantlab.artifacts.io import json_safe
    from quantlab.artifacts.runs_index import columns, metric_keys
    from quantlab.registry.runs import valid_metrics

    row = {"run_id": name, "mode": meta["mode"], "created_at": meta["created_at"], "git_commit": meta["git_commit"],
           "ticker": config["ticker"], "start": config["start"], "end": config["end"], "strategy": config["strategy"],
           "path": str(root / name)}
    for key in metric_keys():
        row[key] = meta["summary"].get(key)
    row = json_safe(row)
    metrics = {k: row[k] for k in valid_metrics() if row.get(k) is not None}
    return {"name": name, "run_id": name, "listing": {**row, "problems": []}, "metrics": metrics,
            **index_files.segments(row, columns())}


def build(root: str | os.PathLike, n: int, seed: int = 7) -> Path:
    """``n`` synthetic runs under ``root`` (absolute), catalogued and indexed; returns the root."""
    from quantlab.artifacts.catalog import Catalog, entry, index_lock

    root = Path(os.path.abspath(root))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    entries = []
    for i in range(n):
        name, meta, config = _run(i, rng)
        d = root / name
        d.mkdir()
        _write(d / "metadata.json", meta)
        _write(d / "config.json", config)
        entries.append(_entry(root, name, meta, config))
    for i in sorted({0, n // 3, n // 2, n - 1} if n else set()):
        got = entry(root / entries[i]["name"])
        if got != entries[i]:
            raise SystemExit(f"synthetic row {entries[i]['name']} differs from what the catalog reads back")
    with index_lock(root):
        cat = Catalog(root)
        try:
            cat.rebuild(entries, keep_files=True)
        finally:
            cat.close()
    return root


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.splitlines()[2].strip())
    print(build(sys.argv[1], int(sys.argv[2])))
