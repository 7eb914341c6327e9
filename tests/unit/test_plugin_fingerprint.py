"""plugin_fingerprint: the plugin's files and its local imports, nothing installed, nothing imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from quantlab.artifacts import provenance
from quantlab.artifacts.provenance import _source_fingerprint, code_fingerprint, plugin_fingerprint


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "plugins"
    (root / "fp_pkg").mkdir(parents=True)
    (root / "fp_plugin.py").write_text("import json\nimport numpy as np\nimport fp_helper\nfrom fp_pkg import util\n")
    (root / "fp_helper.py").write_text("VALUE = 1\n")
    (root / "fp_pkg" / "__init__.py").write_text("")
    (root / "fp_pkg" / "util.py").write_text("X = 1\n")
    (root / "fp_unrelated.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(root))
    plugin_fingerprint.cache_clear()
    yield root
    plugin_fingerprint.cache_clear()


def fingerprint() -> str | None:
    plugin_fingerprint.cache_clear()
    return plugin_fingerprint("fp_plugin")


@pytest.mark.parametrize("edited", ["fp_plugin.py", "fp_helper.py", "fp_pkg/util.py"])
def test_edits_of_the_plugin_and_its_local_imports_change_it(plugin_dir: Path, edited: str) -> None:
    before = fingerprint()
    assert before is not None and fingerprint() == before  # deterministic
    path = plugin_dir / edited
    path.write_text(path.read_text() + "# fixed\n")
    assert fingerprint() != before


def test_unrelated_files_and_installed_packages_do_not_count(plugin_dir: Path) -> None:
    before = fingerprint()
    (plugin_dir / "fp_unrelated.py").write_text("Y = 2\n")
    assert fingerprint() == before
    assert "fp_plugin" not in sys.modules and "fp_helper" not in sys.modules  # nothing was imported


def test_without_plugins_the_code_fingerprint_is_quantlab_alone(monkeypatch: pytest.MonkeyPatch,
                                                                 plugin_dir: Path) -> None:
    monkeypatch.delenv("QUANTLAB_PLUGINS", raising=False)
    assert plugin_fingerprint("") is None and plugin_fingerprint(" , ") is None
    assert code_fingerprint() == _source_fingerprint()
    monkeypatch.setenv("QUANTLAB_PLUGINS", "fp_plugin")
    with_plugin = code_fingerprint()
    assert with_plugin != _source_fingerprint()
    assert code_fingerprint("data") == _source_fingerprint("data")  # data keys never see plugins
    (plugin_dir / "fp_helper.py").write_text("VALUE = 2\n")
    plugin_fingerprint.cache_clear()
    assert code_fingerprint() != with_plugin


def test_a_missing_plugin_still_gives_a_value(plugin_dir: Path) -> None:
    plugin_fingerprint.cache_clear()
    assert plugin_fingerprint("no_such_plugin_fp") != plugin_fingerprint("fp_plugin")
    assert provenance._find_module("no_such_plugin_fp.sub") is None


def test_fingerprint_follows_the_helper_bytes_exactly(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Property: equal helper contents give equal fingerprints, different contents different ones."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    root = tmp_path_factory.mktemp("prop")
    (root / "fp_prop_plugin.py").write_text("import fp_prop_helper\n")
    helper = root / "fp_prop_helper.py"
    sys.path.insert(0, str(root))

    def of(text: str) -> str | None:
        helper.write_text(text)
        plugin_fingerprint.cache_clear()
        return plugin_fingerprint("fp_prop_plugin")

    @settings(max_examples=60, deadline=None)
    @given(st.text(max_size=40), st.text(max_size=40))
    def check(a: str, b: str) -> None:
        assert (of(a) == of(b)) == (a.encode() == b.encode())

    try:
        check()
    finally:
        sys.path.remove(str(root))
        plugin_fingerprint.cache_clear()


def test_every_compute_code_entry_names_real_source() -> None:
    """A moved module (e.g. commands/run.py -> commands/run/) must not drop out of the code
    fingerprint silently: each COMPUTE_CODE entry is a file, a module or a package with sources."""
    root = provenance.PACKAGE_ROOT
    for entry in provenance.COMPUTE_CODE:
        path = root / entry
        found = path.is_file() or path.with_suffix(".py").is_file() or any(path.rglob("*.py"))
        assert found, f"COMPUTE_CODE entry {entry!r} names no source file"
