"""Notebook 04's exercises: the paired difference over seeds with its t-interval, the exact sign-flip p-value,
and the attention mass a query puts on its answer."""
from __future__ import annotations

import math
import statistics

import torch

from .. import functional as Fn
from ..experiments.stats import paired, sign_flip_p
from .check import Verdict, Wrong, check

__all__ = ["check_paired_interval", "check_sign_flip_p", "check_answer_mass"]


def _seeds(seed: int, n: int, gain: float, spread: float):
    """Two variants' scores on n shared seeds: a common seed effect, a gain, and a little noise of their own."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(n, generator=g) * spread
    a = (0.6 + gain + common + 0.01 * torch.randn(n, generator=g)).tolist()
    b = (0.6 + common + 0.01 * torch.randn(n, generator=g)).tolist()
    return a, b


def _interval(a, b):
    r = paired(a, b)
    return r["diff"], r["low"], r["high"]


def check_paired_interval(fn) -> Verdict:
    """Notebook 04, Appendix "Paired by seed": ``fn(a, b) -> (mean, low, high)``, the mean of the per-seed
    differences a[s] − b[s] and its 95 % t-interval mean ± t_{0.975, n−1} · sd / √n (``fla.experiments.stats.t_quantile``)."""
    cases = [_seeds(0, 5, 0.02, 0.1), _seeds(1, 6, -0.05, 0.2), _seeds(2, 3, 0.0, 0.05)]

    def unpaired(a, b):  # the two means' standard error, as if the seeds were not shared
        d = statistics.mean(a) - statistics.mean(b)
        se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
        from ..experiments.stats import t_quantile
        half = t_quantile(0.975, len(a) - 1) * se
        return d, d - half, d + half

    def normal(a, b):  # 1.96 instead of Student's t with n − 1 degrees of freedom
        d = [x - y for x, y in zip(a, b)]
        m, half = statistics.mean(d), 1.96 * statistics.stdev(d) / math.sqrt(len(d))
        return m, m - half, m + half

    def sd_not_se(a, b):
        from ..experiments.stats import t_quantile
        d = [x - y for x, y in zip(a, b)]
        m, half = statistics.mean(d), t_quantile(0.975, len(d) - 1) * statistics.stdev(d)
        return m, m - half, m + half

    return check("paired interval", fn, _interval, cases, wrong=[
        Wrong(unpaired, "pair the seeds: take the differences a[s] − b[s] first, then their spread (the shared seed effect cancels)"),
        Wrong(normal, "with n seeds use Student's t with n − 1 degrees of freedom (t_quantile(0.975, n - 1)), not 1.96"),
        Wrong(sd_not_se, "the interval is for the mean: divide the differences' standard deviation by √n"),
    ], hint="d = [x - y for x, y in zip(a, b)]; m = mean(d); half = t_quantile(0.975, n - 1) * stdev(d) / sqrt(n)")


def check_sign_flip_p(fn) -> Verdict:
    """Notebook 04, Appendix "Paired by seed": ``fn(diffs) -> p``, the exact two-sided sign-flip p-value: the
    share of the 2^n sign patterns of the paired differences whose |sum| is at least the observed |sum|."""
    cases = [([0.02, 0.03, 0.01, 0.04, 0.02],), ([0.05, -0.01, 0.02, 0.03, -0.02, 0.01],), ([0.1, -0.1, 0.05],),
             ([0.0, 0.0, 0.0, 0.0],)]

    def one_sided(diffs):
        n, obs = len(diffs), sum(diffs)
        return sum(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs)) >= obs - 1e-12 for m in range(2 ** n)) / 2 ** n

    def strict(diffs):
        n, obs = len(diffs), abs(sum(diffs))
        return sum(abs(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs))) > obs + 1e-12 for m in range(2 ** n)) / 2 ** n

    return check("sign-flip p", fn, sign_flip_p, cases, wrong=[
        Wrong(one_sided, "two-sided: compare |sum| of each pattern with |observed sum| (a large negative sum counts too)"),
        Wrong(strict, "the observed pattern itself counts: use >= (so the smallest p with n seeds is 2 / 2^n, not 0)"),
    ], hint="count masks m in range(2**n) with abs(sum(±d_i)) >= abs(sum(d)) - 1e-12, divide by 2**n")


def _rows(seed: int, heads: int, queries: int, n: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(heads, queries, n, generator=g) ** 4
    return w / w.sum(dim=-1, keepdim=True), torch.randint(0, n, (queries,), generator=g)


def check_answer_mass(fn) -> Verdict:
    """Notebook 04, section 3 (the needle task): ``fn(weights (heads, Q, N) row-stochastic, answer (Q,) long) ->
    (heads,)``, per head the mean over the Q queries of the weight query i puts on its answer cell answer[i]."""
    cases = [_rows(0, 1, 4, 16), _rows(1, 2, 8, 64), _rows(2, 4, 3, 256)]
    return check("answer mass", fn, Fn.answer_mass, cases, wrong=[
        Wrong(lambda w, a: w[..., a].mean(dim=(-1, -2)), "each query has its own answer: weights[h, i, answer[i]], not every query's weight on every answer"),
        Wrong(lambda w, a: w.gather(-1, a[None, :, None].expand(w.shape[0], -1, 1))[..., 0].sum(dim=-1),
              "the mass is a mean over the queries, not their sum"),
        Wrong(lambda w, a: w.max(dim=-1).values.mean(dim=-1), "the weight on the answer cell, not the row's largest weight (that may sit elsewhere)"),
    ], hint="weights.gather(-1, answer[None, :, None].expand(heads, -1, 1))[..., 0].mean(dim=-1)")
