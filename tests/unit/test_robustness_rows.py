"""The fast paths of the robustness statistics: numba kernels vs numpy, prefix-sum bootstrap,
returns written in place (issue #12, cost)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab import robustness as rb
from quantlab.robustness import bootstrap, cscv, rows


def _both_modes(monkeypatch, fn):
    monkeypatch.setenv("QUANTLAB_JIT", "always")
    fast = fn()
    monkeypatch.setenv("QUANTLAB_JIT", "never")
    slow = fn()
    return fast, slow


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), t=st.integers(40, 300), n=st.integers(2, 40))
def test_numba_and_numpy_passes_agree(monkeypatch, seed, t, n):
    rng = np.random.default_rng(seed)
    mat = rng.normal(0.0005, 0.01, size=(t, n)).astype(np.float32)
    mat[:, 0] = 0.0                                   # a flat (never traded) combination
    starts = cscv.block_starts(t, 8)
    src = rows.matrix_source(mat, chunk=7)
    (fs, fq, fm), (ns, nq, nm) = _both_modes(monkeypatch, lambda: rows.row_stats(src, starts))
    np.testing.assert_allclose(fs, ns, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(fq, nq, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(fm, nm, rtol=1e-8, atol=1e-18)
    w = rng.normal(size=n)
    fz, nz = _both_modes(monkeypatch, lambda: rows.weighted_row_sum(src, w))
    np.testing.assert_allclose(fz, nz, rtol=1e-9, atol=1e-12)
    fr, nr = _both_modes(monkeypatch, lambda: rb.robustness_report(mat, seed=3, n_boot=50, blocks=8))
    assert fr["pbo"]["pbo"] == pytest.approx(nr["pbo"]["pbo"], abs=1e-12)
    assert fr["pbo"]["logit"]["mean"] == pytest.approx(nr["pbo"]["logit"]["mean"], abs=1e-9)
    assert fr["deflated_sharpe"] == pytest.approx(nr["deflated_sharpe"], abs=1e-9)
    assert fr["effective_trials"] == pytest.approx(nr["effective_trials"], rel=1e-9)


def test_threaded_passes_give_the_numbers_of_one_thread(monkeypatch):
    """The merge runs the numba passes on several threads (``RowSource.threads``): each thread
    owns disjoint outputs and sums in the same order, so every number is bit-identical."""
    import dataclasses

    monkeypatch.setenv("QUANTLAB_JIT", "always")
    rng = np.random.default_rng(11)
    mat = rng.normal(0.0003, 0.01, size=(700, 300)).astype(np.float32)
    mat[:, 5] = 0.0
    one = rows.matrix_source(mat)
    three = dataclasses.replace(one, threads=3)
    starts = cscv.block_starts(700, 16)
    for a, b in zip(rows.row_stats(one, starts), rows.row_stats(three, starts)):
        np.testing.assert_array_equal(a, b)
    w = rng.normal(size=300)
    np.testing.assert_array_equal(rows.weighted_row_sum(one, w), rows.weighted_row_sum(three, w))
    b_sum, b_sq, _ = rows.row_stats(one, starts)
    counts = np.diff(np.append(starts, 700))
    p1, p3 = (cscv.pbo_from_blocks(b_sum, b_sq, counts, max_splits=None, seed=1, threads=k) for k in (1, 3))
    for key in ("logits", "is_sharpe", "oos_sharpe"):
        np.testing.assert_array_equal(p1[key], p3[key])
    from quantlab.robustness.report import report_from_source

    assert report_from_source(one, seed=2, n_boot=50) == report_from_source(three, seed=2, n_boot=50)


def test_fused_z_sum_is_pass_two_with_the_same_weights(monkeypatch):
    """Pass 2 (sum of series / sd) fused into pass 1: the kernel's weights are exactly those
    ``effective_trials_from_sums`` derives from the block sums (one chunk: the same sum, bit for
    bit), and over several chunks the sum agrees to rounding; flat series weigh nothing."""
    from quantlab.robustness.stats import effective_trials_from_sums

    monkeypatch.setenv("QUANTLAB_JIT", "always")
    rng = np.random.default_rng(12)
    for n, exact in ((rows.Z_CHUNK, True), (3 * rows.Z_CHUNK + 17, False)):
        mat = rng.normal(0.0002, 0.01, size=(300, n)).astype(np.float32)
        mat[:, 3] = 0.0
        mat[:, 4] = 0.001                              # constant up to rounding: no weight
        src = rows.matrix_source(mat)
        starts = cscv.block_starts(300, 16)
        b_sum, b_sq, mom, z = rows.row_stats_z(src, starts)
        total, total_sq = b_sum.sum(axis=0), b_sq.sum(axis=0)
        mean = total / 300
        var = (total_sq - 300 * mean * mean) / 299
        live = var > total_sq * (1e-12 / 300)
        assert not live[3] and not live[4]
        two = rows.weighted_row_sum(src, np.where(live, 1.0 / np.sqrt(np.where(live, var, 1.0)), 0.0))
        if exact:
            np.testing.assert_array_equal(z, two)
        np.testing.assert_allclose(z, two, rtol=1e-12, atol=1e-12)
        fused = effective_trials_from_sums(src, total, total_sq, z)
        alone = effective_trials_from_sums(src, total, total_sq)
        for key in ("effective_trials", "mean_correlation"):
            assert fused[key] == pytest.approx(alone[key], rel=1e-9)
    monkeypatch.setenv("QUANTLAB_JIT", "never")
    assert rows.row_stats_z(src, starts)[3] is None    # numpy: pass 2 runs on its own


def test_row_stats_match_the_definitions():
    rng = np.random.default_rng(4)
    mat = rng.standard_t(4, size=(500, 6)) * 0.01
    b_sum, b_sq, mom = rows.row_stats(rows.matrix_source(mat), [0, 100, 250])
    np.testing.assert_allclose(b_sum[1], mat[100:250].sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(b_sq[2], (mat[250:] ** 2).sum(axis=0), rtol=1e-12)
    dev = mat - mat.mean(axis=0)
    np.testing.assert_allclose(mom[3], (dev ** 4).mean(axis=0), rtol=1e-10)
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad = mat.copy()
        bad[3, 2] = np.inf
        rows.row_stats(rows.matrix_source(bad), [0])


def test_prefix_sum_bootstrap_sums_are_those_of_the_resampled_bars():
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, 97)
    record: list = []
    total, total_sq = bootstrap.resample_sums(r, 20, 6.0, np.random.default_rng(1), blocks_out=record)
    chains: dict[int, list[int]] = {i: [] for i in range(20)}
    for ids, starts, lengths in record:
        for i, s, n in zip(ids.tolist(), starts.tolist(), lengths.tolist()):
            chains[i].extend((s + j) % len(r) for j in range(n))   # consecutive bars, wrapping
    for i, idx in chains.items():
        assert len(idx) == len(r)
        assert total[i] == pytest.approx(r[idx].sum(), abs=1e-13)
        assert total_sq[i] == pytest.approx((r[idx] ** 2).sum(), abs=1e-13)


def test_prefix_sum_bootstrap_spreads_like_the_index_bootstrap():
    rng = np.random.default_rng(6)
    noise = rng.normal(0.0005, 0.01, 2000)
    r = np.empty_like(noise)                  # AR(1), phi 0.6: the spread depends on the blocks
    r[0] = noise[0]
    for i in range(1, len(r)):
        r[i] = 0.6 * r[i - 1] + noise[i]
    fast = bootstrap.resample_sums(r, 4000, 12.0, np.random.default_rng(2))
    fast_sr = fast[0] / len(r) / np.sqrt((fast[1] - fast[0] ** 2 / len(r)) / (len(r) - 1))
    idx = rb.stationary_bootstrap_indices(len(r), 4000, 12.0, np.random.default_rng(3))
    slow_sr = r[idx].mean(axis=1) / r[idx].std(axis=1, ddof=1)
    assert fast_sr.std() == pytest.approx(slow_sr.std(), rel=0.08)
    assert fast_sr.mean() == pytest.approx(slow_sr.mean(), abs=0.1 * slow_sr.std())


def test_grid_engine_writes_returns_into_a_given_buffer(tmp_path):
    from quantlab.engine import EngineConfig
    from quantlab.engine.sweep import evaluate_grid
    from quantlab.errors import ConfigError

    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    combos = [{"fast": f, "slow": 30} for f in (3, 5, 8)]
    args = (close, close * 1.01, close * 0.99, close, "sma_crossover", combos, EngineConfig())
    metrics, ref = evaluate_grid(*args, start=30, periods_per_year=252.0, keep_returns=True)
    mm = np.lib.format.open_memmap(tmp_path / "r.npy", mode="w+", dtype=np.float32, shape=(3, 270))
    metrics2, out = evaluate_grid(*args, start=30, periods_per_year=252.0, returns_out=mm)
    mm.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), ref)
    assert metrics2["sharpe_simple"].tolist() == metrics["sharpe_simple"].tolist()
    with pytest.raises(ConfigError, match="returns_out"):
        evaluate_grid(*args, start=30, periods_per_year=252.0, returns_out=np.zeros((3, 5), np.float32))
