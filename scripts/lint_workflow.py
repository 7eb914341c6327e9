#!/usr/bin/env python
"""`snakemake --lint` on each given config, in one process (``make lint``).

    .venv/bin/python scripts/lint_workflow.py .test/config_lint.yaml .test/config_run.yaml ...

Each config is linted as ``snakemake -s workflow/Snakefile -d <tmp> --configfile CFG --lint``
would (the same API call: ``WorkflowApi.lint``), in a throw-away workdir; Snakemake is imported
once instead of once per config. Prints "clean" per config, or the lint output of the first
config with findings (or an error) and exits 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"


def lint_one(cfg: Path, work: Path) -> tuple[bool, str]:
    """(clean, what Snakemake printed) for one config; its output goes to a file, not the terminal."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    log = work / "lint.txt"
    saved = [os.dup(1), os.dup(2)]
    cwd = os.getcwd()
    with open(log, "w") as fh:
        for fd in (1, 2):
            os.dup2(fh.fileno(), fd)
        try:
            with SnakemakeApi(OutputSettings()) as api:
                wf = api.workflow(snakefile=SNAKEFILE, workdir=work, resource_settings=ResourceSettings(cores=1),
                                  config_settings=ConfigSettings(configfiles=[cfg]),
                                  storage_settings=StorageSettings())
                clean = not wf.lint()
        except Exception as exc:  # a parse error is a lint failure too
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            clean = False
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            os.chdir(cwd)  # api.workflow(workdir=...) chdirs the whole process
    return clean, log.read_text()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: lint_workflow.py CONFIG...", file=sys.stderr)
        return 2
    for cfg in argv:
        with tempfile.TemporaryDirectory(prefix="quantlab-lint-") as tmp:
            clean, text = lint_one(Path(cfg).resolve(), Path(tmp))
        if not clean:
            print(text, end="")
            print(f"snakemake --lint {cfg}: findings above", file=sys.stderr)
            return 1
        print(f"snakemake --lint {cfg}: clean", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
