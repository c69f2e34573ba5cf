"""Notebook 06's exercises: the paired difference over seeds, and a percentile bootstrap interval."""
from __future__ import annotations

import math

import torch

from .check import Draw, Exercise, Property, Verdict, Wrong, check, tuples_differ

__all__ = ["check_paired_differences", "check_bootstrap_interval"]


def _paired(variant, base):
    d = variant - base
    return d.mean().item(), d.std().item()  # torch's std divides by n − 1 by default


def _draw_seeds(draw: Draw):
    cases = []
    for seeds in [2, 3, *[draw.int(2, 12) for _ in range(8)]]:
        dtype = draw.dtype()
        base = 0.4 + 0.05 * draw.randn(seeds, dtype=torch.float64)  # a seed effect both variants share
        variant = base + draw.uniform(-0.05, 0.05) + 0.01 * draw.randn(seeds, dtype=torch.float64)
        cases.append((variant.to(dtype), base.to(dtype)))
    return cases


def _pairs(call, args):
    """Other scores with the same per-seed differences (seed effects of the differences' own size, so that sorting
    or shuffling one side would pair other seeds) must give the same (mean, sd)."""
    variant, base = args
    d = variant - base
    x = call(variant, base)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        other = (base.double().mean() + d.double().std() * torch.randn(len(base), generator=g, dtype=torch.float64)).to(base.dtype)
        y = call(other + d, other)
        if tuples_differ(x, y, 2, 1e-3, 1e-5):
            return ("(mean, sd) depend only on the differences variant[s] − base[s], seed s with seed s: other scores "
                    "with the same differences (other seed effects, shared by both) change yours")
    return None


def _sign(call, args):
    variant, base = args
    x, y = call(variant, base), call(base, variant)
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)) and len(x) == len(y) == 2:
        if not math.isclose(float(x[0]), -float(y[0]), rel_tol=1e-4, abs_tol=1e-7):
            return "swapping variant and base must negate the mean: it is the mean of variant − base"
        if not math.isclose(float(x[1]), float(y[1]), rel_tol=1e-4, abs_tol=1e-7):
            return "swapping variant and base must leave the sd as it is: the spread of ±(variant − base) is the same"
    return None


_PAIRED = Exercise(
    name="paired differences", entry="check_paired_differences", reference=_paired, draw=_draw_seeds,
    args=("variant", "base"), returns="a tuple of two Python floats (mean, sd)",
    wrong=[
        Wrong(lambda a, b: ((a - b).mean().item(), (a.var() + b.var()).sqrt().item()),
              "pair the seeds: the sd of the differences variant − base, not the two spreads added as if independent"),
        Wrong(lambda a, b: ((a - b).mean().item(), (a - b).std(correction=0).item()),
              "a sample standard deviation divides by n − 1 (torch's default), not by n"),
        Wrong(lambda a, b: ((b - a).mean().item(), (b - a).std().item()), "the difference is variant − base, not base − variant"),
        Wrong(lambda a, b: ((a - b).mean().item(), (a - b).var().item()), "the sd is the square root of the variance"),
        Wrong(lambda a, b: ((a - b).mean().item(), a.std().item()), "the sd of the differences variant − base, not of the variant alone"),
        Wrong(lambda a, b: ((a - b).abs().mean().item(), (a - b).abs().std().item()),
              "keep the sign of each difference: a seed where the variant is worse counts against it"),
        Wrong(lambda a, b: ((a - b).mean().item(), ((a - b).std() / len(a) ** 0.5).item()),
              "the sd of the differences, not the standard error of their mean (no division by √S)"),
    ],
    properties=[Property(_pairs), Property(_sign)],
    hint='reread notebook 06, section 6 "One seed cannot separate the variants": the differences seed by seed, their mean and sample sd',
    crash_hint="variant and base are tensors (S,) of the same dtype, seed s of one paired with seed s of the other",
)


def check_paired_differences(fn, seed: int | None = None) -> Verdict:
    """Notebook 06, section 6 "One seed cannot separate the variants": ``fn(variant (S,), base (S,)) -> (mean, sd)``, Python
    floats: the mean and sample standard deviation (n − 1) of the per-seed differences variant − base, seed s of one
    paired with seed s of the other. 2 to 12 seeds, float32 and float64 tensors, left unchanged."""
    return check(_PAIRED, fn, seed)


def _interval(values, draws, level):
    means = values[draws].mean(dim=1)
    a = (1 - level) / 2
    return torch.quantile(means, a).item(), torch.quantile(means, 1 - a).item()


def _draw_boot(draw: Draw):
    cases = []
    for _ in range(8):
        n = draw.log_int(5, 300)
        b = draw.int(50, max(60, min(1000, 100_000 // n)))
        level = draw.choice([0.8, 0.9, 0.95, 0.95, 0.99, round(draw.uniform(0.5, 0.99), 3)])
        values = (draw.uniform(-1, 1) + 10 ** draw.uniform(-2, 0) * draw.randn(n, dtype=torch.float64)).to(draw.dtype())
        cases.append((values, draw.randint(0, n, (b, n)), level))
    return cases


def _quantiles_of(means, level, **kw):
    a = (1 - level) / 2
    return torch.quantile(means, a, **kw).item(), torch.quantile(means, 1 - a, **kw).item()


def _ordered(call, args):
    low, high = call(*args)[:2]
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        return "low is the lower end: the (1 − level)/2 quantile, below the (1 + level)/2 one"
    return None


def _identity_draws(call, args):
    values, draws, level = args
    same = torch.arange(len(values)).repeat(draws.shape[0], 1)  # every resample is the data itself
    got = call(values, same, level)
    m = values.double().mean().item()
    if isinstance(got, (tuple, list)) and len(got) == 2 and not all(math.isclose(float(g), m, rel_tol=1e-4, abs_tol=1e-6) for g in got):
        return (f"when every resample is the data itself (draws[b] = 0 … n − 1), every resampled mean is the mean "
                f"{m:.6g}, so the interval is ({m:.6g}, {m:.6g}): yours is ({float(got[0]):.6g}, {float(got[1]):.6g})")
    return None


def _wider_at_higher_level(call, args):
    values, draws, level = args
    lo, hi = call(values, draws, level)[:2]
    lo2, hi2 = call(values, draws, (1 + level) / 2)[:2]
    if isinstance(lo, (int, float)) and isinstance(lo2, (int, float)) and not (lo2 <= lo + 1e-12 and hi2 >= hi - 1e-12):
        return "a higher level must give a wider interval (it leaves less in each tail): yours does not"
    return None


_BOOT = Exercise(
    name="bootstrap interval", entry="check_bootstrap_interval", reference=_interval, draw=_draw_boot,
    args=("values", "draws", "level"), returns="a tuple of two Python floats (low, high)",
    wrong=[
        Wrong(lambda v, d, level: _quantiles_of(v, level), "take the quantiles of the B resampled means, not of the values themselves"),
        Wrong(lambda v, d, level: (torch.quantile(v[d].mean(1), 1 - level).item(), torch.quantile(v[d].mean(1), level).item()),
              "a two-sided interval leaves (1 − level)/2 in each tail: 2.5% and 97.5% for level 0.95"),
        Wrong(lambda v, d, level: _quantiles_of(v[d].mean(0), level), "average each resample over its n values (dim=1): one mean per resample"),
        *[Wrong(lambda v, d, level, how=how: _quantiles_of(v[d].mean(1), level, interpolation=how),
                "use torch.quantile's default, linear interpolation between the two nearest sorted means: "
                "an index into the sorted means lands on one of them")
          for how in ("lower", "higher", "nearest", "midpoint")],
        Wrong(lambda v, d, level: (lambda m: (m.sort().values[int((1 - level) / 2 * len(m))].item(),
                                              m.sort().values[min(len(m) - 1, int((1 + level) / 2 * len(m)))].item()))(v[d].mean(1)),
              "use torch.quantile's default, linear interpolation between the two nearest sorted means: "
              "an index into the sorted means lands on one of them"),
        Wrong(lambda v, d, level: (lambda m: ((m.mean() - 1.96 * m.std()).item(), (m.mean() + 1.96 * m.std()).item()))(v[d].mean(1)),
              "a percentile interval: the quantiles of the resampled means themselves, not mean ± 1.96 sd"),
    ],
    properties=[Property(_ordered), Property(_identity_draws), Property(_wider_at_higher_level)],
    hint='reread notebook 06, section 5 "Variant − base, paired, with a bootstrap interval": the mean of each resample, '
         'then two quantiles of those means',
    crash_hint="values is (n,), draws (B, n) long indices into values (values[draws] is (B, n)), level a float such as 0.95",
)


def check_bootstrap_interval(fn, seed: int | None = None) -> Verdict:
    """Notebook 06, section 5 "Variant − base, paired, with a bootstrap interval": ``fn(values (n,), draws (B, n) of indices,
    level) -> (low, high)``, Python floats: the percentile bootstrap interval of the mean, the mean of each resample
    ``values[draws[b]]``, then the (1 − level)/2 and (1 + level)/2 quantiles of those B means (``torch.quantile``, its
    linear interpolation). n from 5 to 300, B from 50 to 1000, float32 and float64 values, levels from 0.5 to 0.99;
    inputs left unchanged."""
    return check(_BOOT, fn, seed)
