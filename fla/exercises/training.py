"""Notebook 06's exercises: the paired difference over seeds, and a percentile bootstrap interval."""
from __future__ import annotations

import torch

from .check import Verdict, Wrong, check

__all__ = ["check_paired_differences", "check_bootstrap_interval"]


def _paired(variant, base):
    d = variant - base
    return d.mean().item(), d.std().item()  # torch's std divides by n − 1 by default


def check_paired_differences(fn) -> Verdict:
    """Notebook 06, section 6: ``fn(variant (S,), base (S,)) -> (mean, sd)`` of the per-seed differences
    variant − base, seed s of one paired with seed s of the other; sd the sample standard deviation (n − 1)."""
    g = torch.Generator().manual_seed(6)
    cases = []
    for seeds in (3, 5, 2, 8):
        base = 0.4 + 0.05 * torch.randn(seeds, generator=g, dtype=torch.float64)
        cases.append((base + 0.02 + 0.03 * torch.randn(seeds, generator=g, dtype=torch.float64), base))
    return check("paired differences", fn, _paired, cases, wrong=[
        Wrong(lambda a, b: ((a - b).mean().item(), (a.var() + b.var()).sqrt().item()),
              "pair the seeds: the sd of the differences a − b, not the two spreads added as if independent"),
        Wrong(lambda a, b: ((a - b).mean().item(), (a - b).std(correction=0).item()),
              "a sample standard deviation divides by n − 1 (torch's default), not by n"),
        Wrong(lambda a, b: ((b - a).mean().item(), (b - a).std().item()), "the difference is variant − base, not base − variant"),
    ], hint="d = variant − base, seed by seed; return d.mean() and d.std() as floats")


def _interval(values, draws, level):
    means = values[draws].mean(dim=1)
    a = (1 - level) / 2
    return torch.quantile(means, a).item(), torch.quantile(means, 1 - a).item()


def check_bootstrap_interval(fn) -> Verdict:
    """Notebook 06, section 5: ``fn(values (n,), draws (B, n) of indices, level) -> (low, high)``, the percentile
    bootstrap interval of the mean: the mean of each resample ``values[draws[b]]``, then the (1 − level)/2 and
    (1 + level)/2 quantiles (``torch.quantile``) of those B means."""
    g = torch.Generator().manual_seed(60)
    cases = []
    for n, b, level in ((100, 500, 0.95), (37, 200, 0.9), (250, 1000, 0.95)):
        values = 0.02 + 0.2 * torch.randn(n, generator=g, dtype=torch.float64)
        cases.append((values, torch.randint(0, n, (b, n), generator=g), level))
    return check("bootstrap interval", fn, _interval, cases, wrong=[
        Wrong(lambda v, d, level: (torch.quantile(v, (1 - level) / 2).item(), torch.quantile(v, (1 + level) / 2).item()),
              "take the quantiles of the B resampled means, not of the values themselves"),
        Wrong(lambda v, d, level: (torch.quantile(v[d].mean(1), 1 - level).item(), torch.quantile(v[d].mean(1), level).item()),
              "a two-sided interval leaves (1 − level)/2 in each tail: 2.5% and 97.5% for level 0.95"),
        Wrong(lambda v, d, level: (torch.quantile(v[d].mean(0), (1 - level) / 2).item(),
                                   torch.quantile(v[d].mean(0), (1 + level) / 2).item()),
              "average each resample over its n images (dim=1): one mean per resample"),
    ], hint="means = values[draws].mean(dim=1); low, high = the (1 − level)/2 and (1 + level)/2 quantiles of means")
