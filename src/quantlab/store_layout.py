"""The content-addressed store's layout: the one place that names each key's files.

Paths are relative to the internal root (the Snakemake working directory), so the workflow's
input functions and the executor's locks and integrity checks read the same list. Importing this
module costs nothing (no third-party imports): the cold ``run`` planner uses it.
"""

from __future__ import annotations

from pathlib import Path

SIM_FILES = ("equity.parquet", "trades.parquet", "trades.csv", "metrics.json", "equity.png")
WF_SPLIT_FILES = ("selected.json", "test.json", "test_equity.parquet")
BOARD_FILES = ("board.json", "leaderboard.parquet", "leaderboard.csv", "heatmap.png")  # commands/sweep/board.py


def data_dir(dkey: str) -> str:
    return f"store/data/{dkey}"


def data_files(dkey: str) -> list[str]:
    return [f"{data_dir(dkey)}/bars.parquet"]


def signals_files(skey: str) -> list[str]:
    return [f"store/signals/{skey}/signals.parquet"]


def sim_dir(mkey: str) -> str:
    return f"store/sim/{mkey}"


def sim_files(mkey: str) -> list[str]:
    return [f"{sim_dir(mkey)}/{name}" for name in SIM_FILES]


# a shard's files beside its ``.parquet``: the sidecar (its combinations, written last) and what the
# robustness statistics need of its returns (commands/robust_sweep.py); ``.returns.npy``: the
# returns file a shard kept before (removed when the shard is computed again)
SHARD_SIDECAR, SHARD_SUMMARY, SHARD_OLD_RETURNS = ".json", ".robust.npz", ".returns.npy"


def shard_files(family: str, shard: str) -> list[str]:
    base = f"store/sweep/{family}/shards/{shard}"
    return [f"{base}.parquet", f"{base}{SHARD_SIDECAR}", f"{base}{SHARD_SUMMARY}"]


def shard_sibling(shard_parquet, suffix: str) -> str:
    """The file of a shard with ``suffix`` (``SHARD_*``) beside its ``.parquet``."""
    return str(shard_parquet)[: -len(".parquet")] + suffix


def board_files(family: str, board: str) -> list[str]:
    return [f"store/sweep/{family}/boards/{board}/{name}" for name in BOARD_FILES]


def wf_split_files(split: str) -> list[str]:
    return [f"store/wf/{split}/{name}" for name in WF_SPLIT_FILES]


def run_chain(keys: dict) -> dict[str, list[str]]:
    """The files of one run chain's keys (``{"data", "signals", "sim"}`` content keys)."""
    return {keys["data"]: data_files(keys["data"]), keys["signals"]: signals_files(keys["signals"]),
            keys["sim"]: sim_files(keys["sim"])}


def sweep_outputs(config: dict) -> dict[str, list[str]]:
    """Data, shards and walk-forward splits of a sweep's Snakemake config."""
    outputs = {dkey: data_files(dkey) for dkey in config.get("data", {})}
    for shard, spec in config.get("shards", {}).items():
        outputs[shard] = shard_files(spec["family"], shard)
    for split in config.get("wf_splits", {}):
        outputs[split] = wf_split_files(split)
    for board, spec in config.get("boards", {}).items():
        outputs[board] = board_files(spec["family"], board)
    return outputs


def run_chains_outputs(config: dict) -> dict[str, list[str]]:
    """Every data/signals/sim key in a Snakemake config (forward candidates, basket legs)."""
    outputs = {k: data_files(k) for k in config.get("data", {})}
    outputs.update({k: signals_files(k) for k in config.get("signals", {})})
    outputs.update({k: sim_files(k) for k in config.get("sim", {})})
    return outputs


def absolute(root: Path, outputs: dict[str, list[str]]) -> dict[str, list[Path]]:
    return {key: [root / p for p in paths] for key, paths in outputs.items()}
