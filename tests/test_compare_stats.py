"""The statistics under `compare`: Mann–Whitney U against scipy (a test-only cross-check; scipy is
not a dependency), the order-statistic bootstrap against the brute-force one, and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent_trace.compare.stats import (
    bootstrap_delta,
    bootstrap_statistic,
    delta_interval,
    mann_whitney_u,
    statistic_value,
)


def _samples(rng: np.random.Generator, kind: str, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "ties":  # integer-millisecond latencies tie a lot
        return rng.integers(0, 6, n1).astype(float), rng.integers(1, 7, n2).astype(float)
    return rng.lognormal(3.0, 0.5, n1), rng.lognormal(3.2, 0.5, n2)


@pytest.mark.parametrize("kind", ["continuous", "ties"])
def test_mann_whitney_matches_scipy(kind: str) -> None:
    import scipy.stats as scipy_stats  # a test dependency: never skipped
    rng = np.random.default_rng(11)
    for _ in range(150):
        n1, n2 = (int(x) for x in rng.integers(1, 40, 2))
        b, c = _samples(rng, kind, n1, n2)
        ours = mann_whitney_u(b, c)
        ref = scipy_stats.mannwhitneyu(c, b, alternative="two-sided", method="auto")
        assert ours.u == pytest.approx(ref.statistic, abs=1e-9)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-14), (n1, n2, kind)


def test_mann_whitney_exact_for_small_samples_without_ties() -> None:
    # Complete separation of 4 and 4: 2 arrangements of 70 are this extreme, two-sided.
    r = mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8])
    assert r.method == "exact"
    assert r.p_value == pytest.approx(2 / math.comb(8, 4))
    assert r.effect == 1.0
    assert mann_whitney_u([5, 6, 7, 8], [1, 2, 3, 4]).effect == 0.0


def test_mann_whitney_uses_the_normal_approximation_with_ties_or_large_samples() -> None:
    assert mann_whitney_u([1, 1, 2], [2, 3, 3]).method == "asymptotic"
    rng = np.random.default_rng(0)
    assert mann_whitney_u(rng.normal(size=20), rng.normal(size=20)).method == "asymptotic"


def test_mann_whitney_all_equal_is_no_evidence() -> None:
    r = mann_whitney_u([3.0] * 12, [3.0] * 15)
    assert r.p_value == 1.0
    assert r.effect == 0.5


def test_mann_whitney_rejects_empty_and_non_finite() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        mann_whitney_u([1.0, float("nan")], [1.0])


@pytest.mark.parametrize("statistic", [0.5, 0.9, 0.99, 0.25, "mean"])
def test_order_statistic_bootstrap_matches_brute_force(statistic: float | str) -> None:
    """Drawing order statistics through Beta variates is the ordinary bootstrap, only cheaper."""
    x = np.random.default_rng(5).lognormal(3.0, 0.6, 150)
    fast = bootstrap_statistic(x, statistic, np.random.default_rng(1), 20_000)
    idx = np.random.default_rng(2).integers(0, x.size, (20_000, x.size))
    slow = x[idx].mean(axis=1) if statistic == "mean" else np.quantile(x[idx], statistic, axis=1)
    probs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    spread = np.quantile(slow, 0.99) - np.quantile(slow, 0.01)
    np.testing.assert_allclose(np.quantile(fast, probs), np.quantile(slow, probs), atol=0.03 * spread)
    # Every resampled percentile is a value (or an interpolation between values) of the sample.
    if statistic != "mean":
        assert fast.min() >= x.min() and fast.max() <= x.max()


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    x, y = np.arange(1.0, 41.0), np.arange(3.0, 43.0)
    a = bootstrap_delta(x, y, 0.9, np.random.default_rng(7), 500)
    b = bootstrap_delta(x, y, 0.9, np.random.default_rng(7), 500)
    np.testing.assert_array_equal(a, b)


def test_delta_interval_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.5, 1.0, 2.0, 4.0):
        deltas = rng.normal(shift, 1.0, 4000)
        iv = delta_interval(deltas, 0.01)
        excludes_zero = iv.low > 0 or iv.high < 0
        assert excludes_zero == (iv.p_value < 0.01), shift


def test_delta_interval_counts_exact_zeros_against_significance() -> None:
    iv = delta_interval(np.zeros(1000), 0.01)
    assert iv.p_value == 1.0 and iv.low == iv.high == 0.0


def test_statistic_value_is_numpy_linear_quantile() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    assert statistic_value(x, 0.5) == 2.5
    assert statistic_value(x, 0.9) == pytest.approx(3.7)
    assert statistic_value(x, "mean") == 2.5
