"""Exact binomial acceptance regions: how far an observed weighted split may stray from its
weights by chance (the split tests of tests/e2e)."""

from __future__ import annotations

import math


def binom_logpmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_acceptance(n: int, p: float, false_failure: float) -> tuple[int, int, float]:
    """The widest-tail-safe interval ``[lo, hi]`` for X ~ Binomial(n, p) with
    P(X < lo) ≤ false_failure/2 and P(X > hi) ≤ false_failure/2 (exact tails, no normal
    approximation), and the exact probability that X falls outside it."""
    pmf = [math.exp(binom_logpmf(k, n, p)) for k in range(n + 1)]
    half = false_failure / 2
    lo, below = 0, 0.0
    while below + pmf[lo] <= half:
        below += pmf[lo]
        lo += 1
    hi, above = n, 0.0
    while above + pmf[hi] <= half:
        above += pmf[hi]
        hi -= 1
    return lo, hi, below + above
