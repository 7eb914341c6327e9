"""Snakemake reads our local rule files without smart_open (quantlab/snakemake_sources.py): the
same answers as smart_open's for local paths, and a parsed workflow leaves smart_open unimported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from quantlab import snakemake_sources

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1,
                        max_size=8), min_size=1, max_size=4), st.booleans())
def test_local_paths_parse_as_smart_open_parses_them(parts, absolute):
    from smart_open import parse_uri as smart_parse
    from snakemake import sourcecache

    assert snakemake_sources.install()
    path = ("/" if absolute else "") + "/".join(parts)
    try:
        theirs = smart_parse(path)
    except NotImplementedError:  # a "scheme:" smart_open does not know: Snakemake's own fallback
        theirs = None
    ours = sourcecache.parse_uri(path) if theirs is not None else None
    if theirs is None or theirs.scheme != "file":
        assert snakemake_sources.local_path(path) is None  # not ours to answer
        return
    assert (ours.scheme, ours.uri_path) == (theirs.scheme, theirs.uri_path)


def test_remote_sources_still_go_to_snakemake():
    from snakemake import sourcecache

    assert snakemake_sources.install() and snakemake_sources.install()  # idempotent
    assert sourcecache.parse_uri("https://example.org/x/Snakefile").scheme == "https"
    assert snakemake_sources.local_path("git+file:///repo/x.smk") is None
    assert snakemake_sources.local_path(Path("a")) == "a"


def test_a_missing_local_source_is_snakemakes_error(tmp_path):
    from snakemake import sourcecache
    from snakemake.exceptions import WorkflowError

    snakemake_sources.install()
    cache = sourcecache.SourceCache(cache_path=tmp_path / "c", runtime_cache_path=str(tmp_path))
    with pytest.raises(WorkflowError, match="Failed to open source file"):
        cache._open(sourcecache.LocalSourceFile(str(tmp_path / "nope.smk")), "r", encoding="utf-8")


def _dry_run_in_a_fresh_process(tmp_path, after: str, before: str = "") -> str:
    """stdout of a fresh interpreter that runs ``before``, then a dry run of the run workflow
    (the process's first Snakemake import), then ``after`` (``import gc, os, sys`` done)."""
    code = (f"import gc, os, sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n"
            "from pathlib import Path\n" + before +
            "from quantlab.snakemake_runner import execute\n"
            f"out = execute(config={{'kind': 'run', 'planned': True}}, workdir=Path({str(tmp_path)!r}), dry_run=True,"
            f" log_path=Path({str(tmp_path / 'log')!r}))\n"
            "assert out.ok, out.error\n" + after)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_parsing_the_workflow_does_not_import_smart_open(tmp_path):
    assert _dry_run_in_a_fresh_process(tmp_path, "print('smart_open' in sys.modules)\n").strip() == "False"


def test_the_first_snakemake_import_freezes_and_exit_still_finalises_later_cycles(tmp_path):
    """snakemake_runner.first_import_kept: what exists after the first Snakemake import is frozen
    (the collections skip it); an object the request creates later and drops in a reference
    cycle is still finalised by contract/exit.py's collection."""
    out = tmp_path / "finalised"
    stdout = _dry_run_in_a_fresh_process(tmp_path, (
        "from quantlab.contract.exit import exit_now\n"
        "print(gc.get_freeze_count() > 10000, flush=True)\n"
        "class Late:\n"
        f"    def __del__(self): os.close(os.open({str(out)!r}, os.O_CREAT | os.O_WRONLY))\n"
        "cycle = [Late()]; cycle.append(cycle)\n"
        "del cycle\n"
        "exit_now(0)\n"))
    assert stdout.strip() == "True"
    assert out.exists()


def test_the_first_snakemake_import_runs_without_collections(tmp_path):
    """snakemake_runner.first_import_kept: no cyclic collection runs while Snakemake's modules
    load (each would walk the objects they are creating); the collector is on again after."""
    stdout = _dry_run_in_a_fresh_process(tmp_path, "print(len(during), gc.isenabled())\n", before=(
        "during = []\n"
        "def seen(phase, info):\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None:\n"
        "        if f.f_code.co_name == '<module>' and f.f_globals.get('__name__', '').startswith('snakemake'):\n"
        "            during.append(f.f_globals['__name__']); return\n"
        "        f = f.f_back\n"
        "gc.callbacks.append(seen)\n"))
    assert stdout.split() == ["0", "True"]
