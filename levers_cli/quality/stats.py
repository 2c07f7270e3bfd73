"""Intervals and sample sizes of the quality loop.

- :func:`wilson`: the Wilson score interval of a proportion (Wilson 1927; recommended for
  small n by Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion"),
  computed by ``scipy.stats.binomtest(k, n).proportion_ci(confidence_level, method="wilson")``.
- :func:`sample_size`: calls to grade per stratum so a proportion's interval is at most
  ``margin`` wide on each side at ``confidence``: Cochran's n₀ = z² p(1−p) / e² at the
  worst case p = 0.5, with the finite-population correction n = n₀ / (1 + (n₀ − 1) / N)
  (Cochran 1977, *Sampling Techniques*, eq. 4.2 and 4.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """``acceptable`` of ``n`` graded pairs, their share ``rate`` and its Wilson interval
    [``low``, ``high``] at ``confidence`` (``rate``/``low``/``high`` ``None`` when n is 0)."""

    n: int
    acceptable: int
    rate: float | None
    low: float | None
    high: float | None
    confidence: float

    def as_dict(self) -> dict[str, float | int | None]:
        """``{n, acceptable, rate, low, high}`` (shares rounded to 4 places)."""
        return {
            "n": self.n,
            "acceptable": self.acceptable,
            "rate": self.rate,
            "low": self.low,
            "high": self.high,
        }


def wilson(acceptable: int, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval of ``acceptable / n`` at ``confidence`` (two-sided).

    Args:
        acceptable: successes, 0 ≤ acceptable ≤ n.
        n: trials (0 gives an interval of ``None``s).
        confidence: in (0, 1).

    Raises:
        ValueError: ``acceptable`` outside [0, n] or ``confidence`` outside (0, 1).
    """
    if n <= 0:
        return Interval(0, 0, None, None, None, confidence)
    if not 0 <= acceptable <= n:
        raise ValueError(f"acceptable must lie in [0, {n}], got {acceptable}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    from scipy.stats import binomtest

    ci = binomtest(int(acceptable), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return Interval(
        n,
        int(acceptable),
        round(acceptable / n, 4),
        round(float(ci.low), 4),
        round(float(ci.high), 4),
        confidence,
    )


def sample_size(confidence: float, margin: float, population: int | None = None) -> int:
    """Pairs to grade for a proportion within ± ``margin`` at ``confidence`` (worst case
    p = 0.5), corrected for a finite ``population`` (see the module docstring).

    Returns:
        An int ≥ 1, at most ``population`` when given (0 for an empty population).

    Raises:
        ValueError: ``confidence`` outside (0, 1) or ``margin`` outside (0, 1).
    """
    if not 0 < confidence < 1 or not 0 < margin < 1:
        raise ValueError("confidence and margin must lie in (0, 1)")
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    n0 = z * z * 0.25 / (margin * margin)
    if population is None:
        return math.ceil(n0)
    if population <= 0:
        return 0
    return min(population, math.ceil(n0 / (1 + (n0 - 1) / population)))


def min_pairs(bar: float, confidence: float, limit: int = 100_000) -> int | None:
    """The fewest pairs, all acceptable, whose Wilson lower bound at ``confidence`` reaches
    ``bar``: the smallest n with n / (n + z²) ≥ bar (the lower bound at k = n), i.e.
    n ≥ z² · bar / (1 − bar); ``None`` when ``bar`` ≥ 1 (never reached)."""
    if bar >= 1:
        return None
    if bar <= 0:
        return 1
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return min(limit, max(1, math.ceil(z * z * bar / (1 - bar) - 1e-9)))
