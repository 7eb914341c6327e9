"""A sweep's Snakemake config does not grow with its combinations (commands/sweep/spec.py), and
every rule still hands its step the planned dict."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings, strategies as st

from quantlab.commands.experiment import load_experiment
from quantlab.commands.sweep import spec as sweep_spec
from quantlab.commands.sweep.board import attach_board
from quantlab.commands.sweep.plan import plan_sweep
from quantlab.contract.paths import resolve_input_path


def _planned(n_fast: int, mode: str = "grid"):
    params = {"ticker": "SPX", "start": "2016-01-01", "end": "2018-01-01", "strategy": "sma_crossover",
              "param_grid": {"fast": list(range(2, 2 + n_fast)), "slow": [120, 150]}}
    if mode == "walkforward":
        params["splits"] = [{"name": "a", "train": {"start": "2016-01-01", "end": "2017-01-01"},
                             "test": {"start": "2017-01-01", "end": "2018-01-01"}}]
    exp = load_experiment(params, resolve_path=resolve_input_path)
    sp = plan_sweep(exp, params, request_id=None, warnings=[], origin="json", claim=False)
    if mode == "grid":
        attach_board(sp.config, sp.run_id)
    return sp


@pytest.fixture(autouse=True)
def _outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(tmp_path / "outputs"))


@pytest.mark.parametrize("mode", ["grid", "walkforward"])
def test_config_size_does_not_grow_with_combinations(tmp_path, monkeypatch, mode):
    monkeypatch.chdir(tmp_path)  # rules run in the workdir: spec paths are relative to it
    sizes = []
    for n in (4, 100):
        sp = _planned(n, mode)
        planned = copy.deepcopy(sp.config)
        sweep_spec.externalize(sp.config, sp.run_id, tmp_path)
        text = json.dumps(sp.config)
        sizes.append(len(text) - text.count(sp.run_id) * len(sp.run_id))
        for section in sweep_spec.BIG:
            for key, entry in planned.get(section, {}).items():
                assert sweep_spec.full(sp.config, section, key) == json.loads(json.dumps(entry))
    assert abs(sizes[1] - sizes[0]) < 200, sizes  # a few keys of different length at most


def test_an_entry_without_a_ref_is_its_own_full_dict():
    config = {"requests": {"r": {"run_id": "r", "combos": [{"a": 1}]}}}
    assert sweep_spec.full(config, "requests", "r") is config["requests"]["r"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["fast", "slow", "fee", "x"]),
                                st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
                                max_size=4), max_size=8), st.text(max_size=8))
def test_bulk_combo_keys_are_the_single_ones(combos, family):
    from quantlab.commands.sweep.plan import combo_key, combo_keys

    assert combo_keys(family, combos) == [combo_key(family, c) for c in combos]
