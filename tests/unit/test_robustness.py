"""Overfitting statistics (issue #12): the papers' worked examples, agreement with plain-loop
reference implementations written here, properties, and seeded simulations (noise vs a planted
edge). Pure numpy; every random input is seeded; no clock, no network."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantlab import robustness as rb

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
NORMAL = NormalDist()


def strict_dumps(obj) -> str:
    return json.dumps(obj, allow_nan=False)


# ----------------------------------------------------------------------------- papers' examples

def test_dsr_paper_example_2014():
    """Bailey & López de Prado (2014), numerical example: N = 100 trials whose annualised Sharpe
    ratios have variance 1/2, best annualised SR 2.5, T = 1250 daily observations (250 a year),
    skewness -3, kurtosis 10. Published: E[max SR] ~= 0.1132 per period, DSR ~= 0.9004."""
    sr_var = 0.5 / 250                      # annualised variance -> per-period
    sr = 2.5 / math.sqrt(250)
    assert rb.expected_max_sharpe(100, sr_var) == pytest.approx(0.1132, abs=5e-5)
    dsr = rb.deflated_sharpe(sr, 1250, 100, sr_var, skew=-3.0, kurt=10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


# The 2012 paper's appendix program (PSR class, "20120502 by MLdP"): monthly excess-return stats
# mean 1.5, std sqrt(12), skewness -0.72, kurtosis 5.78; SR* = 1/sqrt(12); n = 59.895; 95%.
# It prints PSR and MinTRL using 2, 3 and 4 moments (moments left out default to skew 0, kurt 3).
PAPER_2012 = {"sr": 1.5 / math.sqrt(12), "sr_ref": 1 / math.sqrt(12), "n": 59.895, "prob": 0.95,
              "moments": [(0.0, 3.0), (-0.72, 3.0), (-0.72, 5.78)],
              "psr": [0.8552354249591576, 0.8249331075046179, 0.8142890906895792],
              "min_trl": [143.04103134000923, 183.52926992036876, 200.45244422573558]}


@pytest.mark.parametrize("i", range(3))
def test_psr_and_min_trl_paper_example_2012(i):
    p = PAPER_2012
    skew, kurt = p["moments"][i]
    psr = rb.probabilistic_sharpe(p["sr"], p["n"], skew, kurt, sr_benchmark=p["sr_ref"])
    assert psr == pytest.approx(p["psr"][i], abs=1e-9)
    trl = rb.min_track_record_length(p["sr"], skew, kurt, sr_benchmark=p["sr_ref"],
                                     confidence=p["prob"])
    assert trl == pytest.approx(p["min_trl"][i], rel=1e-9)
    # MinTRL is the length at which PSR reaches the confidence level exactly
    assert rb.probabilistic_sharpe(p["sr"], trl, skew, kurt, p["sr_ref"]) == pytest.approx(0.95, abs=1e-9)


def test_negative_skew_and_fat_tails_need_a_longer_track_record():
    """The 2012 paper's qualitative result: for the same SR, negative skewness and positive
    excess kurtosis lower PSR and lengthen MinTRL."""
    assert PAPER_2012["psr"][0] > PAPER_2012["psr"][1] > PAPER_2012["psr"][2]
    assert rb.min_track_record_length(0.2, 0.0, 3.0) < rb.min_track_record_length(0.2, -1.0, 8.0)
    assert rb.min_track_record_length(0.1, sr_benchmark=0.1) == math.inf


# ----------------------------------------------------------------------------- plain-loop references

def ref_sharpe(x: list[float]) -> float:
    n = len(x)
    mean = sum(x) / n
    var = sum((v - mean) ** 2 for v in x) / (n - 1)
    return mean / math.sqrt(var) if var > 0 else 0.0


def ref_cscv(mat: np.ndarray, blocks: int) -> dict:
    """CSCV as the 2015 paper describes it, with loops: every IS half of S blocks, the IS winner,
    its OOS relative rank (average rank for ties), logit, PBO, OOS-vs-IS regression."""
    t, n = mat.shape
    parts = np.array_split(np.arange(t), blocks)
    logits, is_best, oos_best = [], [], []
    for half in itertools.combinations(range(blocks), blocks // 2):
        is_rows = [r for b in half for r in parts[b]]
        oos_rows = [r for b in range(blocks) if b not in half for r in parts[b]]
        is_sr = [ref_sharpe([float(mat[r, j]) for r in is_rows]) for j in range(n)]
        oos_sr = [ref_sharpe([float(mat[r, j]) for r in oos_rows]) for j in range(n)]
        star = max(range(n), key=lambda j: (is_sr[j], -j))
        below = sum(1 for v in oos_sr if v < oos_sr[star])
        ties = sum(1 for v in oos_sr if v == oos_sr[star])
        w = (below + (ties + 1) / 2) / (n + 1)
        logits.append(math.log(w / (1 - w)))
        is_best.append(is_sr[star])
        oos_best.append(oos_sr[star])
    k = len(logits)
    xm, ym = sum(is_best) / k, sum(oos_best) / k
    slope = sum((x - xm) * (y - ym) for x, y in zip(is_best, oos_best)) / sum((x - xm) ** 2 for x in is_best)
    return {"pbo": sum(1 for v in logits if v <= 0) / k, "logits": logits, "slope": slope,
            "intercept": ym - slope * xm, "prob_oos_loss": sum(1 for v in oos_best if v < 0) / k,
            "is_sharpe": is_best, "oos_sharpe": oos_best}


@pytest.mark.parametrize("jit", ["never", "always"])  # the numpy loop and the numba kernel
@pytest.mark.parametrize("seed,t,n,blocks", [(0, 97, 9, 6), (1, 120, 14, 8), (2, 64, 5, 4),
                                             (3, 150, 12, 8)])
def test_pbo_matches_plain_loop_cscv(seed, t, n, blocks, jit, monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", jit)
    rng = np.random.default_rng(seed)
    mat = rng.normal(0.0005, 0.01, size=(t, n))
    mat[:, 0] += 0.002 * (np.arange(t) < t // 2)           # something for the IS winner to chase
    ref = ref_cscv(mat, blocks)
    got = rb.pbo(mat, blocks, max_splits=None, seed=0)
    assert got["splits"] == math.comb(blocks, blocks // 2) and not got["sampled"]
    assert got["pbo"] == pytest.approx(ref["pbo"], abs=1e-12)
    np.testing.assert_allclose(got["logits"], ref["logits"], atol=1e-6)
    np.testing.assert_allclose(got["is_sharpe"], ref["is_sharpe"], atol=1e-6)
    np.testing.assert_allclose(got["oos_sharpe"], ref["oos_sharpe"], atol=1e-6)
    assert got["degradation"]["slope"] == pytest.approx(ref["slope"], abs=1e-6)
    assert got["degradation"]["intercept"] == pytest.approx(ref["intercept"], abs=1e-6)
    assert got["prob_oos_loss"] == pytest.approx(ref["prob_oos_loss"], abs=1e-12)


def test_pbo_float32_input_agrees_with_float64():
    rng = np.random.default_rng(5)
    mat = rng.normal(0, 0.01, size=(400, 30))
    a = rb.pbo(mat, 8)
    b = rb.pbo(mat.astype(np.float32), 8)
    np.testing.assert_allclose(a["is_sharpe"], b["is_sharpe"], atol=1e-6)
    assert a["pbo"] == pytest.approx(b["pbo"], abs=0.02)


@pytest.mark.parametrize("jit", ["never", "always"])
@pytest.mark.parametrize("seed", range(4))
def test_effective_trials_matches_correlation_matrix(seed, jit, monkeypatch):
    monkeypatch.setenv("QUANTLAB_JIT", jit)
    rng = np.random.default_rng(seed)
    t, n = 300, 25
    common = rng.normal(size=(t, 1))
    loading = rng.uniform(0, 1.5, size=n)
    mat = common * loading + rng.normal(size=(t, n))
    corr = np.corrcoef(mat, rowvar=False)
    rho = (corr.sum() - n) / (n * (n - 1))
    got = rb.effective_trials(mat.astype(np.float32))
    assert got["mean_correlation"] == pytest.approx(rho, abs=1e-6)
    assert got["effective_trials"] == pytest.approx(n / (1 + (n - 1) * rho), rel=1e-5)
    assert got["method"] == "average_correlation"


def test_effective_trials_limits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    same = np.repeat(x, 10, axis=1) * np.arange(1, 11)       # perfectly correlated -> 1 trial
    assert rb.effective_trials(same)["effective_trials"] == pytest.approx(1.0, abs=1e-6)
    anti = np.hstack([x, -x])                                 # negative correlation -> clipped to N
    assert rb.effective_trials(anti)["effective_trials"] == 2.0
    flat = np.hstack([rng.normal(size=(200, 3)), np.zeros((200, 2))])
    out = rb.effective_trials(flat)                           # never-trading columns still count
    assert out["trials"] == 5 and 1.0 <= out["effective_trials"] <= 5.0


def test_moments_and_sharpe_match_direct_formulas():
    rng = np.random.default_rng(3)
    x = rng.standard_t(5, size=500) * 0.01 + 0.0003
    m = rb.moments(x)
    d = x - x.mean()
    assert m["skewness"] == pytest.approx((d ** 3).mean() / (d ** 2).mean() ** 1.5, rel=1e-9)
    assert m["kurtosis"] == pytest.approx((d ** 4).mean() / (d ** 2).mean() ** 2, rel=1e-9)
    assert rb.sharpe(x, 252) == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(252), rel=1e-9)
    assert rb.sharpe(np.zeros(10)) == 0.0
    np.testing.assert_allclose(rb.sharpe(np.column_stack([x, 2 * x])), [m["sharpe"]] * 2, rtol=1e-9)


def test_constant_columns_have_zero_sharpe_despite_rounding():
    """A constant return (a column that holds cash at a fixed rate) has no variance; rounding in
    sums of squares must not turn it into a Sharpe of 1e13 and crown it the winner."""
    consts = np.column_stack([np.full(5031, v) for v in (0.0013, 0.001, 0.7, 1e-5, 0.0123456)])
    noise = np.random.default_rng(0).normal(0.0005, 0.01, size=(5031, 3))
    mat = np.hstack([consts, noise])
    assert (rb.sharpe(mat)[:5] == 0).all()
    assert (rb.moments(mat)["sharpe"][:5] == 0).all()
    assert (rb.moments(mat)["kurtosis"][:5] == 3).all()
    cscv = rb.pbo(mat, 16, max_splits=50)
    assert np.abs(cscv["is_sharpe"]).max() < 1.0
    rep = rb.robustness_report(mat.astype(np.float32), n_boot=50)
    assert rep["best_index"] >= 5 and abs(rep["sharpe"]) < 5 and strict_dumps(rep)


def test_psr_against_direct_normal_cdf():
    sr, n, g3, g4, ref = 0.08, 750, -0.4, 4.5, 0.02
    z = (sr - ref) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2)
    assert rb.probabilistic_sharpe(sr, n, g3, g4, ref) == pytest.approx(NORMAL.cdf(z), abs=1e-12)
    arr = rb.probabilistic_sharpe(np.array([sr, -sr]), n, g3, g4, ref)
    assert arr[0] == pytest.approx(NORMAL.cdf(z), abs=1e-12) and arr[1] < 0.5


def test_per_column_psr_matches_one_column_at_a_time():
    rng = np.random.default_rng(6)
    mat = np.column_stack([rng.normal(0.001, 0.01, 400), rng.standard_t(4, 400) * 0.01,
                           np.zeros(400)]).astype(np.float32)
    cols = rb.probabilistic_sharpe_columns(mat, sr_benchmark=0.01)
    for j in range(2):
        m = rb.moments(mat[:, j].astype(np.float64))
        assert cols[j] == pytest.approx(
            rb.probabilistic_sharpe(m["sharpe"], 400, m["skewness"], m["kurtosis"], 0.01), abs=1e-6)
    assert cols[2] < 0.5 and rb.json_safe(cols)[2] is not None


def test_expected_max_sharpe_grows_with_trials_and_is_the_mean_for_one_trial():
    values = [rb.expected_max_sharpe(n, 0.01) for n in (2, 10, 100, 1000, 10_000)]
    assert values == sorted(values) and values[0] > 0
    assert rb.expected_max_sharpe(1, 0.01, sr_mean=0.3) == 0.3
    # close to the Monte Carlo mean of the max of N standard normals (N = 100: ~2.5)
    rng = np.random.default_rng(0)
    mc = rng.standard_normal((4000, 100)).max(axis=1).mean()
    assert rb.expected_max_sharpe(100, 1.0) == pytest.approx(mc, abs=0.05)


# ----------------------------------------------------------------------------- bootstrap

def test_bootstrap_is_seeded_and_uses_documented_block_length():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0005, 0.01, size=1000)
    a = rb.bootstrap_sharpe_ci(x, seed=3, n_boot=300)
    b = rb.bootstrap_sharpe_ci(x, seed=3, n_boot=300)
    c = rb.bootstrap_sharpe_ci(x, seed=4, n_boot=300)
    assert a == b and a != c
    assert a["block_length"] == 10 == rb.default_block_length(1000)   # ceil(1000 ** (1/3))
    assert rb.default_block_length(5031) == 18
    assert a["low"] < a["sharpe"] < a["high"] and a["method"] == "stationary"


def test_stationary_bootstrap_indices_are_wrapped_runs_with_geometric_lengths():
    idx = rb.stationary_bootstrap_indices(500, 200, 8.0, np.random.default_rng(1))
    assert idx.shape == (200, 500) and idx.min() >= 0 and idx.max() < 500
    breaks = (np.diff(idx, axis=1) % 500) != 1
    mean_run = idx.size / (breaks.sum() + idx.shape[0])
    assert mean_run == pytest.approx(8.0, rel=0.1)


def test_bootstrap_interval_width_matches_sharpe_standard_error_on_iid_returns():
    """For i.i.d. normal returns, the Sharpe's standard error is sqrt((1 + SR^2/2) / T)."""
    rng = np.random.default_rng(11)
    t = 2000
    x = rng.normal(0.0, 0.01, size=t)
    ci = rb.bootstrap_sharpe_ci(x, seed=0, n_boot=1000, block_length=1)
    expected = 2 * 1.959964 * math.sqrt(1 / t)
    assert ci["high"] - ci["low"] == pytest.approx(expected, rel=0.15)


# ----------------------------------------------------------------------------- walk-forward, verdict

def test_walk_forward_efficiency():
    out = rb.walk_forward_efficiency([0.2, 0.1, -0.05], [0.1, 0.1, 0.0])
    assert out["per_split"] == [0.5, 1.0, None]
    assert out["efficiency"] == pytest.approx(0.2 / 0.25)
    assert rb.walk_forward_efficiency([-0.1], [0.1])["efficiency"] is None
    with pytest.raises(ValueError):
        rb.walk_forward_efficiency([0.1], [0.1, 0.2])


def test_parameter_stability():
    same = rb.parameter_stability([{"fast": 10, "slow": 50}] * 4)
    assert same["stability"] == 1.0 and same["parameters"]["fast"]["distinct"] == 1
    assert same["parameters"]["fast"]["cv"] == 0.0
    moving = rb.parameter_stability([{"fast": 5}, {"fast": 10}, {"fast": 10}, {"fast": 20}])
    assert moving["parameters"]["fast"] == {"distinct": 3, "mode": 10, "mode_share": 0.5,
                                            "cv": pytest.approx(np.std([5, 10, 10, 20]) / 11.25)}
    assert rb.parameter_stability([])["stability"] is None
    assert strict_dumps(rb.parameter_stability([{"mode": "a"}, {"mode": "b"}]))


@pytest.mark.parametrize("pbo_value,dsr,low,expected", [
    (0.6, 0.99, 0.5, "likely_overfit"),
    (0.1, 0.3, 0.5, "likely_overfit"),
    (0.1, 0.99, 0.5, "robust"),
    (0.1, 0.99, None, "robust"),
    (0.1, 0.99, -0.1, "inconclusive"),
    (0.3, 0.99, 0.5, "inconclusive"),
    (0.1, 0.9, 0.5, "inconclusive"),
    (None, 0.99, 0.5, "inconclusive"),
    (0.1, None, 0.5, "inconclusive"),
])
def test_verdict_rule(pbo_value, dsr, low, expected):
    out = rb.verdict(pbo_value, dsr, low)
    assert out["verdict"] == expected and out["reasons"]


# ----------------------------------------------------------------------------- properties

@settings(max_examples=60, deadline=None)
@given(sr=st.floats(-2, 2), n=st.integers(2, 100_000), skew=st.floats(-3, 3),
       kurt=st.floats(1, 30), bench=st.floats(-1, 1))
def test_psr_is_a_probability(sr, n, skew, kurt, bench):
    p = rb.probabilistic_sharpe(sr, n, skew, kurt, bench)
    assert math.isnan(p) or 0.0 <= p <= 1.0


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-0.5, 0.5), b=st.floats(-0.5, 0.5), n=st.integers(2, 10_000),
       kurt=st.floats(3, 10))
def test_psr_is_monotone_in_sharpe(a, b, n, kurt):
    lo, hi = sorted((a, b))
    # skew 0: the variance factor grows with SR^2, so monotonicity holds where the factor is
    # well-defined; compare on the same factor by fixing it through kurt
    assert rb.probabilistic_sharpe(lo, n, 0.0, kurt) <= rb.probabilistic_sharpe(hi, n, 0.0, kurt) + 1e-12


matrices = hnp.arrays(np.float32, st.tuples(st.integers(8, 60), st.integers(1, 8)),
                      elements=st.floats(-0.25, 0.25, width=32))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mat=matrices, blocks=st.sampled_from([2, 4]))
def test_pbo_is_a_probability(mat, blocks):
    out = rb.pbo(mat, blocks)
    if mat.shape[1] < 2:
        assert out["pbo"] is None
    else:
        assert 0.0 <= out["pbo"] <= 1.0 and 0.0 <= out["prob_oos_loss"] <= 1.0
        assert np.isfinite(out["logits"]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mat=matrices, zero_cols=st.integers(0, 2))
def test_report_is_strict_json_for_any_matrix(mat, zero_cols):
    mat = np.hstack([mat, np.zeros((mat.shape[0], zero_cols), np.float32)])
    rep = rb.robustness_report(mat, periods_per_year=252, seed=0, blocks=4, n_boot=50)
    text = strict_dumps(rep)
    assert json.loads(text) == rep
    assert rep["verdict"] in rb.VERDICTS
    for key in ("probabilistic_sharpe", "deflated_sharpe"):
        assert rep[key] is None or 0.0 <= rep[key] <= 1.0


# ----------------------------------------------------------------------------- report, inputs

def test_report_fields_and_determinism():
    rng = np.random.default_rng(8)
    mat = rng.normal(0, 0.01, size=(600, 40)).astype(np.float32)
    rep = rb.robustness_report(mat, periods_per_year=252, seed=5)
    assert rep == rb.robustness_report(mat, periods_per_year=252, seed=5)
    assert rep["trials"] == 40 and rep["bars"] == 600
    assert rep["best_index"] == int(np.argmax(rb.sharpe(mat)))
    assert rep["sharpe"] == pytest.approx(rep["sharpe_per_period"] * math.sqrt(252))
    assert rep["expected_max_sharpe"] == pytest.approx(rep["expected_max_sharpe_per_period"] * math.sqrt(252))
    assert rep["pbo"]["splits"] == rep["pbo"]["splits_total"] == 12870
    assert sum(rep["pbo"]["logit"]["histogram"]["counts"]) == 12870
    assert rep["minimum_track_record"]["confidence"] == 0.95
    chosen = rb.robustness_report(mat, best_index=3, periods_per_year=252, seed=5)
    assert chosen["best_index"] == 3 and chosen["sharpe"] == pytest.approx(rb.sharpe(mat[:, 3], 252), rel=1e-6)


def test_report_does_not_depend_on_chunk_sizes():
    from quantlab.robustness.report import report_from_source
    from quantlab.robustness.rows import matrix_source

    rng = np.random.default_rng(9)
    mat = rng.normal(0, 0.01, size=(300, 50))
    base = rb.robustness_report(mat, seed=1, n_boot=100)        # C-order (T, N): column chunks
    small = report_from_source(matrix_source(mat, chunk=7), seed=1, n_boot=100)
    rows = rb.robustness_report(np.asfortranarray(mat), seed=1, n_boot=100)  # rows as they are
    for other in (small, rows):
        assert other["pbo"]["pbo"] == base["pbo"]["pbo"]
        assert other["pbo"]["logit"]["histogram"] == base["pbo"]["logit"]["histogram"]
        assert other["pbo"]["degradation"]["slope"] == pytest.approx(base["pbo"]["degradation"]["slope"], abs=1e-9)
        assert other["effective_trials"] == pytest.approx(base["effective_trials"], rel=1e-9)
        assert other["deflated_sharpe"] == pytest.approx(base["deflated_sharpe"], abs=1e-9)


def test_subsampled_splits_are_seeded_and_capped():
    rng = np.random.default_rng(2)
    mat = rng.normal(0, 0.01, size=(320, 20))
    a = rb.pbo(mat, 16, max_splits=300, seed=1)
    assert a["splits"] == 300 and a["sampled"] and a["splits_total"] == 12870
    assert np.array_equal(a["logits"], rb.pbo(mat, 16, max_splits=300, seed=1)["logits"])
    assert not np.array_equal(a["logits"], rb.pbo(mat, 16, max_splits=300, seed=2)["logits"])
    member, total = rb.cscv_splits(16, 300, 1)
    assert total == 12870 and len({tuple(r) for r in member.astype(int).tolist()}) == 300
    assert (member.sum(axis=1) == 8).all()
    big, total = rb.cscv_splits(40, 50, 0)                    # too many to enumerate: sampled
    assert total == math.comb(40, 20) and big.shape == (50, 40)


def test_single_combination_and_short_series():
    rng = np.random.default_rng(4)
    one = rb.robustness_report(rng.normal(0.001, 0.01, size=(300, 1)), seed=0, n_boot=50)
    assert one["pbo"]["pbo"] is None and one["trials"] == 1 and one["effective_trials"] == 1.0
    assert one["deflated_sharpe"] == pytest.approx(one["probabilistic_sharpe"])
    assert one["verdict"] != "robust"
    short = rb.robustness_report(rng.normal(0, 0.01, size=(20, 5)), blocks=16, n_boot=50)
    assert short["pbo"]["pbo"] is None and strict_dumps(short)


@pytest.mark.parametrize("bad,match", [
    (np.array([[0.1, np.nan], [0.2, 0.3], [0.1, 0.1]]), "NaN or infinite"),
    (np.ones((2, 2, 2)), "1-D or a"),
    (np.array([["a"]]), "numeric"),
])
def test_bad_inputs_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        rb.robustness_report(bad)


def test_bad_parameters_raise_clear_errors():
    mat = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(ValueError, match="even"):
        rb.pbo(mat, 5)
    with pytest.raises(ValueError, match="2 bars per block"):
        rb.pbo(mat[:10], 8)
    with pytest.raises(ValueError, match="even"):
        rb.robustness_report(mat[:, :1], blocks=3)
    with pytest.raises(ValueError, match="best_index"):
        rb.robustness_report(mat, best_index=4)
    with pytest.raises(ValueError, match="periods_per_year"):
        rb.robustness_report(mat, periods_per_year=0)
    with pytest.raises(ValueError, match="confidence"):
        rb.min_track_record_length(0.1, confidence=1.0)


def test_module_imports_without_snakemake_or_scipy():
    code = ("import sys; sys.modules['snakemake'] = None; sys.modules['scipy'] = None; "
            "import quantlab.robustness as rb; "
            "assert 'quantlab.engine' not in sys.modules, 'engine imported'; print(rb.EULER_GAMMA)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0.5772156649015329"


# ----------------------------------------------------------------------------- simulations

def momentum_grid(prices_returns: np.ndarray, lookbacks) -> np.ndarray:
    """(T, len(lookbacks)) returns of sign-of-momentum strategies on one price path: a grid whose
    combinations are correlated like a real parameter sweep's."""
    logp = np.concatenate(([0.0], np.cumsum(prices_returns)))
    t = len(prices_returns)
    out = np.zeros((t, len(lookbacks)))
    for j, lb in enumerate(lookbacks):
        mom = np.full(t, 0.0)
        mom[lb:] = logp[lb:t] - logp[:t - lb]          # known at the close before bar i
        out[:, j] = np.sign(mom) * prices_returns
    return out


def test_noise_grids_have_high_pbo_and_are_never_robust():
    """Issue #12 acceptance: on pure noise (random walks, >= 100 combinations), PBO ~ 0.5 or more
    (>= 0.4 averaged over seeds) and the verdict is never ``robust``."""
    pbos, verdicts = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        walk = rng.normal(0.0, 0.01, size=1200)
        grid = momentum_grid(walk, range(2, 102))              # 100 correlated combinations
        iid = rng.normal(0.0, 0.01, size=(1200, 120))            # 120 independent ones
        for mat in (grid, iid):
            rep = rb.robustness_report(mat.astype(np.float32), seed=seed, n_boot=200, max_splits=1500)
            pbos.append(rep["pbo"]["pbo"])
            verdicts.append(rep["verdict"])
    assert np.mean(pbos) >= 0.4, pbos
    assert "robust" not in verdicts, verdicts


def test_planted_persistent_edge_has_low_pbo_and_high_dsr():
    """One region of a 10 x 10 grid (its first 10 combinations) has a persistent drift; the rest
    is noise. The IS winner comes from that region in every split: PBO low, DSR high, robust."""
    results = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        t, n = 2000, 100
        mat = rng.normal(0.0, 0.01, size=(t, n))
        mat[:, :10] += 0.0012                                    # SR ~ 1.9 a year, every year
        rep = rb.robustness_report(mat.astype(np.float32), seed=seed, n_boot=300, max_splits=1500)
        results.append(rep)
        assert rep["best_index"] < 10
        assert rep["pbo"]["pbo"] <= 0.1, rep["pbo"]
        assert rep["deflated_sharpe"] >= 0.95, rep["deflated_sharpe"]
        assert rep["verdict"] == "robust", rep["verdict_reasons"]


def test_report_on_threads_is_the_one_thread_report():
    """With threads the selected series and its bootstrap interval run beside the CSCV passes
    (robustness.report._beside): the same report, bit for bit, as one after the other."""
    import dataclasses

    from quantlab.robustness.report import report_from_stats, sweep_stats
    from quantlab.robustness.rows import matrix_source

    rng = np.random.default_rng(3)
    mat = (0.01 * rng.standard_normal((400, 24))).astype(np.float32)
    st1 = sweep_stats(matrix_source(mat))
    st2 = dataclasses.replace(st1, source=dataclasses.replace(st1.source, threads=2))
    one = report_from_stats(st1, 5, 252.0, seed=4, points=True)
    two = report_from_stats(st2, 5, 252.0, seed=4, points=True)
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert one["sharpe_ci"]["low"] is not None and one["pbo"]["splits"] > 0
