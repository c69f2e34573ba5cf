"""Notebook 01's exercises: softmax and linear attention written by hand, and the order that costs less."""
from __future__ import annotations

import torch

from .. import functional as Fn
from ..course.complexity import crossover
from .check import Draw, Exercise, Property, Verdict, Wrong, check, differs

__all__ = ["check_softmax_attention", "check_linear_attention", "check_kv_crossover"]


def _sizes(draw: Draw, n_cases: int):
    """(B, N, M, d, d_v) per case: N ≠ M and d ≠ d_v mostly, so a swapped axis shows; B = 1 and B > 1 both."""
    out = [(1, 5, 7, 4, 3), (3, 6, 6, 5, 5)]  # one sequence; then N = M, d = d_v with a batch
    while len(out) < n_cases:
        d, dv = draw.int(2, 24), draw.int(2, 24)
        n, m = draw.int(2, 40), draw.int(2, 40)
        out.append((draw.int(1, 4), n, m, d, dv))
    return out


def _qkv(draw: Draw, b, n, m, d, dv, positive: bool, dtype):
    q, k, v = draw.randn(b, n, d, dtype=dtype), draw.randn(b, m, d, dtype=dtype), draw.randn(b, m, dv, dtype=dtype)
    if positive:  # non-negative features with some exact zeros, as a ReLU gives, and a normaliser that is never 0
        q, k = Fn.relu_kernel(q, 1e-3), Fn.relu_kernel(k, 1e-3)
    return q, k, v


# --- properties every right answer has; each names what the learner's function breaks

def _rows_average_v(call, args):
    q, k, v = args[:3]
    ones = torch.ones_like(v)
    out = call(q, k, ones, *args[3:])
    if differs(out, torch.ones_like(out) if isinstance(out, torch.Tensor) else None, atol=1e-3):
        return ("with v all ones every output entry must be 1: each output row is a weighted average of v's rows, "
                "its weights summing to 1 over the keys — yours are not")
    return None


def _keys_unordered(call, args):
    q, k, v = args[:3]
    perm = torch.randperm(k.shape[-2], generator=torch.Generator().manual_seed(1))
    a, b = call(q, k, v, *args[3:]), call(q, k[..., perm, :], v[..., perm, :], *args[3:])
    if differs(a, b):
        return "shuffling the keys together with their values must not change the result: attention sums over the keys"
    return None


def _batch_independent(call, args):
    q, k, v = args[:3]
    if q.shape[0] < 2:
        return None
    whole, alone = call(q, k, v, *args[3:]), call(q[1:2], k[1:2], v[1:2], *args[3:])
    if isinstance(whole, torch.Tensor) and differs(whole[1:2], alone):
        return "the sequences of a batch are independent: sequence 1's output must equal what q[1:2], k[1:2], v[1:2] alone give"
    return None


def _within_v(call, args):
    q, k, v = args[:3]
    out = call(*args)
    if not isinstance(out, torch.Tensor) or out.shape[:-1] != q.shape[:-1] or out.shape[-1] != v.shape[-1]:
        return None
    lo, hi = v.amin(dim=-2, keepdim=True).double(), v.amax(dim=-2, keepdim=True).double()
    o = out.double()
    if ((o < lo - 1e-4) | (o > hi + 1e-4)).any():
        return "an output entry lies outside the range of v's column: each output row is a weighted average of v's rows (weights ≥ 0, summing to 1)"
    return None


_ATTENTION_PROPERTIES = [Property(_rows_average_v), Property(_within_v), Property(_batch_independent), Property(_keys_unordered)]


def _softmax_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v


def _draw_softmax(draw: Draw):
    cases = [_qkv(draw, *s, positive=False, dtype=draw.dtype()) for s in _sizes(draw, 10)]
    q, k, v = _qkv(draw, 2, 9, 11, 16, 6, positive=False, dtype=torch.float32)
    cases.append((q * 12, k * 12, v))  # scores of a few hundred: exp overflows float32 unless the row max comes off first
    return cases


def _naive_exp(q, k, v):
    s = torch.exp(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5)
    return s / s.sum(dim=-1, keepdim=True) @ v


_SOFTMAX = Exercise(
    name="softmax attention", entry="check_softmax_attention", reference=_softmax_attention, draw=_draw_softmax,
    args=("q", "k", "v"), returns="a tensor (B, N, d_v) of q's dtype",
    wrong=[
        Wrong(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v, "divide the scores by √d (d = q.shape[-1]) before the softmax"),
        Wrong(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1], dim=-1) @ v, "the scale is √d, not d"),
        Wrong(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / k.shape[-2] ** 0.5, dim=-1) @ v, "the scale is √d (the head size), not √M"),
        Wrong(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-2) @ v,
              "the softmax runs over the keys of each query (the last dim), so every row of weights sums to 1"),
        Wrong(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=0) @ v,
              "the softmax runs over the keys of each query (the last dim), not over the batch"),
        Wrong(_naive_exp, "exp overflows for scores above ~88 (float32): subtract each row's largest score before exp — "
                          "the softmax does not change, and the largest term becomes exp(0) = 1"),
    ],
    properties=_ATTENTION_PROPERTIES,
    hint='compare with notebook 01, section 1 "Two ways to mix N tokens": each query\'s scores against every key, '
         'scaled by 1/√d, a softmax over the keys, then the weighted sum of the values',
    crash_hint="the inputs are batched: q (B, N, d), k (B, M, d), v (B, M, d_v); k's last two dims are the ones to transpose",
)


def check_softmax_attention(fn, seed: int | None = None) -> Verdict:
    """Notebook 01, section 1 "Two ways to mix N tokens": ``fn(q (B, N, d), k (B, M, d), v (B, M, d_v)) -> (B, N, d_v)``,
    softmax(q kᵀ/√d) v per sequence of the batch, in q's dtype (float32 or float64), finite for scores in the hundreds,
    inputs left unchanged. ``seed`` reruns the inputs a failure names."""
    return check(_SOFTMAX, fn, seed)


def _linear_attention(q, k, v):
    return Fn.linear_attention(q, k, v, "kv")


def _draw_linear(draw: Draw):
    cases = []
    for b, n, m, d, dv in _sizes(draw, 12):
        # N and M above d, d_v and B, all different: a tensor with an N-sized and an M-sized dim is an N×M matrix
        n, m = max(n, 2 * max(d, dv) + 3), max(m, 2 * max(d, dv) + 3)
        m = m + 1 if m == n else m
        cases.append(_qkv(draw, b, n, m, d, dv, positive=True, dtype=draw.dtype()))
    return cases


def _no_nm_matrix(args):
    n, m = args[0].shape[-2], args[1].shape[-2]

    def forbidden(t: torch.Tensor) -> str | None:
        return f"a tensor of shape {tuple(t.shape)}: an N×M matrix (N = {n}, M = {m})" if n in t.shape and m in t.shape else None
    return forbidden


_LINEAR = Exercise(
    name="linear attention", entry="check_linear_attention", reference=_linear_attention, draw=_draw_linear,
    args=("phi_q", "phi_k", "v"), returns="a tensor (B, N, d_v) of phi_q's dtype", watch=_no_nm_matrix,
    watch_hint="the kv order never forms an N×M matrix: first phi_k's transpose times v, a (B, d, d_v) state, "
               "and the normaliser from the sum of phi_k over the keys",
    wrong=[
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v),
              "each row must be divided by its normaliser φ(q_i)·Σ_j φ(k_j), as softmax divides by its row sum"),
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v) / k.sum(), "the normaliser is per query: φ(q_i)·Σ_j φ(k_j), one number per row"),
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v) / k.sum(dim=(-2, -1), keepdim=True),
              "the normaliser is per query: φ(q_i)·Σ_j φ(k_j), one number per row, not the sum of all features"),
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v) / (q @ k.transpose(-2, -1)).sum(),
              "the normaliser is per query row: sum over the keys only (and per sequence of the batch)"),
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v) / (q @ k.sum(dim=(0, 1))[:, None]),
              "Σ_j φ(k_j) sums over the keys of each sequence, not over the whole batch"),
        Wrong(lambda q, k, v: q @ (k.transpose(-2, -1) @ v) / (q.sum(dim=-1, keepdim=True) * k.sum(dim=(-2, -1))[..., None, None]),
              "the normaliser is a dot product, φ(q_i)·Σ_j φ(k_j): multiply entry by entry, then sum over d"),
    ],
    properties=_ATTENTION_PROPERTIES,
    hint='compare with Eq. 4 in notebook 01, section 1 "Two ways to mix N tokens": the d×d_v state first, '
         'then each query against it, divided by that query\'s normaliser',
    crash_hint="the inputs are batched: phi_q (B, N, d), phi_k (B, M, d), v (B, M, d_v); transpose the last two dims, not all of them",
)


def check_linear_attention(fn, seed: int | None = None) -> Verdict:
    """Notebook 01, section 1 "Two ways to mix N tokens": ``fn(phi_q (B, N, d), phi_k (B, M, d), v (B, M, d_v)) -> (B, N, d_v)``
    in the kv order (Eq. 4), φ(q_i)(φ(K)ᵀ V) / (φ(q_i) · Σ_j φ(k_j)); the features are already non-negative. Checked:
    values, dtype (phi_q's, float32 or float64), shape, inputs left unchanged, and that no N×M tensor is formed."""
    return check(_LINEAR, fn, seed)


# --- the crossover: an integer answer, so inputs from a wide range on every call

def _draw_crossover(draw: Draw):
    cases = []
    while len(cases) < 28:  # random sizes first: a wrong formula shows on an ordinary case
        cases.append((draw.log_int(1, 4096), draw.log_int(1, 4096)))
    cases += [(1, 1), (64, 64)]
    for _ in range(5):  # d = d_v: the crossover is d + 1
        d = draw.log_int(2, 4096)
        cases.append((d, d))
    for _ in range(5):  # 2·d·d_v/(d + d_v) a whole number with d ≠ d_v: a tie, where neither order is cheaper
        a, b = draw.choice([(1, 2), (1, 3), (2, 3), (1, 5), (3, 5), (2, 5), (1, 7), (3, 4)])
        a, b = (a, b) if draw.int(0, 1) else (b, a)
        t = (a + b) * draw.log_int(1, 200)
        cases.append((a * t, b * t))
    return cases


def _kv_cost(n, d, dv):
    return 2 * n * d * dv


def _qk_cost(n, d, dv):
    return n * n * (d + dv)


def _strictly_cheaper_there(call, args):
    d, dv = args
    n = call(d, dv)
    if isinstance(n, int) and n >= 1 and not _kv_cost(n, d, dv) < _qk_cost(n, d, dv):
        return (f"at your N = {n} the kv order is not strictly cheaper: kv costs 2N·d·d_v = {_kv_cost(n, d, dv)}, "
                f"qk costs N²(d + d_v) = {_qk_cost(n, d, dv)}")
    return None


def _not_cheaper_before(call, args):
    d, dv = args
    n = call(d, dv)
    if isinstance(n, int) and n > 1 and _kv_cost(n - 1, d, dv) < _qk_cost(n - 1, d, dv):
        return (f"already at N = {n - 1} the kv order is strictly cheaper ({_kv_cost(n - 1, d, dv)} < {_qk_cost(n - 1, d, dv)}): "
                "the answer is the smallest such N")
    return None


def _symmetric(call, args):
    d, dv = args
    if call(d, dv) != call(dv, d):
        return "swapping d and d_v cannot change the crossover: both costs are symmetric in d and d_v"
    return None


_CROSSOVER = Exercise(
    name="kv crossover", entry="check_kv_crossover", reference=crossover, draw=_draw_crossover, args=("d", "dv"),
    returns="a Python int, a number of tokens",
    wrong=[
        # most specific first: these agree with the learner on every case, or on the equality cases only
        Wrong(lambda d, dv: -(-2 * d * dv // (d + dv)),
              "strictly cheaper: when 2·d·d_v/(d + d_v) is a whole number, at N equal to it both orders cost the same, "
              "so the answer is the next integer"),
        Wrong(lambda d, dv: 2 * d * dv // (d + dv),
              "the smallest integer strictly above 2·d·d_v/(d + d_v): rounding down lands at or below it"),
        Wrong(lambda d, dv: round(2 * d * dv / (d + dv)),
              "the smallest integer strictly above 2·d·d_v/(d + d_v): rounding to the nearest can land below it"),
        Wrong(lambda d, dv: d * dv // (d + dv) + 1, "kv costs (N + M)·d·d_v = 2N·d·d_v with M = N: the factor 2 is missing"),
        Wrong(lambda d, dv: (d + dv) // 2 + 1, "solve 2N·d·d_v < N²(d + d_v) for N: the harmonic mean of d and d_v, not their mean"),
        Wrong(lambda d, dv: d + 1, "with d ≠ d_v the crossover is not d + 1: solve 2N·d·d_v < N²(d + d_v) for N"),
        Wrong(lambda d, dv: d, "with d ≠ d_v the crossover is not d: solve 2N·d·d_v < N²(d + d_v) for N"),
        Wrong(lambda d, dv: min(d, dv) + 1, "the crossover lies between min(d, d_v) and max(d, d_v): solve 2N·d·d_v < N²(d + d_v) for N"),
    ],
    properties=[Property(_strictly_cheaper_there), Property(_not_cheaper_before), Property(_symmetric)],
    hint='kv costs 2N·d·d_v and qk costs N²(d + d_v) with M = N (notebook 01, section 1 "Two ways to mix N tokens"): '
         'find where the first is strictly smaller',
)


def check_kv_crossover(fn, seed: int | None = None) -> Verdict:
    """Notebook 01, section 1 "Two ways to mix N tokens": ``fn(d, dv) -> int``, the smallest N (= M) at which the kv
    order costs strictly fewer multiply-adds than the qk order, (N + M)·d·d_v < N·M·(d + d_v). 40 pairs (d, d_v) from
    1 to 4096 per call, equal sizes and exact ties included."""
    return check(_CROSSOVER, fn, seed)

