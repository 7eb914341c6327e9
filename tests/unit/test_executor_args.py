"""Per-request executor-plugin options (snakemake_runner.plugin_args): SLURM jobs of concurrent
requests must not share the plugin's log directory, which every snakemake cleans at exit."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT
from quantlab.snakemake_runner import plugin_args


def test_slurm_gets_a_log_dir_of_its_own_from_the_flag_or_the_profile(tmp_path):
    logs = tmp_path / "requests" / "r1" / "logs"
    expected = ["--slurm-logdir", str(logs / "slurm")]
    assert plugin_args("slurm", None, logs) == expected
    assert plugin_args(None, str(ROOT / "profiles" / "slurm"), logs) == expected
    own = tmp_path / "my-profile"
    own.mkdir()
    (own / "config.yaml").write_text("executor: slurm\njobs: 4\n")
    assert plugin_args(None, str(own), logs) == expected


def test_other_executors_get_no_slurm_options(tmp_path):
    logs = tmp_path / "logs"
    assert plugin_args(None, str(ROOT / "profiles" / "local-cluster"), logs) == []
    assert plugin_args(None, str(ROOT / "profiles" / "kubernetes"), logs) == []
    assert plugin_args("cluster-generic", None, logs) == []
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text("jobs: 4\n")
    assert plugin_args(None, str(bare), Path(logs)) == []
