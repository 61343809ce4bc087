"""Statistics of reports checked against reference implementations and their definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from recseek.errors import ParameterError
from recseek.evaluation import stats


def _ranx_fisher():
    try:
        from ranx.statistical_tests import fisher_randomization_test
    except ImportError:  # pragma: no cover - a dev dependency; failing, not skipping
        pytest.fail("ranx is needed for this test (pip install ranx; it belongs to the dev extra)")
    return fisher_randomization_test


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-user score pairs whose mean difference sits at z = 0.6, 1.6, 2.3 and 3.3 standard
    errors (two-sided p near 0.55, 0.11, 0.02, 0.001); a fifth of the users score the same on both."""
    rng = np.random.default_rng(7)
    out = []
    n, agree = 100, 20
    for z in (0.6, 1.6, 2.3, 3.3):
        x = rng.beta(0.6, 1.8, n)
        noise = rng.normal(0, 0.2, n - agree)
        noise += z * noise.std() / np.sqrt(n - agree) - noise.mean()
        y = x.copy()
        y[agree:] += noise
        out.append((x, y))
    return out


def test_permutation_test_agrees_with_ranx_fisher_randomisation():
    fisher = _ranx_fisher()
    seen = []
    for x, y in _pairs():
        ours = stats.permutation_test(x, y, n_permutations=1_000_000, seed=0)
        theirs, _ = fisher(x, y, n_permutations=200_000, max_p=0.05, random_seed=42)
        seen.append(ours)
        assert abs(ours - theirs) <= 0.005, (ours, theirs)
    # the pairs span the interesting range, so the agreement is not only at p = 0 or 1
    assert seen[0] > 0.4 and 0.05 < seen[1] < 0.2 and 0.005 < seen[2] < 0.05 and seen[3] < 0.005, seen


def test_permutation_test_matches_exact_enumeration():
    rng = np.random.default_rng(3)
    x = rng.random(12)
    y = x + rng.normal(0.15, 0.3, 12)
    d = y - x
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d.size)))
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    assert abs(stats.permutation_test(x, y, n_permutations=100_000, seed=1) - exact) <= 0.005


def test_permutation_test_is_valid_under_the_null_and_seeded():
    rng = np.random.default_rng(11)
    ps = []
    for _ in range(300):
        x = rng.random(40)
        y = x + rng.normal(0, 0.2, 40)  # symmetric differences: the null holds
        ps.append(stats.permutation_test(x, y, n_permutations=999, seed=int(rng.integers(1 << 30))))
    ps = np.asarray(ps)
    assert 0.02 <= np.mean(ps < 0.05) <= 0.09
    assert 0.07 <= np.mean(ps < 0.1) <= 0.14
    x, y = _pairs()[2]
    assert stats.permutation_test(x, y, seed=5) == stats.permutation_test(x, y, seed=5)
    assert stats.permutation_test(x, x) == 1.0


def test_wilcoxon_equals_scipy_exactly():
    rng = np.random.default_rng(5)
    cases = _pairs()
    small_x, small_y = rng.random(15), rng.random(15)  # exact distribution path
    cases.append((small_x, small_y))
    for x, y in cases:
        assert stats.wilcoxon_test(x, y) == sps.wilcoxon(x, y).pvalue
    assert stats.wilcoxon_test(small_x, small_x) == 1.0


def test_bootstrap_ci_agrees_with_scipy_and_covers_the_mean():
    rng = np.random.default_rng(2)
    v = rng.exponential(0.3, 500)
    low, high = stats.bootstrap_ci(v, n_resamples=20_000, seed=0)
    ref = sps.bootstrap((v,), np.mean, n_resamples=20_000, method="percentile", random_state=1).confidence_interval
    assert abs(low - ref.low) < 0.003 and abs(high - ref.high) < 0.003
    covered = 0
    for _ in range(200):
        sample = rng.exponential(0.3, 150)
        lo, hi = stats.bootstrap_ci(sample, n_resamples=2000, seed=int(rng.integers(1 << 30)))
        covered += lo <= 0.3 <= hi
    assert 0.89 <= covered / 200 <= 0.99
    assert stats.bootstrap_ci(v, seed=4) == stats.bootstrap_ci(v, seed=4)


def test_bootstrap_ci_of_columns_equals_each_column_alone():
    rng = np.random.default_rng(8)
    table = rng.random((300, 3))
    lows, highs = stats.bootstrap_ci(table, n_resamples=3000, seed=9)
    for j in range(3):
        assert (lows[j], highs[j]) == stats.bootstrap_ci(table[:, j], n_resamples=3000, seed=9)


def _holm_naive(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_matches_its_definition(p):
    p = np.asarray(p)
    np.testing.assert_allclose(stats.holm(p), _holm_naive(p), rtol=0, atol=1e-15)


def test_holm_controls_the_family_wise_error_rate():
    rng = np.random.default_rng(4)
    p = rng.random((4000, 10))  # ten true null hypotheses per family
    any_rejected = np.mean([np.any(stats.holm(row) < 0.05) for row in p])
    assert 0.03 <= any_rejected <= 0.06
    unadjusted = np.mean(np.any(p < 0.05, axis=1))
    assert unadjusted > 0.35  # what the correction prevents


def test_effect_sizes_follow_their_definitions():
    rng = np.random.default_rng(6)
    x = rng.random(60)
    y = x + rng.normal(0.1, 0.2, 60)
    d = y - x
    assert stats.cohens_dz(x, y) == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    # rank-biserial from scipy's one-sided statistic R+ (sum of ranks of positive differences)
    r_plus = sps.wilcoxon(y, x, alternative="greater").statistic
    total = d.size * (d.size + 1) / 2
    assert stats.rank_biserial(x, y) == pytest.approx((2 * r_plus - total) / total, rel=1e-12)
    assert stats.rank_biserial(y, x) == pytest.approx(-stats.rank_biserial(x, y))
    assert stats.cohens_dz(x, x) == 0.0 and stats.rank_biserial(x, x) == 0.0


def test_mean_sd_and_compare():
    assert stats.mean_sd([0.2, 0.4]) == pytest.approx((0.3, np.std([0.2, 0.4], ddof=1)))
    assert np.isnan(stats.mean_sd([0.2])[1])
    x, y = _pairs()[3]
    c = stats.compare(x, y, seed=3)
    assert c.n_users == x.size and c.difference == pytest.approx(np.mean(y - x))
    assert c.p_wilcoxon == stats.wilcoxon_test(x, y)
    assert c.p_permutation == stats.permutation_test(x, y, seed=3)


@pytest.mark.parametrize("call, message", [
    (lambda: stats.permutation_test([0.1, 0.2], [0.1]), "equal lengths"),
    (lambda: stats.bootstrap_ci([]), "non-empty"),
    (lambda: stats.bootstrap_ci([0.1, float("nan")]), "NaN"),
    (lambda: stats.bootstrap_ci([0.1, 0.2], level=1.5), "level"),
    (lambda: stats.permutation_test([0.1], [0.2], n_permutations=0), "n_permutations"),
    (lambda: stats.holm([0.5, 1.2]), "between 0 and 1"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
