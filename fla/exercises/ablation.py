"""Notebook 04's exercises: the paired difference over seeds with its t-interval, the exact sign-flip p-value,
and the attention mass a query puts on its answer."""
from __future__ import annotations

import functools
import math
import random
import statistics

import torch

from .. import functional as Fn
from ..experiments.stats import paired, sign_flip_p
from ..experiments.stats import t_quantile as _student_t
from .check import Draw, Exercise, Property, Verdict, Wrong, check, differs, tuples_differ

__all__ = ["check_paired_interval", "check_sign_flip_p", "check_answer_mass"]

_t_quantile = functools.lru_cache(maxsize=256)(_student_t)  # the wrong answers ask for the same few quantiles often

_SECTION = 'notebook 04, section 4 "Contrasts, paired by seed"'


def _seeds(draw: Draw, n: int):
    """Two variants' scores on n shared seeds: a large common seed effect, a gain, and a little noise of their own."""
    scale = 10 ** draw.uniform(-2, 0.5)
    common = [draw.py.gauss(0, 1) * scale for _ in range(n)]
    gain = draw.uniform(-0.5, 0.5) * scale
    a = [0.6 + gain + c + 0.1 * scale * draw.py.gauss(0, 1) for c in common]
    b = [0.6 + c + 0.1 * scale * draw.py.gauss(0, 1) for c in common]
    return a, b


def _draw_paired(draw: Draw):
    return [_seeds(draw, n) for n in [2, 3, 5, *[draw.int(2, 12) for _ in range(9)]]]


def _scores_tolerance(args):
    """Relative 1e-4, absolute 1e-6 of the scores' size: float32 arithmetic on the scores passes, a wrong formula does not."""
    return 1e-4, 1e-6 * max(abs(v) for v in args[0] + args[1])


def _interval(a, b):
    r = paired(a, b)
    return r["diff"], r["low"], r["high"]


def _diffs(a, b):
    return [x - y for x, y in zip(a, b)]


def _around(m, half):
    return m, m - half, m + half


def _t_interval(d, q=0.975, df_shift=-1, spread=statistics.stdev, root=True):
    n = len(d)
    return _around(statistics.mean(d), _t_quantile(q, n + df_shift) * spread(d) / (math.sqrt(n) if root else 1))


def _unpaired(a, b):  # the two means' standard error, as if the seeds were not shared
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return _around(statistics.mean(a) - statistics.mean(b), _t_quantile(0.975, len(a) - 1) * se)


def _centred(call, args):
    got = call(*args)
    if isinstance(got, (tuple, list)) and len(got) == 3 and all(isinstance(x, (int, float)) for x in got):
        m, lo, hi = got
        if not lo <= m <= hi:
            return "the interval runs from low to high around the mean: low ≤ mean ≤ high"
        if not math.isclose(m - lo, hi - m, rel_tol=1e-6, abs_tol=1e-12):
            return "a t-interval is symmetric: mean − low = high − mean"
    return None


def _pairing_cancels(call, args):
    """Other scores with the same per-seed differences (seed effects of the differences' own size, so that sorting
    or shuffling one list would pair other seeds) must give the same interval."""
    a, b = args
    d = _diffs(a, b)
    scale = max(abs(v) for v in a + b)
    x = call(a, b)
    rng = random.Random(0)
    for _ in range(5):
        other = [statistics.mean(b) + statistics.pstdev(d) * rng.gauss(0, 1) for _ in b]
        y = call([o + e for o, e in zip(other, d)], other)
        if tuples_differ(x, y, 3, 1e-3, 1e-4 * scale):
            return ("the interval depends only on the differences a[s] − b[s], seed s with seed s: other scores with "
                    "the same differences (other seed effects, shared by both variants) change yours")
    return None


def _direction(call, args):
    a, b = args
    x, y = call(a, b), call(b, a)
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)) and len(x) == len(y) == 3:
        if not math.isclose(x[0], -y[0], rel_tol=1e-6, abs_tol=1e-12):
            return "swapping a and b must negate the mean: it is the mean of a[s] − b[s]"
    return None


_PAIRED = Exercise(
    name="paired interval", entry="check_paired_interval", reference=_interval, draw=_draw_paired, args=("a", "b"),
    returns="a tuple of three Python floats (mean, low, high)", tolerance=_scores_tolerance,
    wrong=[
        Wrong(_unpaired, "pair the seeds: take the differences a[s] − b[s] first, then their spread (the shared seed effect cancels)"),
        Wrong(lambda a, b: _around(statistics.mean(_diffs(a, b)), 1.96 * statistics.stdev(_diffs(a, b)) / math.sqrt(len(a))),
              "with n seeds use Student's t with n − 1 degrees of freedom (t_quantile(0.975, n - 1)), not 1.96"),
        Wrong(lambda a, b: _t_interval(_diffs(a, b), root=False), "the interval is for the mean: divide the differences' standard deviation by √n"),
        Wrong(lambda a, b: _t_interval(_diffs(a, b), spread=statistics.pstdev),
              "the sample standard deviation divides by n − 1 (statistics.stdev), not by n"),
        Wrong(lambda a, b: _t_interval(_diffs(a, b), df_shift=0), "Student's t has n − 1 degrees of freedom, not n"),
        Wrong(lambda a, b: _t_interval(_diffs(a, b), q=0.95), "a two-sided 95 % interval leaves 2.5 % in each tail: t_quantile(0.975, n − 1)"),
        Wrong(lambda a, b: _t_interval(_diffs(b, a)), "the differences are a[s] − b[s], not b[s] − a[s]"),
        Wrong(lambda a, b: _t_interval(_diffs(a, b), spread=statistics.variance),
              "the half-width uses the standard deviation (statistics.stdev), not the variance"),
    ],
    properties=[Property(_centred), Property(_pairing_cancels), Property(_direction)],
    hint=f"reread {_SECTION}: the mean of the differences ± t_quantile(0.975, n − 1) · their sample sd / √n",
    crash_hint="a and b are lists of floats, one per seed, in the same seed order (n from 2 to 12)",
)


def check_paired_interval(fn, seed: int | None = None) -> Verdict:
    """Notebook 04, section 4 "Contrasts, paired by seed": ``fn(a, b) -> (mean, low, high)``, Python floats: the mean of the
    per-seed differences a[s] − b[s] and its 95 % t-interval mean ± t_{0.975, n−1} · sd / √n
    (``fla.experiments.stats.t_quantile``, sd with n − 1). a and b are lists of 2 to 12 floats, left unchanged."""
    return check(_PAIRED, fn, seed)


# --- the sign-flip p-value

def _pattern_sums(diffs) -> torch.Tensor:
    """The sums of all 2^n sign patterns of diffs, float64, added left to right as Python's ``sum`` does (same rounding)."""
    d = torch.tensor([float(x) for x in diffs], dtype=torch.float64)
    masks = torch.arange(2 ** len(d))
    sums = torch.zeros(2 ** len(d), dtype=torch.float64)
    for i, x in enumerate(d):
        sums = sums + torch.where((masks >> i) & 1 == 1, x, -x)
    return sums


def _tol(diffs) -> float:
    return 1e-12 * max(1.0, sum(abs(float(x)) for x in diffs))


def _p(diffs, hit) -> float:
    sums = _pattern_sums(diffs)
    return float(hit(sums, float(sum(diffs)), _tol(diffs)).double().mean())


def _broken_tie(draw: Draw) -> list:
    """Decimals x, y, −(x + y) and a few more, drawn until comparing the sums without slack gives another p."""
    while True:
        x, y = draw.choice([(0.1, 0.2), (0.1, 0.7), (0.2, 0.4), (0.3, 0.6), (0.7, 0.1), (0.4, 0.2)])
        diffs = [x, y, -round(x + y, 10)] + [draw.int(-9, 9) / 100 for _ in range(draw.int(1, 5))]
        draw.py.shuffle(diffs)
        sums, observed = _pattern_sums(diffs), abs(sum(diffs))
        if bool((sums.abs() >= observed - _tol(diffs)).sum() != (sums.abs() >= observed).sum()):
            return diffs


def _draw_diffs(draw: Draw):
    cases = []
    for _ in range(6):  # continuous differences, mixed signs
        n, scale = draw.int(2, 10), 10 ** draw.uniform(-3, 0)
        cases.append([draw.py.gauss(draw.uniform(-1, 1) * scale, scale) for _ in range(n)])
    for _ in range(4):  # all of one sign: p = 2 / 2^n
        n, sign = draw.int(1, 9), draw.choice([-1, 1])
        cases.append([sign * draw.uniform(0.001, 0.05) for _ in range(n)])
    for _ in range(2):  # two decimals, as scores are printed: exact ties
        cases.append([draw.int(-9, 9) / 100 for _ in range(draw.int(3, 10))])
    for _ in range(2):  # ... among them ties that float rounding breaks (0.1 + 0.2 is not 0.3): the slack must count them
        cases.append(_broken_tie(draw))
    cases.append([0.0] * draw.int(1, 6))  # the limit case: no difference at all, p = 1
    cases.append([draw.uniform(-0.1, 0.1) for _ in range(12)])
    return [(c,) for c in cases]


def _in_range(call, args):
    (diffs,) = args
    p = call(diffs)
    n = len(diffs)
    if isinstance(p, (int, float)) and not 2 / 2**n - 1e-12 <= p <= 1:
        return (f"with n = {n} differences p lies between 2/2^n = {2 / 2 ** n:.4g} (the observed pattern and its mirror "
                f"image are always at least as extreme) and 1: yours is {p:.4g}")
    return None


def _limit_cases(call, args):
    (diffs,) = args
    n = len(diffs)
    same_sign = [0.01 * (i + 1) for i in range(n)]
    p = call(same_sign)
    if isinstance(p, (int, float)) and not math.isclose(p, 2 / 2**n, rel_tol=1e-9):
        return (f"with {n} differences all of one sign only the observed pattern and its mirror image are as extreme: "
                f"p = 2/2^n = {2 / 2 ** n:.4g}, yours is {p:.4g}")
    p = call([0.0] * n)
    if isinstance(p, (int, float)) and p != 1:
        return f"with {n} differences all 0 every pattern ties with the observed one: p = 1, yours is {p:.4g}"
    return None


def _mirror(call, args):
    (diffs,) = args
    if call(diffs) != call([-x for x in diffs]):
        return "flipping the sign of every difference must not change a two-sided p-value"
    return None


def _order_free(call, args):
    (diffs,) = args
    p, q = call(diffs), call(list(reversed(diffs)))
    if isinstance(p, (int, float)) and isinstance(q, (int, float)) and not math.isclose(p, q, rel_tol=1e-9):
        return "the order of the seeds must not change p: it counts sign patterns"
    return None


_SIGN_FLIP = Exercise(
    name="sign-flip p", entry="check_sign_flip_p", reference=sign_flip_p, draw=_draw_diffs, args=("diffs",),
    returns="a Python float, a share of the 2^n patterns",
    wrong=[
        Wrong(lambda d: _p(d, lambda s, obs, t: s >= obs - t),
              "two-sided: compare |sum| of each pattern with |observed sum| (a large negative sum counts too)"),
        Wrong(lambda d: _p(d, lambda s, obs, t: s.abs() > abs(obs) + t),
              "the observed pattern itself counts: use >= (so the smallest p with n seeds is 2 / 2^n, not 0)"),
        Wrong(lambda d: _p(d, lambda s, obs, t: s.abs() >= abs(obs)),
              "sums that are equal but for float rounding are ties and count: compare with a little slack "
              "(>= |observed| − 1e-12), as 0.1 + 0.2 is not exactly 0.3 in floats"),
        Wrong(lambda d: (_p(d, lambda s, obs, t: s.abs() >= abs(obs) - t) * 2 ** len(d) - 1) / 2 ** len(d),
              "the observed pattern is one of the 2^n and counts: do not leave it out"),
        Wrong(lambda d: _p(d, lambda s, obs, t: s.abs() >= abs(obs) - t) * 2 ** len(d) / (2 ** len(d) - 1),
              "divide by all 2^n patterns, the observed one included"),
        Wrong(lambda d: min(1.0, 2 * _p(d, lambda s, obs, t: s >= abs(obs) - t)),
              "count the patterns with |sum| ≥ |observed sum| directly; doubling a one-sided count double-counts the ties"),
        Wrong(lambda d: _p(d, lambda s, obs, t: s.abs() >= abs(obs) - t) / 2,
              "two-sided: the share of all patterns with |sum| ≥ |observed sum|, not half of it"),
        Wrong(lambda d: _p(d, lambda s, obs, t: s.abs() >= sum(abs(x) for x in d) - t),
              "compare with |sum of the differences|, not with the sum of their absolute values"),
    ],
    properties=[Property(_in_range), Property(_limit_cases), Property(_mirror), Property(_order_free)],
    hint=f"reread {_SECTION}: the share of the 2^n sign patterns whose |sum| is at least the observed |sum|",
    crash_hint="diffs is a list of 1 to 12 floats",
)


def check_sign_flip_p(fn, seed: int | None = None) -> Verdict:
    """Notebook 04, section 4 "Contrasts, paired by seed": ``fn(diffs) -> p``, a Python float: the exact two-sided sign-flip
    p-value, the share of the 2^n sign patterns of the paired differences whose |sum| is at least the observed |sum|
    (sums equal up to float rounding, within 1e-12, count as ties). diffs: lists of 1 to 12 floats, left unchanged."""
    return check(_SIGN_FLIP, fn, seed)


# --- the answer mass

def _answer_mass(weights, answer):
    return Fn.answer_mass(weights, answer).mean(dim=-1)  # (heads, Q) per query -> per head, the mean over queries


def _weights(draw: Draw, heads: int, queries: int, n: int, dtype):
    w = draw.rand(heads, queries, n, dtype=dtype) ** 4
    return w / w.sum(dim=-1, keepdim=True), draw.randint(0, n, (queries,))


def _draw_mass(draw: Draw):
    cases = []
    for _ in range(8):
        cases.append(_weights(draw, draw.int(1, 6), draw.int(1, 12), draw.int(2, 128), draw.dtype()))
    q = draw.int(2, 6)
    cases.append(_weights(draw, q, q, draw.int(q + 1, 64), draw.dtype()))  # heads = Q: averaging the wrong axis keeps the shape
    n = draw.int(3, 9)
    cases.append(_weights(draw, draw.int(2, 4), n, n, draw.dtype()))       # Q = N
    return cases


def _one_hot_gives_one(call, args):
    weights, answer = args
    hot = torch.zeros_like(weights)
    hot[:, torch.arange(len(answer)), answer] = 1
    out = call(hot, answer)
    if isinstance(out, torch.Tensor) and out.shape == weights.shape[:1] and differs(out, torch.ones_like(out), 1e-5, 1e-7):
        return "when every query puts all its weight on its own answer cell, the mass is 1 for every head: yours is not"
    return None


def _uniform_gives_one_over_n(call, args):
    weights, answer = args
    flat = torch.full_like(weights, 1 / weights.shape[-1])
    out = call(flat, answer)
    if isinstance(out, torch.Tensor) and out.shape == weights.shape[:1] and differs(out, torch.full_like(out, 1 / weights.shape[-1]), 1e-5, 1e-7):
        return f"uniform rows (every weight 1/N) give a mass of 1/N = {1 / weights.shape[-1]:.4g} for every head: yours do not"
    return None


_MASS = Exercise(
    name="answer mass", entry="check_answer_mass", reference=_answer_mass, draw=_draw_mass, args=("weights", "answer"),
    returns="a tensor (heads,) of the weights' dtype",
    wrong=[
        Wrong(lambda w, a: w[..., a].mean(dim=(-1, -2)), "each query has its own answer: weights[h, i, answer[i]], not every query's weight on every answer"),
        Wrong(lambda w, a: w.gather(-1, a[None, :, None].expand(w.shape[0], -1, 1))[..., 0].sum(dim=-1),
              "the mass is a mean over the queries, not their sum"),
        Wrong(lambda w, a: w.gather(-1, a[None, :, None].expand(w.shape[0], -1, 1))[..., 0].mean(dim=0),
              "one number per head: average over the queries (dim -1 of the gathered (heads, Q)), not over the heads"),
        Wrong(lambda w, a: w.max(dim=-1).values.mean(dim=-1), "the weight on the answer cell, not the row's largest weight (that may sit elsewhere)"),
        Wrong(lambda w, a: (w.argmax(dim=-1) == a).to(w.dtype).mean(dim=-1),
              "the mass is the weight itself, not whether the answer gets the largest weight"),
        Wrong(lambda w, a: w[:, a, :].diagonal(dim1=-2, dim2=-1).mean(dim=-1) if w.shape[1] == w.shape[2] else None,
              "answer[i] indexes the key cells (the last dim), not the queries"),
    ],
    properties=[Property(_one_hot_gives_one), Property(_uniform_gives_one_over_n)],
    hint='reread notebook 04, section 5 "Retrieval over N": per head, the mean over queries i of weights[h, i, answer[i]]',
    crash_hint="weights is (heads, Q, N), answer (Q,) long: answer[i] is a cell index in 0 … N − 1 for query i",
)


def check_answer_mass(fn, seed: int | None = None) -> Verdict:
    """Notebook 04, section 5 "Retrieval over N: does focusing hold the answer as keys are added?": ``fn(weights (heads, Q, N)
    row-stochastic, answer (Q,) long) -> (heads,)``, per head the mean over the Q queries of the weight query i puts on
    its answer cell answer[i]; in the weights' dtype (float32 or float64); inputs left unchanged."""
    return check(_MASS, fn, seed)
