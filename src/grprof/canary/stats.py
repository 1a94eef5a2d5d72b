"""The two-sample statistics of `grprof canary`: the Mann-Whitney U test and the
Hodges-Lehmann shift estimate with its distribution-free confidence interval.

Definitions (the standard ones):

- Mann-Whitney U test (Mann & Whitney 1947): `scipy.stats.mannwhitneyu`, one-sided in the
  direction that matters, exact for small samples without ties, else the normal
  approximation with the tie correction (scipy's `method="auto"`).
- Hodges-Lehmann estimate of the shift Δ (canary - baseline) (Hodges & Lehmann 1963,
  "Estimates of location based on rank tests", Ann. Math. Statist. 34(2) 598-611): the median
  of the m·n pairwise differences `canary[i] - baseline[j]`.
- Its confidence interval (Lehmann 1975, *Nonparametrics*, §2.6; Hollander, Wolfe & Chicken
  2014, *Nonparametric Statistical Methods*, 3rd ed., §4.3; Bauer 1972, JASA 67(339) 687-690):
  with the differences sorted, D(1) <= ... <= D(mn), the interval is [D(k), D(mn + 1 - k)]
  where k is the α/2 quantile of the null distribution of U (the smallest k with
  P(U <= k) >= α/2, at least 1); its coverage is 1 - 2·P(U <= k - 1) >= 1 - α. This is the
  interval R's `wilcox.test(x, y, conf.int = TRUE)` gives (`qwilcox(alpha/2, m, n)`).

The null distribution of U is exact (the coefficients of the Gaussian binomial coefficient
[m+n choose m]_q, computed in floating point) while m·n <= EXACT_MAX_MN, the normal
approximation beyond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps  # type: ignore[import-untyped,unused-ignore]

EXACT_MAX_MN = 40_000
Alternative = Literal["greater", "less", "two-sided"]


@dataclass(frozen=True, slots=True)
class Shift:
    """Canary against baseline: how much larger the canary's values are, and how sure that is."""

    estimate: float
    """Hodges-Lehmann: the median of the pairwise differences canary - baseline."""
    low: float
    high: float
    """The confidence interval of the shift."""
    confidence: float
    """The interval's actual coverage (>= the level asked for; U is discrete)."""
    p_greater: float
    """Mann-Whitney, H1: the canary's values tend to be larger."""
    p_less: float
    """Mann-Whitney, H1: the canary's values tend to be smaller."""
    n_baseline: int
    n_canary: int


def u_null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m·n under H0 (no ties), U the Mann-Whitney statistic of samples
    of sizes m and n. Exact: the number of arrangements with U = u is the coefficient of q^u
    in the Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)."""
    if m > n:
        m, n = n, m
    size = m * n + 1
    poly = np.zeros(size + n + m + 1, dtype=np.float64)
    poly[0] = 1.0
    for i in range(1, m + 1):
        # multiply by (1 - q^(n+i)), then divide by (1 - q^i) (a running sum with stride i)
        shifted = np.zeros_like(poly)
        shifted[n + i :] = poly[: len(poly) - (n + i)]
        poly = poly - shifted
        for r in range(i):
            poly[r::i] = np.cumsum(poly[r::i])
        # normalize now and then: the coefficients grow like a binomial coefficient
        total = poly[:size].sum()
        if total > 1e250:
            poly /= total
    counts = np.clip(poly[:size], 0.0, None)
    return np.asarray(np.cumsum(counts) / counts.sum())


def u_quantile(m: int, n: int, p: float) -> int:
    """The smallest u with P(U <= u) >= p (R's `qwilcox(p, m, n)`)."""
    if m * n <= EXACT_MAX_MN:
        cdf = u_null_cdf(m, n)
        return int(np.searchsorted(cdf, p - 1e-12, side="left"))
    mean = m * n / 2
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    # continuity correction: P(U <= u) ~ Phi((u + 0.5 - mean) / sd)
    u = math.ceil(mean + sd * float(sps.norm.ppf(p)) - 0.5)
    return max(0, min(m * n, u))


def u_cdf(m: int, n: int, u: int) -> float:
    """P(U <= u) under H0."""
    if u < 0:
        return 0.0
    if u >= m * n:
        return 1.0
    if m * n <= EXACT_MAX_MN:
        return float(u_null_cdf(m, n)[u])
    mean = m * n / 2
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    return float(sps.norm.cdf((u + 0.5 - mean) / sd))


def hodges_lehmann(
    canary: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """(estimate, low, high, achieved confidence) of the shift canary - baseline."""
    x = np.asarray(canary, dtype=np.float64)
    y = np.asarray(baseline, dtype=np.float64)
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("hodges_lehmann needs two non-empty samples")
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    estimate = float(np.median(diffs))
    alpha = 1.0 - confidence
    k = max(1, u_quantile(m, n, alpha / 2))
    k = min(k, (m * n + 1) // 2)
    low, high = float(diffs[k - 1]), float(diffs[m * n - k])
    achieved = 1.0 - 2.0 * u_cdf(m, n, k - 1)
    return estimate, low, high, achieved


def compare(canary: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> Shift:
    """The Hodges-Lehmann shift with its interval, and both one-sided Mann-Whitney p-values."""
    estimate, low, high, achieved = hodges_lehmann(canary, baseline, confidence)
    if len(set(canary) | set(baseline)) == 1:
        p_greater = p_less = 1.0  # every value equal: nothing to test (scipy would divide by 0)
    else:
        p_greater = float(sps.mannwhitneyu(canary, baseline, alternative="greater").pvalue)
        p_less = float(sps.mannwhitneyu(canary, baseline, alternative="less").pvalue)
    return Shift(estimate, low, high, achieved, p_greater, p_less, len(baseline), len(canary))
