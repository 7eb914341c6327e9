"""Remembered parameter coercions (strategies/base.py) and combination identity (experiment.py)
give exactly what computing them afresh gives."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from quantlab.commands.experiment import _identity
from quantlab.errors import ConfigError
from quantlab.strategies.base import Param

PARAMS = [Param("n", int, 5, 1, 400), Param("x", float, 0.5, -1.0, 1.0), Param("b", bool, False)]
values = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(allow_nan=True),
                   st.sampled_from([0.0, -0.0, 5.0, 5, True, 1, 1.0]))


def _outcome(fn, value):
    try:
        out = fn(value, "s")
        return ("ok", type(out), repr(out))
    except ConfigError as exc:
        return ("error", str(exc))


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=12))
def test_remembered_coercion_is_the_fresh_one(seq):
    for p in PARAMS:
        for value in seq + seq:  # the second pass is served from the cache
            assert _outcome(p.coerce, value) == _outcome(p._coerce, value)


plain = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(allow_nan=False),
                  st.sampled_from([0.0, -0.0, 5.0, 5, True, 1, 1.0]))  # coerced combos hold no NaN
combo = st.dictionaries(st.sampled_from(["a", "b", "c"]), plain, max_size=3)


@settings(max_examples=300, deadline=None)
@given(combo, combo)
def test_identity_is_equality_of_sorted_json(a, b):
    same_json = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert (_identity(a) == _identity(b)) == same_json
