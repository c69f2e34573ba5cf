"""Power from a handful of seeds (notebook 06, section 7): Student's t instead of the normal quantiles, and how
uncertain a standard deviation measured on three seeds is.

``fla.experiments.stats.detectable`` uses normal quantiles (1.96 + 0.84): right when the spreads are known.
Measured on k seeds, the seed spread has k − 1 degrees of freedom; with k = 3 its 95% interval runs from
about half to six times the measured value, and the t quantiles (4.30 + 1.06 at df = 2) replace the normal ones.
The quantiles are scipy.stats' (the t quantiles through ``fla.experiments.stats.t_quantile``).
"""
from __future__ import annotations

import math

from ..stats import t_quantile

__all__ = ["t_quantile", "chi2_quantile", "sd_interval", "detectable_t"]


def chi2_quantile(p: float, df: int) -> float:
    """The p-quantile of the chi-square distribution with ``df`` degrees of freedom (scipy.stats.chi2)."""
    from scipy.stats import chi2

    return float(chi2.ppf(p, df))


def sd_interval(sd: float, df: int, level: float = 0.95) -> tuple[float, float]:
    """Interval for a standard deviation ``sd`` measured with ``df`` degrees of freedom (normal data):
    ``sd · sqrt(df / chi²)`` at the two tails. With df = 2 it is [0.52, 6.28] × sd."""
    a = (1 - level) / 2
    return sd * math.sqrt(df / chi2_quantile(1 - a, df)), sd * math.sqrt(df / chi2_quantile(a, df))


def detectable_t(seeds: int, *, seed_sd: float, image_se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference a paired comparison over ``seeds`` seeds (and the test images measured, bootstrap
    SE ``image_se``) finds with probability ``power``, two-sided level ``alpha``, with t quantiles at
    df = seeds − 1: ``(t_{1−α/2} + t_power) · sqrt(seed_sd²/seeds + image_se²)``."""
    if seeds < 2:
        raise ValueError("a t test over seeds needs at least 2 seeds")
    df = seeds - 1
    return (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * math.sqrt(seed_sd ** 2 / seeds + image_se ** 2)
