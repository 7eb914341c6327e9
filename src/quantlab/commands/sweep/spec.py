"""Keep a sweep's per-combination lists out of the Snakemake config.

Snakemake reads its configfile and handles the config for every job: with the combinations in
it, building the DAG of a 100,000-combination grid cost ~2 s of CPU for the same 8 jobs as a
1,000-combination one (~0.05 s). Before Snakemake starts (not on the fast path, not for a dry
run), :func:`externalize` moves the long lists of the request record, the shard specs and the
walk-forward split specs (``BIG``) into one file of the request, ``requests/<run_id>/sweep/spec.json``,
and leaves in the config slim entries (what the input functions read: keys, families, shard
paths, modes) that point at it with ``"$ref"``. The rules hand each step :func:`full` of its
entry, so the step functions see exactly the planned dicts. The file is scratch: the plan
removes it when the request ends, whichever way.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

# section -> top-level keys, and nested (key, sub-key) pairs, that grow with the combinations
BIG = {
    "requests": (("combos", "labels", "skipped", "experiment"), (("grid", "combo_keys"),)),
    "shards": (("combos", "combo_keys"), ()),
    "wf_splits": (("combos", "labels"), (("train", "combo_keys"),)),
}
REF = "$ref"


def spec_path(run_id: str) -> str:
    from quantlab.contract import namespaces

    return namespaces.request_file(run_id, "sweep", "spec.json")


def _slim(entry: dict, top: tuple, nested: tuple, ref: str) -> dict:
    out = {k: v for k, v in entry.items() if k not in top}
    for key, sub in nested:
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k != sub}
    out[REF] = ref
    return out


def externalize(config: dict, run_id: str, internal: Path) -> Path:
    """Write the full sections to the request's spec file and slim the config in place."""
    from quantlab.artifacts.io import atomic_write_text

    ref = spec_path(run_id)
    full_sections = {section: dict(config.get(section) or {}) for section in BIG}
    atomic_write_text(internal / ref, json.dumps(full_sections, separators=(",", ":")))
    for section, (top, nested) in BIG.items():
        entries = config.get(section) or {}
        for key in list(entries):
            entries[key] = _slim(entries[key], top, nested, ref)
    return internal / ref


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def full(config: dict, section: str, key: str) -> dict:
    """The planned dict of ``config[section][key]`` (read from its spec file when slimmed;
    paths are relative to the workflow's workdir, the current directory of rules)."""
    entry = config[section][key]
    if REF not in entry:
        return entry
    return _load(str(Path(entry[REF]).resolve()))[section][key]
