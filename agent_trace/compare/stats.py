"""The two nonparametric tests `compare` uses. Pure numpy; no scipy, no IO, no global random state.

`mann_whitney_u(baseline, candidate)`
    Two-sided Mann–Whitney U test. Average ranks for ties, the tie-corrected normal approximation
    with continuity correction, and the exact null distribution when one sample has at most
    `EXACT_MAX_N` values and there are no ties (the same choice and the same numbers as
    `scipy.stats.mannwhitneyu(candidate, baseline)`, which the tests check). `u` counts the pairs in
    which the candidate is larger (ties count one half), so `u / (n_b * n_c) > 0.5` means the
    candidate tends to be slower.

`bootstrap_delta(baseline, candidate, statistic, rng, resamples)`
    The bootstrap distribution of `statistic(candidate*) - statistic(baseline*)`, each side resampled
    independently with replacement. For a percentile the resampled order statistics are drawn
    directly: the k-th smallest of n draws from the empirical distribution is
    `x[floor(n * U)]` with `U ~ Beta(k, n - k + 1)` (and the next one is `U + (1 - U) * Beta(1, n - k)`),
    which is exactly the ordinary bootstrap but costs O(resamples) instead of O(resamples * n), so
    a 40,000-request trace costs what a 40-request one does. The mean is resampled the ordinary way,
    in chunks so memory stays bounded.

`delta_interval(deltas, alpha)` turns that distribution into the percentile confidence interval at
level `1 - alpha` and a two-sided bootstrap p-value: `p < alpha` exactly when the interval
excludes zero (up to the resolution `2 / (resamples + 1)`).

Percentiles use numpy's default (linear interpolation between order statistics) everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

EXACT_MAX_N = 8  # scipy's rule: exact when either sample has at most 8 values and nothing ties
_MEAN_CHUNK_CELLS = 4_000_000  # resampled values held at once when bootstrapping a mean


@dataclass(frozen=True, slots=True)
class MannWhitney:
    u: float  # pairs (b, c) with c > b, plus half the ties
    p_value: float  # two-sided
    method: Literal["exact", "asymptotic"]
    n_baseline: int
    n_candidate: int

    @property
    def effect(self) -> float:
        """P(candidate > baseline) + P(tie) / 2: 0.5 means no shift, above means slower."""
        return self.u / (self.n_baseline * self.n_candidate)


def _as_sample(values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("a sample needs at least one value")
    if not np.isfinite(arr).all():
        raise ValueError("samples must be finite (drop null, NaN and inf first)")
    return arr


def mann_whitney_u(baseline: ArrayLike, candidate: ArrayLike) -> MannWhitney:
    """Two-sided Mann–Whitney U test of baseline against candidate.

    Examples
    --------
    >>> r = mann_whitney_u([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])
    >>> r.u, r.method, round(r.p_value, 4), r.effect
    (16.0, 'exact', 0.0286, 1.0)
    """
    b, c = _as_sample(baseline), _as_sample(candidate)
    n_b, n_c = b.size, c.size
    both = np.concatenate([c, b])
    uniq, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # Average rank of each distinct value: ranks before it, plus the middle of its own run.
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    rank_sum_c = float(avg_rank[inverse[:n_c]].sum())
    u_c = rank_sum_c - n_c * (n_c + 1) / 2.0
    u_b = n_b * n_c - u_c
    u_big = max(u_c, u_b)
    ties = bool((counts > 1).any())
    if min(n_b, n_c) <= EXACT_MAX_N and not ties:
        p = 2.0 * _exact_sf(int(round(u_big)), n_b, n_c)
        method: Literal["exact", "asymptotic"] = "exact"
    else:
        n = n_b + n_c
        tie_term = float((counts.astype(np.float64) ** 3 - counts).sum())
        var = n_b * n_c / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
        if var <= 0:  # every value equal: no evidence of any shift
            p = 1.0
        else:
            z = (u_big - n_b * n_c / 2.0 - 0.5) / math.sqrt(var)
            p = 2.0 * _normal_sf(z)
        method = "asymptotic"
    return MannWhitney(u_c, min(1.0, max(0.0, p)), method, n_b, n_c)


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) under the null for samples of sizes n1 and n2 without ties.

    The counts of arrangements by U are the coefficients of the Gaussian binomial [n1+n2 choose m]_q
    (m = the smaller size), built as the product over i of (1 - q^(N-m+i)) / (1 - q^i); after each
    step the polynomial is again a Gaussian binomial, so all coefficients stay non-negative.
    """
    m, k = min(n1, n2), max(n1, n2)
    size = m * k + 1
    poly = np.zeros(size, dtype=np.float64)
    poly[0] = 1.0
    for i in range(1, m + 1):
        shift = k + i  # multiply by (1 - q^(k+i)) ...
        if shift < size:
            poly[shift:] -= poly[:-shift].copy()
        for r in range(i):  # ... then divide by (1 - q^i): a running sum with stride i
            poly[r::i] = np.cumsum(poly[r::i])
    total = poly.sum()
    if u <= 0:
        return 1.0
    if u >= size:
        return 0.0
    return float(poly[u:].sum() / total)


Statistic = float | Literal["mean"]  # a quantile in (0, 1), or the mean


def statistic_value(values: ArrayLike, statistic: Statistic) -> float:
    """The statistic of one sample: `np.quantile` (linear) or the mean."""
    arr = _as_sample(values)
    if statistic == "mean":
        return float(arr.mean())
    return float(np.quantile(arr, float(statistic)))


def bootstrap_statistic(
    values: ArrayLike, statistic: Statistic, rng: np.random.Generator, resamples: int
) -> NDArray[np.float64]:
    """`resamples` draws of the statistic over bootstrap resamples of `values`."""
    x = np.sort(_as_sample(values))
    n = x.size
    if statistic == "mean":
        out = np.empty(resamples, dtype=np.float64)
        step = max(1, _MEAN_CHUNK_CELLS // n)
        for start in range(0, resamples, step):
            stop = min(resamples, start + step)
            idx = rng.integers(0, n, size=(stop - start, n))
            out[start:stop] = x[idx].mean(axis=1)
        return out
    q = float(statistic)
    h = (n - 1) * q
    j = int(math.floor(h))
    frac = h - j
    k = j + 1  # the 1-based rank of the lower order statistic
    u_low = rng.beta(k, n - k + 1, size=resamples)
    low = x[np.minimum((n * u_low).astype(np.int64), n - 1)]
    if frac == 0.0 or k >= n:
        return low
    u_high = u_low + (1.0 - u_low) * rng.beta(1, n - k, size=resamples)
    high = x[np.minimum((n * u_high).astype(np.int64), n - 1)]
    return low + frac * (high - low)


def bootstrap_delta(
    baseline: ArrayLike, candidate: ArrayLike, statistic: Statistic, rng: np.random.Generator, resamples: int
) -> NDArray[np.float64]:
    """Bootstrap distribution of statistic(candidate) - statistic(baseline)."""
    b = bootstrap_statistic(baseline, statistic, rng, resamples)
    c = bootstrap_statistic(candidate, statistic, rng, resamples)
    return c - b


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float
    p_value: float  # two-sided bootstrap p-value of "the delta is zero"


def delta_interval(deltas: NDArray[np.float64], alpha: float) -> Interval:
    """Percentile interval at level 1 - alpha and the matching two-sided p-value.

    Resampled deltas exactly at zero count against significance on both sides, so a statistic
    that cannot move (a percentile sitting on a run of equal values) is never called significant.
    """
    b = deltas.size
    low, high = np.quantile(deltas, [alpha / 2.0, 1.0 - alpha / 2.0])
    at_or_below = int((deltas <= 0).sum())
    at_or_above = int((deltas >= 0).sum())
    p = min(1.0, 2.0 * (min(at_or_below, at_or_above) + 1) / (b + 1))
    return Interval(float(low), float(high), p)
